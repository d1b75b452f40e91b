"""utils/cpus.py: the CPU count works where `os.sched_getaffinity` does not exist (macOS, Windows)."""

import os
import pathlib

import pytest

import mindface_au
from mindface_au.utils import cpus


def test_affinity_mask_where_the_os_has_one():
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no affinity on this OS")
    assert cpus.available_cpus() == len(os.sched_getaffinity(0))


def test_falls_back_to_cpu_count_without_affinity(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 7)
    assert cpus.available_cpus() == 7
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # "undeterminable" per the os docs
    assert cpus.available_cpus() == 1


def test_falls_back_when_the_affinity_call_is_refused(monkeypatch):
    def refuse(pid):
        raise OSError("not permitted")

    monkeypatch.setattr(os, "sched_getaffinity", refuse, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 5)
    assert cpus.available_cpus() == 5


def _identity_onnx(path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def test_onnx_sessions_default_threads_without_affinity(tmp_path, monkeypatch):
    """The ONNX path of `detect` (threads 0) and of export's int8 calibration: no crash, os.cpu_count threads."""
    from mindface_au.inference import model_file
    from mindface_au.inference.export import onnx as export_onnx

    path = _identity_onnx(tmp_path / "id.onnx")
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert model_file.onnx_session(path, 0, "CPU").get_session_options().intra_op_num_threads == 3
    assert model_file.onnx_session(path, 2, "CPU").get_session_options().intra_op_num_threads == 2
    assert export_onnx._session(path).get_session_options().intra_op_num_threads == 3


def test_no_unguarded_affinity_call_in_the_package():
    root = pathlib.Path(mindface_au.__file__).parent
    users = [p.relative_to(root).as_posix() for p in root.rglob("*.py") if "os.sched_getaffinity(" in p.read_text()]
    assert users == []  # every caller goes through cpus.available_cpus
