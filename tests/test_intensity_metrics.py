"""Intensity metrics (ICC(3,1), Pearson r, MAE) against formulas written out here, Shrout & Fleiss's worked example,
numpy/scipy, and the masking and n/a rules."""

import json

import numpy as np
import pytest
from scipy.stats import pearsonr

from mindface_au.metrics import (
    format_f1,
    format_intensity,
    format_intensity_means,
    format_mean,
    icc_3_1,
    intensity_dict,
    intensity_per_au,
)

# Shrout & Fleiss 1979, Table 2: 6 targets (rows) rated by 4 judges (columns).
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], dtype=np.float64
)
NAMES = ["AU1", "AU2", "AU4", "AU6"]


def anova_mean_squares(x):
    """BMS, JMS, EMS, WMS of the two-way ANOVA of an (n targets, k judges) array, from sums of squares."""
    x = np.asarray(x, dtype=np.float64)
    n, k = x.shape
    correction = x.sum() ** 2 / (n * k)
    ss_total = (x**2).sum() - correction
    ss_targets = (x.sum(axis=1) ** 2).sum() / k - correction
    ss_judges = (x.sum(axis=0) ** 2).sum() / n - correction
    ss_error = ss_total - ss_targets - ss_judges
    ss_within = ss_total - ss_targets
    return (
        ss_targets / (n - 1),
        ss_judges / (k - 1),
        ss_error / ((n - 1) * (k - 1)),
        ss_within / (n * (k - 1)),
    )


def reference_icc31(x):
    bms, _, ems, _ = anova_mean_squares(x)
    k = np.asarray(x).shape[1]
    return (bms - ems) / (bms + (k - 1) * ems)


def test_shrout_fleiss_worked_example():
    bms, jms, ems, wms = anova_mean_squares(SHROUT_FLEISS)
    n, k = SHROUT_FLEISS.shape
    # The test's own ANOVA reproduces all three published single-measure ICCs (0.17, 0.29, 0.71) ...
    assert round((bms - wms) / (bms + (k - 1) * wms), 2) == 0.17
    assert round((bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n), 2) == 0.29
    assert round(reference_icc31(SHROUT_FLEISS), 2) == 0.71
    # ... and the library's ICC(3,1), the code the 2-rater metric calls, gives the same value.
    assert round(icc_3_1(SHROUT_FLEISS), 2) == 0.71
    assert icc_3_1(SHROUT_FLEISS) == pytest.approx(reference_icc31(SHROUT_FLEISS), abs=1e-12)


def _data(seed, n=200, c=4):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 6, size=(n, c)).astype(np.float64)
    pred = np.clip(truth + rng.normal(0, 1.2, size=(n, c)) + rng.normal(0, 0.5, size=c), 0, 5)
    return truth, pred


@pytest.mark.parametrize("seed", [0, 1])
def test_per_au_against_independent_computation(seed):
    truth, pred = _data(seed)
    scores = intensity_per_au(truth, pred)
    for c in range(truth.shape[1]):
        x, y = truth[:, c], pred[:, c]
        assert scores.icc[c] == pytest.approx(reference_icc31(np.stack([x, y], axis=1)), abs=1e-12)
        # two raters: ICC(3,1) = 2 cov / (var x + var y)
        cov = np.cov(x, y)
        assert scores.icc[c] == pytest.approx(2 * cov[0, 1] / (cov[0, 0] + cov[1, 1]), abs=1e-12)
        assert scores.pcc[c] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)
        assert scores.pcc[c] == pytest.approx(pearsonr(x, y)[0], abs=1e-12)
        assert scores.mae[c] == pytest.approx(sum(abs(a - b) for a, b in zip(x, y)) / len(x), abs=1e-12)
    assert list(scores.coded) == [truth.shape[0]] * truth.shape[1]


def test_icc_is_consistency_not_agreement():
    truth, pred = _data(2)
    base = intensity_per_au(truth, pred)
    shifted = intensity_per_au(truth, pred + 1.0)  # a constant offset: same ICC(3,1) and PCC, MAE changes
    np.testing.assert_allclose(shifted.icc, base.icc, atol=1e-12)
    np.testing.assert_allclose(shifted.pcc, base.pcc, atol=1e-12)
    assert not np.allclose(shifted.mae, base.mae)
    perfect = intensity_per_au(truth, truth)
    np.testing.assert_allclose(perfect.icc, 1.0, atol=1e-12)
    np.testing.assert_allclose(perfect.mae, 0.0, atol=0)


def test_uncoded_frames_are_left_out():
    truth, pred = _data(3, n=120)
    drop = np.zeros(truth.shape, dtype=bool)
    drop[::3, 0] = True
    drop[:50, 2] = True
    coded = intensity_per_au(truth, pred)  # the reference: each AU scored on its kept frames only
    marked = truth.copy()
    marked[drop[:, 0], 0] = -1
    marked[drop[:, 2], 2] = np.nan
    wild = pred.copy()
    wild[drop] = np.where(np.arange(drop.sum()) % 2, 99.0, np.nan)  # whatever is predicted there does not count
    for scores in (intensity_per_au(marked, wild), intensity_per_au(truth, wild, mask=~drop)):
        for c in range(truth.shape[1]):
            keep = ~drop[:, c]
            x, y = truth[keep, c], pred[keep, c]
            assert scores.icc[c] == pytest.approx(reference_icc31(np.stack([x, y], axis=1)), abs=1e-12)
            assert scores.pcc[c] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)
            assert scores.mae[c] == pytest.approx(np.mean(np.abs(x - y)), abs=1e-12)
        assert list(scores.coded) == [80, 120, 70, 120]
    assert list(coded.coded) == [120] * 4


