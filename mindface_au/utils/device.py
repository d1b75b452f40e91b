"""MindSpore context set-up: GRAPH mode by default, device auto-detected, set once per process; the oneDNN cap."""

import ctypes.util
import glob
import os
import re
from typing import Dict, List, Optional

from mindface_au.errors import UserError, param

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


# What the machine's hardware leaves behind whatever MindSpore loads: the driver's device files and install folder.
# A CUDA toolkit or CANN toolkit alone is not hardware (a CPU machine may carry either); the NVIDIA driver's
# libcuda.so.1 is (GPU_DRIVER_LIBRARY, looked up by ctypes).
HARDWARE_MARKERS = {
    "Ascend": ("/dev/davinci[0-9]*", "/usr/local/Ascend/driver"),
    "GPU": ("/dev/nvidia[0-9]*", "/dev/nvidiactl", "/proc/driver/nvidia/version"),
}
GPU_DRIVER_LIBRARY = "cuda"
ASCEND_CANN_VERSIONS = ("8.2", "8.3", "8.5", "9.0", "9.1")  # MindSpore 2.10's run_check AscendEnvChecker.version
GPU_CUDA_CUDNN = (("11.1", "8.0"), ("11.6", "8.5"))  # the CUDA/cuDNN pairs of MindSpore 2.10's GPU install guide


def hardware_present() -> Dict[str, List[str]]:
    """{"Ascend": [...], "GPU": [...]}: the driver files found for each accelerator (empty list: none).

    Independent of MindSpore: this is what says "the machine has the device" when MindSpore's plugin did not load.
    """
    found: Dict[str, List[str]] = {}
    for target, patterns in HARDWARE_MARKERS.items():
        hits: List[str] = []
        for pattern in patterns:
            hits.extend(sorted(glob.glob(pattern)))
        found[target] = hits
    library = ctypes.util.find_library(GPU_DRIVER_LIBRARY)
    if library:
        found["GPU"].append(library)
    return found


def missing_libraries(error: str) -> List[str]:
    """The shared libraries named in MindSpore's plugin-load error ("libX.so: cannot open shared object file")."""
    return sorted(set(re.findall(r"([\w.+-]+\.so[\w.]*): cannot open shared object file", error)))


def gpu_plugin_builds() -> List[str]:
    """The CUDA versions this MindSpore ships GPU plugins for (lib/plugin/gpu<version> folders)."""
    import mindspore as ms

    folder = os.path.join(os.path.dirname(ms.__file__), "lib", "plugin")
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return sorted(n[3:] for n in names if n.startswith("gpu") and n[3:])


def plugin_problem(target: str, error: Optional[str] = None) -> str:
    """Why MindSpore's `target` plugin did not load, in a few words: the libraries it could not open, else the
    likely cause (`error`: MindSpore's plugin-load error text; None reads it)."""
    error = plugin_load_error() if error is None else error
    lines = [line for line in error.splitlines() if target.lower() in line.lower()]
    libs = missing_libraries("\n".join(lines))
    if libs:
        return f"could not open {', '.join(libs)}"
    if lines:
        return " / ".join(lines)
    if target == "GPU":
        builds = ", ".join(gpu_plugin_builds()) or "none"
        home = os.environ.get("CUDA_HOME")
        where = f"CUDA_HOME={home}" if home else "CUDA_HOME is not set"
        return (
            f"no GPU plugin was loaded ({where}; MindSpore picks its plugin from CUDA_HOME's nvcc version and ships "
            f"plugins for CUDA {builds} only)"
        )
    return "no plugin error recorded by MindSpore"


def cpu_fallback_problem() -> str:
    """ "" when running on CPU is right for `device: auto`; else the one line saying why it is refused.

    Refused where an accelerator's driver files are on the machine but MindSpore's plugin for it did not load
    (CANN not sourced or of a version MindSpore 2.10 does not accept, a CUDA other than 11.1/11.6, ...): such a
    run would otherwise train on CPU without a word. Device "CPU", given explicitly, overrides it.
    """
    present = hardware_present()
    for target in ("Ascend", "GPU"):
        if present[target] and not device_available(target):
            shown = ", ".join(present[target][:3]) + (", ..." if len(present[target]) > 3 else "")
            hint = {
                "Ascend": f"source CANN's set_env.sh (CANN {', '.join(ASCEND_CANN_VERSIONS)})",
                "GPU": "install CUDA "
                + " or ".join(f"{cuda} with cuDNN {cudnn}" for cuda, cudnn in GPU_CUDA_CUDNN)
                + " and set CUDA_HOME",
            }[target]
            return (
                f"device auto: this machine has {target} hardware ({shown}) but MindSpore's {target} plugin did not "
                f"load: {plugin_problem(target)}; {hint}, or choose "
                f"{param('device')} CPU to train on the CPU"
            )
    return ""


