"""engine/optim.py: the per-step lr schedule against an independent computation, the optimiser's type, groups and
update (momentum, weight decay, lr by global step) against numpy."""

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from mindface_au.config import TrainConfig
from mindface_au.engine.optim import create_optimizer, create_scheduler, param_groups, piecewise_lr
from mindface_au.errors import UserError


def _reference_lr(base_lr, milestones, gamma, epochs, steps_per_epoch):
    """lr of every global step: the 1-based epoch of the step, and the count of milestones <= that epoch."""
    step = np.arange(epochs * steps_per_epoch)
    epoch = step // steps_per_epoch + 1
    reached = np.searchsorted(np.sort(milestones), epoch, side="right")
    return base_lr * np.power(gamma, reached)


def _net():
    return nn.SequentialCell([nn.Dense(3, 4), nn.BatchNorm1d(4), nn.PReLU(), nn.Dense(4, 2)])


def test_piecewise_lr_reading_of_the_paper():
    lrs = piecewise_lr(0.001, [4, 6, 8], 0.1, 15, 2)
    per_epoch = lrs[::2]
    assert len(lrs) == 30
    np.testing.assert_allclose(per_epoch[:3], [1e-3] * 3)  # epochs 1-3
    np.testing.assert_allclose(per_epoch[3:5], [1e-4] * 2)  # epochs 4-5
    np.testing.assert_allclose(per_epoch[5:7], [1e-5] * 2)  # epochs 6-7
    np.testing.assert_allclose(per_epoch[7:], [1e-6] * 8)  # epochs 8-15


@pytest.mark.parametrize(
    "lr, milestones, gamma, epochs, steps",
    [
        (0.001, [4, 6, 8], 0.1, 15, 3),  # the paper
        (0.05, [2], 0.1, 2, 5),  # the tiny test run
        (0.1, [1], 0.5, 3, 1),  # a milestone at epoch 1 lowers the first epoch already
        (0.2, [8, 3], 0.1, 10, 2),  # unsorted milestones
        (0.01, [20], 0.1, 4, 2),  # a milestone past the end changes nothing
        (0.01, [], 0.1, 3, 4),  # constant
    ],
)
def test_create_scheduler_matches_an_independent_computation(lr, milestones, gamma, epochs, steps):
    cfg = TrainConfig(lr=lr, milestones=milestones, lr_gamma=gamma, epochs=epochs)
    lrs = create_scheduler(cfg, steps)
    assert isinstance(lrs, list) and len(lrs) == epochs * steps
    np.testing.assert_allclose(lrs, _reference_lr(lr, milestones, gamma, epochs, steps), rtol=1e-12)


def test_create_scheduler_refuses_empty_epochs():
    with pytest.raises(ValueError, match="steps_per_epoch"):
        create_scheduler(TrainConfig(), 0)


def test_param_groups_exclude_bn_bias_prelu_from_weight_decay():
    net = _net()
    groups = param_groups(net, 5e-4)
    decay, no_decay = groups
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    assert sorted(p.name for p in decay["params"]) == ["0.weight", "3.weight"]
    assert all(p.ndim <= 1 for p in no_decay["params"])
    assert {p.name for p in decay["params"] + no_decay["params"]} == {p.name for p in net.trainable_params()}
    # a group left empty is dropped (MindSpore refuses an empty group)
    only_bias = nn.SequentialCell([nn.BatchNorm1d(4)])
    assert [g["weight_decay"] for g in param_groups(only_bias, 5e-4)] == [0.0]


def test_sgd_is_momentum_with_decay_groups_and_the_step_lr():
    cfg = TrainConfig(optimizer="sgd", lr=0.1, milestones=[2], epochs=3, momentum=0.8, weight_decay=0.01)
    net = _net()
    opt = create_optimizer(net, cfg, create_scheduler(cfg, 1))
    assert type(opt) is nn.Momentum
    assert float(opt.momentum.asnumpy()) == pytest.approx(0.8)
    decay = {p.name: wd for p, wd in zip(opt._parameters, opt.group_weight_decay)}
    assert decay == {p.name: (0.01 if p.ndim > 1 else 0.0) for p in net.trainable_params()}

    # three updates with given gradients equal PyTorch-style SGD (v = m v + g + wd w; w -= lr v) in numpy, with the
    # lr of each global step (0.1, then 0.01 from epoch 2)
    params = opt._parameters
    want = {p.name: p.asnumpy().copy() for p in params}
    velocity = {k: np.zeros_like(x) for k, x in want.items()}
    rng = np.random.default_rng(0)
    for lr in (0.1, 0.01, 0.01):
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
        opt(tuple(ms.Tensor(g) for g in grads))
        for p, g in zip(params, grads):
            wd = 0.01 if p.ndim > 1 else 0.0
            velocity[p.name] = 0.8 * velocity[p.name] + g + wd * want[p.name]
            want[p.name] = want[p.name] - lr * velocity[p.name]
    assert int(opt.global_step.asnumpy()[0]) == 3
    for p in params:
        np.testing.assert_allclose(p.asnumpy(), want[p.name], rtol=1e-5, atol=1e-6, err_msg=p.name)


def test_adamw_and_errors():
    cfg = TrainConfig(optimizer="AdamW", epochs=1)
    opt = create_optimizer(_net(), cfg, create_scheduler(cfg, 2))
    assert type(opt) is nn.AdamWeightDecay
    with pytest.raises(UserError, match="amp_level O0 only"):
        create_optimizer(_net(), cfg, create_scheduler(cfg, 2), loss_scale=1024.0)
    with pytest.raises(UserError, match="train.optimizer: got 'adam', expected sgd or adamw"):
        create_optimizer(_net(), TrainConfig(optimizer="adam"), [0.1])
    opt = create_optimizer(_net(), TrainConfig(), [0.1], loss_scale=1024.0)
    assert opt.loss_scale == 1024.0


@pytest.mark.parametrize("warmup, steps", [(1, 4), (0.5, 6), (2.5, 2), (20, 3)])
def test_linear_warmup_matches_an_independent_computation(warmup, steps):
    cfg = TrainConfig(lr=0.2, milestones=[2], lr_gamma=0.1, epochs=3, warmup_epochs=warmup)
    lrs = np.asarray(create_scheduler(cfg, steps))
    n = min(int(round(warmup * steps)), 3 * steps)  # warm-up steps, at most the whole run
    s = np.arange(3 * steps)
    factor = np.where(s < n, (s + 1) / n, 1.0)  # step s (0-based) at (s + 1) / n of the schedule's lr
    np.testing.assert_allclose(lrs, _reference_lr(0.2, [2], 0.1, 3, steps) * factor, rtol=1e-12)
    assert lrs[n - 1] == pytest.approx(_reference_lr(0.2, [2], 0.1, 3, steps)[n - 1])  # full lr at the last one
    np.testing.assert_allclose(
        create_scheduler(TrainConfig(lr=0.2, epochs=3), steps), _reference_lr(0.2, [4, 6, 8], 0.1, 3, steps)
    )
