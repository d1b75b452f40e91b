"""MindSpore context set-up: GRAPH mode by default, device auto-detected, set once per process."""

from mindface_au.errors import UserError

DEVICES = ("CPU", "GPU", "Ascend")
_state = {"device": None}


def detect_device() -> str:
    """Best available device target for this MindSpore build: Ascend, then GPU, then CPU."""
    import mindspore as ms

    for target in ("Ascend", "GPU"):
        try:
            if ms.hal.is_available(target):
                return target
        except Exception:  # noqa: BLE001 - a backend plugin that fails to load means "not available"
            continue
    return "CPU"


def init_context(device: str = "auto", mode: str = "graph") -> str:
    """Set MindSpore's execution mode and device once, before any Cell is built; returns the device used."""
    import mindspore as ms

    from mindface_au.models.iresnet import prefer_gemm_convolutions

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