def device_memory(target: str) -> Optional[dict]:
    """{"name", "total_bytes", "free_bytes"} of device 0 of `target` as MindSpore reports it; None on CPU or when
    MindSpore cannot say.

    `mindspore.hal.get_device_properties` (MindSpore 2.10: the one public call giving a device's memory; marked for
    removal in a later version). On Ascend the device must be initialised first (after the first graph ran), else
    the totals are 0, which is reported as unknown (None) rather than as 0 bytes.
    """
    if target == "CPU":
        return None
    try:
        from mindspore import hal

        props = hal.get_device_properties(0, target)
    except Exception:  # noqa: BLE001 - no plugin or no device: unknown, not an error
        return None
    total = int(getattr(props, "total_memory", 0) or 0)
    if total <= 0:
        return None
    free = int(getattr(props, "free_memory", 0) or 0)
    return {"name": str(getattr(props, "name", "") or ""), "total_bytes": total, "free_bytes": free or None}


DEVICE_FILES = {"Ascend": "/dev/davinci[0-9]*", "GPU": "/dev/nvidia[0-9]*"}  # one file per device (driver)


def device_count(target: str) -> Optional[int]:
    """How many `target` ("Ascend", "GPU") devices this machine has: MindSpore's count where its plugin loaded,
    else the driver's device files (DEVICE_FILES); None when neither tells (no plugin, no device files)."""
    if device_available(target):
        try:
            from mindspore import device_context

            return int(getattr(device_context, target.lower()).device_count())
        except Exception:  # noqa: BLE001 - fall back to the device files
            pass
    files = [f for f in glob.glob(DEVICE_FILES[target]) if re.search(r"\d+$", f)]
    return len(files) or None


def detect_device() -> str:
    """Best available device target for this MindSpore build: Ascend, then GPU, then CPU (plugin loaded)."""
    for target in ("Ascend", "GPU"):
        if device_available(target):
            return target
    return "CPU"


def launcher_device_id() -> Optional[int]:
    """The device id a launch without msrun gives this process in DEVICE_ID (a rank-table launch exports one per
    process), or None: unset, or under msrun (MS_WORKER_NUM set), which assigns the device itself.

    MindSpore 2.10's set_device without a device id uses device 0 outside msrun (and after init() writes that 0
    back into DEVICE_ID), so every rank of a rank-table launch on one machine would share device 0.
    """
    value = os.environ.get("DEVICE_ID")
    if value is None or os.environ.get("MS_WORKER_NUM"):
        return None
    if not value.strip().isdigit():
        raise UserError(f"environment variable DEVICE_ID: got {value!r}, expected a device number (0, 1, ...)")
    return int(value)


def init_context(device: str = "auto", mode: str = "graph") -> str:
    """Set MindSpore's execution mode and device once, before any Cell is built; returns the device used.

    The device id is DEVICE_ID's where a launcher without msrun set it (`launcher_device_id`), else MindSpore's
    choice (msrun: the local rank; otherwise 0)."""
    import mindspore as ms

    prefer_gemm_convolutions()  # before any CPU kernel runs; see that function
    if _state["device"] is not None:
        return _state["device"]
    mode_key = mode.lower()
    if mode_key not in ("graph", "pynative"):
        raise UserError(f"mode: got {mode!r}, expected 'graph' or 'pynative'")
    auto = device is None or str(device).lower() in ("", "auto")
    target = detect_device() if auto else device
    if auto and target == "CPU":
        problem = cpu_fallback_problem()
        if problem:
            raise UserError(problem)
    canonical = {d.lower(): d for d in DEVICES}
    if target.lower() not in canonical:
        raise UserError(f"{param('device')}: got {device!r}, expected one of auto, {', '.join(DEVICES)}")
    target = canonical[target.lower()]
    ms.set_context(mode=ms.GRAPH_MODE if mode_key == "graph" else ms.PYNATIVE_MODE)
    device_id = launcher_device_id()
    if device_id is None:
        ms.set_device(target)
    else:
        ms.set_device(target, device_id)
    _state["device"] = target
    return target
