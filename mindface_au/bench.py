"""Benchmark suite behind `mindface-au bench`: models, matmul limit, data pipeline and post-processing.

Every model measurement runs in a fresh subprocess (`python -m mindface_au.bench --worker SPEC`), so its
peak RSS is its own and MindSpore's one-per-process settings (thread count, JIT level) can differ between
measurements. Warm-up (including graph compilation) is excluded; times are the median of the repeats.
The thread count is the same for numpy, MindSpore and PyTorch, and is stated in the output.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mindface_au.errors import UserError

__all__ = [
    "BenchOptions",
    "run_bench",
    "format_table",
    "iresnet_forward_gflop",
    "measure_matmul",
    "measure_model",
    "measure_postprocess",
    "configure_mindspore",
]

DEFAULT_MODELS = ("iresnet100", "aunet_iresnet100")
IRESNET100_GFLOP = 24.2  # forward GFLOP per 112x112 image (multiply-add = 2 FLOP)
TRAIN_FLOP_FACTOR = 3.0  # forward + backward ~ 3x forward
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass
class BenchOptions:
    """What `run_bench` measures and how; the defaults are the full issue-7 suite."""

    quick: bool = False
    models: List[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    batches: List[int] = field(default_factory=list)  # empty: [8] with quick, [8, 32] otherwise
    widths: List[int] = field(default_factory=lambda: [64, 128, 256, 512])
    layers: List[int] = field(default_factory=list)  # empty: the depth's default
    input_size: int = 112
    threads: int = 0  # 0: the CPUs this process may use
    device: str = "CPU"
    repeats: int = 0  # 0: 3 with quick, 5 otherwise
    warmup: int = 1
    torch: bool = True  # compare with PyTorch eager when installed
    train: bool = True  # measure the train step too
    jit_level: str = ""  # "" = MindSpore default, else O0 | O1
    fuse_bn: bool = False  # fold BatchNorm into convs for the forward measurement (fuse_for_inference)
    matmul_size: int = 0  # 0: 1024 with quick, 4096 otherwise
    post_frames: int = 1_000_000
    pipeline: bool = True
    data_root: str = ""  # empty: a small SynthAU set generated in a temporary folder
    pipeline_batches: int = 0  # 0: 10 with quick, 40 otherwise
    timeout: int = 3600  # seconds per measurement subprocess

    def resolved(self) -> "BenchOptions":
        """A copy with every 0/empty default filled in."""
        out = BenchOptions(**asdict(self))
        out.batches = list(self.batches) or ([8] if self.quick else [8, 32])
        out.threads = self.threads or default_threads()
        out.repeats = self.repeats or (3 if self.quick else 5)
        out.matmul_size = self.matmul_size or (1024 if self.quick else 4096)
        out.pipeline_batches = self.pipeline_batches or (10 if self.quick else 40)
        return out


def default_threads() -> int:
    """CPUs this process may run on (affinity-aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# ----------------------------------------------------------------------------------------------- FLOP counts
def iresnet_forward_gflop(
    layers: Sequence[int], widths: Sequence[int] = (64, 128, 256, 512), input_size: int = 112, embedding: int = 512
) -> float:
    """Forward GFLOP per image of an IResNet (convs + embedding FC, multiply-add = 2 FLOP).

    Counts what dominates the cost; BN, PReLU and additions are not counted (as in the 24.2 GFLOP figure).
    """
    macs = 3 * 3 * 3 * widths[0] * input_size**2  # stem conv, stride 1
    side, cin = input_size, widths[0]
    for blocks, cout in zip(layers, widths):
        for index in range(blocks):
            stride = 2 if index == 0 else 1
            macs += 9 * cin * cout * side**2  # conv1 at the input resolution
            side_out = side // stride
            macs += 9 * cout * cout * side_out**2  # conv2 (strided)
            if stride != 1 or cin != cout:
                macs += cin * cout * side_out**2  # 1x1 downsample
            side, cin = side_out, cout
    macs += cin * side**2 * embedding
    return 2.0 * macs / 1e9


def model_gflop(name: str, layers: Sequence[int], widths: Sequence[int], input_size: int) -> float:
    """Forward GFLOP per image used for the GFLOP/s columns: the IResNet backbone's (AU heads not counted)."""
    from mindface_au.models.iresnet import IRESNET_LAYERS

    arch = backbone_name(name)
    return iresnet_forward_gflop(tuple(layers) or IRESNET_LAYERS[arch], widths, input_size)


def backbone_name(name: str) -> str:
    """'aunet_iresnet100' -> 'iresnet100'; an IResNet name is its own backbone."""
    return name.split("_", 1)[1] if name.startswith("aunet_") else name


# ----------------------------------------------------------------------------------------------- helpers
def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB.

    Linux: VmHWM from /proc/self/status, which starts afresh at exec (getrusage's ru_maxrss would carry over the
    parent's peak into a subprocess). Elsewhere: ru_maxrss (KiB on Linux/BSD, bytes on macOS).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0, 1)


def _time_repeats(step: Callable[[], Any], warmup: int, repeats: int) -> Dict[str, Any]:
    """Time `step`: the first call (compile) and `warmup - 1` more are excluded; median of `repeats`.

    Also records the process CPU time per call (all threads): on a shared machine it is steadier than wall time.
    """
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    for _ in range(max(warmup - 1, 0)):
        step()
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {
        "first_s": round(first, 4),
        "median_s": float(np.median(times)),
        "times_s": [round(t, 5) for t in times],
        "cpu_median_s": round(float(np.median(cpu)), 5),
    }


_CONFIGURED: Dict[str, int] = {}


def configure_mindspore(device: str = "CPU", threads: int = 0, jit_level: str = "") -> str:
    """GRAPH mode on `device`, CPU kernel threads and JIT level; call once per process before building Cells."""
    import mindspore as ms

    from mindface_au.utils.device import init_context

    if jit_level:
        if jit_level not in ("O0", "O1"):
            raise UserError(f"--jit-level: got {jit_level!r}, expected O0 or O1")
        ms.set_context(jit_config={"jit_level": jit_level})
    target = init_context(device, "graph")
    if threads and target == "CPU" and not _CONFIGURED.get("threads"):
        from mindspore.device_context.cpu import op_tuning

        op_tuning.threads_num(int(threads))  # MindSpore allows this once per process
        _CONFIGURED["threads"] = int(threads)
    return target


# ----------------------------------------------------------------------------------------------- measurements
def measure_matmul(framework: str, size: int, repeats: int, device: str = "CPU", threads: int = 0) -> Dict[str, Any]:
    """Best-of-`repeats` float32 (size x size) @ (size x size) rate in GFLOP/s for numpy or MindSpore."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    if framework == "numpy":

        def step():
            return a @ b

    elif framework == "mindspore":
        import mindspore as ms
        from mindspore import nn, ops

        configure_mindspore(device, threads)

        class MatMul(nn.Cell):
            def construct(self, x, y):
                return ops.matmul(x, y)

        net, ta, tb = MatMul(), ms.Tensor(a), ms.Tensor(b)

        def step():
            return net(ta, tb).asnumpy()

    else:
        raise ValueError(f"unknown matmul framework {framework!r}")
    timing = _time_repeats(step, warmup=1, repeats=repeats)
    best = min(timing["times_s"])
    return {"gflops": round(2.0 * size**3 / best / 1e9, 1), "size": size, "best_s": best, **timing}


def _build_mindspore(spec: Dict[str, Any]):
    """The MindSpore model of a spec: a registered IResNet, or an AUNet built from a ModelConfig."""
    name = spec["model"]
    if name.startswith("aunet_"):
        from mindface_au.config import ModelConfig
        from mindface_au.models import create_model_from_config

        cfg = ModelConfig(name=name, widths=list(spec["widths"]), layers=list(spec["layers"]))
        cfg.input_size = spec["input_size"]
        return create_model_from_config(cfg)
    from mindface_au.models import create_model

    return create_model(name, widths=spec["widths"], layers=spec["layers"], input_size=spec["input_size"])


def _mindspore_step(spec: Dict[str, Any]) -> Tuple[Callable[[], Any], str]:
    """A no-argument callable running one forward or train step of the spec's MindSpore model, and the device."""
    import mindspore as ms
    from mindspore import nn

    target = configure_mindspore(spec["device"], spec["threads"], spec.get("jit_level", ""))
    ms.set_seed(0)
    net = _build_mindspore(spec)
    batch, size = spec["batch"], spec["input_size"]
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32))
    is_aunet = spec["model"].startswith("aunet_")
    if spec["mode"] == "forward":
        net.set_train(False)
        if spec.get("fuse_bn"):
            from mindface_au.models.iresnet import fuse_for_inference

            net = fuse_for_inference(net)

        def step():
            return net(x).asnumpy()

    else:
        net.set_train(True)
        if is_aunet:
            from mindface_au.config import LossConfig
            from mindface_au.losses import create_loss

            loss_fn = create_loss(LossConfig())
            target_np = (rng.uniform(size=(batch, 12)) > 0.7).astype(np.float32)
        else:  # the backbone alone: a 12-logit linear probe on the embedding with BCE, like a classifier head

            class _Probe(nn.Cell):
                def __init__(self, backbone, width):
                    super().__init__()
                    self.backbone = backbone
                    self.head = nn.Dense(width, 12)

                def construct(self, inputs):
                    return self.head(self.backbone(inputs))

            net = _Probe(net, spec.get("embedding_size", 512))
            loss_fn = nn.BCEWithLogitsLoss()
            target_np = (rng.uniform(size=(batch, 12)) > 0.7).astype(np.float32)
        y = ms.Tensor(target_np)
        optimizer = nn.Momentum(net.trainable_params(), learning_rate=0.001, momentum=0.9, weight_decay=5e-4)
        amp = spec.get("amp_level", "O0")
        if amp and amp != "O0":
            train = ms.amp.build_train_network(
                net, optimizer, loss_fn, level=amp, loss_scale_manager=ms.FixedLossScaleManager(1.0, False)
            )
        else:
            train = nn.TrainOneStepCell(nn.WithLossCell(net, loss_fn), optimizer)
        train.set_train(True)

        def step():
            return train(x, y).asnumpy()

    return step, target


