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
from helpers import TINY_AUNET, popen_cli, tiny_config  # noqa: I100 - tests/ is on sys.path under pytest

from mindface_au.cli import main
from mindface_au.errors import UserError


def _guard():
    """mindface_au.utils.guard, imported per test so that the other tests of this file run (and fail) without it."""
    from mindface_au.utils import guard

    return guard


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
    guard = _guard()
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
    guard = _guard()
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


# ---------------------------------------------------------------------------------------- train / predict / synth
def _fake_run(folder):
    ckpts = folder / "checkpoints"
    ckpts.mkdir(parents=True)
    for name in ("epoch_005.ckpt", "best.ckpt", "resume.ckpt", ".best.abc123.tmp.ckpt", ".resume.x1.tmp.tmp"):
        (ckpts / name).write_bytes(b"old " + name.encode())
    (folder / "config.yaml").write_text("train:\n  epochs: 5\n")
    (folder / "metrics.json").write_text('{"epochs": []}')
    return ckpts


def test_train_refuses_a_finished_run_without_overwrite(tiny_synthau, tmp_path, capsys):
    run = tmp_path / "run"
    ckpts = _fake_run(run)
    before = sorted(os.listdir(ckpts))
    config = tiny_config(tiny_synthau, tmp_path / "tiny.yaml")  # data found: the run folder is the check that fails
    code, err = cli(capsys, "train", "--config", config, "--out", run, "--device", "CPU")
    assert code == 2 and "--overwrite" in one_line(err) and "run directory" in err
    assert sorted(os.listdir(ckpts)) == before and (run / "config.yaml").read_text() == "train:\n  epochs: 5\n"


def test_run_directory_overwrite_and_resume_remove_old_and_stale_files(tmp_path):
    from mindface_au.engine.run_dir import RunDirectory

    run = tmp_path / "run"
    ckpts = _fake_run(run)
    removed = RunDirectory(str(run)).prepare(resume=True)  # resume keeps the run, drops the stale temporaries
    assert sorted(os.path.basename(p) for p in removed) == [".best.abc123.tmp.ckpt", ".resume.x1.tmp.tmp"]
    assert sorted(os.listdir(ckpts)) == ["best.ckpt", "epoch_005.ckpt", "resume.ckpt"]
    RunDirectory(str(run)).prepare(overwrite=True)  # overwrite: no old epoch file can become the "latest"
    assert os.listdir(ckpts) == [] and not (run / "metrics.json").exists()


@pytest.mark.parametrize("where", ["file", "readonly"])
def test_train_out_that_cannot_be_written(tiny_synthau, tmp_path, capsys, monkeypatch, where):
    target = tmp_path / "out"
    if where == "file":
        target.write_text("a file")
        expected, words = 2, "existing file"
    else:  # tests run as root, where chmod does not stop writes: the folder reports EACCES instead
        real = os.makedirs

        def denied(path, *args, **kwargs):
            if str(path).startswith(str(target)):
                raise PermissionError(13, "Permission denied", str(path))
            return real(path, *args, **kwargs)

        monkeypatch.setattr(os, "makedirs", denied)
        expected, words = 1, "permission denied"
    config = tiny_config(tiny_synthau, tmp_path / "tiny.yaml")  # data found: the output folder is the check that fails
    code, err = cli(capsys, "train", "--config", config, "--out", target, "--device", "CPU")
    assert code == expected and words in one_line(err)


def test_synth_unwritable_out_and_ranges(tmp_path, capsys, monkeypatch):
    for flag, value in (("--seed", -1), ("--workers", -2), ("--test-videos", -1)):
        code, err = cli(capsys, "synth", "--out", tmp_path / "s", "--videos", 2, "--frames", 10, flag, value)
        assert code == 2 and one_line(err).startswith(f"mindface-au synth: error: {flag} {value}:")  # the flag
    real = os.makedirs

    def full(path, *args, **kwargs):
        if ".partial-" in str(path):
            raise OSError(28, "No space left on device", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "makedirs", full)
    code, err = cli(capsys, "synth", "--out", tmp_path / "s", "--videos", 2, "--frames", 10, "--workers", 1)
    assert code == 1 and "disk full" in one_line(err) and str(tmp_path / "s") in err


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from mindface_au.data.synthau import generate

    root = tmp_path_factory.mktemp("lostdata") / "data"
    generate(str(root), videos=2, frames=10, seed=3, workers=1)
    return root


