"""`mindface-au doctor` on this CPU machine, run as a user runs it."""

import json
import os
import sys

from conftest import run_cli  # noqa: I100 - tests/ is on sys.path under pytest


def test_doctor_reports_this_cpu_and_compiles_one_step():
    import mindspore as ms

    proc = run_cli("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"MindSpore {ms.__version__} (build ")
    assert any(line.startswith("plugin Ascend: not loaded: could not open lib") for line in lines), lines
    assert any(line.startswith("plugin GPU: not loaded: ") for line in lines), lines
    assert "plugin CPU: loaded, 1 device(s)" in lines and "device used: CPU" in lines
    msrun = os.path.join(os.path.dirname(sys.executable), "msrun")
    assert f"msrun: {msrun}" in lines
    cores = len(os.sched_getaffinity(0))
    assert any(line.startswith(f"cores: {os.cpu_count()}, this process may run on {cores} (") for line in lines)
    assert any("shared folder mounted at the same path on every machine" in line for line in lines)
    step = [line for line in lines if line.startswith("one training step of a tiny network on CPU (AMP O0): ")]
    assert step and ": ok in " in step[0] and "loss scale none" in step[0], lines
    assert "WARNING" not in proc.stderr  # no MindSpore plugin warnings on a CPU machine


def test_doctor_json_and_bad_device():
    proc = run_cli("doctor", "--json", "--no-compile", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["device"] == "CPU" and "compile_step" not in report
    assert report["plugins"]["CPU"] == {"loaded": True, "devices": 1, "why_not": ""}
    assert report["plugins"]["Ascend"]["loaded"] is False and report["plugins"]["Ascend"]["missing_libraries"]
    assert report["cores"]["affinity"] == sorted(os.sched_getaffinity(0))
    bad = run_cli("doctor", "--device", "tpu", "--no-compile")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1] == (
        "mindface-au doctor: error: --device: got 'tpu', expected one of auto, CPU, GPU, Ascend"
    )