def _torch_step(spec: Dict[str, Any]) -> Tuple[Callable[[], Any], str]:
    """A no-argument callable running one forward or train step of the spec's PyTorch twin, and the device."""
    import torch

    from mindface_au.reference.torch_aunet import build_torch_model

    torch.manual_seed(0)
    if spec["threads"]:
        torch.set_num_threads(int(spec["threads"]))
    use_cuda = spec["device"] == "GPU" and torch.cuda.is_available()
    dev = torch.device("cuda" if use_cuda else "cpu")
    net = build_torch_model(spec["model"], widths=spec["widths"], layers=spec["layers"]).to(dev)
    batch, size = spec["batch"], spec["input_size"]
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)).to(dev)
    sync = torch.cuda.synchronize if use_cuda else (lambda: None)
    if spec["mode"] == "forward":
        net.eval()

        def step():
            with torch.inference_mode():
                out = net(x)
            sync()
            return out

    else:
        net.train()
        is_aunet = spec["model"].startswith("aunet_")
        if not is_aunet:
            net = torch.nn.Sequential(net, torch.nn.Linear(spec.get("embedding_size", 512), 12)).to(dev)
            net.train()
        y = torch.from_numpy((rng.uniform(size=(batch, 12)) > 0.7).astype(np.float32)).to(dev)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)
        if is_aunet:
            from mindface_au.reference.torch_aunet import torch_au_loss as loss_fn
        else:
            loss_fn = torch.nn.functional.binary_cross_entropy_with_logits

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y)
            loss.backward()
            optimizer.step()
            sync()
            return float(loss)

    return step, "GPU" if use_cuda else "CPU"


