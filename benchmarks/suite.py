"""`run_bench`: which measurements a bench run makes, in which worker processes, and the report they add up to.

Sections: the matmul limit; per framework (MindSpore, PyTorch) the forward and train step of each model, their
ratio measured in turns in one process, the AU heads' cost and the intensity head's (MindSpore forward, with it vs
without it); per inference backend the forward at batch 1, 8 and 32 in turns in one process (plus each backend's
peak RSS alone); end-to-end `detect` on a generated video per backend; the data pipeline and post-processing.
Exported files and the video are made once per run (or found in `--cache`). The thread count is the same for
numpy, MindSpore, PyTorch and ONNX Runtime and is stated.
"""

import dataclasses
import importlib.util
import os
import platform
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from benchmarks.deploy import (
    BACKENDS,
    DETECT_PATHS,
    FILE_BACKENDS,
    ONNX_BACKENDS,
    VIDEO_SIZE,
    detect_model_configs,
    make_video,
)
from benchmarks.measure import TRAIN_FLOP_FACTOR, backbone_name, default_threads
from benchmarks.report import failures, framework_ratios, targets
from benchmarks.worker import run_worker
from mindface_au.errors import UserError

__all__ = ["BenchOptions", "DEFAULT_MODELS", "run_bench"]

DEFAULT_MODELS = ("iresnet100", "aunet_iresnet100")
QUICK_MODELS = ("aunet_iresnet100",)
DETECT_WIDTHS = ("full", "demo")


@dataclass
class BenchOptions:
    """What `run_bench` measures and how; the defaults are the full suite.

    `quick` (`make bench`, a few minutes on a 2-core CPU) changes only the defaults left empty (None/0/[]): one
    model (aunet_iresnet100) at batch 8, no MindSpore-vs-PyTorch framework rows (the checkpoint backend's row
    against the PyTorch backend row stands in for the forward ratio), no per-backend peak-memory processes, detect
    at the full width only on 30 frames at the forward's batch (so every exported file is shared), 16
    calibration frames, a 1024 matmul and 10 pipeline batches.
    """

    quick: bool = False
    models: List[str] = field(default_factory=list)  # empty: QUICK_MODELS with quick, DEFAULT_MODELS otherwise
    batches: List[int] = field(default_factory=list)  # empty: [8] with quick, [8, 32] otherwise
    widths: List[int] = field(default_factory=lambda: [64, 128, 256, 512])
    layers: List[int] = field(default_factory=list)  # empty: the depth's default
    input_size: int = 112
    threads: int = 0  # 0: the CPUs this process may use
    device: str = "CPU"
    repeats: int = 0  # 0: 3 with quick, 5 otherwise
    warmup: int = 1
    torch: bool = True  # compare with PyTorch eager when installed
    train: bool = True  # measure the train step too (of the framework rows)
    jit_level: str = ""  # "" = MindSpore default, else O0 | O1
    fuse_bn: bool = False  # fold BatchNorm into convs for the forward measurement (fuse_for_inference)
    matmul_size: int = 0  # 0: 1024 with quick, 4096 otherwise
    post_frames: int = 1_000_000
    pipeline: bool = True
    data_root: str = ""  # empty: a small SynthAU set generated in a temporary folder
    pipeline_batches: int = 0  # 0: 10 with quick, 40 otherwise
    timeout: int = 3600  # seconds per measurement subprocess
    framework_rows: Optional[bool] = None  # MindSpore-vs-PyTorch forward/train rows, ratios, heads; None: not quick
    deploy: bool = True  # forward of every inference backend (BACKENDS) at deploy_batches
    backend_memory: Optional[bool] = None  # each backend's peak RSS alone in its own process; None: not quick
    backends: List[str] = field(default_factory=lambda: list(BACKENDS))
    deploy_batches: List[int] = field(default_factory=list)  # empty: --batch if given, else [8] quick, [1, 8, 32]
    detect: bool = True  # end-to-end detect on a generated video at the full and the demo width
    detect_widths: List[str] = field(default_factory=list)  # empty: ["full"] with quick, DETECT_WIDTHS otherwise
    detect_frames: int = 0  # 0: 30 with quick, 300 otherwise
    detect_rounds: int = 0  # 0: 1 with quick, 2 otherwise
    detect_batch: int = 0  # 0: the largest deploy batch with quick, 32 otherwise
    detect_paths: List[str] = field(default_factory=list)  # empty: both DETECT_PATHS (tracked, per-frame)
    calib_frames: int = 0  # int8 calibration frames; 0: 16 with quick, 64 otherwise
    cache: str = ""  # folder for the exported files and the video; empty: a temporary one for this run

    def resolved(self) -> "BenchOptions":
        """A copy with every 0/empty default filled in."""
        out = BenchOptions(**asdict(self))
        out.models = list(self.models) or list(QUICK_MODELS if self.quick else DEFAULT_MODELS)
        out.framework_rows = (not self.quick) if self.framework_rows is None else self.framework_rows
        out.backend_memory = (not self.quick) if self.backend_memory is None else self.backend_memory
        out.batches = list(self.batches) or ([8] if self.quick else [8, 32])
        out.threads = self.threads or default_threads()
        out.repeats = self.repeats or (3 if self.quick else 5)
        out.matmul_size = self.matmul_size or (1024 if self.quick else 4096)
        out.pipeline_batches = self.pipeline_batches or (10 if self.quick else 40)
        out.deploy_batches = list(self.deploy_batches or self.batches) or ([8] if self.quick else [1, 8, 32])
        out.detect_widths = list(self.detect_widths) or (["full"] if self.quick else list(DETECT_WIDTHS))
        out.detect_frames = self.detect_frames or (30 if self.quick else 300)
        out.detect_batch = self.detect_batch or (max(out.deploy_batches) if self.quick else 32)
        out.detect_rounds = self.detect_rounds or (1 if self.quick else 2)
        out.detect_paths = list(self.detect_paths) or list(DETECT_PATHS)
        out.calib_frames = self.calib_frames or (16 if self.quick else 64)
        return out


