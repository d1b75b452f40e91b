"""`time_backends`: the forward pass of each installed inference backend on this machine, timed in turns.

What `mindface-au bench` runs, so a user can pick the backend for `detect` on their own hardware: a network of a
model config (random weights: speed does not depend on them) is saved as a checkpoint and exported to MindIR and,
with ONNX Runtime installed, to ONNX float32 and int8, in a temporary folder; each file is loaded the way `detect`
loads it and timed on one batch, the backends in turns so a changing load on the machine affects them alike. The
full benchmark suite, with the project's speed targets, is the repository's benchmarks/ folder (`make bench`).
"""

import dataclasses
import importlib.util
import os
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from mindface_au.config import ModelConfig
from mindface_au.errors import UserError
from mindface_au.utils.cpus import available_cpus

__all__ = ["BACKENDS", "installed_backends", "time_backends", "format_timings"]

BACKENDS = ("mindspore", "mindir", "onnx", "onnx-int8")  # checkpoint, MindIR, ONNX float32, ONNX int8
_SUFFIX = {"mindspore": ".ckpt", "mindir": ".mindir", "onnx": ".onnx", "onnx-int8": "-int8.onnx"}
CALIB_FRAMES = 16  # int8 calibration inputs (random faces: the timing does not depend on the scales)


def installed_backends() -> List[str]:
    """The backends this installation can run: ONNX ones only with onnxruntime and onnx installed."""
    has_onnx = all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))
    return [b for b in BACKENDS if has_onnx or not b.startswith("onnx")]


def _write_files(model: ModelConfig, folder: str, batch_size: int, backends: List[str], device: str, log):
    """The checkpoint and the exports wanted; {backend: path} and {backend: error} for exports that failed."""
    import mindspore as ms

    from mindface_au.inference.export import export_model
    from mindface_au.model_card import run_settings
    from mindface_au.models import create_model_from_config
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    ckpt = os.path.join(folder, "model" + _SUFFIX["mindspore"])
    ms.set_seed(0)
    net = create_model_from_config(model)  # a file that says how to run it, as a trained one does
    save_checkpoint_atomic(net, ckpt, model_config=dataclasses.asdict(model), card=run_settings(model))
    files, errors = {"mindspore": ckpt}, {}
    for backend in backends:
        if backend == "mindspore":
            continue
        path = os.path.join(folder, "model" + _SUFFIX[backend])
        log(f"bench: exporting {backend} ...")
        quantize = {"quantize": "int8", "calib_frames": CALIB_FRAMES} if backend == "onnx-int8" else {}
        try:
            export_model(ckpt, path, fmt="MINDIR" if backend == "mindir" else "ONNX", batch_size=batch_size,
                         device=device, **quantize)  # fmt: skip
            files[backend] = path
        except Exception as exc:  # noqa: BLE001 - one format failing must not hide the others' timings
            errors[backend] = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return files, errors


def time_backends(
    model: ModelConfig,
    batch_size: int = 8,
    backends: Optional[List[str]] = None,
    repeats: int = 5,
    warmup: int = 1,
    threads: int = 0,
    device: str = "auto",
    log: Callable[[str], None] = print,
) -> Dict[str, Any]:
    """Median forward time of each backend on one random batch of `batch_size` faces.

    Args:
        model: the network (an `aunet_*` ModelConfig, as in a training config).
        backends: names from BACKENDS (default: every installed one).
        repeats: timed rounds; each round runs every backend once, in turns. warmup: untimed rounds first.
        threads: ONNX Runtime intra-op threads (0: every CPU this process may use).
    Returns {"model", "batch_size", "threads", "rows": [{backend, median_s, images_per_s, load_s, file_mb,
    times_s}], "errors": {backend: message}}.
    """
    from mindface_au.inference.loader import load_inference_model

    wanted = list(backends or installed_backends())
    for name in wanted:
        if name not in BACKENDS:
            raise UserError(f"backend {name!r}: expected one of {', '.join(BACKENDS)}")
        if name not in installed_backends():
            raise UserError(f'backend {name!r}: needs ONNX Runtime: pip install "mindface-au[onnx]"')
    if not model.name.startswith("aunet_"):
        raise UserError(f"model.name {model.name!r}: expected an AU network (aunet_*)")
    if batch_size < 1 or repeats < 1 or warmup < 0 or threads < 0:
        raise UserError("batch size and repeats must be >= 1, warmup and threads >= 0")
    x = np.random.default_rng(0).uniform(-1, 1, (batch_size, 3, model.input_size, model.input_size))
    x = x.astype(np.float32)
    result: Dict[str, Any] = {"model": model.name, "batch_size": batch_size, "threads": threads or available_cpus()}
    with tempfile.TemporaryDirectory(prefix="mindface-au-bench-") as folder:
        log(f"bench: writing a {model.name} checkpoint ...")
        files, errors = _write_files(model, folder, batch_size, wanted, device, log)
        steps, loaded = {}, {}
        for name, path in files.items():
            start = time.perf_counter()
            try:
                net = load_inference_model(path, device=device, threads=threads, batch_size=batch_size)
                steps[name] = lambda net=net: net.predict(x)
                steps[name]()  # compiles / builds the session
            except Exception as exc:  # noqa: BLE001
                errors[name] = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                continue
            loaded[name] = {"load_s": round(time.perf_counter() - start, 3), "file_mb": os.path.getsize(path) / 2**20}
        times: Dict[str, List[float]] = {name: [] for name in steps}
        log(f"bench: {warmup} + {repeats} rounds of {', '.join(steps)} at batch {batch_size} ...")
        for round_ in range(warmup + repeats):
            for name, step in steps.items():
                start = time.perf_counter()
                step()
                if round_ >= warmup:
                    times[name].append(time.perf_counter() - start)
    rows = []
    for name in wanted:
        if name in times:
            median = float(np.median(times[name]))
            rows.append(
                {"backend": name, "median_s": median, "images_per_s": batch_size / median, **loaded[name],
                 "times_s": [round(t, 5) for t in times[name]]}
            )  # fmt: skip
    result.update(rows=rows, errors={name: errors[name] for name in wanted if name in errors})
    return result


def format_timings(result: Dict[str, Any]) -> str:
    """A Markdown table of `time_backends`' result, fastest first, with each backend's time over the fastest."""
    lines = [
        f"{result['model']}, batch {result['batch_size']}, {result['threads']} thread(s):",
        "",
        "| backend | forward s | images/s | x fastest | load s | file MiB |",
        "|---|---|---|---|---|---|",
    ]
    rows = sorted(result["rows"], key=lambda r: r["median_s"])
    for row in rows:
        lines.append(
            f"| {row['backend']} | {row['median_s']:.4f} | {row['images_per_s']:.1f} | "
            f"{row['median_s'] / rows[0]['median_s']:.2f} | {row['load_s']:.2f} | {row['file_mb']:.1f} |"
        )
    lines += [f"| {name} | failed: {message} | | | | |" for name, message in result["errors"].items()]
    return "\n".join(lines)
