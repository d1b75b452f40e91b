"""Everything that names or counts AUs reads the set it is given (model's or dataset's), not the ABAW constant."""

import numpy as np
import pytest

from mindface_au.au_sets import BP4D_AUS, DISFA_AUS
from mindface_au.data.affwild2 import Video
from mindface_au.data.au_txt import read_au_file, write_au_file
from mindface_au.data.sampling import rare_mask
from mindface_au.engine.cv import format_table1
from mindface_au.engine.evaluator import evaluate_probs
from mindface_au.errors import UserError
from mindface_au.metrics import f1_per_au, format_f1, per_au_dict
from mindface_au.submission import score_folders, write_prediction


def test_per_au_dict_and_format_use_the_given_names():
    assert list(per_au_dict(np.arange(8) / 10, DISFA_AUS)) == list(DISFA_AUS)
    with pytest.raises(ValueError, match="8 per-AU values for 12 AU names"):
        per_au_dict(np.zeros(8))
    assert "AU9" in format_f1(np.zeros(8), DISFA_AUS).splitlines()[0]


def test_cv_table_in_me_graphau_layout_with_mean_row():
    rng = np.random.default_rng(0)
    rows = {f"fold{k}": dict(zip(DISFA_AUS, rng.random(8))) for k in (1, 2, 3)}
    lines = format_table1(rows, mean_row=True).splitlines()
    assert lines[0].split() == ["Val", "Set", *DISFA_AUS, "F1"]
    assert [line.split()[0] for line in lines[1:]] == ["Fold-1", "Fold-2", "Fold-3", "Mean"]
    mean_row = [float(v) for v in lines[-1].split()[1:]]
    expect = np.mean([[rows[f][a] for a in DISFA_AUS] for f in rows], axis=0) * 100
    np.testing.assert_allclose(mean_row[:-1], expect, atol=0.006)
    assert mean_row[-1] == pytest.approx(expect.mean(), abs=0.006)


def test_txt_header_and_scoring_follow_the_au_set(tmp_path):
    truth = np.array([[1, 0, -1] + [0] * 9, [0, 1, 1] + [1] * 9], np.int8)
    write_au_file(str(tmp_path / "gt" / "v.txt"), truth, au_names=BP4D_AUS)
    assert (tmp_path / "gt" / "v.txt").read_text().splitlines()[0] == ",".join(BP4D_AUS)
    np.testing.assert_array_equal(read_au_file(str(tmp_path / "gt" / "v.txt"), au_names=BP4D_AUS), truth)
    with pytest.raises(UserError, match="does not match the expected AU1,AU2,AU4,AU6,AU7,AU10"):
        read_au_file(str(tmp_path / "gt" / "v.txt"))  # an ABAW reader refuses a BP4D header
    pred = np.array([[1, 1, 0] + [0] * 9, [0, 1, 1] + [1] * 9], np.int8)
    write_prediction(str(tmp_path / "pred" / "v.txt"), pred, BP4D_AUS)
    result = score_folders(str(tmp_path / "pred"), str(tmp_path / "gt"), au_names=BP4D_AUS)
    assert list(result["per_au"]) == list(BP4D_AUS)
    np.testing.assert_allclose(list(result["per_au"].values()), f1_per_au(truth, pred))


def test_rare_mask_and_evaluate_probs_on_disfa_columns():
    labels = np.zeros((4, 8), np.int8)
    labels[1, DISFA_AUS.index("AU9")] = 1
    labels[2, DISFA_AUS.index("AU9")] = -1
    assert rare_mask(labels, ["AU9"], DISFA_AUS).tolist() == [False, True, False, False]
    with pytest.raises(UserError, match="'AU15' is not an AU of the data"):
        rare_mask(labels, ["AU15"], DISFA_AUS)
    video = Video("SN001", np.arange(1, 5), labels, ["x"] * 4, 4)
    probs = np.full((4, 8), 0.1, np.float32)
    probs[1, DISFA_AUS.index("AU9")] = 0.9
    result = evaluate_probs([video], [(np.arange(1, 5), probs)], au_names=DISFA_AUS)
    assert list(result["per_au"]) == list(DISFA_AUS) and result["per_au"]["AU9"] == 1.0


def test_plots_take_the_au_set(tmp_path):
    from mindface_au.plots import plot_au_bars, plot_au_timeline, plot_image_bars

    plot_au_bars(np.linspace(0, 1, 8), str(tmp_path / "bars.png"), au_names=DISFA_AUS)
    plot_au_timeline(np.random.default_rng(0).random((5, 8)), str(tmp_path / "t.png"), au_names=DISFA_AUS)
    plot_image_bars(np.zeros((2, 8)), ["a", "b"], str(tmp_path / "i.png"), au_names=DISFA_AUS)
    assert all((tmp_path / n).stat().st_size > 0 for n in ("bars.png", "t.png", "i.png"))
    with pytest.raises(UserError, match="expected 8 values"):
        plot_au_bars(np.zeros(12), str(tmp_path / "x.png"), au_names=DISFA_AUS)
