"""utils/device.py: the oneDNN convolution cap reaches every entry point before the first convolution."""

import ast
import os
import pathlib
import platform
import subprocess
import sys

import pytest

from mindface_au.utils import device

X86 = platform.machine() in ("x86_64", "AMD64")
UTILS = pathlib.Path(device.__file__).parent


def _run(code: str, **env_changes):
    """Run `code` in a fresh Python with oneDNN's verbose log on and the cap variable unset unless given."""
    env = {k: v for k, v in os.environ.items() if k != device.ONEDNN_ISA_VAR}
    env.update(ONEDNN_VERBOSE="1", GLOG_v="3", **env_changes)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _onednn_isa(stdout: str) -> str:
    """The ISA oneDNN settled on when it ran its first kernel (its `info,cpu,isa:` log line)."""
    lines = [ln for ln in stdout.splitlines() if ",info,cpu,isa:" in ln]
    assert lines, stdout[-2000:]
    return lines[0].split("isa:", 1)[1]


def _convolutions(stdout: str):
    convs = [ln for ln in stdout.splitlines() if ",exec," in ln and ",convolution," in ln]
    assert convs, stdout[-2000:]
    return convs


TINY_FORWARD = (
    "net.set_train(False)\n"
    "net(ms.Tensor(np.zeros((1, 3, 32, 32), np.float32)))\n"
    "print('CAP', os.environ.get('ONEDNN_MAX_CPU_ISA'), flush=True)\n"
)


def test_nothing_under_utils_imports_models():
    for path in UTILS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not [n for n in names if n.startswith("mindface_au.models")], f"{path.name} imports {names}"


def test_importing_the_models_sets_nothing():
    out = _run("import os, mindface_au.models\nprint('CAP', os.environ.get('ONEDNN_MAX_CPU_ISA'))\n")
    assert "CAP None" in out


def test_prefer_gemm_convolutions_respects_the_user_and_says_who_set_it(monkeypatch):
    monkeypatch.setattr(device, "_onednn", {"source": None})
    monkeypatch.setenv(device.ONEDNN_ISA_VAR, "SSE41")
    assert device.onednn_cap() is None
    assert device.prefer_gemm_convolutions() is False
    assert device.onednn_cap() == {"value": "SSE41", "source": "user"}
    monkeypatch.setattr(device, "_onednn", {"source": None})
    monkeypatch.delenv(device.ONEDNN_ISA_VAR)
    assert device.prefer_gemm_convolutions() is True and device.prefer_gemm_convolutions() is True  # idempotent
    assert device.onednn_cap() == {"value": "AVX2", "source": "mindface-au"}


# a Python-API user's script: create_model, then one forward (no init_context anywhere)
CREATE_MODEL_THEN_FORWARD = (
    "import os, numpy as np, mindspore as ms\n"
    "from mindface_au.models import create_model\n"
    "net = create_model('iresnet18', widths=[8, 8, 8, 8], layers=[1, 1, 1, 1], input_size=32)\n" + TINY_FORWARD
)


@pytest.mark.skipif(not X86, reason="oneDNN x86 ISA names")
def test_create_model_caps_onednn_before_the_first_convolution():
    """A Python-API user who never calls init_context: create_model alone sets the cap oneDNN then reads."""
    out = _run(CREATE_MODEL_THEN_FORWARD)
    assert "CAP AVX2" in out
    assert _onednn_isa(out).startswith("Intel AVX2")  # what oneDNN read at its first kernel (AVX-512 CPUs too)
    assert not [ln for ln in _convolutions(out) if "ref:any" in ln]


@pytest.mark.skipif(not X86, reason="oneDNN x86 ISA names")
def test_a_user_set_cap_is_respected():
    out = _run(CREATE_MODEL_THEN_FORWARD, ONEDNN_MAX_CPU_ISA="SSE41")
    assert "CAP SSE41" in out and _onednn_isa(out).startswith("Intel SSE4.1")


