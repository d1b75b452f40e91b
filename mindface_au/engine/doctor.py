"""What a cluster user checks first: this MindSpore, its device plugins, devices, msrun, cores, and one compiled step.

`diagnose(device)` returns the facts as a dict (`mindface-au doctor --json` prints it); `format_report` turns them
into the lines `mindface-au doctor` prints. On Ascend or GPU the compiled step is the smoke test of the device path
(tiny network, AMP and loss scale as `train` resolves them); on CPU it reports what CPU gives.
"""

import ctypes.util
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Dict, List

from mindface_au.errors import param, render
from mindface_au.utils.cpus import cpu_affinity
from mindface_au.utils.device import (
    ASCEND_CANN_VERSIONS,
    GPU_CUDA_CUDNN,
    cpu_fallback_problem,
    device_available,
    device_memory,
    gpu_plugin_builds,
    hardware_present,
    missing_libraries,
    plugin_load_error,
    plugin_problem,
)

SHARED_FOLDER_NOTE = (
    f"multi-machine runs: the run directory ({param('out')}, {param('resume')}) and "
    "the data root must be one shared folder mounted at "
    "the same path on every machine (rank 0 writes checkpoints and logs there, every rank reads resume.ckpt from it)"
)


# Where CANN's version.info lives: MindSpore's own check reads $ASCEND_HOME_PATH/compiler/version.info (set by
# set_env.sh); the other two are the default install folders of CANN's toolkit (8.x) and of the merged package.
CANN_VERSION_FILES = (
    "{ASCEND_HOME_PATH}/compiler/version.info",
    "/usr/local/Ascend/ascend-toolkit/latest/compiler/version.info",
    "/usr/local/Ascend/cann/compiler/version.info",
)
ASCEND_DRIVER_VERSION_FILE = "/usr/local/Ascend/driver/version.info"
NPU_SMI = "npu-smi"
# The PTX targets of MindSpore 2.10.0's lib/plugin/gpu/libcuda_ops.so.11 (its `.target sm_NN` lines): Pascal and
# Ampere; other generations from Pascal on run it through the driver's JIT compile of the sm_60/sm_86 PTX.
GPU_PTX_ARCHS = ("sm_60", "sm_86")
SINK_ON_CPU = (
    "not run: MindSpore 2.10 has no dataset sink on CPU (Model.train falls back to feeding step by step, "
    "mindspore.data_sink refuses device targets other than Ascend and GPU)"
)


