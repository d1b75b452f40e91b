"""Data-parallel set-up under `msrun` (CPU, GPU or Ascend): one process per device, averaged gradients.

Also what data parallelism needs to be checkable and configurable: `parameter_digest` (every rank logs it; equal
digests mean equal weights) and the BatchNorm modes, per device by default, `sync_batchnorm` (train.sync_bn) or
`freeze_batchnorm` (train.freeze_bn).
"""

import hashlib
import os
import re
from typing import Callable, Tuple

from mindface_au.errors import UserError, param

_state = {"rank": 0, "world_size": 1}


def init_distributed() -> Tuple[int, int]:
    """Join the process group started by msrun and switch to DATA_PARALLEL with gradient averaging.

    Call after `init_context` and before any Cell is built. Returns (rank, world_size).
    """
    import mindspore as ms
    from mindspore.communication import get_group_size, get_rank, init

    if not any(os.environ.get(k) for k in ("MS_WORKER_NUM", "RANK_TABLE_FILE", "RANK_SIZE")):
        raise UserError(
            f"{param('distributed')} needs a launcher: run `mindface-au launch --workers N -- TRAIN_ARGS` (it calls "
            "msrun), or in a clone `msrun --worker_num=N --local_worker_num=N --master_port=PORT --log_dir=DIR "
            "--join=True tools/train.py --distributed ...`"
        )
    init()
    rank, world_size = get_rank(), get_group_size()
    # set_auto_parallel_context is deprecated in MindSpore 2.10 in favour of mindspore.parallel.auto_parallel
    # .AutoParallel, whose modes (semi_auto, sharding_propagation, recursive_programming) have no plain data-parallel
    # mode with gradient averaging for Model.train: kept until one exists (docs/clusters.md).
    ms.set_auto_parallel_context(
        parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True, device_num=world_size
    )
    _state.update(rank=rank, world_size=world_size)
    return rank, world_size


_RUN_START = re.compile(r"^run .*: rank \d+/(\d+), split ", re.MULTILINE)


def check_resume_workers(run_root: str, world_size: int) -> None:
    """A resumed run continues with the worker count it last ran with: else one line naming both counts.

    The epoch sample is cut into `world_size` equal shards, so the steps per epoch, the optimiser's step counter,
    the learning-rate schedule (per step) and a step checkpoint's position inside its epoch all count steps of
    that many ranks; with another count a resumed run would skip or repeat frames and shift the schedule. The
    count is read from the run's own log (`train.log`, whose start line says "rank 0/N"); a run directory without
    one is not checked.
    """
    from mindface_au.engine.run_dir import RUN_FILES

    path = os.path.join(run_root, RUN_FILES["log"])
    if not os.path.isfile(path):
        return
    with open(path, errors="replace") as handle:
        starts = _RUN_START.findall(handle.read())
    if starts and int(starts[-1]) != world_size:
        saved = int(starts[-1])
        raise UserError(
            f"{param('resume')} {run_root}: the run was trained with {saved} worker(s), this run has {world_size}; "
            f"resume it with {saved} (the epoch's shards, steps per epoch and learning-rate schedule count "
            f"steps of {saved} ranks)"
        )


def rank_and_size() -> Tuple[int, int]:
    """(rank, world_size) of this process; (0, 1) when not distributed."""
    return _state["rank"], _state["world_size"]


def is_main_process() -> bool:
    """Only rank 0 writes checkpoints, logs and metrics."""
    return _state["rank"] == 0


def parameter_digest(net) -> str:
    """sha256 (first 16 hex digits) of `net`'s trainable parameters in name order, as float32 bytes.

    Trainable parameters only: BatchNorm running statistics are per device unless train.sync_bn, so they differ
    between ranks by design.
    """
    import numpy as np

    digest = hashlib.sha256()
    for weight in sorted(net.trainable_params(), key=lambda p: p.name):
        digest.update(weight.name.encode())
        digest.update(np.ascontiguousarray(weight.asnumpy(), dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def _batchnorms(net):
    """(parent cell, attribute name, BatchNorm cell) for every nn.BatchNorm1d/2d inside `net`."""
    from mindspore import nn

    found = []
    for _, parent in net.cells_and_names():
        for attr, child in parent.name_cells().items():
            if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)) and not isinstance(child, nn.SyncBatchNorm):
                found.append((parent, attr, child))
    return found


