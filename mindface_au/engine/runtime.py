"""Device-dependent training settings: sink mode, jit level, AMP and loss scaling, resolved once per run.

`resolve_runtime(train_cfg, device, world_size)` turns the `train` keys into what this device supports (or a
one-line error naming the key), `apply_jit_level` sets the compile level before the first graph is built, and
`RuntimeSettings.describe()` is the line every run logs at start. Only CPU runs here; the GPU/Ascend values come
from the MindSpore 2.10 documentation:

- `jit_level` (mindspore.JitConfig, set on the network with Cell.set_jit_config; `set_context(jit_config=...)` is
  deprecated in 2.10): O0 and O1 run operator by operator; O2 hands the whole graph to CANN's GraphEngine and exists
  on Ascend only (static graph mode, whole-graph sink). JitConfig's O2 is deprecated since 2.9: still accepted on
  Ascend, with a deprecation note in the run's settings line.
- `sync_bn`: nn.SyncBatchNorm's "Supported Platforms" is Ascend only (2.10), so GPU is refused like CPU.
- sink mode (Model.train(dataset_sink_mode=True)): data goes through a device queue; on CPU Model.train runs
  without sink whatever is asked. With sink, step callbacks fire once per sink (an epoch), not per step.
- AMP: DynamicLossScaleManager (supported on Ascend and GPU) lowers the scale on overflow and skips that update;
  on CPU, O2/O3 need FixedLossScaleManager(drop_overflow_update=False) with the optimiser dividing by the scale.
"""

import atexit
import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Iterator, Optional

from mindface_au.errors import UserError

__all__ = [
    "AMP_LEVELS",
    "FIXED_LOSS_SCALE",
    "DYNAMIC_LOSS_SCALE",
    "RuntimeSettings",
    "resolve_runtime",
    "amp_rewrite_folder",
    "MemoryEstimate",
    "estimate_memory",
    "describe_memory",
]

AMP_LEVELS = ("O0", "O1", "O2", "O3")
FIXED_LOSS_SCALE = 1024.0
DYNAMIC_LOSS_SCALE = {"init_loss_scale": 2.0**16, "scale_factor": 2, "scale_window": 1000}
ACCELERATORS = ("GPU", "Ascend")
SYNC_BN_DEVICES = ("Ascend",)  # nn.SyncBatchNorm's declared platforms (MindSpore 2.10)
JIT_O2_NOTE = "jit level O2 is deprecated since MindSpore 2.9 (JitConfig); O0 or O1 is the supported choice"


@dataclass
class RuntimeSettings:
    """What a run uses: device, graph mode, sink, jit level, AMP level and loss scaling, global batch."""

    device: str
    mode: str
    sink_mode: bool
    jit_level: str  # "" = MindSpore's default for the device
    amp_level: str
    loss_scale: str  # "none", "fixed" or "dynamic"
    batch_size: int
    world_size: int
    notes: tuple = ()  # deprecations met while resolving, logged with the settings line
    device_id: Optional[int] = None  # the device this process runs on (MindSpore's context), logged by every rank

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    @property
    def optimizer_loss_scale(self) -> float:
        """The scale the optimiser divides gradients by: the fixed scale; 1 otherwise (dynamic unscales itself)."""
        return FIXED_LOSS_SCALE if self.loss_scale == "fixed" else 1.0

    def loss_scale_manager(self):
        """The Model's loss_scale_manager, or None (amp O0)."""
        if self.loss_scale == "fixed":
            from mindspore.train import FixedLossScaleManager

            return FixedLossScaleManager(FIXED_LOSS_SCALE, drop_overflow_update=False)
        if self.loss_scale == "dynamic":  # GPU/Ascend only: never executed on this project's CPU machine
            from mindspore.train import DynamicLossScaleManager

            return DynamicLossScaleManager(**DYNAMIC_LOSS_SCALE)
        return None

    def describe(self) -> str:
        scale = {
            "none": "none",
            "fixed": f"fixed {FIXED_LOSS_SCALE:g} (FixedLossScaleManager, drop_overflow_update=False)",
            "dynamic": "dynamic (DynamicLossScaleManager init {init_loss_scale:g}, x{scale_factor} every "
            "{scale_window} steps without overflow)".format(**DYNAMIC_LOSS_SCALE),
        }[self.loss_scale]
        return (
            f"device {self.device}, mode {self.mode}, sink mode {'on' if self.sink_mode else 'off'}, "
            f"jit level {self.jit_level or 'default'}, AMP {self.amp_level}, loss scale {scale}, "
            f"global batch {self.global_batch} ({self.batch_size} per device x {self.world_size})"
            + (f", device id {self.device_id}" if self.device_id is not None else "")
            + "".join(f"; note: {note}" for note in self.notes)
        )