def test_predict_never_overwrites_annotations_or_earlier_predictions(files, dataset, tmp_path, capsys):
    val = dataset / "AU_Detection_Challenge" / "Validation_Set"
    before = {p: p.read_text() for p in val.iterdir()}
    base = ["predict", "--ckpt", files["ckpt"], "--set", f"data.root={dataset}", "--device", "CPU"]
    for extra in ([], ["--overwrite"]):
        code, err = cli(capsys, *base, "--split", "val", "--out", val, *extra)
        assert code == 2 and "input of this command" in one_line(err)
    assert {p: p.read_text() for p in val.iterdir()} == before
    out = tmp_path / "pred"
    out.mkdir()
    name = next(val.iterdir()).name
    (out / name).write_text("earlier predictions\n")
    code, err = cli(capsys, *base, "--split", "val", "--out", out)
    assert code == 2 and "--overwrite" in one_line(err)
    assert (out / name).read_text() == "earlier predictions\n"


# ------------------------------------------------------------------------------------ models that are not numbers
@pytest.fixture(scope="module")
def nan_ckpt(files):
    from mindface_au.models.checkpoint import read_checkpoint, read_model_config, save_checkpoint_atomic

    params = {k: v.asnumpy() for k, v in read_checkpoint(files["ckpt"]).items() if hasattr(v, "asnumpy")}
    first = sorted(k for k, v in params.items() if v.dtype.kind == "f" and v.size > 1)[3]
    params[first] = params[first].copy()
    params[first].flat[0] = np.nan
    path = str(files["root"] / "nan.ckpt")
    save_checkpoint_atomic(params, path, model_config=read_model_config(files["ckpt"]))
    return path, first


def test_nan_checkpoint_is_refused_naming_the_parameter(files, nan_ckpt, tmp_path, capsys):
    path, name = nan_ckpt
    args = ["detect", "--input", files["image"], "--ckpt", path, "--aligned", "--no-progress", "--device", "CPU"]
    code, err = cli(capsys, *args, "--output", tmp_path / "o.csv")
    assert code == 2 and name in one_line(err) and "non-finite" in err
    assert not os.path.exists(tmp_path / "o.csv")
    code, err = cli(capsys, "export", "--ckpt", path, "--out", tmp_path / "m.onnx", "--format", "ONNX")
    assert code == 2 and name in one_line(err)


def test_export_check_fails_on_a_nan_difference(tmp_path):
    from mindface_au.inference.export.checks import checked_diff

    assert checked_diff(np.ones(3), np.ones(3) + 0.5, "x") == pytest.approx(0.5)
    with pytest.raises(UserError, match="NaN"):
        checked_diff(np.array([np.nan, 1.0]), np.ones(2), "m.mindir")


def test_mindir_export_and_detect_at_a_path_with_space_and_non_ascii(files, tmp_path, capsys):
    folder = tmp_path / "my models é"
    out = folder / "model (1).mindir"
    code, err = cli(capsys, "export", "--ckpt", files["ckpt"], "--out", out, "--batch-size", 2, "--device", "CPU")
    assert code == 0, err
    assert out.is_file() and [p.name for p in folder.iterdir()] == [out.name]
    csv = folder / "résultat 1.csv"
    args = ["detect", "--input", files["image"], "--ckpt", out, "--aligned", "--no-progress", "--output", csv]
    code, err = cli(capsys, *args)
    assert code == 0, err
    ref = tmp_path / "ref.csv"
    code, err = cli(capsys, *args[:-1], ref, "--ckpt", files["ckpt"])
    assert code == 0, err
    import csv as csv_module

    got, want = [next(csv_module.DictReader(open(p))) for p in (csv, ref)]
    probs = [k for k in want if k.endswith("_prob")]
    assert len(probs) == 12
    np.testing.assert_allclose([float(got[k]) for k in probs], [float(want[k]) for k in probs], atol=1e-5)


