"""What a cluster user checks first: this MindSpore, its device plugins, devices, msrun, cores, and one compiled step.

`diagnose(device)` returns the facts as a dict (`mindface-au doctor --json` prints it); `format_report` turns them
into the lines `mindface-au doctor` prints. On Ascend or GPU the compiled step is the smoke test of the device path
(tiny network, AMP and loss scale as `train` resolves them); on CPU it reports what CPU gives.
"""

import ctypes.util
import os
import re
import shutil
import sys
import time
from typing import Dict, List

SHARED_FOLDER_NOTE = (
    "multi-machine runs: the run directory (--out, --resume) and the data root must be one shared folder mounted at "
    "the same path on every machine (rank 0 writes checkpoints and logs there, every rank reads resume.ckpt from it)"
)


def _missing_libraries(error: str) -> List[str]:
    """The shared libraries named in MindSpore's plugin-load error ("libX.so: cannot open shared object file")."""
    return sorted(set(re.findall(r"([\w.+-]+\.so[\w.]*): cannot open shared object file", error)))


def _gpu_plugin_builds() -> List[str]:
    """The CUDA versions this MindSpore ships GPU plugins for (lib/plugin/gpu<version> folders)."""
    import mindspore as ms

    folder = os.path.join(os.path.dirname(ms.__file__), "lib", "plugin")
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return sorted(n[3:] for n in names if n.startswith("gpu") and n[3:])


def _plugins() -> Dict[str, dict]:
    from mindface_au.utils.device import device_available, plugin_load_error

    error = plugin_load_error()
    plugins = {}
    for target in ("Ascend", "GPU", "CPU"):
        loaded = device_available(target)
        entry = {"loaded": loaded, "devices": None, "why_not": ""}
        if loaded:
            try:
                from mindspore import device_context

                entry["devices"] = int(getattr(device_context, target.lower()).device_count())
            except Exception as exc:  # noqa: BLE001 - report, do not fail: the plugin loaded, counting did not
                entry["why_not"] = f"device_count failed: {exc}".splitlines()[0]
        else:
            lines = [line for line in error.splitlines() if target.lower() in line.lower()]
            entry["why_not"] = " / ".join(lines)
            entry["missing_libraries"] = _missing_libraries("\n".join(lines))
            if not lines and target == "GPU":
                cuda = ctypes.util.find_library("cudart")
                builds = ", ".join(_gpu_plugin_builds()) or "none"
                entry["why_not"] = (
                    f"no GPU plugin load was recorded; this MindSpore's GPU plugins are for CUDA {builds}, "
                    f"CUDA runtime found here: {cuda or 'none'}"
                )
            elif not lines:
                entry["why_not"] = error.replace("\n", " / ") or "no plugin error recorded by MindSpore"
        plugins[target] = entry
    return plugins


def _compile_step(device: str) -> dict:
    """Compile and run one training step of a tiny AU network on `device`, as `train` resolves AMP and loss scale."""
    import mindspore.dataset as ds
    import numpy as np
    from mindspore.train import Model

    from mindface_au.config import LossConfig, ModelConfig, TrainConfig
    from mindface_au.engine.optim import create_optimizer
    from mindface_au.engine.runtime import amp_rewrite_folder, resolve_runtime
    from mindface_au.losses import create_loss
    from mindface_au.models import create_model_from_config

    start = time.time()
    amp = "O0" if device == "CPU" else "O2"
    try:
        train_cfg = TrainConfig(amp_level=amp)
        runtime = resolve_runtime(train_cfg, device, 1, 4)
        model_cfg = ModelConfig(
            name="aunet_iresnet18", widths=[8, 16, 16, 32], layers=[1, 1, 1, 1], input_size=32, embedding_size=16,
            head_dim=16, fusion_heads=4, lrp_reduction=4,
        )  # fmt: skip
        net = create_model_from_config(model_cfg)
        optimizer = create_optimizer(net, train_cfg, [0.01], runtime.optimizer_loss_scale)
        manager = runtime.loss_scale_manager()
        kwargs = {"loss_scale_manager": manager} if manager is not None else {}
        with amp_rewrite_folder(runtime.amp_level):
            model = Model(net, create_loss(LossConfig()), optimizer=optimizer, amp_level=runtime.amp_level, **kwargs)
        rng = np.random.default_rng(0)
        data = ds.NumpySlicesDataset(
            {"image": rng.uniform(-1, 1, (4, 3, 32, 32)).astype(np.float32), "label": np.eye(12, dtype=np.float32)[:4]},
            shuffle=False,
        ).batch(4)
        before = net.trainable_params()[0].asnumpy().copy()
        model.train(1, data, dataset_sink_mode=False)
        changed = not np.array_equal(before, net.trainable_params()[0].asnumpy())
        ok = bool(changed and np.all(np.isfinite(net.trainable_params()[0].asnumpy())))
        detail = runtime.describe() if ok else "the step ran but left the first parameter unchanged or not finite"
        return {"ok": ok, "seconds": round(time.time() - start, 1), "amp_level": amp, "detail": detail}
    except Exception as exc:  # noqa: BLE001 - the doctor reports the failure instead of raising it
        text = str(exc).strip().splitlines()
        return {
            "ok": False,
            "seconds": round(time.time() - start, 1),
            "amp_level": amp,
            "detail": f"{type(exc).__name__}: {text[0] if text else ''}",
        }