def measure_model(spec: Dict[str, Any]) -> Dict[str, Any]:
    """One model measurement in this process: spec keys framework, model, mode (forward|train), batch, widths,
    layers, input_size, threads, device, warmup, repeats, jit_level, amp_level, fuse_bn."""
    step, device = _step_for(spec)
    result = {"device": device, **_time_repeats(step, spec["warmup"], spec["repeats"])}
    result["images_per_s"] = round(spec["batch"] / result["median_s"], 2)
    return result


def _step_for(spec: Dict[str, Any]) -> Tuple[Callable[[], Any], str]:
    if spec["framework"] == "mindspore":
        return _mindspore_step(spec)
    if spec["framework"] == "torch":
        return _torch_step(spec)
    raise ValueError(f"unknown framework {spec['framework']!r}")


def _alternate(steps: Dict[str, Callable[[], Any]], warmup: int, repeats: int) -> Dict[str, float]:
    """Warm every step up, then time them in turns; median seconds per step name."""
    for step in steps.values():
        for _ in range(max(warmup, 1)):
            step()
    times: Dict[str, List[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in times.items()}


def measure_alternating(spec: Dict[str, Any]) -> Dict[str, Any]:
    """MindSpore and PyTorch on the same model in one process, timed in turns: a load-independent time ratio.

    PyTorch runs its first step before the oneDNN ISA cap for MindSpore is set (each library's oneDNN reads the
    variable at its first kernel), so both run with their own best settings. Peak RSS is not per framework here;
    the separate-process rows give that.
    """
    from mindface_au.utils import device

    saved = os.environ.pop(device.ONEDNN_ISA_VAR, None) if device.prefer_gemm_convolutions() else None
    torch_step = _step_for(dict(spec, framework="torch"))[0]
    torch_step()
    if saved is not None:
        os.environ[device.ONEDNN_ISA_VAR] = saved
    steps = {"mindspore": _step_for(dict(spec, framework="mindspore"))[0], "torch": torch_step}
    medians = _alternate(steps, spec["warmup"], spec["repeats"])
    return {
        "mindspore_s": medians["mindspore"],
        "torch_s": medians["torch"],
        "ratio": round(medians["mindspore"] / medians["torch"], 3),
    }


def measure_heads(spec: Dict[str, Any]) -> Dict[str, Any]:
    """AUNet vs its backbone alone, built in one process and timed alternately (same machine load for both).

    Returns both medians and heads_cost = AUNet time / backbone time - 1 (issue 4: under 10%).
    """
    base_spec = dict(spec, model=backbone_name(spec["model"]))
    steps = {"aunet": _step_for(spec)[0], "backbone": _step_for(base_spec)[0]}
    medians = _alternate(steps, spec["warmup"], spec["repeats"])
    aunet_s, backbone_s = medians["aunet"], medians["backbone"]
    return {"aunet_s": aunet_s, "backbone_s": backbone_s, "heads_cost": round(aunet_s / backbone_s - 1.0, 3)}


def measure_postprocess(frames: int, prob_k: int = 8, label_k: int = 6, repeats: int = 3) -> Dict[str, Any]:
    """frames/s of smooth_probs + binarize + smooth_labels on one (frames, 12) probability track."""
    from mindface_au.postprocess import binarize, smooth_labels, smooth_probs

    probs = np.random.default_rng(0).uniform(size=(frames, 12)).astype(np.float32)

    def step():
        smoothed = smooth_probs(probs, prob_k)
        return smooth_labels(binarize(smoothed, 0.5), label_k)

    timing = _time_repeats(step, warmup=1, repeats=repeats)
    return {"frames": frames, "frames_per_s": round(frames / timing["median_s"], 1), **timing}


def measure_pipeline(
    data_root: str, batch: int, num_batches: int, threads: int, synth_frames: int = 200
) -> Dict[str, Any]:
    """Images/s of the training data pipeline alone (decode, sampling, augmentation, batching)."""
    from mindface_au.config import DataConfig
    from mindface_au.data import pipeline

    with tempfile.TemporaryDirectory(prefix="mindface-au-bench-") as tmp:
        root = data_root
        if not root:
            from mindface_au.data import synthau

            root = os.path.join(tmp, "synthau")
            synthau.generate(root, videos=4, frames=synth_frames, seed=0)
        cfg = DataConfig(root=root, image_size=112, batch_size=batch, num_workers=threads)
        images_per_s = float(pipeline.benchmark_pipeline(root, cfg, num_batches))
    return {"images_per_s": round(images_per_s, 1), "batch": batch, "num_batches": num_batches}


def _worker(spec: Dict[str, Any]) -> Dict[str, Any]:
    kind = spec["kind"]
    if kind == "matmul":
        result = measure_matmul(spec["framework"], spec["size"], spec["repeats"], spec["device"], spec["threads"])
    elif kind == "model":
        result = measure_model(spec)
    elif kind == "alternating":
        result = measure_alternating(spec)
    elif kind == "heads":
        result = measure_heads(spec)
    elif kind == "postprocess":
        result = measure_postprocess(spec["frames"])
    elif kind == "pipeline":
        result = measure_pipeline(
            spec["data_root"], spec["batch"], spec["num_batches"], spec["threads"], spec.get("synth_frames", 200)
        )
    else:
        raise ValueError(f"unknown measurement kind {kind!r}")
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def run_worker(spec: Dict[str, Any], timeout: int = 3600) -> Dict[str, Any]:
    """Run one measurement in a fresh Python process with the thread count in its environment."""
    env = dict(os.environ)
    env.setdefault("GLOG_v", "3")
    if spec.get("threads"):
        for var in THREAD_ENV_VARS:
            env[var] = str(spec["threads"])
    if spec.get("framework") in ("torch", "numpy") or spec.get("kind") == "alternating":
        from mindface_au.utils import device

        if device.prefer_gemm_convolutions():  # PyTorch's own oneDNN runs with its defaults, as its users run it
            env.pop(device.ONEDNN_ISA_VAR, None)
    with tempfile.TemporaryDirectory(prefix="mindface-au-bench-") as tmp:
        result_path = os.path.join(tmp, "result.json")
        cmd = [sys.executable, "-m", "mindface_au.bench", "--worker", json.dumps(spec), "--result", result_path]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout} s"}
        if proc.returncode != 0 or not os.path.isfile(result_path):
            lines = [ln for ln in (proc.stderr or proc.stdout or "").strip().splitlines() if ln.strip()]
            return {"error": lines[-1][:300] if lines else f"exit status {proc.returncode}"}
        with open(result_path, encoding="utf-8") as handle:
            return json.load(handle)


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
    for batch in opts.batches:
        if batch < 1:
            raise UserError(f"--batch {batch}: expected a positive batch size")
    if opts.data_root and not os.path.isdir(opts.data_root):
        raise UserError(f"--data-root {opts.data_root}: folder not found")