def resolve_runtime(train_cfg, device: str, world_size: int, batch_size: int, mode: str = "GRAPH") -> RuntimeSettings:
    """Resolve `train.sink_mode` / `jit_level` / `amp_level` / `sync_bn` for `device`; errors name the key."""
    amp = train_cfg.amp_level.upper()
    if amp not in AMP_LEVELS:
        raise UserError(f"config key train.amp_level: got {train_cfg.amp_level!r}, expected O0, O1, O2 or O3")
    jit = (train_cfg.jit_level or "").upper()
    if jit == "O2" and device != "Ascend":
        raise UserError(
            f"config key train.jit_level: O2 (GraphEngine) runs on Ascend only, this run is on {device}; "
            "use O0 or O1"
        )
    sink = {"auto": device in ACCELERATORS, "true": True, "false": False}[str(train_cfg.sink_mode).lower()]
    if sink and device == "CPU":
        sink = False  # Model.train never sinks on CPU; say so in the log rather than claim it
    if sink and train_cfg.save_every_steps:
        raise UserError(
            "config key train.save_every_steps needs train.sink_mode false: in sink mode the host sees only the end "
            "of each sink (epoch), so a step checkpoint cannot be taken"
        )
    if train_cfg.sync_bn and device not in SYNC_BN_DEVICES:
        raise UserError(
            f"config key train.sync_bn: nn.SyncBatchNorm runs on Ascend only (MindSpore 2.10), this run is on "
            f"{device}; set train.sync_bn=false (BatchNorm statistics stay per device)"
        )
    if amp == "O0":
        scale = "none"
    else:
        scale = "dynamic" if device in ACCELERATORS else "fixed"
    if scale == "fixed" and str(train_cfg.optimizer).lower() == "adamw":
        raise UserError(
            f"config key train.optimizer: adamw takes no loss scale, and amp_level {amp} on {device} uses a fixed "
            "loss scale the optimiser must divide by; use sgd, amp_level O0, or GPU/Ascend (dynamic loss scale)"
        )
    notes = (JIT_O2_NOTE,) if jit == "O2" else ()
    return RuntimeSettings(
        device, mode, sink, jit, amp, scale, int(batch_size), int(world_size), notes, current_device_id()
    )


def current_device_id() -> Optional[int]:
    """The device id this process runs on (`mindspore.get_current_device`, set by `init_context`: DEVICE_ID under a
    rank-table launch), None if MindSpore is not loaded yet.

    Not `get_context("device_id")`: that echoes the DEVICE_ID variable even where the device manager uses device 0.
    """
    import sys

    if "mindspore" not in sys.modules:
        return None
    import mindspore as ms

    try:
        return int(ms.get_current_device().device_id)
    except Exception:  # noqa: BLE001 - no device set yet: say nothing rather than guess
        return None


def apply_jit_level(jit_level: Optional[str], net=None) -> None:
    """Set the graph compile level ("" keeps MindSpore's default).

    With `net`: `net.set_jit_config(JitConfig(jit_level=...))`, MindSpore 2.10's way; Model copies the network's
    JitConfig to the train network it builds, and evaluation compiles `net` itself. Without `net`: the deprecated
    `set_context(jit_config=...)` for every graph built after the call (kept for callers without a network).
    """
    if not jit_level:
        return
    import mindspore as ms

    if net is not None:
        net.set_jit_config(ms.JitConfig(jit_level=jit_level))
    else:
        ms.set_context(jit_config={"jit_level": jit_level})


GIB = 2.0**30  # device memory sizes (a "32 GB" card) are binary
STATE_COPIES = {"sgd": 3, "adamw": 4}  # float32 copies per parameter: weights, gradients, momentum (sgd) / 2 moments
FIT_ADVICE = (
    "the recipe affwild2/ascend_o2 (amp O2, about half the activation memory), or a lower data.batch_size with "
    "train.lr scaled by the same factor"
)


