"""Atomic output (mindface_au.utils.io): a file appears whole under its final name or not at all, and the final
name may be set once the file is written (a release file's name carries its hash)."""

import hashlib
import os
import stat

import pytest

from mindface_au.utils.io import atomic_file, atomic_path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_final_name_set_after_writing(tmp_path):
    with atomic_file(str(tmp_path / "model.ckpt")) as pending:
        with open(pending.tmp, "wb") as handle:
            handle.write(b"weights")
        assert os.path.dirname(pending.tmp) == str(tmp_path) and pending.tmp.endswith(".tmp.ckpt")
        digest = hashlib.sha256(open(pending.tmp, "rb").read()).hexdigest()
        pending.path = str(tmp_path / f"model-{digest[:8]}.ckpt")
    assert os.listdir(tmp_path) == [f"model-{digest[:8]}.ckpt"]  # not at the first name, no temporary left
    assert open(pending.path, "rb").read() == b"weights"
    assert stat.S_IMODE(os.stat(pending.path).st_mode) == 0o666 & ~_umask()


def test_failure_or_another_folder_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_file(str(tmp_path / "a.ckpt")) as pending:
            open(pending.tmp, "wb").write(b"half")
            pending.path = str(tmp_path / "b.ckpt")
            raise RuntimeError("writer failed")
    (tmp_path / "sub").mkdir()
    with pytest.raises(ValueError, match="not in the folder"):
        with atomic_file(str(tmp_path / "a.ckpt")) as pending:
            open(pending.tmp, "wb").write(b"whole")
            pending.path = str(tmp_path / "sub" / "a.ckpt")  # a rename stays in one folder
    assert sorted(os.listdir(tmp_path)) == ["sub"] and os.listdir(tmp_path / "sub") == []


def test_atomic_path_replaces_its_fixed_name(tmp_path):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")
    with atomic_path(str(target)) as tmp:
        assert tmp != str(target) and tmp.endswith(".tmp.onnx")
        open(tmp, "wb").write(b"new")
        assert target.read_bytes() == b"old"  # replaced only when the block succeeds
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["m.onnx"]
