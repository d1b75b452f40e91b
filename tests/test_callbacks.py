"""engine/callbacks.py: SkippedImagesCallback reports the unreadable images of each epoch once, and EpochValidator
writes through the run directory (nothing on rank != 0, nothing after a non-finite loss)."""

import json
import logging
import os

import cv2
import numpy as np
import pytest

from mindface_au.config import DataConfig
from mindface_au.data import create_eval_dataset, skipped_images
from mindface_au.data.affwild2 import Video
from mindface_au.engine.callbacks import EpochValidator, ProgressLogger, SkippedImagesCallback
from mindface_au.engine.run_dir import RunDirectory


class _Context:
    """The part of a RunContext the callbacks read."""

    def __init__(self, epoch, loss=0.5):
        self.args = type("Args", (), {"cur_epoch_num": epoch, "net_outputs": np.float32(loss)})()
        self.stopped = False

    def original_args(self):
        return self.args

    def request_stop(self):
        self.stopped = True


def _video(tmp_path, bad):
    """A 3-frame video whose frames listed in `bad` are not images."""
    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.jpg"
        if i in bad:
            path.write_bytes(b"not a jpeg")
        else:
            cv2.imwrite(str(path), np.full((16, 16, 3), 100, np.uint8))
        paths.append(str(path))
    return Video("v", np.arange(1, 4), None, paths, 3)


def _consume(dataset):
    for _ in dataset.create_tuple_iterator(num_epochs=1, output_numpy=True):
        pass


def test_skipped_images_callback_reports_each_epochs_new_skips(tmp_path, capsys):
    cfg = DataConfig(image_size=16, num_workers=1)
    dataset = create_eval_dataset([_video(tmp_path, bad={1})], cfg, batch_size=2)
    callback = SkippedImagesCallback(dataset)
    _consume(dataset)
    assert skipped_images(dataset) == 1
    callback.on_train_epoch_end(_Context(1))
    assert "1 unreadable images skipped" in capsys.readouterr().err
    callback.on_train_epoch_end(_Context(2))  # nothing new: silent
    assert capsys.readouterr().err == ""
    _consume(dataset)
    callback.on_train_epoch_end(_Context(3))
    assert capsys.readouterr().err == "epoch 3: 1 unreadable images skipped (see warnings for paths)\n"


def test_skipped_images_callback_is_silent_for_a_clean_dataset(tmp_path, capsys):
    dataset = create_eval_dataset([_video(tmp_path, bad=set())], DataConfig(image_size=16, num_workers=1))
    _consume(dataset)
    SkippedImagesCallback(dataset).on_train_epoch_end(_Context(1))
    assert capsys.readouterr().err == ""


def _validator(tmp_path, rank, results, **kwargs):
    from mindspore import nn

    logger = logging.getLogger("test_callbacks")
    lrs = [0.1, 0.1, 0.01, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001, 0.001]
    progress = ProgressLogger(logger, lrs, steps_per_epoch=2, images_per_step=4, bar=False)
    net = nn.Dense(2, 1)
    run = RunDirectory(str(tmp_path / "run"), rank=rank, keep_last=1)
    history = []
    scores = iter(results)

    evaluated = []  # epochs whose validation ran (the epoch's record is appended after its validation)

    def evaluate():
        evaluated.append(len(history) + 1)
        mean = next(scores)
        return {"mean_f1": mean, "per_au": {"AU1": mean}, "mean_f1_smoothed": mean}

    validator = EpochValidator(logger, progress, evaluate, run, net, net, history, lrs, 2, **kwargs)
    validator.evaluated = evaluated
    return progress, validator, run, history


def _epoch(progress, validator, epoch, losses=(0.5, 0.4)):
    progress.on_train_epoch_begin(_Context(epoch))
    for loss in losses:
        progress.on_train_step_end(_Context(epoch, loss))
    validator.on_train_epoch_end(_Context(epoch))


def test_epoch_validator_saves_best_prunes_and_writes_metrics(tmp_path):
    progress, validator, run, history = _validator(tmp_path, 0, [0.3, 0.2])
    for epoch in (1, 2):
        _epoch(progress, validator, epoch)
    assert sorted(os.listdir(run.ckpt_dir)) == ["best.ckpt", "epoch_002.ckpt", "resume.ckpt"]  # keep_last 1
    assert validator.best == {"epoch": 1, "mean_f1": 0.3, "metric": "raw val_mean_f1, prob k 0 label k 0"}
    assert validator.last_good == run.checkpoint_path("epoch", 2)
    saved = json.load(open(run.metrics_path))
    assert [r["epoch"] for r in saved["epochs"]] == [1, 2] and saved["best"] == validator.best
    assert [r["lr"] for r in history] == [0.1, 0.01] and history[0]["loss"] == pytest.approx(0.45)
    _epoch(progress, validator, 3, losses=(0.5, float("nan")))  # diverged: nothing written for epoch 3
    d = progress.diverged
    assert (d["epoch"], d["step"]) == (3, 2) and np.isnan(d["loss"])
    assert not os.path.exists(run.checkpoint_path("epoch", 3)) and len(history) == 2