# ------------------------------------------------------------------------------------------------ configs and ranges
@pytest.mark.parametrize(
    "name, content, words",
    [
        ("latin1.yaml", "train:\n  out_dir: caf\xe9\n".encode("latin-1"), "not UTF-8"),
        ("deep.yaml", b"train:\n  milestones: " + b"[" * 20000 + b"]" * 20000 + b"\n", "nested"),
        (
            "laughs.yaml",
            b"a: &a [x, x, x, x, x, x, x, x, x]\n"
            + b"".join(f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n".encode() for p, c in zip("abcdefgh", "bcdefghi"))
            + b"model: {name: *i}\n",
            "expands to more than",
        ),
    ],
)
def test_hostile_config_files_are_one_short_line(tmp_path, capsys, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)
    code, err = cli(capsys, "eval", "--config", path, "--ckpt", tmp_path / "none.ckpt")
    assert code == 2 and words in one_line(err) and len(err) < 400


def test_long_values_give_short_messages(tmp_path, capsys):
    path = tmp_path / "long.yaml"
    path.write_text("model:\n  name: [" + ", ".join(["abcdefgh"] * 5000) + "]\n")
    code, err = cli(capsys, "eval", "--config", path, "--ckpt", tmp_path / "none.ckpt")
    assert code == 2 and "model.name" in one_line(err) and len(err) < 400


def test_configs_dump_of_a_binary_file(tmp_path, capsys):
    path = tmp_path / "model.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    code, err = cli(capsys, "configs", "--dump", path)
    assert code == 2 and "not UTF-8" in one_line(err)


@pytest.mark.parametrize(
    "setting",
    [
        "data.batch_size=0",
        "data.batch_size=-1",
        "train.epochs=0",
        "train.epochs=-2",
        "eval.prob_k=-3",
        "train.steps_per_epoch=-1",
        "train.keep_last=-1",
        "data.eval_batch_size=0",
        "eval.label_k=-1",
        "model.widths=[8, 0, 16, 16]",
    ],
)
def test_every_count_is_range_checked_naming_the_key(setting):
    from mindface_au.config import load_config

    key = setting.split("=")[0]
    with pytest.raises(UserError, match=rf"^config key {key}: got -?\d+, expected a value >= \d"):
        load_config(None, [setting])


@pytest.mark.parametrize(
    "args, words",
    [
        (["predict", "--ckpt", "x.ckpt", "--out", "o", "--prob-k", "-2"], "--prob-k"),
        (["launch", "--dry-run", "--workers", "2", "--local-workers", "4", "--", "--config", "x"], "--local-workers"),
        (["launch", "--dry-run", "--workers", "2", "--port", "70000", "--", "--config", "x"], "--port 70000"),
    ],
)
def test_flag_ranges(capsys, args, words):
    code, err = cli(capsys, *args)
    assert code == 2 and words in one_line(err)


def test_library_names_the_config_key_not_a_flag(files, tmp_path):
    from mindface_au.inference.loader import load_inference_model

    with pytest.raises(UserError) as info:
        load_inference_model(files["ckpt"], batch_size=0)
    assert "--" not in str(info.value) and "batch_size" in str(info.value)


# ------------------------------------------------------------------------------------------------ signals
def _popen_cli(*args):
    return popen_cli(*args, env={"PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, proc, timeout=240.0):
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_detect_with_a_ckpt_sigterm_keeps_partial_output(files, tmp_path):
    import signal

    sig = "SIGTERM"
    video = str(tmp_path / "v.avi")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 64))
    for i in range(1500):
        writer.write(np.full((64, 64, 3), i % 200, np.uint8))
    writer.release()
    out = str(tmp_path / "o.csv")
    base = ["detect", "--input", video, "--ckpt", files["ckpt"], "--aligned", "--no-progress", "--device", "CPU"]
    proc = _popen_cli(*base, "--batch-size", 1, "--output", out)
    # rows reach OUT.partial once MindSpore's graph has run (flushed every second)
    _wait_for(lambda: os.path.exists(out + ".partial") and os.path.getsize(out + ".partial") > 2000, proc)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "interrupted" in err and "run again with --resume" in err
    assert os.path.exists(out + ".partial") and not os.path.exists(out) and not os.path.exists(out + ".lock")
    proc = _popen_cli(*base, "--batch-size", 64, "--output", out, "--resume")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    with open(out) as handle:
        frames = [int(line.split(",")[0]) for line in handle.read().splitlines()[1:]]
    assert frames == list(range(1, 1501))


def test_sigterm_to_launch_reaches_every_worker(tmp_path, capsys, monkeypatch):
    import signal
    import sys
    import threading

    from mindface_au.cli import launch

    worker = (
        "import os, signal, sys, time\n"
        "def stop(s, f):\n"
        "    open(os.path.join(sys.argv[1], f'stopped{sys.argv[2]}'), 'w').write(str(s)); sys.exit(143)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "open(os.path.join(sys.argv[1], f'ready{sys.argv[2]}'), 'w').close()\n"
        "time.sleep(120)\n"
    )
    fake_msrun = (  # like msrun: starts the workers and waits; no SIGTERM handler of its own
        "import subprocess, sys\n"
        f"procs = [subprocess.Popen([sys.executable, '-c', {worker!r}, sys.argv[1], str(i)]) for i in range(2)]\n"
        "[p.wait() for p in procs]\n"
    )
    monkeypatch.setattr(launch, "msrun_command", lambda *a, **k: [sys.executable, "-c", fake_msrun, str(tmp_path)])

    def send_when_ready():
        import time

        while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=send_when_ready, daemon=True).start()
    code, err = cli(capsys, "launch", "--workers", "2", "--", "--config", "x")
    assert code == 143 and "interrupted (SIGTERM)" in err
    assert [(tmp_path / f"stopped{i}").read_text() for i in range(2)] == [str(int(signal.SIGTERM))] * 2