def run_bench(options: BenchOptions, log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Run the whole suite and return one JSON-able dict (see `format_table` for the printed form)."""
    opts = options.resolved()
    _check_options(opts)
    has_torch, torch_info = torch_available() if opts.torch else (False, "disabled (--no-torch)")
    import mindspore as ms

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
        },
        "matmul": {},
        "models": [],
    }
    common = {"threads": opts.threads, "device": opts.device}
    model_common = {  # what every network measurement shares
        "widths": list(opts.widths),
        "layers": list(opts.layers),
        "input_size": opts.input_size,
        "warmup": opts.warmup,
        "repeats": opts.repeats,
        "jit_level": opts.jit_level,
        "fuse_bn": opts.fuse_bn,
        **common,
    }

    for framework in ("numpy", "mindspore"):
        log(f"bench: matmul {framework} {opts.matmul_size}x{opts.matmul_size} ...")
        spec = {"kind": "matmul", "framework": framework, "size": opts.matmul_size, "repeats": opts.repeats, **common}
        report["matmul"][framework] = run_worker(spec, opts.timeout)
    rates = [r["gflops"] for r in report["matmul"].values() if "gflops" in r]
    report["matmul_limit_gflops"] = max(rates) if rates else None
    if rates:
        best = max(report["matmul"], key=lambda k: report["matmul"][k].get("gflops", -1))
        report["matmul_limit_source"] = best

    modes = ["forward"] + (["train"] if opts.train else [])
    frameworks = ["mindspore"] + (["torch"] if has_torch else [])
    for name in opts.models:
        gflop = model_gflop(name, opts.layers, opts.widths, opts.input_size)
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
                    if "median_s" in result:
                        flop = gflop * batch * (TRAIN_FLOP_FACTOR if mode == "train" else 1.0)
                        row["gflops"] = round(flop / result["median_s"], 1)
                        if report["matmul_limit_gflops"]:
                            row["fraction_of_matmul"] = round(row["gflops"] / report["matmul_limit_gflops"], 3)
                    report["models"].append(row)
    report["ratios"] = _ratios(report["models"])
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
    report["heads"] = []
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

    if opts.pipeline:
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
    log(f"bench: post-processing {opts.post_frames} frames ...")
    report["postprocess"] = run_worker({"kind": "postprocess", "frames": opts.post_frames, **common}, opts.timeout)
    report["failed"] = _failures(report)
    return report


def _ratios(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """MindSpore time / PyTorch time for every (model, mode, batch) measured by both."""
    index = {(r["framework"], r["model"], r["mode"], r["batch"]): r for r in rows if "median_s" in r}
    out = []
    for (framework, model, mode, batch), row in index.items():
        other = index.get(("torch", model, mode, batch))
        if framework == "mindspore" and other:
            ratio = row["median_s"] / other["median_s"]
            out.append(
                {
                    "model": model,
                    "mode": mode,
                    "batch": batch,
                    "ratio": round(ratio, 3),
                    "mindspore_s": row["median_s"],
                    "torch_s": other["median_s"],
                    "rss_ratio": round(row["peak_rss_mb"] / other["peak_rss_mb"], 3),
                }
            )
    return out


def _failures(report: Dict[str, Any]) -> List[str]:
    failed = [f"matmul {k}: {v['error']}" for k, v in report["matmul"].items() if "error" in v]
    failed += [
        f"{r['framework']} {r['model']} {r['mode']} batch {r['batch']}: {r['error']}"
        for r in report["models"]
        if "error" in r
    ]
    failed += [
        f"heads {r['framework']} {r['model']} {r['mode']}: {r['error']}" for r in report["heads"] if "error" in r
    ]
    for key in ("pipeline", "postprocess"):
        if "error" in report.get(key, {}):
            failed.append(f"{key}: {report[key]['error']}")
    return failed


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_table(report: Dict[str, Any]) -> str:
    """The report as Markdown: machine line, matmul limit, model table, ratios, heads, pipeline, post-processing."""
    machine = report["machine"]
    lines = [
        f"MindSpore {machine['mindspore']}, PyTorch {machine['torch']}, numpy {machine['numpy']}; "
        f"{machine['threads']} threads of {machine['cpus']} CPUs; {machine['processor']}",
        "",
        "| matmul float32 | size | GFLOP/s (best) | peak RSS MiB |",
        "|---|---|---|---|",
    ]
    for framework, row in report["matmul"].items():
        lines.append(
            f"| {framework} | {row.get('size', '-')} | {_fmt(row.get('gflops', row.get('error')))} | "
            f"{_fmt(row.get('peak_rss_mb'))} |"
        )
    if report.get("matmul_limit_gflops"):
        lines.append(f"\nLimit: {report['matmul_limit_gflops']} GFLOP/s ({report['matmul_limit_source']} matmul).")
    lines += [
        "",
        "| framework | model | mode | batch | images/s | median s | GFLOP/s | of matmul | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["models"]:
        if "error" in row:
            lines.append(
                f"| {row['framework']} | {row['model']} | {row['mode']} | {row['batch']} | failed: "
                f"{row['error']} | | | | |"
            )
            continue
        frac = row.get("fraction_of_matmul")
        lines.append(
            f"| {row['framework']} | {row['model']} | {row['mode']} | {row['batch']} | {_fmt(row['images_per_s'], 2)}"
            f" | {row['median_s']:.4f} | {_fmt(row.get('gflops'))} | {'-' if frac is None else f'{frac:.0%}'} | "
            f"{_fmt(row['peak_rss_mb'])} |"
        )
    if report.get("ratios"):
        lines += [
            "",
            "| model | mode | batch | MindSpore / PyTorch time | same, one process in turns | "
            "MindSpore / PyTorch peak RSS |",
            "|---|---|---|---|---|---|",
        ]
        for r in report["ratios"]:
            alt = r.get("alternating")
            alt = f"{alt:.2f}" if isinstance(alt, float) else f"failed: {alt}" if alt else "-"
            lines.append(
                f"| {r['model']} | {r['mode']} | {r['batch']} | {r['ratio']:.2f} | {alt} | {r['rss_ratio']:.2f} |"
            )
    if report.get("heads"):
        lines += [
            "",
            "| framework | model | mode | batch | AUNet s | backbone s | heads cost (same process, alternating) |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in report["heads"]:
            if "error" in r:
                cells = f"failed: {r['error']} | | "
            else:
                cells = f"{r['aunet_s']:.4f} | {r['backbone_s']:.4f} | {r['heads_cost']:+.1%}"
            lines.append(f"| {r['framework']} | {r['model']} | {r['mode']} | {r['batch']} | {cells} |")
    pipe = report.get("pipeline")
    if pipe is not None:
        lines.append("")
        if "error" in pipe:
            lines.append(f"Data pipeline: failed: {pipe['error']}")
        else:
            extra = ""
            if "times_train_step" in pipe:
                extra = (
                    f", {pipe['times_train_step']}x the fastest MindSpore train step "
                    f"({pipe['fastest_train_step_images_per_s']} images/s)"
                )
            lines.append(
                f"Data pipeline (augmented, batch {pipe['batch']}): {pipe['images_per_s']} images/s{extra}; "
                f"peak RSS {pipe['peak_rss_mb']} MiB"
            )
    post = report.get("postprocess", {})
    if "error" in post:
        lines.append(f"Post-processing: failed: {post['error']}")
    elif post:
        lines.append(
            f"Post-processing (smooth_probs k=8 + smooth_labels k=6) on {post['frames']} frames x 12 AUs: "
            f"{post['median_s']:.3f} s, {post['frames_per_s']:.0f} frames/s; peak RSS {post['peak_rss_mb']} MiB"
        )
    if report.get("failed"):
        lines += ["", "Failed: " + "; ".join(report["failed"])]
    return "\n".join(lines)


def _main(argv: Optional[List[str]] = None) -> int:
    """Worker entry: `python -m mindface_au.bench --worker SPEC_JSON --result FILE`."""
    parser = argparse.ArgumentParser(prog="python -m mindface_au.bench")
    parser.add_argument("--worker", required=True, help="measurement spec as JSON")
    parser.add_argument("--result", required=True, help="where to write the result JSON")
    args = parser.parse_args(argv)
    result = _worker(json.loads(args.worker))
    from mindface_au.utils.io import atomic_write

    with atomic_write(args.result) as handle:
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
