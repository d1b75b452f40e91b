"""F1 against scikit-learn, the score CLI on hand-made fixture folders, and its error paths."""

import json
import os

import numpy as np
import pytest
from sklearn.metrics import f1_score

from mindface_au.config import AU_NAMES
from mindface_au.metrics import F1Accumulator, f1_per_au, mean_f1
from mindface_au.submission import HEADER, read_au_file, write_prediction


@pytest.mark.parametrize("seed,n,rate", [(0, 200, 0.3), (1, 7, 0.05), (2, 1000, 0.8)])
def test_f1_matches_sklearn(seed, n, rate):
    rng = np.random.default_rng(seed)
    y_true = (rng.random((n, 12)) < rate).astype(np.int8)
    y_pred = (rng.random((n, 12)) < rate).astype(np.int8)
    y_true[:, 3] = 0  # an AU that never occurs and ...
    y_pred[:, 3] = 0  # ... is never predicted: zero_division -> 0
    expected = f1_score(y_true, y_pred, average=None, zero_division=0)
    np.testing.assert_allclose(f1_per_au(y_true, y_pred), expected, rtol=0, atol=1e-12)
    assert mean_f1(y_true, y_pred) == pytest.approx(float(np.mean(expected)), abs=1e-12)


def test_accumulator_in_chunks_equals_one_shot_and_ignores_unlabelled():
    rng = np.random.default_rng(3)
    y_true = (rng.random((300, 12)) < 0.4).astype(np.int8)
    y_pred = (rng.random((300, 12)) < 0.4).astype(np.int8)
    acc = F1Accumulator()
    for start in range(0, 300, 70):
        acc.update(y_true[start : start + 70], y_pred[start : start + 70])
    np.testing.assert_allclose(acc.per_au(), f1_score(y_true, y_pred, average=None, zero_division=0), atol=1e-12)
    with_unlabelled = np.concatenate([y_true, -np.ones((50, 12), np.int8)])
    preds = np.concatenate([y_pred, np.ones((50, 12), np.int8)])
    np.testing.assert_allclose(f1_per_au(with_unlabelled, preds), acc.per_au(), atol=1e-12)


def _write_txt(path, rows, header=HEADER):
    with open(path, "w") as handle:
        handle.write(header + "\n" + "\n".join(",".join(str(v) for v in row) for row in rows) + "\n")


@pytest.fixture
def fixture_dirs(tmp_path):
    """Two videos; AU1 has TP=2, FP=1, FN=1 -> F1 = 4/6; AU2 TP=1, FP=0, FN=0 -> 1; all other AUs 0."""
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    z = [0] * 10
    _write_txt(gt / "vidA.txt", [[1, 0] + z, [1, 1] + z, [-1] * 12, [0, 0] + z])
    _write_txt(pred / "vidA.txt", [[1, 0] + z, [1, 1] + z, [1] * 12, [1, 0] + z])
    _write_txt(gt / "vidB_left.txt", [[1, 0] + z, [0, 0] + z])
    _write_txt(pred / "vidB_left.txt", [[0, 0] + z, [0, 0] + z])
    return str(pred), str(gt)


