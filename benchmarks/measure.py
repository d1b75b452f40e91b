"""Measurements run inside a bench worker process: matmul rate, MindSpore and PyTorch train/forward steps, the
heads' cost (and the intensity head's), the data pipeline, post-processing, and the MAC count of a model.

Each function measures in the calling process; `benchmarks.worker` runs each one in a fresh subprocess.
Warm-up (including graph compilation) is excluded; times are medians of the repeats.
"""

import contextlib
import os
import tempfile
import time
from typing import Any, Callable, Dict, Iterator, List, Tuple

import numpy as np

from mindface_au.errors import UserError
from mindface_au.utils.cpus import available_cpus

__all__ = [
    "configure_mindspore",
    "default_threads",
    "time_repeats",
    "alternate",
    "medians",
    "torch_onednn_defaults",
    "measure_matmul",
    "measure_model",
    "measure_alternating",
    "measure_heads",
    "measure_intensity_head",
    "measure_macs",
    "measure_postprocess",
    "measure_pipeline",
]

TRAIN_FLOP_FACTOR = 3.0  # forward + backward ~ 3x forward


def default_threads() -> int:
    """CPUs this process may run on (affinity-aware where the OS has affinity)."""
    return available_cpus()


def backbone_name(name: str) -> str:
    """'aunet_iresnet100' -> 'iresnet100'; an IResNet name is its own backbone."""
    return name.split("_", 1)[1] if name.startswith("aunet_") else name


# ----------------------------------------------------------------------------------------------- timing
def time_repeats(step: Callable[[], Any], warmup: int, repeats: int) -> Dict[str, Any]:
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
    timing = time_repeats(step, warmup=1, repeats=repeats)
    best = min(timing["times_s"])
    return {"gflops": round(2.0 * size**3 / best / 1e9, 1), "size": size, "best_s": best, **timing}


def _build_mindspore(spec: Dict[str, Any]):
    """The MindSpore model of a spec: a registered IResNet, or an AUNet built from a ModelConfig."""
    from mindface_au.config import ModelConfig
    from mindface_au.models import build_network

    cfg = ModelConfig(name=spec["model"], widths=list(spec["widths"]), layers=list(spec["layers"]))
    cfg.input_size = spec["input_size"]
    cfg.intensity = bool(spec.get("intensity", False))  # the intensity head, on every AU (model.intensity)
    return build_network(cfg)


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

        if spec.get("intensity"):  # (logits, intensity): both outputs read back, as inference does

            def step():
                return [out.asnumpy() for out in net(x)]

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
    result = {"device": device, **time_repeats(step, spec["warmup"], spec["repeats"])}
    result["images_per_s"] = round(spec["batch"] / result["median_s"], 2)
    return result


def _step_for(spec: Dict[str, Any]) -> Tuple[Callable[[], Any], str]:
    if spec["framework"] == "mindspore":
        return _mindspore_step(spec)
    if spec["framework"] == "torch":
        return _torch_step(spec)
    raise ValueError(f"unknown framework {spec['framework']!r}")


