"""Training: a 2-epoch tiny CLI run (files, loss going down, loadable checkpoints), the NaN guard,
and (slow) kill + --resume matching an uninterrupted run."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from helpers import TINY_LAYERS, TINY_WIDTHS, cli_env, popen_cli, tiny_config, tiny_set_args


@pytest.fixture(scope="module")
def synth(tiny_synthau):
    return tiny_synthau  # shared with the session (conftest): read-only


@pytest.fixture(scope="module")
def trained(trained_tiny_run):
    """The session's tiny 2-epoch CLI run (conftest.trained_tiny_run): read-only, copy before changing it."""
    return trained_tiny_run.run, trained_tiny_run.config, trained_tiny_run.proc


def test_two_epoch_run_writes_everything_and_learns(trained):
    run, _, proc = trained
    files = sorted(os.listdir(run))
    assert files == ["checkpoints", "config.yaml", "metrics.json", "train.log"]
    ckpts = sorted(os.listdir(run / "checkpoints"))
    assert ckpts == ["best.ckpt", "epoch_001.ckpt", "epoch_002.ckpt", "resume.ckpt"]  # nothing half-written
    metrics = json.load(open(run / "metrics.json"))
    epochs = metrics["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert epochs[1]["loss"] < epochs[0]["loss"]
    assert epochs[0]["lr"] == pytest.approx(0.05) and epochs[1]["lr"] == pytest.approx(0.005)
    for e in epochs:
        assert set(e["val_per_au"]) == {
            "AU1",
            "AU2",
            "AU4",
            "AU6",
            "AU7",
            "AU10",
            "AU12",
            "AU15",
            "AU23",
            "AU24",
            "AU25",
            "AU26",
        }
        assert e["val_mean_f1"] == pytest.approx(np.mean(list(e["val_per_au"].values())))
        assert e["images_per_s"] > 0
    best = max(epochs, key=lambda e: e["val_mean_f1"])
    assert metrics["best"] == {
        "epoch": best["epoch"],
        "mean_f1": pytest.approx(best["val_mean_f1"]),
        "metric": f"raw val_mean_f1, prob k 0 label k 0, over {best['val_subset']}",  # which metric and frames
    }
    assert best["val_subset"] == f"all {best['val_frames']} validation frames"
    log = open(run / "train.log").read()
    assert "loss" in log and "img/s" in log and "val mean F1" in log
    assert yaml.safe_load(open(run / "config.yaml"))["train"]["out_dir"] == str(run)


def test_checkpoints_rebuild_their_network(trained):
    from mindface_au.engine.evaluator import load_model
    from mindface_au.models.checkpoint import read_checkpoint

    run, _, _ = trained
    net, model_cfg = load_model(str(run / "checkpoints" / "best.ckpt"))
    assert model_cfg.widths == TINY_WIDTHS and model_cfg.fusion == "transformer"
    saved = read_checkpoint(str(run / "checkpoints" / "epoch_002.ckpt"))
    params = dict(net.parameters_and_names())
    assert params and all(name in saved for name in params)
    state = read_checkpoint(str(run / "checkpoints" / "resume.ckpt"))
    assert "global_step" in state and any(k.startswith("moments.") for k in state)  # optimiser state for --resume
    steps = json.load(open(run / "metrics.json"))["epochs"][0]["steps"]
    assert steps > 0 and int(state["global_step"].asnumpy()[0]) == 2 * steps


def test_best_checkpoint_card_says_which_frames_its_f1_covers(trained):
    """The card's validation F1 names the frames it covered (metrics.json's val_subset of the best epoch), and the
    card text every command prints says so."""
    from mindface_au.model_card import format_card, read_card

    run, _, _ = trained
    metrics = json.load(open(run / "metrics.json"))
    best = next(e for e in metrics["epochs"] if e["epoch"] == metrics["best"]["epoch"])
    card = read_card(str(run / "checkpoints" / "best.ckpt"))
    assert card["val_subset"] == best["val_subset"] and card["val_mean_f1"] == best["val_mean_f1"]
    assert f"(over {best['val_subset']})" in format_card(card, card["au_names"], card["crop"])


def test_nan_loss_stops_and_keeps_last_good_checkpoint(trained, tmp_path, cli):
    run, _, _ = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = open(copy / "checkpoints" / "best.ckpt", "rb").read()
    proc = cli("train", "--resume", copy, "--set", "train.epochs=3", "--set", "train.lr=1.0e+30", "--device", "CPU")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith("mindface-au train: error: training stopped: loss is")
    assert "epoch 3" in message and "epoch_002.ckpt" in message
    assert not (copy / "checkpoints" / "epoch_003.ckpt").exists()
    assert open(copy / "checkpoints" / "best.ckpt", "rb").read() == before
    assert [e["epoch"] for e in json.load(open(copy / "metrics.json"))["epochs"]] == [1, 2]


def test_train_errors(cli_in_process, tmp_path, synth):
    cli = cli_in_process  # both fail while reading the config, before any training
    config = tiny_config(synth, tmp_path / "c.yaml")
    proc = cli("train", "--config", config, "--set", "train.optimizer=adam", "--out", tmp_path / "r")
    assert proc.returncode == 2 and "train.optimizer" in proc.stderr
    proc = cli("train", "--resume", tmp_path / "nowhere")
    assert proc.returncode == 2 and "nowhere" in proc.stderr and "not a run directory" in proc.stderr


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted_run(synth, tmp_path, cli):
    config = tiny_config(synth, tmp_path / "c.yaml", epochs=3, milestones=[3], prelu_form="relu")
    full = cli("train", "--config", config, "--out", tmp_path / "full", "--device", "CPU")
    assert full.returncode == 0, full.stderr[-2000:]

    proc = popen_cli(
        "train", "--config", config, "--out", tmp_path / "cut", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    state = tmp_path / "cut" / "checkpoints" / "resume.ckpt"
    deadline = time.time() + 600
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert state.exists(), "the first epoch never finished"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = json.load(open(tmp_path / "cut" / "metrics.json"))["epochs"]
    assert len(done) < 3, "run finished before it could be killed"

    resumed = cli("train", "--resume", tmp_path / "cut", "--device", "CPU")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = json.load(open(tmp_path / "full" / "metrics.json"))["epochs"]
    b = json.load(open(tmp_path / "cut" / "metrics.json"))["epochs"]
    assert [e["epoch"] for e in b] == [1, 2, 3]
    for x, y in zip(a, b):
        # With the relu-form PReLU, training on CPU is bit-reproducible (MindSpore 2.10's native PReLUGrad is not):
        # the resumed run's losses and weights were measured equal to the uninterrupted run's, difference 0.0.
        # The tolerances leave room for float reordering only; a resume that lost state is off by far more.
        assert y["loss"] == pytest.approx(x["loss"], rel=1e-5)
        assert y["val_mean_f1"] == pytest.approx(x["val_mean_f1"], abs=1e-6)
        assert y["lr"] == pytest.approx(x["lr"])
    from mindface_au.models.checkpoint import read_checkpoint

    wa = read_checkpoint(str(tmp_path / "full" / "checkpoints" / "epoch_003.ckpt"))
    wb = read_checkpoint(str(tmp_path / "cut" / "checkpoints" / "epoch_003.ckpt"))
    for name, value in wa.items():
        if hasattr(value, "asnumpy") and value.asnumpy().dtype.kind == "f":
            a, b = value.asnumpy(), wb[name].asnumpy()
            assert np.abs(b - a).max() <= 1e-4 * np.abs(a).max() + 1e-7, name


_INTERRUPT = """
import os, sys
from mindspore.train import Callback
from mindface_au.config import load_config
from mindface_au.engine.trainer import train

class Interrupt(Callback):  # after the built-in callbacks: the step checkpoint of this step is on disk
    def on_train_step_end(self, run_context):
        if run_context.original_args().cur_step_num >= int(sys.argv[3]):
            os._exit(3)

train(load_config(sys.argv[1], ["train.out_dir=" + sys.argv[2]]), device="CPU", callbacks=[Interrupt()])
"""


@pytest.mark.slow
def test_resume_mid_epoch_from_a_step_checkpoint_matches_uninterrupted_run(trained, tmp_path, cli):
    """train.save_every_steps 5: a run killed mid-epoch 2 resumes at the step after its last step checkpoint and
    ends where the uninterrupted `trained` run ended."""
    run, config, _ = trained
    full = json.load(open(run / "metrics.json"))["epochs"]
    steps = full[0]["steps"]
    saved = next(s for s in range(5, 2 * steps, 5) if s > steps)  # the first step checkpoint inside epoch 2
    assert saved < 2 * steps, "epoch 2 has no step checkpoint; lower save_every_steps"
    cut = tmp_path / "cut"
    proc = subprocess.run(
        [sys.executable, "-c", _INTERRUPT, config, str(cut), str(saved + 1)],
        capture_output=True, text=True, timeout=900, env=cli_env(),
    )  # fmt: skip
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"step {saved} (epoch 2 step {saved - steps})" in proc.stderr
    resumed = cli("train", "--resume", cut, "--device", "CPU")
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert f"resumed from epoch 1 + {saved - steps} steps of epoch 2 (global step {saved})" in resumed.stderr
    b = json.load(open(cut / "metrics.json"))["epochs"]
    assert [e["epoch"] for e in b] == [1, 2]
    for x, y in zip(full, b):  # the tolerances of test_resume_after_kill_matches_uninterrupted_run (bit-reproducible)
        assert y["loss"] == pytest.approx(x["loss"], rel=1e-5)  # epoch 2: losses before the cut kept
        assert y["val_mean_f1"] == pytest.approx(x["val_mean_f1"], abs=1e-6)
        assert y["lr"] == pytest.approx(x["lr"])
    from mindface_au.models.checkpoint import read_checkpoint

    wa = read_checkpoint(str(run / "checkpoints" / "epoch_002.ckpt"))
    wb = read_checkpoint(str(cut / "checkpoints" / "epoch_002.ckpt"))
    for name, value in wa.items():
        if hasattr(value, "asnumpy") and value.asnumpy().dtype.kind == "f":
            a, b_ = value.asnumpy(), wb[name].asnumpy()
            assert np.abs(b_ - a).max() <= 1e-4 * np.abs(a).max() + 1e-7, name
    state = read_checkpoint(str(cut / "checkpoints" / "resume.ckpt"))
    assert int(state["global_step"].asnumpy()[0]) == 2 * steps


def test_train_log_shows_the_backbone_layout(tmp_path):
    """The checkpoint loader's layout line (logger mindface_au.models.checkpoint, as model.backbone_checkpoint
    loads) goes to the train log and stderr."""
    import logging

    from mindface_au.engine.trainer import _make_logger
    from mindface_au.models import create_model
    from mindface_au.models.checkpoint import load_checkpoint_strict, save_checkpoint_atomic

    kw = dict(widths=TINY_WIDTHS, layers=TINY_LAYERS, embedding_size=16)
    ckpt = str(tmp_path / "backbone.ckpt")
    save_checkpoint_atomic(create_model("iresnet18", **kw), ckpt)
    log = tmp_path / "train.log"
    logger = _make_logger(str(log), 0)
    layout = load_checkpoint_strict(create_model("iresnet18", **kw), ckpt)
    for handler in logger.handlers:
        handler.flush()
    assert f"{ckpt}: layout: {layout}" in open(log).read()
    _make_logger(None, 0)  # a second run replaces the handlers rather than adding to them
    ours = [h for h in logging.getLogger("mindface_au.models.checkpoint").handlers if getattr(h, "_mindface_train", 0)]
    assert len(ours) == 1  # (pytest's own capture handlers may sit there too)


def test_cv_collects_best_epochs_and_prints_table1(tmp_path):
    from mindface_au.config import AU_NAMES, Config
    from mindface_au.engine.cv import SPLITS, format_table1, run_cv

    seen = []

    def fake_train(cfg, **kwargs):
        seen.append((cfg.data.split, cfg.train.out_dir))
        i = len(seen)
        epochs = [
            {"epoch": 1, "val_per_au": {n: 0.1 * i for n in AU_NAMES}},
            {"epoch": 2, "val_per_au": {n: 0.05 * i for n in AU_NAMES}},
        ]
        return {"epochs": epochs, "best": {"epoch": 1, "mean_f1": 0.1 * i}}

    cfg = Config()
    summary = run_cv(cfg, str(tmp_path), train_fn=fake_train)
    assert [s for s, _ in seen] == list(SPLITS)
    assert [d for _, d in seen] == [str(tmp_path / s) for s in SPLITS]
    assert summary["mean_f1"] == pytest.approx({s: 0.1 * (i + 1) for i, s in enumerate(SPLITS)})
    assert json.load(open(tmp_path / "cv.json"))["splits"]["fold4"]["AU26"] == pytest.approx(0.5)
    table = format_table1(summary["splits"]).splitlines()
    assert table[0].split() == ["Val", "Set", *AU_NAMES, "F1"]
    assert table[1].split()[0] == "Official" and table[5].split()[0] == "Fold-4"
    assert table[2].split()[1:] == ["20.00"] * 13


@pytest.mark.slow
def test_demo_end_to_end_small(tmp_path, cli):
    out = tmp_path / "demo"
    proc = cli(
        "demo", "--out", out, "--videos", "6", "--frames", "60", "--device", "CPU", *tiny_set_args(),
        "--set", "train.epochs=1", "--set", "data.batch_size=8", "--set", "data.num_workers=1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.load(open(out / "results.json"))
    for key in ("val_mean_f1", "val_mean_f1_smoothed", "per_au", "majority_baseline_f1", "test_mean_f1_smoothed"):
        assert key in results
    assert results["val_mean_f1"] == pytest.approx(np.mean(list(results["per_au"].values())))
    for png in ("timeline.png", "f1_bars.png"):
        assert open(out / png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert len(os.listdir(out / "predictions")) == results["data"]["test_videos"]