def test_train_interrupted_after_a_graph_ran_is_resumable(tmp_path):
    import signal

    from mindface_au.data.synthau import generate

    generate(str(tmp_path / "data"), videos=4, frames=40, seed=1, workers=1)
    config = tiny_config(tmp_path / "data", tmp_path / "c.yaml", epochs=3, save_every_steps=1, steps_per_epoch=2)
    run = tmp_path / "run"
    proc = _popen_cli("train", "--config", config, "--out", run, "--device", "CPU")
    state = run / "checkpoints" / "resume.ckpt"
    _wait_for(state.exists, proc, timeout=400)
    (run / "checkpoints" / ".best.x1.tmp.ckpt").write_bytes(b"left by a killed save")
    proc.send_signal(signal.SIGINT)  # Ctrl-C once MindSpore's graph has run
    _, err = proc.communicate(timeout=120)
    # MindSpore re-arms its own SIGINT handler at every graph call and turns SIGINT into SIGTERM there (see
    # utils/guard.py reclaim_signal_handlers): the command ends with 130 or 143, always with the message
    assert proc.returncode in (130, 143), err
    assert "Traceback" not in err and "interrupted" in err and "run again with --resume" in err
    proc = _popen_cli("train", "--resume", run, "--device", "CPU")
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, err
    assert "best epoch" in out and sorted(os.listdir(run / "checkpoints"))[0] == "best.ckpt"
    assert not [n for n in os.listdir(run / "checkpoints") if n.startswith(".")]


# ------------------------------------------------------------------------------------------------ disk full, tracebacks
def test_detect_disk_full_is_one_line_and_stays_resumable(files, tmp_path, capsys, monkeypatch):
    import csv

    real = csv.writer

    class Full:
        def __init__(self, handle, **kwargs):
            self.inner, self.rows = real(handle, **kwargs), 0

        def writerow(self, row):
            if row[0] != "frame":
                raise OSError(28, "No space left on device")
            return self.inner.writerow(row)

    monkeypatch.setattr(csv, "writer", Full)
    out = str(tmp_path / "o.csv")
    code, err = cli(capsys, "detect", "--input", files["image"], "--ckpt", files["ckpt"], "--aligned", "--output", out)
    assert code == 1 and one_line(err).endswith(f"{out}.partial: cannot write (disk full)")
    assert os.path.exists(out + ".partial") and not os.path.exists(out + ".lock")
    monkeypatch.setattr(csv, "writer", real)
    code, err = cli(capsys, "detect", "--input", files["image"], "--ckpt", files["ckpt"], "--aligned", "--output", out,
                    "--resume")  # fmt: skip
    assert code == 0, err