def test_no_variance_and_too_few_frames_have_no_icc_pcc():
    truth, pred = _data(4, n=50)
    truth[:, 0] = 0  # labels never move: no ICC, no PCC (not 0)
    pred[:, 1] = 2.5  # constant prediction: no PCC; ICC(3,1) is 0 (BMS = EMS), a value
    truth[1:, 2] = -1  # one coded frame: MAE only
    truth[:, 3] = -1  # no coded frame: nothing
    scores = intensity_per_au(truth, pred)
    assert np.isnan(scores.icc[0]) and np.isnan(scores.pcc[0])
    assert scores.mae[0] == pytest.approx(np.mean(np.abs(pred[:, 0])), abs=1e-12)
    assert scores.icc[1] == pytest.approx(0.0, abs=1e-12) and np.isnan(scores.pcc[1])
    assert np.isnan(scores.icc[2]) and np.isnan(scores.pcc[2])
    assert scores.mae[2] == pytest.approx(abs(pred[0, 2] - truth[0, 2]), abs=1e-12)
    assert np.isnan(scores.icc[3]) and np.isnan(scores.pcc[3]) and np.isnan(scores.mae[3])
    assert list(scores.coded) == [50, 50, 1, 0]

    result = json.loads(json.dumps(intensity_dict(scores, NAMES)))
    assert result["icc"] == {"AU1": None, "AU2": pytest.approx(0.0, abs=1e-12), "AU4": None, "AU6": None}
    assert result["pcc"] == {"AU1": None, "AU2": None, "AU4": None, "AU6": None}
    assert result["mae"]["AU6"] is None and result["mae"]["AU4"] is not None
    assert result["mean_pcc"] is None
    assert result["mean_aus"] == {"icc": 1, "pcc": 0, "mae": 3}
    assert result["mean_mae"] == pytest.approx(np.mean(scores.mae[:3]), abs=1e-12)
    assert result["coded_frames"] == {"AU1": 50, "AU2": 50, "AU4": 1, "AU6": 0}

    table = format_intensity(scores, NAMES, label="val")
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()[1:]}
    assert rows["ICC"][:4] == ["n/a", f"{scores.icc[1]:.2f}", "n/a", "n/a"]
    assert rows["PCC"] == ["n/a"] * 5
    assert rows["MAE"][3] == "n/a"
    assert "(mean over 3 of 4 AUs)" in table.splitlines()[3]
    means = format_intensity_means(scores)
    assert "PCC n/a (no AU has 2 coded frames with varying labels and predictions)" in means
    assert f"MAE {np.mean(scores.mae[:3]):.2f} over 3 of 4 AUs" in means


def test_means_cover_the_aus_with_a_value():
    truth, pred = _data(5, n=80)
    truth[:, 1] = 3  # AU2: no ICC/PCC, still an MAE
    scores = intensity_per_au(truth, pred)
    result = intensity_dict(scores, NAMES)
    keep = [0, 2, 3]
    assert result["mean_icc"] == pytest.approx(np.mean(scores.icc[keep]), abs=1e-12)
    assert result["mean_pcc"] == pytest.approx(np.mean(scores.pcc[keep]), abs=1e-12)
    assert result["mean_mae"] == pytest.approx(np.mean(scores.mae), abs=1e-12)
    assert result["mean_aus"] == {"icc": 3, "pcc": 3, "mae": 4}
    assert format_mean(scores.icc, scale=1.0) == f"{np.mean(scores.icc[keep]):.2f} over 3 of 4 AUs"
    lines = format_intensity(scores, NAMES).splitlines()
    assert lines[0].split() == NAMES + ["mean"]
    assert lines[1].split()[1:] == [f"{v:.2f}" for v in scores.icc[:1]] + ["n/a"] + [
        f"{v:.2f}" for v in scores.icc[2:]
    ] + [f"{np.mean(scores.icc[keep]):.2f}", "(mean", "over", "3", "of", "4", "AUs)"]
    assert lines[3].split()[1:] == [f"{v:.2f}" for v in scores.mae] + [f"{np.mean(scores.mae):.2f}"]


def test_f1_formatting_unchanged():
    assert format_mean([0.5, None, 0.7]) == "60.00 over 2 of 3 AUs"
    assert format_mean([None]) == "n/a (no AU has a coded frame)"
    assert format_f1([0.5, 0.7], ["AU1", "AU2"]).splitlines()[1].split() == ["50.00", "70.00", "60.00"]


def test_bad_input_is_refused():
    truth, pred = _data(6, n=10)
    with pytest.raises(ValueError, match="differ in shape"):
        intensity_per_au(truth, pred[:5])
    bp4d = truth.copy()
    bp4d[0, 2] = 9  # BP4D's "not coded" left unconverted
    with pytest.raises(ValueError, match="column 2: intensity labels are 0-5.*got 9"):
        intensity_per_au(bp4d, pred)
    bad = pred.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match="y_pred column 1"):
        intensity_per_au(truth, bad)
    with pytest.raises(ValueError, match="4 per-AU values for 3 AU names"):
        intensity_dict(intensity_per_au(truth, pred), NAMES[:3])
    with pytest.raises(ValueError, match="ratings"):
        icc_3_1(np.zeros(5))
    assert np.isnan(icc_3_1(np.ones((4, 3))))