def freeze_batchnorm(net) -> int:
    """Every BatchNorm normalises with its running statistics and leaves them unchanged (gamma and beta still
    train): the loss of a batch is then a mean of per-frame losses, so R ranks x batch B step exactly like one
    process with batch R x B. Returns how many BatchNorms were frozen."""
    layers = _batchnorms(net)
    for _, _, bn in layers:
        bn.use_batch_statistics = False
    return len(layers)


def swap_batchnorm(net, make: Callable) -> int:
    """Replace every BatchNorm1d/2d inside `net` by `make(bn)`, keeping parameter names and values.

    A Cell set as an attribute after construction is named from that attribute only, so the new parameters take
    the old full names (checkpoints keep loading). A SequentialCell / CellList runs its `cell_list`, which
    `setattr` leaves holding the old layer (both would then be in the graph: "parameter ... already exists"), so
    that list is rebuilt. Returns the number of layers replaced.
    """
    layers = _batchnorms(net)
    for parent, attr, bn in layers:
        new = make(bn)
        setattr(parent, attr, new)  # renames `new`'s parameters from `attr` alone: set the full names after it
        if hasattr(parent, "cell_list"):  # SequentialCell, CellList: construct iterates this copy of _cells
            parent.cell_list = list(parent.name_cells().values())
        for key in ("gamma", "beta", "moving_mean", "moving_variance"):
            old, fresh = getattr(bn, key), getattr(new, key)
            fresh.set_data(old.data.copy())
            fresh.name = old.name
            fresh.requires_grad = old.requires_grad
    return len(layers)


def sync_batchnorm(net) -> int:
    """train.sync_bn: nn.SyncBatchNorm over all ranks in place of every BatchNorm.

    nn.SyncBatchNorm declares Ascend only (MindSpore 2.10); engine/runtime.py refuses other devices. With one
    process (no group of size > 1) it is a plain BatchNorm, which is how the tests run the swapped network on CPU;
    the synchronising kernel (inner SyncBatchNorm over hccl_world_group) never ran here.

    Momentum: `_BatchNorm` stores 1 - momentum (the weight of the batch statistics), and MindSpore 2.10's
    SyncBatchNorm takes the weight of the running statistics (running = m * running + (1 - m) * batch), so the
    BatchNorm's own meaning is kept by passing 1 - bn.momentum. Its docstring announces PyTorch's convention
    (momentum = weight of the batch) for a later version; tests/test_runtime.py pins the installed behaviour.

    AMP: MindSpore's O2 keeps the classes of its AMP black list (BatchNorm1d/2d/3d, LayerNorm) in float32, and
    nn.SyncBatchNorm is not on it, so O2 (and O3) would run it in float16, statistics summed across devices
    included. The layers made here are `Fp32SyncBatchNorm`, which stays float32 at every AMP level.
    """

    def make(bn):
        return fp32_sync_batchnorm_class()(bn.num_features, eps=bn.eps, momentum=1.0 - bn.momentum)

    return swap_batchnorm(net, make)


# Validation collective and the collective timeouts a launch sets (engine/validation.py; docs/training.md).

# Environment variables `launch` sets for every worker unless the user set them: how long a rank waits at a
# collective for the others. HCCL_EXEC_TIMEOUT (Ascend; CANN's default 1836 s; the Atlas training series (910A)
# accepts up to 17340 s and rounds down to a multiple of 68 s, Atlas A2/A3 up to 2147483647): the wait of the
# ranks at the sum of the validation counts, and at the first gradient all-reduce after rank 0 saves the epoch's
# checkpoints. 7200 s covers a validation part scored at ~100 frames/s per rank for ~4 hours of video per rank.
# HCCL_CONNECT_TIMEOUT (Ascend; MindSpore sets 600 s when unset; CANN accepts 120..7200): building the links at
# start, while every rank loads its data and compiles. GPU (NCCL) collectives have no execution timeout here.
COLLECTIVE_TIMEOUTS = {"HCCL_EXEC_TIMEOUT": "7200", "HCCL_CONNECT_TIMEOUT": "1800"}


