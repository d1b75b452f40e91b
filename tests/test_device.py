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
