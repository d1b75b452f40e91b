"""Memory: resident memory of this process (the peak, for the bench, convert and the memory tests, and the current
value), and the estimate of a training step's activation memory (`count_activations`, `activation_bytes`)."""

import resource
import sys
from typing import List, Optional, Tuple

__all__ = ["peak_rss_mb", "current_rss_mb", "count_activations", "activation_bytes", "layer_bytes"]


def _status_mib(key: str) -> Optional[float]:
    """A `/proc/self/status` memory line (e.g. VmHWM) in MiB; None where there is no /proc (not Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB.

    Linux: VmHWM from /proc/self/status, which starts afresh at exec (getrusage's ru_maxrss would carry over the
    parent's peak into a subprocess). Elsewhere: ru_maxrss (KiB on Linux/BSD, bytes on macOS).
    """
    peak = _status_mib("VmHWM")
    if peak is not None:
        return peak
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0, 1)


def current_rss_mb() -> Optional[float]:
    """Resident memory of this process now, in MiB (VmRSS); None where /proc is missing."""
    return _status_mib("VmRSS")


# ---- activation memory of a training step (estimate) -------------------------------------------------------------
# Hand-checkable count: the output of every leaf layer (a Cell without child Cells) for one image at the input size,
# times the batch, times the bytes of that output's type at the AMP level. Layers whose output is their input
# (Identity) or a view of it (Flatten) hold no memory of their own and are left out; element-wise operations
# written inside a construct (residual additions, attention products) are not layers and are not counted.
VIEW_LAYERS = ("Identity", "Flatten")
LOW_PRECISION_O1 = ("Conv1d", "Conv2d", "Conv3d", "Conv1dTranspose", "Conv2dTranspose", "Conv3dTranspose", "Dense")
FULL_PRECISION_O2 = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm")  # MindSpore's AMP_BLACK_LIST
ALWAYS_FULL_PRECISION = ("Fp32SyncBatchNorm",)  # train.sync_bn keeps SyncBatchNorm float32 (engine/distributed.py)


def layer_bytes(kind: str, amp_level: str) -> int:
    """Bytes per output value of a layer of class `kind` under MindSpore's AMP level (float16 = 2, float32 = 4).

    O0 float32 everywhere; O1 float16 for the white-listed convolutions and Dense; O2 float16 except the black
    list (BatchNorm, LayerNorm); O3 float16 everywhere. SyncBatchNorm in this project stays float32 at every level.
    """
    amp = amp_level.upper()
    if kind in ALWAYS_FULL_PRECISION or amp == "O0":
        return 4
    if amp == "O1":
        return 2 if kind in LOW_PRECISION_O1 else 4
    if amp == "O2":
        return 4 if kind in FULL_PRECISION_O2 else 2
    return 2


def count_activations(net, input_shape: Tuple[int, ...]) -> List[Tuple[str, str, int]]:
    """(layer name, class name, output values for one input) of every leaf layer of `net` (VIEW_LAYERS left out).

    Runs one forward pass of zeros of `input_shape` (batch 1) in PyNative mode with forward hooks, the network in
    inference mode (no BatchNorm statistic changes; every layer's output has its training shape), then restores
    the execution mode and the training flag. Call it before the network is compiled for training.
    """
    import mindspore as ms
    import numpy as np

    rows: List[Tuple[str, str, int]] = []
    names = {}
    handles = []

    def hook(cell, _inputs, output):
        outputs = output if isinstance(output, (tuple, list)) else (output,)
        size = sum(int(np.prod(o.shape)) for o in outputs if hasattr(o, "shape"))
        rows.append((names[id(cell)], type(cell).__name__, size))

    for name, cell in net.cells_and_names():
        if cell.name_cells() or type(cell).__name__ in VIEW_LAYERS:
            continue
        names[id(cell)] = name
        handles.append(cell.register_forward_hook(hook))
    mode, training = ms.get_context("mode"), net.training
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        net.set_train(False)
        net(ms.Tensor(np.zeros(input_shape, np.float32)))
    finally:
        for handle in handles:
            handle.remove()
        net.set_train(training)
        ms.set_context(mode=mode)
    return rows


def activation_bytes(rows: List[Tuple[str, str, int]], batch: int, amp_level: str) -> int:
    """Bytes of the layer outputs in `rows` (from `count_activations`) for `batch` images at `amp_level`."""
    return int(batch) * sum(size * layer_bytes(kind, amp_level) for _, kind, size in rows)
