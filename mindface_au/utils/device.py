"""MindSpore context set-up: GRAPH mode by default, device auto-detected, set once per process; the oneDNN cap."""

import os
from typing import Optional

from mindface_au.errors import UserError

DEVICES = ("CPU", "GPU", "Ascend")
ONEDNN_ISA_VAR = "ONEDNN_MAX_CPU_ISA"
ONEDNN_ISA_CAP = "AVX2"
_state = {"device": None}
_onednn = {"source": None}  # "mindface-au" once we set the cap, "user" if the variable was already set


def prefer_gemm_convolutions() -> bool:
    """Cap oneDNN at AVX2 (unless the user chose a cap) so MindSpore's CPU 3x3 convolutions use gemm kernels.

    MindSpore 2.10 hands oneDNN plain NCHW tensors; on AVX-512 CPUs oneDNN then picks its `jit_uni_ncsp` path,
    which falls back to the reference kernel: a 3x3 conv on 8x64x56x56 took 7 s instead of 40 ms (PyTorch: 50 ms).
    With the cap oneDNN uses `gemm:jit`. oneDNN reads the variable when it runs its first kernel, so this must run
    before any MindSpore CPU kernel: `init_context` and `create_model` call it. Idempotent; returns True if the
    cap is ours (set by this process), False if the user's environment chose the value. See docs/performance.md.
    """
    if _onednn["source"] is None:
        if ONEDNN_ISA_VAR in os.environ:
            _onednn["source"] = "user"
        else:
            os.environ[ONEDNN_ISA_VAR] = ONEDNN_ISA_CAP
            _onednn["source"] = "mindface-au"
    return _onednn["source"] == "mindface-au"


def onednn_cap() -> Optional[dict]:
    """{"value", "source"} of the oneDNN ISA cap as set by `prefer_gemm_convolutions`, None before it ran."""
    if _onednn["source"] is None:
        return None
    return {"value": os.environ.get(ONEDNN_ISA_VAR), "source": _onednn["source"]}


def device_available(target: str) -> bool:
    """Whether this MindSpore loaded its `target` ("Ascend", "GPU", "CPU") device plugin.

    mindspore.device_context.<device>.is_available() (MindSpore 2.10; it replaces mindspore.hal.is_available,
    deprecated since 2.5). Like that function it says only whether the plugin loaded (the CANN or CUDA libraries
    were found), not that a device is present. It logs every failed plugin load as a warning; muted here so a CPU
    user of the Python API does not see Ascend/GPU library errors (`mindface-au doctor` shows them).
    """
    import logging

    from mindspore import device_context, log

    logger = log._get_logger()  # noqa: SLF001 - MindSpore's own logger; no public way to mute one call
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return bool(getattr(device_context, target.lower()).is_available())
    except Exception:  # noqa: BLE001 - a backend plugin that fails to load means "not available"
        return False
    finally:
        logger.setLevel(level)


def plugin_load_error() -> str:
    """The library-loading error MindSpore met when loading its device plugins ("" if none).

    The text `device_context.<device>.is_available()` logs on failure (e.g. "libge_runner.so: cannot open shared
    object file" without CANN); read from MindSpore's context, which has no public getter for it.
    """
    try:
        from mindspore._c_expression import MSContext

        return str(MSContext.get_instance().load_plugin_error() or "").strip()
    except Exception:  # noqa: BLE001 - an older/newer MindSpore without the getter: nothing to report
        return ""


def detect_device() -> str:
    """Best available device target for this MindSpore build: Ascend, then GPU, then CPU (plugin loaded)."""
    for target in ("Ascend", "GPU"):
        if device_available(target):
            return target
    return "CPU"


def init_context(device: str = "auto", mode: str = "graph") -> str:
    """Set MindSpore's execution mode and device once, before any Cell is built; returns the device used."""
    import mindspore as ms

    prefer_gemm_convolutions()  # before any CPU kernel runs; see that function
    if _state["device"] is not None:
        return _state["device"]
    mode_key = mode.lower()
    if mode_key not in ("graph", "pynative"):
        raise UserError(f"mode: got {mode!r}, expected 'graph' or 'pynative'")
    target = detect_device() if device in (None, "", "auto") else device
    canonical = {d.lower(): d for d in DEVICES}
    if target.lower() not in canonical:
        raise UserError(f"--device: got {device!r}, expected one of auto, {', '.join(DEVICES)}")
    target = canonical[target.lower()]
    ms.set_context(mode=ms.GRAPH_MODE if mode_key == "graph" else ms.PYNATIVE_MODE)
    ms.set_device(target)
    _state["device"] = target
    return target
