"""BCE and multi-label circle loss against float64 numpy, incl. masking of -1 labels and extreme logits."""

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn, ops

from mindface_au.config import LossConfig
from mindface_au.losses import AULoss, BCEWithLogits, MultiLabelCircleLoss, create_loss


def np_bce(s, y):
    s, y = np.asarray(s, np.float64), np.asarray(y, np.float64)
    mask = y >= 0
    p = 1.0 / (1.0 + np.exp(-s))
    per = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return per[mask].sum() / max(mask.sum(), 1)


def np_circle(s, y):
    """Direct formula (moderate logits) with np.logaddexp.reduce for the stable variant."""
    s, y = np.asarray(s, np.float64), np.asarray(y, np.float64)
    rows = []
    for si, yi in zip(s, y):
        neg = si[yi == 0]
        pos = si[yi == 1]
        rows.append(np.logaddexp.reduce(np.r_[0.0, neg]) + np.logaddexp.reduce(np.r_[0.0, -pos]))
    return float(np.mean(rows))


def np_circle_naive(s, y):
    s, y = np.asarray(s, np.float64), np.asarray(y, np.float64)
    neg = np.where(y == 0, np.exp(s), 0).sum(1)
    pos = np.where(y == 1, np.exp(-s), 0).sum(1)
    return float(np.mean(np.log1p(neg) + np.log1p(pos)))


class _Grad(nn.Cell):
    def __init__(self, net):
        super().__init__()
        self.net = net
        self.grad = ops.GradOperation()

    def construct(self, logits, labels):
        return self.grad(self.net)(logits, labels)


def _data(seed=0, batch=6, scale=3.0, unlabelled=0.2):
    rng = np.random.default_rng(seed)
    s = (rng.standard_normal((batch, 12)) * scale).astype(np.float32)
    y = rng.integers(0, 2, (batch, 12)).astype(np.float32)
    y[rng.random((batch, 12)) < unlabelled] = -1
    return s, y


def _run(cell, s, y):
    return float(cell(ms.Tensor(s), ms.Tensor(y)).asnumpy())


def test_bce_matches_numpy():
    s, y = _data(0)
    assert _run(BCEWithLogits(), s, y) == pytest.approx(np_bce(s, y), rel=1e-5)


def test_circle_matches_numpy():
    s, y = _data(1)
    circle = _run(MultiLabelCircleLoss(), s, y)
    assert circle == pytest.approx(np_circle_naive(s, y), rel=1e-5)
    assert circle == pytest.approx(np_circle(s, y), rel=1e-5)


@pytest.mark.parametrize("bce,circle,wb,wc", [(True, True, 1.0, 1.0), (True, False, 1.0, 1.0), (False, True, 2.0, 0.5)])
def test_create_loss_switches_and_weights(bce, circle, wb, wc):
    s, y = _data(2)
    loss = create_loss(LossConfig(bce=bce, circle=circle, bce_weight=wb, circle_weight=wc))
    expected = (wb * np_bce(s, y) if bce else 0.0) + (wc * np_circle(s, y) if circle else 0.0)
    assert _run(loss, s, y) == pytest.approx(expected, rel=1e-5)


def test_unlabelled_entries_never_reach_the_loss():
    s, y = _data(3, unlabelled=0.3)
    loss = AULoss()
    base = _run(loss, s, y)
    s2 = s.copy()
    s2[y < 0] = np.random.default_rng(4).standard_normal(int((y < 0).sum())) * 100
    assert _run(loss, s2, y) == pytest.approx(base, rel=1e-6)
    # a frame with no labelled entry contributes 0 to the circle term and nothing to BCE
    y_none = np.full_like(y, -1)
    assert _run(MultiLabelCircleLoss(), s, y_none) == 0.0
    assert _run(BCEWithLogits(), s, y_none) == 0.0


def test_gradient_matches_numpy():
    s, y = _data(5)
    grad = _Grad(AULoss())(ms.Tensor(s), ms.Tensor(y)).asnumpy()
    s64 = s.astype(np.float64)
    mask = y >= 0
    expected = np.where(mask, 1 / (1 + np.exp(-s64)) - y, 0) / mask.sum()
    b = s.shape[0]
    neg_e = np.where(y == 0, np.exp(s64), 0)
    pos_e = np.where(y == 1, np.exp(-s64), 0)
    expected += neg_e / (1 + neg_e.sum(1, keepdims=True)) / b
    expected -= pos_e / (1 + pos_e.sum(1, keepdims=True)) / b
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("magnitude", [1e2, 1e4])
def test_extreme_logits_are_finite_and_exact(magnitude):
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, (4, 12)).astype(np.float32)
    y[0, :3] = -1
    s = (np.where(rng.random((4, 12)) < 0.5, 1.0, -1.0) * magnitude).astype(np.float32)
    s[1] = magnitude  # every AU of frame 1 maximally positive
    s[2] = -magnitude
    loss = AULoss()
    value = _run(loss, s, y)
    expected = np_bce_stable(s, y) + np_circle(s, y)
    assert np.isfinite(value)
    assert value == pytest.approx(expected, rel=1e-5)
    grad = _Grad(loss)(ms.Tensor(s), ms.Tensor(y)).asnumpy()
    assert np.all(np.isfinite(grad))
    assert np.all(grad[y < 0] == 0)


def np_bce_stable(s, y):
    s, y = np.asarray(s, np.float64), np.asarray(y, np.float64)
    mask = y >= 0
    per = np.logaddexp(0, s) - y * s
    return per[mask].sum() / max(mask.sum(), 1)


def test_denominators_are_means_over_coded_entries():
    """Per-AU "not coded" (-1, from BP4D's 9 or a list file's -1 / 9), incl. a frame with nothing coded: BCE is the
    sum over coded entries / their count, circle the sum over coded frames / their count (direct numpy loops)."""
    rng = np.random.default_rng(3)
    s = rng.normal(0, 2, (5, 8))
    y = rng.integers(0, 2, (5, 8)).astype(np.float64)
    y[rng.random((5, 8)) < 0.3] = -1
    y[2] = -1  # a frame with no coded AU
    bce_sum, bce_n, circle_sum, circle_n = 0.0, 0, 0.0, 0
    for i in range(5):
        coded = [j for j in range(8) if y[i, j] >= 0]
        for j in coded:
            p = 1 / (1 + np.exp(-s[i, j]))
            bce_sum += -np.log(p) if y[i, j] == 1 else -np.log(1 - p)
            bce_n += 1
        if coded:
            neg = sum(np.exp(s[i, j]) for j in coded if y[i, j] == 0)
            pos = sum(np.exp(-s[i, j]) for j in coded if y[i, j] == 1)
            circle_sum += np.log1p(neg) + np.log1p(pos)
            circle_n += 1
    logits, labels = ms.Tensor(s, ms.float32), ms.Tensor(y, ms.float32)
    assert float(BCEWithLogits()(logits, labels).asnumpy()) == pytest.approx(bce_sum / bce_n, rel=1e-5)
    assert float(MultiLabelCircleLoss()(logits, labels).asnumpy()) == pytest.approx(circle_sum / circle_n, rel=1e-5)
    assert circle_n == 4 and bce_n < 40