@pytest.mark.skipif(not X86, reason="oneDNN x86 kernel names")
def test_convolutions_use_gemm_kernel_not_reference():
    """The CLI's path: init_context first, then any Cell (here built without create_model)."""
    code = (
        "import os, numpy as np, mindspore as ms\n"
        "from mindface_au.utils.device import init_context\n"
        "init_context('CPU', 'graph')\n"
        "from mindface_au.models.iresnet import create_iresnet\n"
        "net = create_iresnet('iresnet18', input_size=32, widths=[8, 8, 8, 8], layers=[1, 1, 1, 1])\n" + TINY_FORWARD
    )
    out = _run(code)
    assert "CAP AVX2" in out
    convs = _convolutions(out)
    assert not [ln for ln in convs if "ref:any" in ln], convs[0]


def test_device_detection_on_this_cpu_is_quiet_and_says_cpu():
    """device_context.<device>.is_available (replacing the deprecated hal.is_available) logs each failed plugin
    load as a warning; detection mutes that for Python API users. Run in a fresh process: the warnings are printed
    by MindSpore's logger to stderr."""
    import subprocess
    import sys

    code = (
        "from mindface_au.utils.device import detect_device, device_available, plugin_load_error\n"
        "print(detect_device(), device_available('CPU'), device_available('Ascend'), device_available('GPU'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GLOG_v"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["CPU", "True", "False", "False"]
    assert "not available" not in proc.stderr and "Error message" not in proc.stderr


# ---- no silent CPU fallback, device ids, local workers per device (hardware faked with temporary files) ----------

ASCEND_ERROR = (
    "Load dynamic library: libmindspore_ascend.so.2 failed. libge_runner.so: cannot open shared object file: "
    "No such file or directory"
)


@pytest.fixture
def fake_machine(monkeypatch, tmp_path):
    """Driver markers in a temporary folder (none yet), no accelerator plugin loaded, a fresh context state."""
    (tmp_path / "dev").mkdir()
    monkeypatch.setattr(
        device,
        "HARDWARE_MARKERS",
        {
            "Ascend": (str(tmp_path / "dev" / "davinci[0-9]*"), str(tmp_path / "Ascend" / "driver")),
            "GPU": (str(tmp_path / "dev" / "nvidia[0-9]*"),),
        },
    )
    monkeypatch.setattr(device, "DEVICE_FILES", {"Ascend": str(tmp_path / "dev" / "davinci*"), "GPU": "/nonexistent*"})
    monkeypatch.setattr(device, "GPU_DRIVER_LIBRARY", "mindface_au_no_such_driver")
    monkeypatch.setattr(device, "device_available", lambda target: target == "CPU")
    monkeypatch.setattr(device, "plugin_load_error", lambda: ASCEND_ERROR)
    monkeypatch.setitem(device._state, "device", None)
    return tmp_path


def test_auto_keeps_cpu_on_a_machine_without_accelerator_hardware(fake_machine):
    assert device.hardware_present() == {"Ascend": [], "GPU": []}
    assert device.cpu_fallback_problem() == ""
    assert device.init_context("auto") == "CPU"


def test_auto_refuses_cpu_where_ascend_hardware_is_but_its_plugin_did_not_load(fake_machine):
    (fake_machine / "dev" / "davinci0").write_text("")
    (fake_machine / "Ascend" / "driver").mkdir(parents=True)
    with pytest.raises(device.UserError) as err:
        device.init_context("auto")
    message = str(err.value)
    assert "\n" not in message and "this machine has Ascend hardware (" in message and "davinci0" in message
    assert "Ascend plugin did not load: could not open libge_runner.so" in message
    assert "8.2, 8.3, 8.5, 9.0, 9.1" in message and "or choose device CPU to train on the CPU" in message
    assert device._state["device"] is None  # nothing was set
    assert device.init_context("CPU") == "CPU"  # the explicit override


def test_auto_refuses_cpu_where_the_nvidia_driver_is_but_the_gpu_plugin_did_not_load(fake_machine, monkeypatch):
    monkeypatch.setattr(device, "GPU_DRIVER_LIBRARY", "c")  # a library every Linux has stands in for libcuda
    monkeypatch.delenv("CUDA_HOME", raising=False)
    problem = device.cpu_fallback_problem()
    assert problem.startswith("device auto: this machine has GPU hardware (libc.so")
    assert "no GPU plugin was loaded (CUDA_HOME is not set;" in problem and "CUDA 11.1, 11.6 only" in problem
    assert "CUDA 11.1 with cuDNN 8.0 or 11.6 with cuDNN 8.5" in problem


def test_a_cuda_toolkit_alone_is_not_gpu_hardware(fake_machine):
    """This machine's case: a CUDA runtime (libcudart) but no driver library and no /dev/nvidia*."""
    assert device.hardware_present()["GPU"] == []


def _in_fresh_process(code, **env):
    full = {k: v for k, v in os.environ.items() if k not in ("DEVICE_ID", "MS_WORKER_NUM", "RANK_TABLE_FILE")}
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=300)