@pytest.mark.parametrize("fmt", ["ONNX", "MINDIR"])
def test_export_disk_full_is_one_line(files, tmp_path, capsys, monkeypatch, fmt):
    import mindspore as ms
    import onnx

    if fmt == "ONNX":
        real = onnx.save

        def save(model, path, *args, **kwargs):  # the temporary float32 file fits, the output does not
            if str(path).endswith(".tmp.onnx"):
                raise OSError(28, "No space left on device")
            return real(model, path, *args, **kwargs)

        monkeypatch.setattr(onnx, "save", save)
    else:  # MindSpore reports a failed write as RuntimeError; the free space decides
        monkeypatch.setattr(ms, "export", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("write failed")))
        monkeypatch.setattr("mindface_au.utils.messages._disk_full", lambda folder: True)
    out = tmp_path / ("m." + fmt.lower())
    code, err = cli(capsys, "export", "--ckpt", files["ckpt"], "--out", out, "--format", fmt, "--device", "CPU")
    assert code == 1 and one_line(err).endswith(f"{out}: cannot write (disk full)")
    assert os.listdir(tmp_path) == []


def test_checkpoint_save_disk_full_leaves_no_temporaries(tmp_path, monkeypatch):
    import mindspore as ms

    from mindface_au.models.checkpoint import save_checkpoint_atomic

    def full(params, path, **kwargs):
        with open(os.path.splitext(path)[0] + ".tmp", "wb") as handle:  # as MindSpore's _exec_save does
            handle.write(b"half")
        raise RuntimeError("Failed to save the checkpoint file")

    monkeypatch.setattr(ms, "save_checkpoint", full)
    monkeypatch.setattr("mindface_au.utils.messages._disk_full", lambda folder: True)
    with pytest.raises(_guard().EnvironmentFailure, match=r"best.ckpt: cannot write \(disk full\)"):
        save_checkpoint_atomic({"w": np.ones(2, np.float32)}, str(tmp_path / "best.ckpt"))
    assert os.listdir(tmp_path) == []


def test_real_bugs_keep_their_traceback_environment_failures_do_not(tmp_path):
    import sys

    code = (
        "import sys, errno\n"
        "from mindface_au import cli\n"
        "from mindface_au.cli import configs\n"
        "def boom(args):\n"
        "    bug = sys.argv[1] == 'bug'\n"
        "    raise ZeroDivisionError('a bug') if bug else PermissionError(errno.EACCES, 'x', 'f.txt')\n"
        "configs.run = boom\n"
        "sys.exit(cli.main(['configs']))\n"
    )
    env = dict(os.environ, GLOG_v="3")
    bug = subprocess.run([sys.executable, "-c", code, "bug"], capture_output=True, text=True, env=env)
    assert bug.returncode == 1 and "Traceback" in bug.stderr and "ZeroDivisionError: a bug" in bug.stderr
    denied = subprocess.run([sys.executable, "-c", code, "denied"], capture_output=True, text=True, env=env)
    assert (
        denied.returncode == 1
        and denied.stderr.strip() == "mindface-au configs: error: f.txt: cannot write " "(permission denied)"
    )


def test_cv_resumes_an_unfinished_split_and_starts_the_others_over(tmp_path):
    from mindface_au.config import AU_NAMES, Config
    from mindface_au.engine.cv import run_cv

    (tmp_path / "fold1" / "checkpoints").mkdir(parents=True)
    (tmp_path / "fold1" / "checkpoints" / "resume.ckpt").write_bytes(b"state")
    calls = []

    def fake_train(cfg, resume=None, overwrite=False):
        calls.append((cfg.data.split if cfg else None, resume, overwrite))
        epochs = [{"epoch": 1, "val_per_au": {n: 0.5 for n in AU_NAMES}}]
        return {"epochs": epochs, "best": {"epoch": 1, "mean_f1": 0.5}}

    run_cv(Config(), str(tmp_path), splits=["official", "fold1"], train_fn=fake_train)
    assert calls == [("official", None, True), (None, str(tmp_path / "fold1"), False)]