def _build() -> str:
    """MindSpore's build commit and branch, from the `.commit_id` file its wheels ship ("" if absent)."""
    import mindspore as ms

    try:
        with open(os.path.join(os.path.dirname(ms.__file__), ".commit_id")) as handle:
            text = handle.read()
    except OSError:
        return ""
    match = re.search(r"\[sha1\]:(\w+),\[branch\]:\(([^)]*)\)", text)
    return f"{match.group(1)}, {match.group(2).split(',')[-1].strip()}" if match else text.strip()


def diagnose(device: str = "auto", compile_step: bool = True) -> dict:
    """The facts `mindface-au doctor` prints; `device` as `train --device` (auto = Ascend, then GPU, then CPU)."""
    import mindspore as ms

    from mindface_au.utils.device import init_context

    plugins = _plugins()
    target = init_context(device, "graph")
    msrun = os.path.join(os.path.dirname(sys.executable), "msrun")
    msrun = msrun if os.path.isfile(msrun) else shutil.which("msrun")
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    report = {
        "mindspore": {"version": ms.__version__, "build": _build()},
        "python": sys.version.split()[0],
        "plugins": plugins,
        "device": target,
        "msrun": msrun or "",
        "cores": {"count": os.cpu_count(), "affinity": affinity},
        "launcher_env": {
            k: os.environ[k] for k in ("MS_WORKER_NUM", "RANK_TABLE_FILE", "RANK_SIZE") if k in os.environ
        },
        "shared_folder": SHARED_FOLDER_NOTE,
    }
    if compile_step:
        report["compile_step"] = _compile_step(target)
    return report


def _ranges(cores: List[int]) -> str:
    out, start = [], None
    for i, core in enumerate(cores):
        if start is None:
            start = core
        if i + 1 == len(cores) or cores[i + 1] != core + 1:
            out.append(str(start) if start == core else f"{start}-{core}")
            start = None
    return ",".join(out)


def format_report(report: dict) -> List[str]:
    """The report as the lines `mindface-au doctor` prints."""
    ms_info = report["mindspore"]
    lines = [f"MindSpore {ms_info['version']} (build {ms_info['build'] or 'unknown'}), Python {report['python']}"]
    for target, entry in report["plugins"].items():
        if entry["loaded"]:
            count = "?" if entry["devices"] is None else entry["devices"]
            extra = f" ({entry['why_not']})" if entry["why_not"] else ""
            lines.append(f"plugin {target}: loaded, {count} device(s){extra}")
        else:
            libs = entry.get("missing_libraries") or []
            why = f"could not open {', '.join(libs)}" if libs else entry["why_not"]
            lines.append(f"plugin {target}: not loaded: {why}")
    lines.append(f"device used: {report['device']}")
    lines.append(f"msrun: {report['msrun'] or 'not found (it is installed with MindSpore; needed by launch)'}")
    cores = report["cores"]
    bound = _ranges(cores["affinity"]) if cores["affinity"] else "unknown"
    lines.append(f"cores: {cores['count']}, this process may run on {len(cores['affinity'])} ({bound})")
    if report["launcher_env"]:
        lines.append("launcher: " + ", ".join(f"{k}={v}" for k, v in report["launcher_env"].items()))
    lines.append(report["shared_folder"])
    step = report.get("compile_step")
    if step is not None:
        state = "ok" if step["ok"] else "FAILED"
        lines.append(
            f"one training step of a tiny network on {report['device']} (AMP {step['amp_level']}): {state} in "
            f"{step['seconds']} s; {step['detail']}"
        )
    return lines
