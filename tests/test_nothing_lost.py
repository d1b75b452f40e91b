"""Issue 20, "Nothing lost, ever": no output over an input or a finished output, one writer per output, stale
temporaries removed, one-line errors with documented exit codes (docs/errors.md).

Most cases call the CLI in-process (`mindface_au.cli.main`); signals and tracebacks run it as a subprocess.
"""

import os
import socket
import subprocess

import cv2
import numpy as np
import pytest

from mindface_au.cli import main
from mindface_au.errors import UserError
from mindface_au.utils import guard


def cli(capsys, *args):
    """In-process `mindface-au ARGS`: (exit code, stderr)."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("mindface-au ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from conftest import TINY_AUNET

    from mindface_au.config import ModelConfig
    from mindface_au.models import create_model_from_config
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    root = tmp_path_factory.mktemp("lost")
    ckpt = str(root / "tiny.ckpt")
    cfg = ModelConfig(**TINY_AUNET)
    save_checkpoint_atomic(create_model_from_config(cfg), ckpt, model_config=cfg.__dict__)
    image = str(root / "face.png")
    cv2.imwrite(image, np.full((64, 64, 3), 90, np.uint8))
    return {"root": root, "ckpt": ckpt, "image": image}


def sha(path):
    with open(path, "rb") as handle:
        return hash(handle.read())


# ------------------------------------------------------------------------------------------------ detect outputs
@pytest.mark.parametrize("case", ["output=input", "output=ckpt", "plot=input", "plot=output", "symlink", "hardlink"])
def test_detect_never_writes_over_its_inputs(files, tmp_path, capsys, case):
    image, ckpt = files["image"], files["ckpt"]
    before = {p: sha(p) for p in (image, ckpt)}
    out = str(tmp_path / "out.csv")
    args = ["detect", "--input", image, "--ckpt", ckpt, "--aligned", "--no-progress", "--output"]
    if case == "output=input":
        args += [os.path.join(os.path.dirname(image), ".", os.path.basename(image))]
    elif case == "output=ckpt":
        args += [ckpt]
    elif case == "plot=input":
        args += [out, "--plot", image]
    elif case == "plot=output":
        args += [out, "--plot", out]
    elif case == "symlink":
        os.symlink(image, tmp_path / "link.png")
        args += [str(tmp_path / "link.png")]
    else:
        os.link(ckpt, tmp_path / "hard.ckpt")
        args += [str(tmp_path / "hard.ckpt")]
    code, err = cli(capsys, *args)
    assert code == 2, err
    line = one_line(err)
    assert "input of this command" in line or "two outputs" in line
    assert {p: sha(p) for p in (image, ckpt)} == before
    assert not os.path.exists(out)


def test_detect_refuses_an_existing_output_without_overwrite(files, tmp_path, capsys):
    out = tmp_path / "out.csv"
    out.write_text("finished,csv\n")
    base = ["detect", "--input", files["image"], "--ckpt", files["ckpt"], "--aligned", "--no-progress"]
    code, err = cli(capsys, *base, "--output", out)
    assert code == 2 and "--overwrite" in one_line(err)
    assert out.read_text() == "finished,csv\n"
    code, err = cli(capsys, *base, "--output", out, "--overwrite")
    assert code == 0, err
    assert out.read_text().startswith("frame,") and not os.path.exists(str(out) + ".lock")


def test_second_detect_writer_is_refused_and_stale_lock_taken(files, tmp_path, capsys):
    out = str(tmp_path / "out.csv")
    lock = out + ".lock"
    other = subprocess.Popen(["sleep", "60"])  # a live process "holding" the output
    try:
        with open(lock, "w") as handle:
            handle.write(f"{socket.gethostname()} {other.pid}\n")
        base = ["detect", "--input", files["image"], "--ckpt", files["ckpt"], "--aligned", "--no-progress"]
        code, err = cli(capsys, *base, "--output", out)
        assert code == 2 and f"pid {other.pid}" in one_line(err) and "another run" in err
        assert not os.path.exists(out + ".partial")  # the other run's partial file is not touched
    finally:
        other.kill()
        other.wait()
    code, err = cli(capsys, *base, "--output", out)  # that process is gone now: a stale lock is taken over
    assert code == 0, err
    assert os.path.isfile(out) and not os.path.exists(lock)


def test_output_lock_is_exclusive(tmp_path):
    path = str(tmp_path / "x.csv")
    with guard.OutputLock(path):
        with open(path + ".lock") as handle:
            assert handle.read().split() == [socket.gethostname(), str(os.getpid())]
        with open(path + ".lock", "w") as handle:  # pretend another live process on another host holds it
            handle.write("elsewhere 1\n")
        with pytest.raises(UserError, match="host elsewhere pid 1"):
            guard.OutputLock(path).acquire()
        os.remove(path + ".lock")


def test_same_file_by_real_path_and_inode(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("x")
    os.link(a, tmp_path / "b.txt")
    os.symlink(a, tmp_path / "c.txt")
    assert guard.same_file(str(a), str(tmp_path / "b.txt"))
    assert guard.same_file(str(a), str(tmp_path / "." / "c.txt"))
    assert not guard.same_file(str(a), str(tmp_path / "d.txt"))


def test_detect_resume_with_damaged_partial_files(files, tmp_path, capsys):
    out = str(tmp_path / "out.csv")
    base = ["detect", "--input", files["image"], "--ckpt", files["ckpt"], "--aligned", "--no-progress", "--resume"]
    with open(out + ".partial", "wb") as handle:
        handle.write(b"\xff\xfe\x00garbage")
    with open(out + ".partial.json", "w") as handle:
        handle.write("{not json")
    code, err = cli(capsys, *base, "--output", out)
    assert code == 2 and "damaged" in one_line(err) and "delete it or drop --resume" in err
    assert os.path.exists(out + ".partial")  # kept: the user decides