def test_score_cli_hand_computed(cli, fixture_dirs):
    pred, gt = fixture_dirs
    proc = cli("score", "--pred", pred, "--gt", gt, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    expected = {name: 0.0 for name in AU_NAMES}
    expected.update(AU1=2 / 3, AU2=1.0)
    assert result["per_au"] == pytest.approx(expected, abs=1e-9)
    assert result["mean_f1"] == pytest.approx((2 / 3 + 1.0) / 12, abs=1e-9)
    assert result["videos"] == 2 and result["frames"] == 5
    text = cli("score", "--pred", pred, "--gt", gt)
    assert text.returncode == 0 and "mean F1: 13.89" in text.stdout


@pytest.mark.parametrize(
    "damage,needle",
    [
        ("missing", "vidB_left"),
        ("header", "vidA"),
        ("rows", "vidA"),
        ("value", "vidA"),
    ],
)
def test_score_cli_errors_name_the_video(cli, fixture_dirs, damage, needle):
    pred, gt = fixture_dirs
    z = [0] * 10
    if damage == "missing":
        os.remove(os.path.join(pred, "vidB_left.txt"))
    elif damage == "header":
        _write_txt(os.path.join(pred, "vidA.txt"), [[0] * 12] * 4, header="AU1,AU2,AU4")
    elif damage == "rows":
        _write_txt(os.path.join(pred, "vidA.txt"), [[0] * 12] * 3)
    else:
        _write_txt(os.path.join(pred, "vidA.txt"), [[2, 0] + z] * 4)
    proc = cli("score", "--pred", pred, "--gt", gt)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mindface-au score: error: video " + needle), proc.stderr


def test_write_read_round_trip(tmp_path):
    labels = (np.random.default_rng(0).random((9, 12)) < 0.5).astype(np.int8)
    path = str(tmp_path / "out" / "v.txt")
    write_prediction(path, labels)
    np.testing.assert_array_equal(read_au_file(path, "prediction", allowed=(0, 1)), labels)
    assert open(path).readline().strip() == HEADER
    assert os.listdir(tmp_path / "out") == ["v.txt"]


def test_an_au_without_coded_frames_has_no_f1_and_is_left_out_of_the_mean():
    """Issue 26 item 4: an AU with zero coded frames is NaN / None (JSON null) / n/a, the mean covers the other AUs
    (compared with sklearn on the coded AUs) and says so; an AU coded but never positive nor predicted stays 0."""
    from mindface_au.metrics import format_f1, format_mean, per_au_dict

    rng = np.random.default_rng(5)
    y_true = (rng.random((120, 12)) < 0.3).astype(np.int8)
    y_pred = (rng.random((120, 12)) < 0.3).astype(np.int8)
    y_true[:, 4] = -1  # AU7 never coded
    y_true[:60, 7] = -1  # AU15 coded in half the frames
    y_true[:, 9], y_pred[:, 9] = 0, 0  # AU24 coded, never positive, never predicted: F1 0 (zero_division=0)
    per_au = f1_per_au(y_true, y_pred)
    assert np.isnan(per_au[4]) and per_au[9] == 0.0
    coded = [i for i in range(12) if i != 4]
    expected = [f1_score(y_true[y_true[:, i] >= 0, i], y_pred[y_true[:, i] >= 0, i], zero_division=0) for i in coded]
    np.testing.assert_allclose(per_au[coded], expected, rtol=0, atol=1e-12)
    assert mean_f1(y_true, y_pred) == pytest.approx(float(np.mean(expected)), abs=1e-12)
    as_dict = per_au_dict(per_au)
    assert AU_NAMES[4] == "AU7" and as_dict["AU7"] is None and json.loads(json.dumps(as_dict))["AU7"] is None
    table = format_f1(per_au, label="val").splitlines()
    assert table[1].split()[5] == "n/a"
    assert table[1].endswith(f"{100 * np.mean(expected):8.2f} (mean over 11 of 12 AUs)")
    assert format_mean(per_au) == f"{100 * np.mean(expected):.2f} over 11 of 12 AUs"
    acc = F1Accumulator()
    acc.update(y_true, y_pred)
    assert acc.coded().tolist() == [120] * 4 + [0, 120, 120, 60] + [120] * 4
    assert acc.mean() == pytest.approx(float(np.mean(expected)), abs=1e-12)
    nothing = -np.ones((5, 12), np.int8)
    assert mean_f1(nothing, nothing) is None and format_mean(f1_per_au(nothing, nothing)).startswith("n/a")
    assert format_f1(f1_per_au(nothing, nothing)).splitlines()[1].split()[-1] == "n/a"


def test_score_cli_uncoded_au_is_null_in_json_and_na_in_the_table(cli, tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    z = [0] * 9
    # AU1: TP 1, FN 1 -> 2/3; AU2: TP 1 -> 1; AU4 (third column) never coded; the others coded, all 0 -> 0
    _write_txt(gt / "v.txt", [[1, 1, -1] + z, [1, 0, -1] + z])
    _write_txt(pred / "v.txt", [[1, 1, 1] + z, [0, 0, 1] + z])
    proc = cli("score", "--pred", pred, "--gt", gt, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["per_au"]["AU4"] is None and result["coded_frames"]["AU4"] == 0 and result["mean_aus"] == 11
    assert result["mean_f1"] == pytest.approx((2 / 3 + 1.0) / 11, abs=1e-9)
    text = cli("score", "--pred", pred, "--gt", gt)
    assert text.returncode == 0, text.stderr
    assert f"mean F1: {100 * (2 / 3 + 1.0) / 11:.2f} over 11 of 12 AUs" in text.stdout
    assert text.stdout.splitlines()[2].split()[3] == "n/a"