@dataclass
class MemoryEstimate:
    """Estimated device memory of one training step: activations (utils/memory.py's count) and parameter state."""

    values_per_image: int
    layers: int
    input_size: int
    batch_size: int
    amp_level: str
    activation_bytes: int
    parameters: int
    state_copies: int
    device_memory: Optional[dict]  # utils.device.device_memory: {"name", "total_bytes", "free_bytes"} or None

    @property
    def state_bytes(self) -> int:
        return self.parameters * 4 * self.state_copies

    @property
    def fits(self) -> Optional[bool]:
        """Whether activations and parameter state fit in the device memory; None when the device reports none."""
        if not self.device_memory:
            return None
        return self.activation_bytes + self.state_bytes <= self.device_memory["total_bytes"]

    def describe(self) -> str:
        line = (
            f"memory estimate: activations {self.values_per_image / 1e6:.2f} M values per image ({self.layers} layer "
            f"outputs at {self.input_size} px) x batch {self.batch_size} at AMP {self.amp_level} = "
            f"{self.activation_bytes / GIB:.2f} GiB; weights, gradients and optimiser state {self.state_copies} x "
            f"{self.parameters / 1e6:.2f} M parameters x 4 bytes = {self.state_bytes / GIB:.2f} GiB; "
        )
        if not self.device_memory:
            return line + "device memory: not reported by MindSpore on this device (workspace not included)"
        total = self.device_memory["total_bytes"]
        name = f" ({self.device_memory['name']})" if self.device_memory.get("name") else ""
        left = total - self.activation_bytes - self.state_bytes
        line += f"device memory {total / GIB:.2f} GiB{name}, "
        if left >= 0:
            return line + f"{left / GIB:.2f} GiB left for workspace"
        return line + f"short by {-left / GIB:.2f} GiB before workspace: use {FIT_ADVICE}"


def estimate_memory(net, input_size: int, runtime: "RuntimeSettings", optimizer: str = "sgd") -> MemoryEstimate:
    """The MemoryEstimate of training `net` at `input_size` px with `runtime`'s per-device batch and AMP level.

    Call before the network is compiled (it runs one PyNative forward pass of one image; see count_activations).
    """
    from mindface_au.utils.device import device_memory
    from mindface_au.utils.memory import activation_bytes, count_activations

    rows = count_activations(net, (1, 3, int(input_size), int(input_size)))
    parameters = sum(int(p.size) for p in net.trainable_params())
    return MemoryEstimate(
        values_per_image=sum(size for _, _, size in rows), layers=len(rows), input_size=int(input_size),
        batch_size=runtime.batch_size, amp_level=runtime.amp_level,
        activation_bytes=activation_bytes(rows, runtime.batch_size, runtime.amp_level), parameters=parameters,
        state_copies=STATE_COPIES.get(str(optimizer).lower(), 3), device_memory=device_memory(runtime.device),
    )  # fmt: skip


def describe_memory(net, cfg, runtime: "RuntimeSettings") -> str:
    """The line `train` logs at start: `estimate_memory` for the run's model input size and optimiser."""
    return estimate_memory(net, cfg.model.input_size, runtime, cfg.train.optimizer).describe()


@contextlib.contextmanager
def amp_rewrite_folder(amp_level: str) -> Iterator[Optional[str]]:
    """Build a Model / train network for `amp_level` inside this: O1's generated files go to a temporary folder.

    MindSpore's amp_level O1 (mindspore.rewrite, 2.10) writes the rewritten network as Python modules under
    `rewritten_network/` in the current working folder and imports them from there; graph compilation reads their
    source again later (inspect.getsource), so the folder must outlive the first compile. For O1 this changes the
    working folder to a new temporary folder for the duration of the block (build the network, nothing else: no
    relative paths are opened meanwhile) and removes that folder when the process exits. Other levels write
    nothing and change nothing. Yields the folder (None unless O1).
    """
    if str(amp_level).upper() != "O1":
        yield None
        return
    folder = tempfile.mkdtemp(prefix="mindface_au_amp_o1_")
    atexit.register(shutil.rmtree, folder, True)
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(previous)