def test_a_rank_table_launch_keeps_its_device_id_and_logs_it():
    """Without msrun, MindSpore's set_device without a device id puts every rank on device 0 (its device manager;
    get_context("device_id") only echoes DEVICE_ID); DEVICE_ID is kept, and the settings line every rank logs names
    it. Under msrun (MS_WORKER_NUM set) the device is left to MindSpore and msrun."""
    code = (
        "import mindspore as ms\n"
        "from mindface_au.config import TrainConfig\n"
        "from mindface_au.engine.runtime import resolve_runtime\n"
        "from mindface_au.utils.device import init_context, launcher_device_id\n"
        "init_context('CPU')\n"
        "print(launcher_device_id(), ms.get_current_device().device_id)\n"
        "print(resolve_runtime(TrainConfig(), 'CPU', 2, 4).describe())\n"
    )
    proc = _in_fresh_process(code, DEVICE_ID="3", RANK_TABLE_FILE="rank_table.json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    ids, line = proc.stdout.splitlines()[:2]
    assert ids == "3 3" and line.endswith("global batch 8 (4 per device x 2), device id 3")
    under_msrun = _in_fresh_process(code, DEVICE_ID="1", MS_WORKER_NUM="2")
    assert under_msrun.returncode == 0 and under_msrun.stdout.split()[:2] == ["None", "0"]
    bad = _in_fresh_process("from mindface_au.utils.device import init_context\ninit_context('CPU')", DEVICE_ID="x")
    assert "environment variable DEVICE_ID: got 'x', expected a device number (0, 1, ...)" in bad.stderr


def test_launch_refuses_more_local_workers_than_devices(fake_machine, monkeypatch):
    from mindface_au.engine.distributed import check_local_workers

    for name in ("davinci0", "davinci1", "davinci2", "davinci3", "davinci_manager"):
        (fake_machine / "dev" / name).write_text("")
    assert device.device_count("Ascend") == 4  # the driver's files, one per device (the manager is not one)
    check_local_workers(4, "Ascend")
    with pytest.raises(device.UserError, match=r"^launch: 5 local workers for 4 Ascend device\(s\) on this machine;"):
        check_local_workers(5, "ascend")
    check_local_workers(64, "CPU")  # CPU runs are not limited
    check_local_workers(64, "auto")  # auto resolves to CPU here (no plugin loaded)
    monkeypatch.setattr(device, "detect_device", lambda: "GPU")
    monkeypatch.setattr(device, "device_count", lambda target: 2 if target == "GPU" else None)
    with pytest.raises(device.UserError, match=r"3 local workers for 2 GPU device\(s\)"):
        check_local_workers(3, "auto")
    monkeypatch.setattr(device, "device_count", lambda target: None)
    check_local_workers(3, "GPU")  # count unknown: the run itself reports the missing device
