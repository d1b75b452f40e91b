"""Deployment measurements: the forward pass of every inference backend timed in turns in one process, the peak
memory of each backend alone, and end-to-end `detect` on a generated video with the time of each stage.

Backends: "mindspore" (a .ckpt through `load_inference_model`: GRAPH mode, BatchNorm folded), "mindir", "onnx"
(ONNX Runtime float32), "onnx-int8" (static QDQ int8 quantisation) and "torch" (the PyTorch eager twin, forward
only). The files come from `prepare_files`: a random-initialised checkpoint and its exports, kept in the bench's
cache folder under a key of the model config, batch, format and the package's model/inference source, so the
measurements of one run (and, with `--cache DIR`, later runs) share them.
"""

import dataclasses
import hashlib
import json
import os
import pathlib
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from benchmarks.measure import alternate, configure_mindspore, torch_onednn_defaults

__all__ = [
    "BACKENDS",
    "FILE_BACKENDS",
    "DETECT_STAGES",
    "DETECT_PATHS",
    "file_paths",
    "prepare_files",
    "make_video",
    "measure_backends",
    "measure_backend_memory",
    "measure_detect",
]

BACKENDS = ("mindspore", "mindir", "onnx", "onnx-int8", "torch")
FILE_BACKENDS = BACKENDS[:-1]  # the ones `load_inference_model` runs (and `detect` can use)
ONNX_BACKENDS = ("onnx", "onnx-int8")
DETECT_STAGES = ("decode", "detect_faces", "align", "network", "write")
# detect's two face paths: MTCNN on keyframes and O-Net tracking between them (the default), MTCNN on every frame
DETECT_PATHS = ("tracked", "per-frame")
VIDEO_SIZE = (640, 360)
VIDEO_FPS = 30.0
_TORCH_KEYS = ("num_classes", "head_dim", "lrp", "lrp_num", "lrp_reduction", "arl", "arl_k", "fusion")
_TORCH_KEYS += ("fusion_weight", "fusion_layers", "fusion_heads")


# ----------------------------------------------------------------------------------------------- files
def source_stamp() -> str:
    """Hash of the package version and the model/inference source: a cached export is reused only if it matches."""
    import mindface_au

    root = pathlib.Path(mindface_au.__file__).parent
    digest = hashlib.sha1(mindface_au.__version__.encode())
    for sub in ("models", "inference"):
        for path in sorted((root / sub).glob("*.py")):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def file_paths(cache: str, model_config: Dict[str, Any], batch: int, calib_frames: int) -> Dict[str, str]:
    """Where the checkpoint and the exports of one model config live in the cache (backend -> path).

    Only the MindIR file has a batch inside; the ONNX files have a dynamic batch axis, so every batch (and the
    detect run) shares one float32 and one int8 file."""
    key = json.dumps({"model": model_config, "seed": 0, "source": source_stamp()}, sort_keys=True)
    stem = os.path.join(cache, f"{model_config['name']}-{hashlib.sha1(key.encode()).hexdigest()[:12]}")
    return {
        "mindspore": stem + ".ckpt",
        "mindir": f"{stem}-b{batch}.mindir",
        "onnx": f"{stem}.onnx",
        "onnx-int8": f"{stem}-int8-c{calib_frames}.onnx",
    }


def build_network(model_config: Dict[str, Any]):
    """The MindSpore network of a ModelConfig dict: an AUNet, or a bare IResNet (its embedding)."""
    from mindface_au.config import ModelConfig
    from mindface_au.models import build_network as build

    return build(ModelConfig(**model_config))


def _first_line(exc: BaseException) -> str:
    return ((str(exc).strip().splitlines() or [type(exc).__name__])[0])[:300]