def alternate(steps: Dict[str, Callable[[], Any]], warmup: int, repeats: int) -> Dict[str, List[float]]:
    """Warm every step up, then time them in turns (one call of each per round); seconds per round by name."""
    for step in steps.values():
        for _ in range(max(warmup, 1)):
            step()
    times: Dict[str, List[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return times


def medians(times: Dict[str, List[float]]) -> Dict[str, float]:
    return {name: float(np.median(values)) for name, values in times.items()}


@contextlib.contextmanager
def torch_onednn_defaults(cap_ours: bool) -> Iterator[None]:
    """Within: the oneDNN cap variable removed if mindface-au set it, for PyTorch's first kernel in this process.

    Each library's oneDNN reads the variable at its own first kernel, so PyTorch (whose blocked-layout kernels
    do not need the cap) runs with its defaults, as its users run it, and MindSpore still gets the cap after.
    A cap the user set stays for both.
    """
    from mindface_au.utils.device import ONEDNN_ISA_VAR

    saved = os.environ.pop(ONEDNN_ISA_VAR, None) if cap_ours else None
    try:
        yield
    finally:
        if saved is not None:
            os.environ[ONEDNN_ISA_VAR] = saved


def measure_alternating(spec: Dict[str, Any]) -> Dict[str, Any]:
    """MindSpore and PyTorch on the same model in one process, timed in turns: a load-independent time ratio.

    PyTorch runs its first step before MindSpore's (see `torch_onednn_defaults`). Peak RSS is not per framework
    here; the separate-process rows give that.
    """
    with torch_onednn_defaults(spec.get("onednn_cap_ours", False)):
        torch_step = _step_for(dict(spec, framework="torch"))[0]
        torch_step()
    steps = {"mindspore": _step_for(dict(spec, framework="mindspore"))[0], "torch": torch_step}
    median = medians(alternate(steps, spec["warmup"], spec["repeats"]))
    return {
        "mindspore_s": median["mindspore"],
        "torch_s": median["torch"],
        "ratio": round(median["mindspore"] / median["torch"], 3),
    }


def measure_heads(spec: Dict[str, Any]) -> Dict[str, Any]:
    """AUNet vs its backbone alone, built in one process and timed alternately (same machine load for both).

    Returns both medians and heads_cost = AUNet time / backbone time - 1 (target: under 10%).
    """
    base_spec = dict(spec, model=backbone_name(spec["model"]))
    steps = {"aunet": _step_for(spec)[0], "backbone": _step_for(base_spec)[0]}
    median = medians(alternate(steps, spec["warmup"], spec["repeats"]))
    aunet_s, backbone_s = median["aunet"], median["backbone"]
    return {"aunet_s": aunet_s, "backbone_s": backbone_s, "heads_cost": round(aunet_s / backbone_s - 1.0, 3)}


def measure_intensity_head(spec: Dict[str, Any]) -> Dict[str, Any]:
    """AUNet with the intensity head (model.intensity, every AU) vs the same AUNet without it, forward, built in one
    process and timed alternately. Returns both medians and intensity_cost = with / without - 1."""
    if spec["mode"] != "forward":
        raise ValueError("the intensity head's cost is measured on the forward pass only")
    steps = {"intensity": _step_for(dict(spec, intensity=True))[0], "aunet": _step_for(spec)[0]}
    median = medians(alternate(steps, spec["warmup"], spec["repeats"]))
    with_s, without_s = median["intensity"], median["aunet"]
    return {"intensity_s": with_s, "aunet_s": without_s, "intensity_cost": round(with_s / without_s - 1.0, 3)}


def measure_macs(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Multiply-accumulates of one forward pass of the spec's model per image (`models.zoo.count_macs`)."""
    from mindface_au.models.zoo import count_macs

    configure_mindspore(spec["device"], spec["threads"])
    macs = count_macs(_build_mindspore(spec), spec["input_size"])
    return {"macs": macs, "gflop": 2.0 * macs / 1e9}


def measure_postprocess(frames: int, prob_k: int = 8, label_k: int = 6, repeats: int = 3) -> Dict[str, Any]:
    """frames/s of smooth_probs + binarize + smooth_labels on one (frames, 12) probability track."""
    from mindface_au.postprocess import binarize, smooth_labels, smooth_probs

    probs = np.random.default_rng(0).uniform(size=(frames, 12)).astype(np.float32)

    def step():
        smoothed = smooth_probs(probs, prob_k)
        return smooth_labels(binarize(smoothed, 0.5), label_k)

    timing = time_repeats(step, warmup=1, repeats=repeats)
    return {"frames": frames, "frames_per_s": round(frames / timing["median_s"], 1), **timing}


def measure_pipeline(
    data_root: str, batch: int, num_batches: int, threads: int, synth_frames: int = 200, processes: bool = True
) -> Dict[str, Any]:
    """Images/s of the training data pipeline alone (decode, sampling, augmentation, batching): `images_per_s` with
    `threads` workers, a row per thread-worker count 1..threads (`by_workers`: images/s, images per CPU second and
    the 1-minute load average before the row, since other load on the machine slows it) and, with `processes`, a
    row per process-worker count (`by_process_workers`, `process_workers=True`: no per-CPU rate)."""
    from mindface_au.config import DataConfig
    from mindface_au.data import pipeline

    with tempfile.TemporaryDirectory(prefix="mindface-au-bench-") as tmp:
        root = data_root
        if not root:
            from mindface_au.data import synthau

            root = os.path.join(tmp, "synthau")
            synthau.generate(root, videos=4, frames=synth_frames, seed=0)
        counts = range(1, max(1, int(threads)) + 1)
        rows = [_pipeline_row(pipeline, root, DataConfig, batch, num_batches, w, False) for w in counts]
        by_process = [
            _pipeline_row(pipeline, root, DataConfig, batch, num_batches, w, True) for w in counts if processes
        ]
    result = {"images_per_s": rows[-1]["images_per_s"], "batch": batch, "num_batches": num_batches, "by_workers": rows}
    if processes:
        result["by_process_workers"] = by_process
    return result


def _pipeline_row(pipeline, root: str, config, batch: int, num_batches: int, workers: int, processes: bool) -> dict:
    """One row of `measure_pipeline`: `pipeline_rates` at `workers` (threads, or processes)."""
    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    cfg = config(root=root, image_size=112, batch_size=batch, num_workers=workers)
    rates = pipeline.pipeline_rates(root, cfg, num_batches, process_workers=processes)
    per_cpu = rates["images_per_cpu_s"]
    return {
        "workers": rates["workers"],
        "images_per_s": round(rates["images_per_s"], 1),
        "images_per_cpu_s": None if per_cpu is None else round(per_cpu, 1),
        "load_average": load,
    }
