"""eval / predict / score on a tiny trained run: Table 2 sweep, predict + score round trip on SynthAU val,
test-split files with one row per frame, checkpoint voting, and the error paths."""

import json
import os

import numpy as np
import pytest
from sklearn.metrics import f1_score

from mindface_au.config import AU_NAMES
from mindface_au.engine.predict import vote
from mindface_au.postprocess import postprocess_video
from mindface_au.submission import read_au_file


@pytest.fixture(scope="module")
def run(trained_tiny_run):
    """The session's tiny 2-epoch run (conftest.trained_tiny_run): two checkpoints to evaluate and vote with."""
    shared = trained_tiny_run
    result = {"best_ckpt": shared.best_ckpt, "run_dir": str(shared.run), **shared.metrics}
    return shared.data.parent, shared.config, result


def _labelled_frames(root, split):
    from mindface_au.data import load_split

    return {v.name: v for v in load_split(str(root), split)}


def test_eval_matches_training_validation_and_sweeps(run, cli):
    base, config, result = run
    proc = cli("eval", "--config", config, "--model", result["best_ckpt"], "--sweep", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)  # only JSON on stdout
    best = next(e for e in result["epochs"] if e["epoch"] == result["best"]["epoch"])
    assert out["mean_f1"] == pytest.approx(best["val_mean_f1"], abs=1e-9)  # same frames, same network
    assert out["prob_k"] == 2 and out["label_k"] == 1
    for column in ("prob", "label", "prob_label"):
        assert [k for k, _ in out["sweep"][column]] == list(range(1, 11))
    assert out["sweep"]["prob_label"][0][1] == pytest.approx(out["mean_f1_smoothed"], abs=1e-12)  # 2/1 = defaults
    text = cli("eval", "--config", config, "--ckpt", result["best_ckpt"], "--sweep", "--prob-k", "3", "--label-k", "0")
    assert text.returncode == 0, text.stderr[-2000:]
    assert "Probability k/F1" in text.stdout and "3/10/" in text.stdout and "mean F1:" in text.stdout


def test_predict_score_round_trip_on_val(run, cli, tmp_path):
    base, config, result = run
    out = tmp_path / "pred"
    proc = cli("predict", "--config", config, "--ckpt", result["best_ckpt"], "--split", "val", "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    gt = base / "data" / "AU_Detection_Challenge" / "Validation_Set"
    videos = _labelled_frames(base / "data", "val")
    assert sorted(os.listdir(out)) == sorted(n + ".txt" for n in videos)
    truth_all, pred_all, truth_img, pred_img = [], [], [], []
    for name, video in videos.items():
        truth = read_au_file(str(gt / f"{name}.txt"))
        pred = read_au_file(str(out / f"{name}.txt"), "prediction", allowed=(0, 1))
        assert pred.shape == truth.shape == (video.num_frames, 12)
        keep = np.all(truth >= 0, axis=1)
        truth_all.append(truth[keep])
        pred_all.append(pred[keep])
        truth_img.append(video.labels)
        pred_img.append(pred[np.asarray(video.frame_ids) - 1])
    scored = cli("score", "--pred", out, "--gt", gt, "--json")
    assert scored.returncode == 0, scored.stderr
    score = json.loads(scored.stdout)
    expected = f1_score(np.concatenate(truth_all), np.concatenate(pred_all), average=None, zero_division=0)
    np.testing.assert_allclose([score["per_au"][n] for n in AU_NAMES], expected, atol=1e-12)
    # the frames with an image are exactly what `eval` scores after the same smoothing
    ev = cli("eval", "--config", config, "--ckpt", result["best_ckpt"], "--json")
    smoothed = json.loads(ev.stdout[ev.stdout.index("{") :])["mean_f1_smoothed"]
    on_images = f1_score(np.concatenate(truth_img), np.concatenate(pred_img), average=None, zero_division=0)
    assert smoothed == pytest.approx(float(np.mean(on_images)), abs=1e-12)


def test_predict_test_split_with_voting(run, cli, tmp_path):
    base, config, result = run
    ckpts = [os.path.join(result["run_dir"], "checkpoints", f"epoch_00{e}.ckpt") for e in (1, 2)]
    out = tmp_path / "test"
    proc = cli("predict", "--config", config, "--ckpt", *ckpts, "--vote", "mean", "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    videos = _labelled_frames(base / "data", "test")
    for name, video in videos.items():
        pred = read_au_file(str(out / f"{name}.txt"), "prediction", allowed=(0, 1))
        assert pred.shape == (video.num_frames, 12)  # one row per frame of the frame list, faces or not
    hidden = base / "data" / "synthau_test_labels"
    assert cli("score", "--pred", out, "--gt", hidden).returncode == 0


def test_vote_majority_and_mean():
    rng = np.random.default_rng(0)
    probs = [rng.random((30, 12)).astype(np.float32) for _ in range(3)]
    labels = np.stack([postprocess_video(p, 2, 1) for p in probs])
    np.testing.assert_array_equal(vote(probs, "majority", 2, 1), (labels.sum(0) >= 2).astype(np.int8))
    np.testing.assert_array_equal(vote(probs, "mean", 2, 1), postprocess_video(np.mean(probs, axis=0), 2, 1))
    two = [np.full((4, 12), 0.9, np.float32), np.full((4, 12), 0.2, np.float32)]  # a tie: the mean 0.55 decides
    np.testing.assert_array_equal(vote(two, "majority"), np.ones((4, 12), np.int8))


def test_predict_and_eval_errors(run, cli_in_process, tmp_path):
    cli = cli_in_process
    base, config, result = run
    missing = tmp_path / "nope.ckpt"
    proc = cli("predict", "--config", config, "--ckpt", result["best_ckpt"], missing, "--out", tmp_path / "o")
    assert proc.returncode == 2 and "nope.ckpt" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
    proc = cli("eval", "--config", config, "--ckpt", result["best_ckpt"], "--prob-k", "-1")
    assert proc.returncode == 2 and "--prob-k" in proc.stderr
    proc = cli("eval", "--config", config, "--ckpt", missing)
    assert proc.returncode == 2 and "nope.ckpt" in proc.stderr


def test_eval_prints_no_mean_over_an_au_without_coded_frames(run, cli_in_process, monkeypatch):
    """An AU with no coded frame is n/a in eval's table and its mean line says how many AUs it covers."""
    import mindface_au.engine.evaluator as evaluator

    _, config, result = run
    per_au = {name: (None if name == "AU1" else 0.5) for name in AU_NAMES}
    fake = {"videos": 1, "frames": 3, "per_au": per_au, "per_au_smoothed": dict(per_au), "mean_f1": 0.5,
            "mean_f1_smoothed": 0.5, "prob_k": 2, "label_k": 1}  # fmt: skip
    monkeypatch.setattr(evaluator, "evaluate", lambda *a, **k: fake)
    proc = cli_in_process("eval", "--config", config, "--model", result["best_ckpt"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "mean F1: 50.00 over 11 of 12 AUs raw, 50.00 over 11 of 12 AUs smoothed" in proc.stdout
    assert "n/a" in proc.stdout