def prepare_files(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Write (or find in the cache) the random-init checkpoint and its exports for every batch in the spec.

    spec: model_config, batches, backends (file backends wanted), cache, calib_frames, device, threads.
    Returns {"files": {batch: {backend: path}}, "errors": {backend: message}, "seconds": {file: s},
    "cached": [file names found in the cache]}; a failed export leaves the other backends measurable.
    """
    import mindspore as ms

    from mindface_au.models.checkpoint import save_checkpoint_atomic

    configure_mindspore(spec["device"], spec["threads"])
    out: Dict[str, Any] = {"files": {}, "errors": {}, "seconds": {}, "cached": []}
    os.makedirs(spec["cache"], exist_ok=True)
    for batch in spec["batches"]:
        paths = file_paths(spec["cache"], spec["model_config"], batch, spec["calib_frames"])
        ckpt = paths["mindspore"]
        if os.path.isfile(ckpt):
            if os.path.basename(ckpt) not in out["cached"] + list(out["seconds"]):
                out["cached"].append(os.path.basename(ckpt))
        else:
            start = time.perf_counter()
            ms.set_seed(0)
            save_checkpoint_atomic(build_network(spec["model_config"]), ckpt, model_config=spec["model_config"])
            out["seconds"][os.path.basename(ckpt)] = round(time.perf_counter() - start, 2)
        files = {"mindspore": ckpt}
        for backend in spec["backends"]:
            if backend == "mindspore" or backend in out["errors"]:
                continue
            path = paths[backend]
            name = os.path.basename(path)
            if os.path.isfile(path):
                if name not in out["cached"] + list(out["seconds"]):
                    out["cached"].append(name)
            else:
                start = time.perf_counter()
                try:
                    _export(ckpt, path, backend, batch, spec)
                except Exception as exc:  # noqa: BLE001 - one format failing must not stop the others
                    out["errors"][backend] = f"export {backend}: {_first_line(exc)}"
                    continue
                out["seconds"][name] = round(time.perf_counter() - start, 2)
            files[backend] = path
        out["files"][str(batch)] = files
    return out


def _export(ckpt: str, path: str, backend: str, batch: int, spec: Dict[str, Any]) -> None:
    from mindface_au.inference.export import export_model

    fmt = "MINDIR" if backend == "mindir" else "ONNX"
    quantize = "int8" if backend == "onnx-int8" else None
    extra = {"quantize": quantize, "calib_frames": spec["calib_frames"]} if quantize else {}
    export_model(ckpt, path, fmt=fmt, batch_size=batch, device=spec["device"], **extra)
    if not os.path.isfile(path):
        raise RuntimeError(f"the exporter wrote no {os.path.basename(path)}")


def make_video(path: str, frames: int, size: Tuple[int, int] = VIDEO_SIZE, seed: int = 0) -> str:
    """A video with one SynthAU face moving across the frame (its AUs changing), written once (MJPG .avi)."""
    import cv2

    from mindface_au.data import synthau
    from mindface_au.utils.io import atomic_path

    if os.path.isfile(path):
        return path
    width, height = size
    rng = np.random.default_rng(seed)
    ident = synthau.sample_identity(rng)
    intensity = synthau.au_intensities(rng, frames)
    side = int(min(width, height) * 0.42)
    with atomic_path(path) as tmp:
        tmp_avi = tmp + ".avi"  # OpenCV picks the container from the extension
        writer = cv2.VideoWriter(tmp_avi, cv2.VideoWriter_fourcc(*"MJPG"), VIDEO_FPS, (width, height))
        try:
            for i in range(frames):
                phase = 2.0 * np.pi * i / 150.0
                x = int((width - side) * (0.5 - 0.45 * np.cos(phase)))
                y = int((height - side) * (0.5 + 0.35 * np.sin(2 * phase)))
                face, _ = synthau.render_face(ident, intensity[i], None, (4.0 * np.sin(phase), 0.0, 0.0, 1.0))
                image = np.full((height, width, 3), (70, 80, 90), np.uint8)
                image[y : y + side, x : x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_LINEAR)
                writer.write(image)
        finally:
            writer.release()
        os.replace(tmp_avi, tmp)
    return path


# ----------------------------------------------------------------------------------------------- forward
def _load_file_backend(path: str, spec: Dict[str, Any], batch: int):
    """The InferenceModel of one file; `batch` is its largest forward pass (a checkpoint compiles for that shape)."""
    from mindface_au.inference.loader import load_inference_model

    return load_inference_model(path, device=spec["device"], threads=spec["threads"], batch_size=batch)


def _torch_forward(model_config: Dict[str, Any], x: np.ndarray, threads: int) -> Callable[[], Any]:
    import torch

    from mindface_au.reference.torch_aunet import build_torch_model

    torch.manual_seed(0)
    if threads:
        torch.set_num_threads(int(threads))
    heads = {k: model_config[k] for k in _TORCH_KEYS} if model_config["name"].startswith("aunet_") else {}
    net = build_torch_model(
        model_config["name"],
        widths=model_config["widths"],
        layers=model_config["layers"],
        input_size=model_config["input_size"],
        embedding_size=model_config["embedding_size"],
        **heads,
    ).eval()
    tx = torch.from_numpy(x)

    def step():
        with torch.inference_mode():
            return net(tx)

    return step


def _load_steps(spec: Dict[str, Any], x: np.ndarray) -> Tuple[Dict[str, Callable[[], Any]], Dict[str, Any]]:
    """One forward callable per backend of the spec (torch built and run first; see torch_onednn_defaults)."""
    steps: Dict[str, Callable[[], Any]] = {}
    info: Dict[str, Any] = {"load_s": {}, "errors": {}}
    names = list(spec["backends"])
    if "torch" in names:
        start = time.perf_counter()
        try:
            with torch_onednn_defaults(spec.get("onednn_cap_ours", False)):
                steps["torch"] = _torch_forward(spec["model_config"], x, spec["threads"])
                steps["torch"]()
        except Exception as exc:  # noqa: BLE001
            info["errors"]["torch"] = _first_line(exc)
        info["load_s"]["torch"] = round(time.perf_counter() - start, 2)
    configure_mindspore(spec["device"], spec["threads"])
    for name in names:
        if name == "torch":
            continue
        start = time.perf_counter()
        try:
            model = _load_file_backend(spec["files"][name], spec, spec["batch"])
            steps[name] = lambda model=model: model.predict(x)
            steps[name]()  # compiles / builds the session
        except Exception as exc:  # noqa: BLE001 - one backend failing must not stop the others
            info["errors"][name] = _first_line(exc)
            steps.pop(name, None)
        info["load_s"][name] = round(time.perf_counter() - start, 2)
    return steps, info


def _input(spec: Dict[str, Any]) -> np.ndarray:
    size = spec["model_config"]["input_size"]
    return np.random.default_rng(0).uniform(-1, 1, (spec["batch"], 3, size, size)).astype(np.float32)


def measure_backends(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Every backend of the spec on one batch, in one process, timed in turns: ratios robust to a changing load.

    spec: model_config, batch, backends, files {backend: path}, warmup, repeats, device, threads,
    onednn_cap_ours. Returns {"backends": {name: {median_s, times_s, images_per_s, load_s}}, "errors": {...}}.
    """
    x = _input(spec)
    steps, info = _load_steps(spec, x)
    times = alternate(steps, spec["warmup"], spec["repeats"]) if steps else {}
    rows = {}
    for name, values in times.items():
        median = float(np.median(values))
        rows[name] = {
            "median_s": median,
            "times_s": [round(t, 5) for t in values],
            "images_per_s": round(spec["batch"] / median, 2),
            "load_s": info["load_s"].get(name),
        }
    return {"backends": rows, "errors": info["errors"]}


def measure_backend_memory(spec: Dict[str, Any]) -> Dict[str, Any]:
    """One backend alone in this process (its peak RSS is the worker's): load, one warm call, one timed call."""
    x = _input(spec)
    steps, info = _load_steps(spec, x)
    if spec["backends"][0] in info["errors"]:
        raise RuntimeError(info["errors"][spec["backends"][0]])
    step = next(iter(steps.values()))
    start = time.perf_counter()
    step()
    return {"one_call_s": round(time.perf_counter() - start, 5), "load_s": info["load_s"][spec["backends"][0]]}


# ----------------------------------------------------------------------------------------------- detect
class _RssSampler:
    """Samples this process's resident memory every `interval` seconds while a detect run goes on."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.samples: List[Tuple[float, float]] = []  # (seconds since __enter__, RSS MiB)
        self._start = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        from mindface_au.utils.memory import current_rss_mb

        value = current_rss_mb()
        if value is not None:
            self.samples.append((time.perf_counter() - self._start, value))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "_RssSampler":
        self._start = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()  # one last sample at the end, so a short run still has a beginning and an end

    def growth(self) -> Optional[Dict[str, float]]:
        """RSS at a third of the run (batches and buffers warmed up) and the highest RSS of its last third."""
        if len(self.samples) < 2:  # a run shorter than one sampling interval: nothing to compare
            return None
        end = self.samples[-1][0]
        third = [v for t, v in self.samples if t >= end / 3.0]
        last = [v for t, v in self.samples if t >= 2.0 * end / 3.0]
        return {"rss_third_mb": third[0], "rss_end_mb": max(last), "rss_growth_mb": round(max(last) - third[0], 1)}


def _run_detect(model, video: str, out: str, batch_size: int, track: bool = True, threads: int = 0) -> Dict[str, Any]:
    from mindface_au.inference.detect import detect

    return detect(
        video, out, predictor=model, batch_size=batch_size, progress=False, overwrite=True, track=track, threads=threads
    )  # the CSV is the bench's scratch file: replaced every round


def measure_detect(spec: Dict[str, Any]) -> Dict[str, Any]:
    """End-to-end `detect` on one video for every backend of the spec, loaded once, run in turns for `rounds`.

    spec: video, backends, files, rounds, batch_size, device, threads, out_dir, paths (DETECT_PATHS, default
    both). Per backend and path ("tracked": keyframes + tracking, "per-frame": `--no-track`): frames/s (median of
    the rounds), CPU milliseconds per frame (this process's CPU time: fair on a machine other jobs load),
    milliseconds per frame of each stage (DETECT_STAGES, median of the rounds) and the rest, and the RSS growth
    within the last round. Returns {"backends": {backend: row of the tracked path}, "paths": {path: {backend:
    row}}, "errors"}.
    """
    configure_mindspore(spec["device"], spec["threads"])
    models, errors = {}, {}
    for name in spec["backends"]:
        try:
            model = _load_file_backend(spec["files"][name], spec, spec["batch_size"])
            size = model.input_size
            # compile outside the timing, for the padded shape detect's stream runs
            model.predict(np.zeros((1, 3, size, size), np.float32), pad=True)
            models[name] = model
        except Exception as exc:  # noqa: BLE001
            errors[name] = _first_line(exc)
    paths = list(spec.get("paths") or DETECT_PATHS)
    runs: Dict[Tuple[str, str], List[Dict[str, Any]]] = {(n, p): [] for n in models for p in paths}
    memory: Dict[Tuple[str, str], Any] = {}
    for _ in range(spec["rounds"]):
        for name, model in models.items():
            for path in paths:
                if name in errors:
                    continue
                out = os.path.join(spec["out_dir"], f"detect-{name}-{path}.csv")
                try:
                    with _RssSampler() as sampler:
                        track = path == "tracked"
                        summary = _run_detect(model, spec["video"], out, spec["batch_size"], track, spec["threads"])
                        runs[name, path].append(summary)
                    memory[name, path] = sampler.growth()
                except Exception as exc:  # noqa: BLE001
                    errors[name] = _first_line(exc)
    by_path: Dict[str, Dict[str, Any]] = {p: {} for p in paths}
    for (name, path), summaries in runs.items():
        if name in errors or not summaries:
            continue
        row = by_path[path][name] = _detect_row(summaries)
        row.update(memory.get((name, path)) or {})
    return {"backends": by_path.get("tracked", {}), "paths": by_path, "errors": errors}


def _detect_row(summaries: List[Dict[str, Any]]) -> Dict[str, Any]:
    """frames/s and per-stage milliseconds per frame, medians over the runs of one backend."""
    frames = int(summaries[0]["frames"])
    fps = [s["frames"] / s["seconds"] for s in summaries if s.get("seconds")]
    row: Dict[str, Any] = {"frames": frames, "fps": round(float(np.median(fps)), 2), "fps_runs": fps}
    row["backend_reported"] = summaries[0].get("backend")
    cpu = [s["cpu_seconds"] for s in summaries if s.get("cpu_seconds") is not None]
    if cpu:
        row["cpu_ms"] = round(1000.0 * float(np.median(cpu)) / frames, 2)  # CPU time per frame, all threads
    if summaries[0].get("keyframes") is not None:
        row["keyframes"] = int(summaries[0]["keyframes"])
    stage_ms: Dict[str, float] = {}
    for stage in DETECT_STAGES:
        values = [s["stage_seconds"][stage] for s in summaries if stage in (s.get("stage_seconds") or {})]
        if values:
            stage_ms[stage] = round(1000.0 * float(np.median(values)) / frames, 2)
    row["stage_ms"] = stage_ms
    if stage_ms:
        total_ms = 1000.0 * float(np.median([s["seconds"] for s in summaries])) / frames
        row["other_ms"] = round(total_ms - sum(stage_ms.values()), 2)
    return row


def detect_model_configs(opts_models: List[str], widths, layers, input_size: int) -> Dict[str, Dict[str, Any]]:
    """The two widths `detect` is measured at: "full" (the first AUNet of --model at --widths) and "demo"."""
    from mindface_au.config import ModelConfig, load_config, validate_model_config
    from mindface_au.engine.demo import DEFAULT_CONFIG

    out = {}
    aunets = [m for m in opts_models if m.startswith("aunet_")] or ["aunet_iresnet100"]
    full = ModelConfig(name=aunets[0], widths=list(widths), layers=list(layers), input_size=input_size)
    validate_model_config(full)  # resolves num_classes 0 to one output per AU
    out["full"] = dataclasses.asdict(full)
    demo = load_config(DEFAULT_CONFIG).model
    demo.backbone_checkpoint = ""
    out["demo"] = dataclasses.asdict(demo)
    return out