def torch_available() -> Tuple[bool, str]:
    """(True, version) when PyTorch and the reference twins import, else (False, reason)."""
    try:
        import torch

        from mindface_au.reference import torch_aunet  # noqa: F401
    except ImportError as exc:
        return False, f"not installed ({exc.name})"
    return True, torch.__version__


def _check_options(opts: BenchOptions) -> None:
    from mindface_au.models import list_models

    known = list_models()
    for name in opts.models:
        if name not in known:
            raise UserError(f"--model {name!r}: not a registered model; registered: {', '.join(known)}")
    if len(opts.widths) != 4 or min(opts.widths) < 1:
        raise UserError(f"--widths {opts.widths}: expected 4 positive stage widths")
    if opts.layers and (len(opts.layers) != 4 or min(opts.layers) < 1):
        raise UserError(f"--layers {opts.layers}: expected 4 positive block counts")
    if opts.input_size % 16 or opts.input_size < 16:
        raise UserError(f"--input-size {opts.input_size}: expected a multiple of 16")
    for batch in opts.batches + opts.deploy_batches + [opts.detect_batch]:
        if batch < 1:
            raise UserError(f"--batch {batch}: expected a positive batch size")
    for backend in opts.backends:
        if backend not in BACKENDS:
            raise UserError(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    for label in opts.detect_widths:
        if label not in DETECT_WIDTHS:
            raise UserError(f"--detect-width {label!r}: expected one of {', '.join(DETECT_WIDTHS)}")
    if opts.detect_frames < 1 or opts.detect_rounds < 1 or opts.calib_frames < 1:
        raise UserError("--detect-frames, --detect-rounds and --calib-frames must be positive")
    if opts.cache and os.path.exists(opts.cache) and not os.path.isdir(opts.cache):
        raise UserError(f"--cache {opts.cache}: exists and is not a folder")
    if opts.data_root and not os.path.isdir(opts.data_root):
        raise UserError(f"--data-root {opts.data_root}: folder not found")


def onnxruntime_available() -> Tuple[bool, str]:
    """(True, version) when ONNX Runtime imports, else (False, how to get it)."""
    if importlib.util.find_spec("onnxruntime") is None:
        return False, 'not installed (pip install "mindface-au[onnx]")'
    import onnxruntime

    return True, onnxruntime.__version__


def run_bench(options: BenchOptions, log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Run the suite and return one JSON-able dict (see `format_table` for the printed form)."""
    from mindface_au.utils.device import onednn_cap, prefer_gemm_convolutions

    opts = options.resolved()
    _check_options(opts)
    has_torch, torch_info = torch_available() if opts.torch else (False, "disabled (--no-torch)")
    has_ort, ort_info = onnxruntime_available()
    import mindspore as ms

    cap_ours = prefer_gemm_convolutions()  # what the MindSpore workers inherit; PyTorch ones get their defaults
    report: Dict[str, Any] = {
        "options": asdict(opts),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "threads": opts.threads,
            "mindspore": ms.__version__,
            "numpy": np.__version__,
            "torch": torch_info,
            "onnxruntime": ort_info,
            "onednn_isa_cap": onednn_cap(),
        },
        "matmul": {},
        "models": [],
    }
    common = {"threads": opts.threads, "device": opts.device, "onednn_cap_ours": cap_ours}
    _matmul(report, opts, common, log)
    if opts.framework_rows or opts.deploy:
        _macs(report, opts, common, log)
    if opts.framework_rows:
        _framework_rows(report, opts, common, has_torch, log)
    with tempfile.TemporaryDirectory(prefix="mindface-au-bench-") as tmp:
        cache = opts.cache or os.path.join(tmp, "cache")
        if opts.deploy or opts.detect:
            skipped = {}
            if not has_torch:
                skipped["torch"] = f"PyTorch {torch_info}"
            if not has_ort:
                skipped.update({b: f"onnxruntime {ort_info}" for b in ONNX_BACKENDS})
            backends = [b for b in opts.backends if b not in skipped]
            report["deploy"] = {"skipped": {b: r for b, r in skipped.items() if b in opts.backends}}
        if opts.deploy:
            _deploy_forward(report, opts, common, backends, cache, log)
        if opts.detect:
            _detect(report, opts, common, [b for b in backends if b in FILE_BACKENDS], cache, tmp, log)
    if opts.pipeline:
        _pipeline(report, opts, common, log)
    log(f"bench: post-processing {opts.post_frames} frames ...")
    report["postprocess"] = run_worker({"kind": "postprocess", "frames": opts.post_frames, **common}, opts.timeout)
    report["targets"] = targets(report)
    report["failed"] = failures(report)
    return report


def _matmul(report: Dict[str, Any], opts: BenchOptions, common: Dict[str, Any], log) -> None:
    for framework in ("numpy", "mindspore"):
        log(f"bench: matmul {framework} {opts.matmul_size}x{opts.matmul_size} ...")
        spec = {"kind": "matmul", "framework": framework, "size": opts.matmul_size, "repeats": opts.repeats, **common}
        report["matmul"][framework] = run_worker(spec, opts.timeout)
    rates = [r["gflops"] for r in report["matmul"].values() if "gflops" in r]
    report["matmul_limit_gflops"] = max(rates) if rates else None
    if rates:
        best = max(report["matmul"], key=lambda k: report["matmul"][k].get("gflops", -1))
        report["matmul_limit_source"] = best


def _macs(report: Dict[str, Any], opts: BenchOptions, common: Dict[str, Any], log) -> None:
    """Forward GFLOP per image of each model (models.zoo.count_macs, AU heads included), for the GFLOP/s columns."""
    report["macs"] = {}
    for name in opts.models:
        log(f"bench: MACs of {name} ...")
        spec = {"kind": "macs", "model": name, "widths": list(opts.widths), "layers": list(opts.layers)}
        report["macs"][name] = run_worker(dict(spec, input_size=opts.input_size, **common), opts.timeout)


def _rates(report: Dict[str, Any], row: Dict[str, Any], flop_factor: float = 1.0) -> None:
    """Add GFLOP/s and the share of the matmul limit to a timed row."""
    gflop = report["macs"].get(row["model"], {}).get("gflop")
    if gflop and "median_s" in row:
        row["gflops"] = round(gflop * flop_factor * row["batch"] / row["median_s"], 1)
        if report["matmul_limit_gflops"]:
            row["fraction_of_matmul"] = round(row["gflops"] / report["matmul_limit_gflops"], 3)


def _model_common(opts: BenchOptions, common: Dict[str, Any]) -> Dict[str, Any]:
    return {  # what every framework-row network measurement shares
        "widths": list(opts.widths),
        "layers": list(opts.layers),
        "input_size": opts.input_size,
        "warmup": opts.warmup,
        "repeats": opts.repeats,
        "jit_level": opts.jit_level,
        "fuse_bn": opts.fuse_bn,
        **common,
    }


def _framework_rows(report, opts: BenchOptions, common: Dict[str, Any], has_torch: bool, log) -> None:
    """MindSpore and PyTorch forward/train rows (one process each), their ratios in turns, the heads' cost, and the
    intensity head's cost (MindSpore forward only: the PyTorch reference has no intensity head)."""
    model_common = _model_common(opts, common)
    modes = ["forward"] + (["train"] if opts.train else [])
    frameworks = ["mindspore"] + (["torch"] if has_torch else [])
    for name in opts.models:
        for batch in opts.batches:
            for mode in modes:
                for framework in frameworks:
                    spec = {
                        "kind": "model",
                        "framework": framework,
                        "model": name,
                        "mode": mode,
                        "batch": batch,
                        **model_common,
                    }
                    log(f"bench: {framework} {name} {mode} batch {batch} ...")
                    result = run_worker(spec, opts.timeout)
                    row = {k: spec[k] for k in ("framework", "model", "mode", "batch")}
                    row.update(result)
                    _rates(report, row, TRAIN_FLOP_FACTOR if mode == "train" else 1.0)
                    report["models"].append(row)
    report["ratios"] = framework_ratios(report["models"])
    if has_torch:  # the same pairs again, both frameworks in one process, in turns: robust to a changing load
        for ratio in report["ratios"]:
            log(f"bench: mindspore vs torch alternating {ratio['model']} {ratio['mode']} batch {ratio['batch']} ...")
            spec = {
                "kind": "alternating",
                "model": ratio["model"],
                "mode": ratio["mode"],
                "batch": ratio["batch"],
                **model_common,
            }
            result = run_worker(spec, opts.timeout)
            ratio["alternating"] = result.get("ratio", result.get("error"))
    report["heads"], report["intensity_head"] = [], []
    for name in [m for m in opts.models if m.startswith("aunet_")]:
        batch = min(opts.batches)
        for mode in modes:
            for framework in frameworks:
                log(f"bench: heads cost {framework} {name} vs {backbone_name(name)} {mode} batch {batch} ...")
                spec = {
                    "kind": "heads",
                    "framework": framework,
                    "model": name,
                    "mode": mode,
                    "batch": batch,
                    **model_common,
                }
                row = {"framework": framework, "model": name, "mode": mode, "batch": batch}
                row.update(run_worker(spec, opts.timeout))
                report["heads"].append(row)
        # the intensity head (model.intensity): MindSpore forward with it vs without, same widths, in turns
        log(f"bench: intensity head cost mindspore {name} forward batch {batch} ...")
        spec = {"kind": "intensity_head", "framework": "mindspore", "model": name, "mode": "forward", "batch": batch}
        row = {k: spec[k] for k in ("framework", "model", "mode", "batch")}
        row.update(run_worker({**spec, **model_common}, opts.timeout))
        report["intensity_head"].append(row)


def _model_config(name: str, opts: BenchOptions) -> Dict[str, Any]:
    from mindface_au.config import ModelConfig, validate_model_config

    cfg = ModelConfig(name=name, widths=list(opts.widths), layers=list(opts.layers), input_size=opts.input_size)
    validate_model_config(cfg)  # resolves num_classes 0 to one output per AU
    return dataclasses.asdict(cfg)


def _prepare(name: str, model_config, batches, backends, opts, common, cache, log) -> Dict[str, Any]:
    wanted = [b for b in backends if b in FILE_BACKENDS]
    log(f"bench: checkpoint and exports of {name} ({', '.join(wanted)}), batch {', '.join(map(str, batches))} ...")
    spec = {"kind": "prepare", "model_config": model_config, "batches": list(batches), "backends": wanted}
    spec.update(cache=cache, calib_frames=opts.calib_frames, **common)
    return run_worker(spec, opts.timeout)


def _deploy_forward(report, opts: BenchOptions, common, backends: List[str], cache: str, log) -> None:
    """Per model and batch: every backend in turns in one process, then each backend alone for its peak RSS."""
    deploy = report["deploy"]
    deploy["files"], deploy["forward"] = {}, []
    for name in opts.models:
        model_config = _model_config(name, opts)
        prepared = _prepare(name, model_config, opts.deploy_batches, backends, opts, common, cache, log)
        deploy["files"][name] = prepared
        for batch in opts.deploy_batches:
            files = prepared.get("files", {}).get(str(batch), {})
            errors = dict(prepared.get("errors", {}))
            if "error" in prepared:
                errors = {b: prepared["error"] for b in backends if b != "torch"}
            ready = [b for b in backends if b == "torch" or b in files and b not in errors]
            spec = {"kind": "backends", "model_config": model_config, "batch": batch, "files": files}
            spec.update(backends=ready, warmup=opts.warmup, repeats=opts.repeats, **common)
            log(f"bench: forward {name} batch {batch}, in turns: {', '.join(ready)} ...")
            turns = run_worker(spec, opts.timeout)
            errors.update(turns.get("errors", {}))
            if "error" in turns:
                errors.update({b: turns["error"] for b in ready})
            torch_s = turns.get("backends", {}).get("torch", {}).get("median_s")
            for backend in backends:
                row: Dict[str, Any] = {"model": name, "batch": batch, "backend": backend}
                if backend in errors or backend not in turns.get("backends", {}):
                    row["error"] = errors.get(backend, "not measured")
                    deploy["forward"].append(row)
                    continue
                row.update(turns["backends"][backend])
                _rates(report, row)
                if torch_s:
                    row["vs_torch"] = round(row["median_s"] / torch_s, 3)
                if opts.backend_memory:
                    log(f"bench: peak memory of {backend} alone, {name} batch {batch} ...")
                    alone = run_worker(dict(spec, kind="backend_memory", backends=[backend]), opts.timeout)
                    row["peak_rss_mb"] = alone.get("peak_rss_mb")
                    row["alone_one_call_s"] = alone.get("one_call_s")
                    if "error" in alone:
                        row["peak_rss_error"] = alone["error"]
                deploy["forward"].append(row)


def _detect(report, opts: BenchOptions, common, backends: List[str], cache: str, tmp: str, log) -> None:
    """detect on the generated video at each width, every backend loaded in one process and run in turns."""
    width, height = VIDEO_SIZE
    video = os.path.join(cache, f"face-{width}x{height}-{opts.detect_frames}.avi")
    os.makedirs(cache, exist_ok=True)
    log(f"bench: video {os.path.basename(video)} ...")
    make_video(video, opts.detect_frames)
    configs = detect_model_configs(opts.models, opts.widths, opts.layers, opts.input_size)
    detect: Dict[str, Any] = {"video": {"width": width, "height": height, "frames": opts.detect_frames}}
    detect.update(batch_size=opts.detect_batch, rounds=opts.detect_rounds, rows=[], files={})
    report["detect"] = detect
    for label in opts.detect_widths:
        model_config = configs[label]
        name = model_config["name"]
        prepared = _prepare(name, model_config, [opts.detect_batch], backends, opts, common, cache, log)
        detect["files"][label] = prepared
        files = prepared.get("files", {}).get(str(opts.detect_batch), {})
        errors = {b: prepared["error"] for b in backends} if "error" in prepared else dict(prepared.get("errors", {}))
        ready = [b for b in backends if b in files and b not in errors]
        out_dir = os.path.join(tmp, f"detect-{label}")
        os.makedirs(out_dir, exist_ok=True)
        spec = {"kind": "detect", "video": video, "backends": ready, "files": files, "rounds": opts.detect_rounds}
        spec.update(batch_size=opts.detect_batch, out_dir=out_dir, paths=opts.detect_paths, **common)
        log(
            f"bench: detect {label} width ({name}), {' and '.join(opts.detect_paths)}, {opts.detect_rounds} "
            f"round(s): {', '.join(ready)} ..."
        )
        result = run_worker(spec, opts.timeout)
        errors.update(result.get("errors", {}))
        if "error" in result:
            errors.update({b: result["error"] for b in ready})
        measured = result.get("paths") or {"tracked": result.get("backends", {})}
        for backend in backends:
            for path in opts.detect_paths:
                row: Dict[str, Any] = {"width": label, "model": name, "backend": backend, "path": path}
                if backend in measured.get(path, {}) and backend not in errors:
                    row.update(measured[path][backend])
                else:
                    row["error"] = errors.get(backend, "not measured")
                detect["rows"].append(row)


def _pipeline(report, opts: BenchOptions, common: Dict[str, Any], log) -> None:
    batch = max(opts.batches)
    log(f"bench: data pipeline batch {batch} ...")
    spec = {
        "kind": "pipeline",
        "data_root": opts.data_root,
        "batch": batch,
        "num_batches": opts.pipeline_batches,
        "synth_frames": 60 if opts.quick else 200,
        **common,
    }
    report["pipeline"] = run_worker(spec, opts.timeout)
    train_rates = [
        r["images_per_s"] for r in report["models"] if r["mode"] == "train" and r["framework"] == "mindspore"
    ]
    pipe = report["pipeline"].get("images_per_s")
    if pipe and train_rates:
        report["pipeline"]["fastest_train_step_images_per_s"] = max(train_rates)
        report["pipeline"]["times_train_step"] = round(pipe / max(train_rates), 2)
