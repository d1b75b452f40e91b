"""`mindface-au doctor` on this CPU machine, run as a user runs it; its device facts from faked CANN/CUDA installs."""

import json
import os
import stat
import sys

import pytest
from helpers import run_cli  # noqa: I100 - tests/ is on sys.path under pytest

from mindface_au.engine import doctor


def test_doctor_reports_this_cpu_and_compiles_one_step():
    import mindspore as ms

    proc = run_cli("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"MindSpore {ms.__version__} (build ")
    assert any(line.startswith("plugin Ascend: not loaded: could not open lib") for line in lines), lines
    assert any(line.startswith("plugin GPU: not loaded: ") for line in lines), lines
    assert "plugin CPU: loaded, 1 device(s)" in lines and "device used: CPU" in lines
    assert "accelerator hardware: none (no driver files)" in lines
    assert any(line.startswith("GPU plugin needs CUDA 11.1 + cuDNN 8.0 or CUDA 11.6 + cuDNN 8.5 (") for line in lines)
    assert "device memory: not reported by MindSpore for this device" in lines
    msrun = os.path.join(os.path.dirname(sys.executable), "msrun")
    assert f"msrun: {msrun}" in lines
    cores = len(os.sched_getaffinity(0))
    assert any(line.startswith(f"cores: {os.cpu_count()}, this process may run on {cores} (") for line in lines)
    assert any("shared folder mounted at the same path on every machine" in line for line in lines)
    step = [
        line for line in lines if line.startswith("one training step of a tiny network on CPU, sink mode off (AMP O0)")
    ]
    assert step and ": ok in " in step[0] and "loss scale none" in step[0], lines
    sink = "one training step of a tiny network on CPU, sink mode on: " + doctor.SINK_ON_CPU
    assert sink in lines
    assert "WARNING" not in proc.stderr  # no MindSpore plugin warnings on a CPU machine


def test_doctor_json_and_bad_device():
    proc = run_cli("doctor", "--json", "--no-compile", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["device"] == "CPU" and "compile_steps" not in report and report["refused"] == ""
    assert report["plugins"]["CPU"] == {"loaded": True, "devices": 1, "why_not": ""}
    assert report["plugins"]["Ascend"]["loaded"] is False and report["plugins"]["Ascend"]["missing_libraries"]
    assert report["cores"]["affinity"] == sorted(os.sched_getaffinity(0))
    assert report["cann"]["supported_versions"] == ["8.2", "8.3", "8.5", "9.0", "9.1"]
    assert report["cuda"]["needed"] == [{"cuda": "11.1", "cudnn": "8.0"}, {"cuda": "11.6", "cudnn": "8.5"}]
    bad = run_cli("doctor", "--device", "tpu", "--no-compile")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1] == (
        "mindface-au doctor: error: --device: got 'tpu', expected one of auto, CPU, GPU, Ascend"
    )


def test_sink_mode_step_runs_on_devices_and_is_reported_not_run_on_cpu():
    """The decision: sink mode cannot run on CPU in MindSpore 2.10 (pinned below), so the doctor says so there and
    runs both steps on Ascend and GPU."""
    assert doctor.step_plan("CPU") == [
        {"sink_mode": False, "run": True, "why_not": ""},
        {"sink_mode": True, "run": False, "why_not": doctor.SINK_ON_CPU},
    ]
    for target in ("Ascend", "GPU"):
        assert [(p["sink_mode"], p["run"]) for p in doctor.step_plan(target)] == [(False, True), (True, True)]


def test_mindspore_refuses_dataset_sink_on_cpu():
    """The fact SINK_ON_CPU rests on: mindspore.data_sink raises for a CPU target (and Model.train silently feeds
    step by step, train/model.py)."""
    import mindspore as ms
    import mindspore.dataset as ds
    import numpy as np

    data = ds.NumpySlicesDataset({"x": np.zeros((2, 1), np.float32)}, shuffle=False).batch(1)
    with pytest.raises(Exception, match="supports ascend or gpu device target, but device target is CPU"):
        ms.data_sink(lambda x: x, data, sink_size=1)


def _executable(path, text):
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


NPU_SMI_INFO = """+------------------------------------------------------------------------------------------------+
| npu-smi 24.1.rc2                 Version: 24.1.rc2                                             |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     910B4               | OK            | 86.5        38                0    / 0             |
| 0                         | 0000:C1:00.0  | 0           0    / 0          2853 / 32768         |
+===========================+===============+====================================================+
"""


@pytest.mark.parametrize("version, supported", [("8.3.RC1", True), ("8.0.0", False)])
def test_cann_version_driver_and_chip(tmp_path, monkeypatch, version, supported):
    home = tmp_path / "ascend-toolkit" / "latest"
    (home / "compiler").mkdir(parents=True)
    (home / "compiler" / "version.info").write_text(f"Version={version}\nversion_dir=x\n")
    (tmp_path / "driver.info").write_text("Version=24.1.rc2\n")
    _executable(tmp_path / "npu-smi", f"cat <<'END'\n{NPU_SMI_INFO}END\n")
    monkeypatch.setenv("ASCEND_HOME_PATH", str(home))
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(doctor, "ASCEND_DRIVER_VERSION_FILE", str(tmp_path / "driver.info"))
    info = doctor.cann_info()
    assert info["version"] == version and info["supported"] is supported
    assert info["version_file"] == str(home / "compiler" / "version.info")
    assert info["driver"] == "24.1.rc2" and info["chip"] == "910B4"
    assert {"910b", "910_93", "310p"} <= set(info["kernel_chips"]) and "910a" not in info["kernel_chips"]
    lines = doctor._cann_lines(info)
    verdict = "accepted" if supported else "NOT accepted"
    assert lines[0] == f"CANN {version} ({info['version_file']}): {verdict} by MindSpore 2.10 (8.2, 8.3, 8.5, 9.0, 9.1)"
    assert lines[1].startswith("Ascend driver 24.1.rc2, chip 910B4; MindSpore's custom kernels cover ")


def test_cuda_needed_against_found(tmp_path, monkeypatch):
    (tmp_path / "bin").mkdir()
    _executable(tmp_path / "bin" / "nvcc", "echo 'Cuda compilation tools, release 12.4, V12.4.131'\n")
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))
    info = doctor.cuda_info()
    assert info["cuda_home"] == str(tmp_path) and info["nvcc"] == f"12.4 ({tmp_path / 'bin' / 'nvcc'})"
    assert info["plugin_builds"] == ["11.1", "11.6"] and info["ptx_archs"] == ["sm_60", "sm_86"]
    line = doctor._cuda_lines(info)[0]
    assert f"found: CUDA_HOME {tmp_path}, nvcc 12.4 (" in line


def test_doctor_reports_a_refused_auto_and_checks_the_cpu(monkeypatch):
    monkeypatch.setattr(doctor, "cpu_fallback_problem", lambda: "device auto: this machine has Ascend hardware (x)")
    report = doctor.diagnose("auto", compile_step=False)
    assert report["device"] == "CPU" and report["refused"].startswith("device auto: this machine has Ascend")
    assert "train --device auto would stop: device auto: this machine has Ascend hardware (x)" in doctor.format_report(
        report
    )