def _version_field(path: str) -> str:
    """The `Version=` value of a CANN or driver version.info file ("" if absent or unreadable)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.strip().startswith("Version="):
                    return line.strip().split("=", 1)[1].strip()
    except OSError:
        pass
    return ""


def _ascend_chip() -> str:
    """The chip name in `npu-smi info`'s first device row (e.g. 910B4), "" where npu-smi is missing or fails."""
    tool = shutil.which(NPU_SMI)
    if not tool:
        return ""
    try:
        out = subprocess.run([tool, "info"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    match = re.search(r"^\|\s*\d+\s+([A-Za-z]*\d{3}\w*)\s*\|", out, re.MULTILINE)
    return match.group(1) if match else ""


def ascend_kernel_chips() -> List[str]:
    """The chips this MindSpore ships custom Ascend C kernels for (lib/plugin/ascend/custom_ascendc_910b kernel
    folders: 910b, 910_93, 310p, 950 in 2.10.0; no 910A)."""
    import mindspore as ms

    folder = os.path.join(
        os.path.dirname(ms.__file__), "lib", "plugin", "ascend", "custom_ascendc_910b", "op_impl", "ai_core", "tbe",
        "kernel",
    )  # fmt: skip
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return sorted(n.replace("ascend", "", 1) for n in names if n.startswith("ascend"))


def cann_info() -> dict:
    """CANN's version (from its version.info) against the versions MindSpore 2.10 accepts, driver and chip."""
    home = os.environ.get("ASCEND_HOME_PATH", "")
    files = [f.format(ASCEND_HOME_PATH=home) for f in CANN_VERSION_FILES if home or "{" not in f]
    found = next((f for f in files if os.path.isfile(f)), "")
    version = _version_field(found) if found else ""
    major_minor = ".".join(version.split(".")[:2])
    return {
        "version_file": found,
        "version": version,
        "supported_versions": list(ASCEND_CANN_VERSIONS),
        "supported": (major_minor in ASCEND_CANN_VERSIONS) if version else None,
        "driver": _version_field(ASCEND_DRIVER_VERSION_FILE),
        "chip": _ascend_chip(),
        "kernel_chips": ascend_kernel_chips(),
    }


def _nvcc_version(cuda_home: str) -> str:
    nvcc = os.path.join(cuda_home, "bin", "nvcc") if cuda_home else ""
    if not nvcc or not os.path.isfile(nvcc):
        return ""
    try:
        out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    match = re.search(r"release (\d+\.\d+)", out)
    return f"{match.group(1)} ({nvcc})" if match else ""


def cuda_info() -> dict:
    """The CUDA/cuDNN pairs MindSpore 2.10's GPU plugin needs against what this machine has.

    MindSpore picks its GPU plugin from the nvcc of CUDA_HOME; the plugin links libcudart.so.11.0 and libcudnn.so.8.
    Found: CUDA_HOME (else /usr/local/cuda) and its nvcc's release ("12.4 (path)"), and the CUDA runtime, cuDNN and
    driver libraries the dynamic loader knows.
    """
    env_home = os.environ.get("CUDA_HOME", "")
    home = env_home or ("/usr/local/cuda" if os.path.isdir("/usr/local/cuda") else "")
    return {
        "needed": [{"cuda": cuda, "cudnn": cudnn} for cuda, cudnn in GPU_CUDA_CUDNN],
        "plugin_builds": gpu_plugin_builds(),
        "ptx_archs": list(GPU_PTX_ARCHS),
        "cuda_home": env_home,
        "nvcc": _nvcc_version(home),
        "cudart": ctypes.util.find_library("cudart") or "",
        "cudnn": ctypes.util.find_library("cudnn") or "",
        "driver": ctypes.util.find_library("cuda") or "",
    }


def _plugins() -> Dict[str, dict]:
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
            entry["why_not"] = plugin_problem(target, error)
            entry["missing_libraries"] = missing_libraries("\n".join(lines))
        plugins[target] = entry
    return plugins


def step_plan(device: str) -> List[dict]:
    """The training steps the doctor runs on `device`: without and with dataset sink (sink is on by default on
    Ascend and GPU); on CPU the sink step is listed as not run, with the reason (SINK_ON_CPU)."""
    return [
        {"sink_mode": False, "run": True, "why_not": ""},
        {"sink_mode": True, "run": device != "CPU", "why_not": SINK_ON_CPU if device == "CPU" else ""},
    ]


def _compile_step(device: str, sink_mode: bool = False) -> dict:
    """Compile and run one training step of a tiny AU network on `device`, as `train` resolves AMP and loss scale
    (`sink_mode`: through the dataset sink, Ascend/GPU only)."""
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
    result = {"sink_mode": sink_mode, "amp_level": amp}
    try:
        train_cfg = TrainConfig(amp_level=amp, sink_mode="true" if sink_mode else "false")
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
        model.train(1, data, dataset_sink_mode=runtime.sink_mode)
        changed = not np.array_equal(before, net.trainable_params()[0].asnumpy())
        ok = bool(changed and np.all(np.isfinite(net.trainable_params()[0].asnumpy())))
        detail = runtime.describe() if ok else "the step ran but left the first parameter unchanged or not finite"
        return {**result, "ok": ok, "seconds": round(time.time() - start, 1), "detail": detail}
    except Exception as exc:  # noqa: BLE001 - the doctor reports the failure instead of raising it
        text = str(exc).strip().splitlines()
        detail = f"{type(exc).__name__}: {text[0] if text else ''}"
        return {**result, "ok": False, "seconds": round(time.time() - start, 1), "detail": detail}


def _compile_steps(device: str) -> List[dict]:
    steps = []
    for plan in step_plan(device):
        if plan["run"]:
            steps.append(_compile_step(device, plan["sink_mode"]))
        else:
            steps.append({"sink_mode": plan["sink_mode"], "ok": None, "detail": plan["why_not"]})
    return steps


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
    """The facts `mindface-au doctor` prints; `device` as `train --device` (auto = Ascend, then GPU, then CPU).

    Where `device: auto` would be refused (accelerator hardware whose MindSpore plugin did not load), the report
    says so in `refused` and checks the CPU instead of raising: the doctor is where that is diagnosed.
    """
    import mindspore as ms

    from mindface_au.utils.device import init_context

    plugins = _plugins()
    refused = cpu_fallback_problem() if str(device).lower() in ("", "auto") else ""
    target = init_context("CPU" if refused else device, "graph")
    msrun = os.path.join(os.path.dirname(sys.executable), "msrun")
    msrun = msrun if os.path.isfile(msrun) else shutil.which("msrun")
    affinity = cpu_affinity()
    report = {
        "mindspore": {"version": ms.__version__, "build": _build()},
        "python": sys.version.split()[0],
        "plugins": plugins,
        "hardware": hardware_present(),
        "refused": render(refused),
        "cann": cann_info(),
        "cuda": cuda_info(),
        "device": target,
        "msrun": msrun or "",
        "cores": {"count": os.cpu_count(), "affinity": affinity},
        "launcher_env": {
            k: os.environ[k] for k in ("MS_WORKER_NUM", "RANK_TABLE_FILE", "RANK_SIZE") if k in os.environ
        },
        "shared_folder": render(SHARED_FOLDER_NOTE),
    }
    if compile_step:
        report["compile_steps"] = _compile_steps(target)
    report["device_memory"] = device_memory(target)  # after the steps: Ascend reports 0 before initialisation
    return report


def steps_ok(report: dict) -> bool:
    """False when a training step the doctor ran failed (steps not run, such as sink mode on CPU, do not count)."""
    return all(step["ok"] is not False for step in report.get("compile_steps", ()))


def _ranges(cores: List[int]) -> str:
    out, start = [], None
    for i, core in enumerate(cores):
        if start is None:
            start = core
        if i + 1 == len(cores) or cores[i + 1] != core + 1:
            out.append(str(start) if start == core else f"{start}-{core}")
            start = None
    return ",".join(out)


def _cann_lines(cann: dict) -> List[str]:
    if not cann["version_file"] and not cann["driver"] and not cann["chip"]:
        return ["CANN: not found (no version.info under ASCEND_HOME_PATH or /usr/local/Ascend)"]
    accepted = ", ".join(cann["supported_versions"])
    if cann["version"]:
        verdict = "accepted" if cann["supported"] else "NOT accepted"
        version = f"CANN {cann['version']} ({cann['version_file']}): {verdict} by MindSpore 2.10 ({accepted})"
    else:
        version = f"CANN: no version.info found (MindSpore 2.10 accepts {accepted})"
    chips = ", ".join(cann["kernel_chips"]) or "none"
    chip = cann["chip"] or "unknown (npu-smi not found)"
    return [
        version,
        f"Ascend driver {cann['driver'] or 'not found'}, chip {chip}; MindSpore's custom kernels cover {chips}",
    ]


def _cuda_lines(cuda: dict) -> List[str]:
    needed = " or ".join(f"CUDA {p['cuda']} + cuDNN {p['cudnn']}" for p in cuda["needed"])
    found = (
        f"CUDA_HOME {cuda['cuda_home'] or 'not set'}, nvcc {cuda['nvcc'] or 'not found'}, runtime "
        f"{cuda['cudart'] or 'not found'}, cuDNN {cuda['cudnn'] or 'not found'}, driver {cuda['driver'] or 'not found'}"
    )
    return [
        f"GPU plugin needs {needed} (plugins for CUDA {', '.join(cuda['plugin_builds']) or 'none'}; kernels as PTX "
        f"for {', '.join(cuda['ptx_archs'])}); found: {found}"
    ]


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
            lines.append(f"plugin {target}: not loaded: {entry['why_not']}")
    hardware = report["hardware"]
    lines.append(
        "accelerator hardware: "
        + (", ".join(f"{t} ({', '.join(f[:3])})" for t, f in hardware.items() if f) or "none (no driver files)")
    )
    lines.extend(_cann_lines(report["cann"]))
    lines.extend(_cuda_lines(report["cuda"]))
    if report["refused"]:
        lines.append(f"train --device auto would stop: {report['refused']}")
    lines.append(f"device used: {report['device']}")
    memory = report.get("device_memory")
    if memory:
        free = f", {memory['free_bytes'] / 2**30:.2f} GiB free" if memory.get("free_bytes") else ""
        lines.append(f"device memory: {memory['total_bytes'] / 2**30:.2f} GiB ({memory['name'] or 'device 0'}){free}")
    else:
        lines.append("device memory: not reported by MindSpore for this device")
    lines.append(f"msrun: {report['msrun'] or 'not found (it is installed with MindSpore; needed by launch)'}")
    cores = report["cores"]
    bound = _ranges(cores["affinity"]) if cores["affinity"] else "unknown"
    lines.append(f"cores: {cores['count']}, this process may run on {len(cores['affinity'])} ({bound})")
    if report["launcher_env"]:
        lines.append("launcher: " + ", ".join(f"{k}={v}" for k, v in report["launcher_env"].items()))
    lines.append(report["shared_folder"])
    for step in report.get("compile_steps", ()):
        sink = "sink mode on" if step["sink_mode"] else "sink mode off"
        head = f"one training step of a tiny network on {report['device']}, {sink}"
        if step["ok"] is None:
            lines.append(f"{head}: {step['detail']}")
            continue
        state = "ok" if step["ok"] else "FAILED"
        lines.append(f"{head} (AMP {step['amp_level']}): {state} in {step['seconds']} s; {step['detail']}")
    return lines