def test_epoch_validator_on_rank_one_writes_nothing(tmp_path):
    progress, validator, run, history = _validator(tmp_path, 1, [0.3])
    _epoch(progress, validator, 1)
    assert [r["epoch"] for r in history] == [1] and validator.last_good is None
    assert validator.best == {"epoch": 0, "mean_f1": None}
    assert not os.path.exists(run.root)


def test_epoch_validator_val_interval_validates_every_nth_and_the_last_epoch(tmp_path):
    # val_interval 2 over 5 epochs: epochs 2, 4 and 5 (the last) are validated; the best is chosen among them only,
    # even though epoch 1's loss-based score would beat a low F1
    progress, validator, run, history = _validator(tmp_path, 0, [0.4, 0.1, 0.3], val_interval=2, last_epoch=5)
    for epoch in range(1, 6):
        _epoch(progress, validator, epoch)
    assert validator.evaluated == [2, 4, 5]
    assert [("val_mean_f1" in r) for r in history] == [False, True, False, True, True]
    assert (validator.best["epoch"], validator.best["mean_f1"]) == (2, 0.4)
    assert os.path.exists(run.checkpoint_path("epoch", 5)) and os.path.exists(run.best_path)
    saved = json.load(open(run.metrics_path))
    assert [r.get("val_mean_f1") for r in saved["epochs"]] == [None, 0.4, None, 0.1, 0.3]


def test_epoch_validator_without_validation_keeps_the_last_epoch_and_says_so_once(tmp_path, caplog):
    """train.val_interval 0 (no validation): best.ckpt is the last epoch, not a loss-picked one, said once."""
    from mindface_au.engine.callbacks import LAST_EPOCH, describe_best

    progress, validator, run, history = _validator(tmp_path, 0, [], val_interval=3, last_epoch=2)
    validator.evaluate_fn = None
    with caplog.at_level(logging.INFO, logger="test_callbacks"):
        _epoch(progress, validator, 1, losses=(0.2, 0.2))
        _epoch(progress, validator, 2, losses=(0.5, 0.5))
    assert validator.best == {"epoch": 2, "mean_f1": None, "metric": LAST_EPOCH}
    assert caplog.text.count("no validation") == 1 and "new best" not in caplog.text
    assert json.load(open(run.metrics_path))["best"]["mean_f1"] is None and os.path.exists(run.best_path)
    assert describe_best(validator.best) == "best epoch 2: the last epoch (no validation)"


def test_epoch_validator_never_picks_an_epoch_without_a_score(tmp_path, caplog):
    """A validation that scored no AU (mean None) is no best epoch: no "new best checkpoint (mean F1 0.00)", no
    best.ckpt, and the end of the run says no epoch was picked instead of "best epoch 0 mean F1 -100.00"."""
    from mindface_au.engine.callbacks import describe_best

    progress, validator, run, history = _validator(tmp_path, 0, [None, None])
    with caplog.at_level(logging.INFO, logger="test_callbacks"):
        for epoch in (1, 2):
            _epoch(progress, validator, epoch)
    assert validator.best == {"epoch": 0, "mean_f1": None} and not os.path.exists(run.best_path)
    assert "new best" not in caplog.text and "val mean F1 n/a (smoothed n/a)" in caplog.text
    assert describe_best(validator.best) == "no best epoch (no epoch finished with a score)"
    assert [r["val_mean_f1"] for r in json.load(open(run.metrics_path))["epochs"]] == [None, None]


def test_epoch_validator_records_which_frames_and_metric(tmp_path, caplog):
    """Item 10: each record says which validation frames it covers, the best says which metric picked it."""
    progress, validator, run, history = _validator(tmp_path, 0, [0.5])
    subset = "the first 750 of 3000 validation frames (prefixes of each video, data.val_max_frames 750)"
    inner = validator.evaluate_fn
    validator.evaluate_fn = lambda: dict(inner(), subset=subset, mean_aus=1, frames=750)
    with caplog.at_level(logging.INFO, logger="test_callbacks"):
        _epoch(progress, validator, 1)
    assert history[0]["val_subset"] == subset and history[0]["val_frames"] == 750
    assert validator.best["metric"] == f"raw val_mean_f1, prob k 0 label k 0, over {subset}"
    assert f"val mean F1 50.00 (smoothed 50.00) over {subset}" in caplog.text