def collective_timeout_env(environ=None) -> dict:
    """The COLLECTIVE_TIMEOUTS not already set in `environ` (default os.environ): a user's own value wins. A
    launcher adds the result to the workers' environment."""
    environ = os.environ if environ is None else environ
    return {key: value for key, value in COLLECTIVE_TIMEOUTS.items() if not environ.get(key)}


def all_reduce_sum(values):
    """The element-wise sum of the integer numpy array `values` over all ranks (every rank gets it; every rank must
    call it). Outside the train graph: `mindspore.ops.communication.all_reduce` on the world group, run eagerly.
    Counts travel as int32, which every backend sums (MindSpore 2.10's CPU all-reduce refuses float64), on every
    rank alike (a dtype chosen per rank would hang the collective): the validation counts are bounded by the
    validation part's frame count, far below 2^31. One process: `values` unchanged."""
    import numpy as np

    array = np.asarray(values)
    if _state["world_size"] <= 1:
        return array
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"all_reduce_sum sums integer counts, got {array.dtype}")
    import mindspore as ms
    from mindspore.ops.communication import all_reduce

    tensor = ms.Tensor(array.astype(np.int32))
    out = all_reduce(tensor, op="sum")  # MindSpore 2.10 sums in place (returns a handle); older forms return a copy
    total = out[0] if isinstance(out, tuple) and isinstance(out[0], ms.Tensor) else tensor
    return total.asnumpy().astype(array.dtype)


_FP32_SYNC_BN = {}


def fp32_sync_batchnorm_class():
    """nn.SyncBatchNorm that stays float32 under AMP, its output cast to the AMP type (as MindSpore's _OutputTo16
    does for black-listed layers). Built on first use: MindSpore is imported only when BatchNorm is synchronised.

    AMP O2/O3 set their float16 flag on every layer through `Cell.add_flags_recursive` (`to_float`); this class
    turns that flag into float32 for itself and remembers the type to cast its output to.
    """
    if "class" in _FP32_SYNC_BN:
        return _FP32_SYNC_BN["class"]
    import mindspore as ms
    from mindspore import nn, ops

    low = {"fp16": ms.float16, "bf16": ms.bfloat16}

    class Fp32SyncBatchNorm(nn.SyncBatchNorm):
        """SyncBatchNorm kept float32 under AMP (see fp32_sync_batchnorm_class)."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.output_dtype = None

        def add_flags_recursive(self, **flags):
            asked = [key for key in low if flags.get(key)]
            if asked:
                self.output_dtype = low[asked[0]]
                flags = {**flags, "fp16": False, "bf16": False, "fp32": True}
            elif flags.get("fp32"):
                self.output_dtype = None
            return super().add_flags_recursive(**flags)

        def construct(self, x):
            out = super().construct(x)
            if self.output_dtype is not None:
                out = ops.cast(out, self.output_dtype)
            return out

    _FP32_SYNC_BN["class"] = Fp32SyncBatchNorm
    return Fp32SyncBatchNorm


# ---- device checks for launches (before msrun starts, and per rank) ----------------------------------------------


def check_local_workers(local_workers: int, device: str = "auto") -> None:
    """More local workers than devices on GPU or Ascend: one line naming the device count, before msrun starts.

    msrun gives each local worker the device of its local rank (DEVICE_ID = local rank), so a worker beyond the
    device count has no device and fails only after every other worker has started. `device` as `train --device`
    (auto: the device `train` would pick). CPU runs (the tests, `launch -- detect`) are not limited. Where the
    count is unknown (no plugin loaded and no driver device files) nothing is checked: the run fails at its start.
    """
    from mindface_au.utils.device import DEVICES, detect_device, device_count

    auto = device is None or str(device).lower() in ("", "auto")
    canonical = {d.lower(): d for d in DEVICES}
    target = detect_device() if auto else canonical.get(str(device).lower(), str(device))
    if target not in ("GPU", "Ascend"):
        return
    count = device_count(target)
    if count is not None and int(local_workers) > count:
        raise UserError(
            f"launch: {local_workers} local workers for {count} {target} device(s) on this machine; msrun gives "
            f"each local worker its own device, so start at most {count} here "
            f"({param('workers')}, or {param('local_workers')} "
            f"with the total in {param('workers')} on several machines)"
        )
