"""Learning-rate schedule and optimiser of a training run (mindcv's `create_scheduler` / `create_optimizer`).

Schedule reading: `train.milestones` are 1-based epochs at which the lr is multiplied by `train.lr_gamma` (0.1),
so the paper's "4th, 6th and 8th epoch" ([4, 6, 8]) trains epochs 1-3 at lr, 4-5 at lr/10, 6-7 at lr/100 and
8-15 at lr/1000. `train.warmup_epochs` W ramps the first round(W * steps_per_epoch) = n steps linearly: step s
(0-based) uses the schedule's lr times (s + 1) / n, so the first step trains at lr / n and step n - 1 at the full
lr (a global batch scaled with the rank count needs this, see docs/training.md, the linear rule). The lr is a per-step
list indexed by the optimiser's global step, which a resumed run restores, so a resumed run continues the schedule
where it stopped.
"""

from typing import List

from mindface_au.errors import UserError

__all__ = ["piecewise_lr", "linear_warmup", "create_scheduler", "param_groups", "create_optimizer", "OPTIMIZERS"]

OPTIMIZERS = ("sgd", "adamw")


def piecewise_lr(base_lr: float, milestones: List[int], gamma: float, epochs: int, steps_per_epoch: int) -> List[float]:
    """Per-step lr: base_lr * gamma^(number of 1-based milestones reached), constant within an epoch."""
    lrs = []
    for epoch in range(1, epochs + 1):
        lr = base_lr * gamma ** sum(epoch >= m for m in milestones)
        lrs.extend([lr] * steps_per_epoch)
    return lrs


def linear_warmup(lrs: List[float], warmup_steps: int) -> List[float]:
    """`lrs` with step s < warmup_steps scaled by (s + 1) / warmup_steps (0 steps: unchanged)."""
    n = min(int(warmup_steps), len(lrs))
    return [lr * (s + 1) / n if s < n else lr for s, lr in enumerate(lrs)]


def create_scheduler(train_cfg, steps_per_epoch: int) -> List[float]:
    """The whole run's per-step lr (`train.epochs * steps_per_epoch` values) from the `train` config section.

    One value per global step: the piecewise schedule, then the linear warm-up over `train.warmup_epochs`.
    """
    if steps_per_epoch <= 0:
        raise ValueError(f"steps_per_epoch must be positive, got {steps_per_epoch}")
    lrs = piecewise_lr(train_cfg.lr, train_cfg.milestones, train_cfg.lr_gamma, train_cfg.epochs, steps_per_epoch)
    return linear_warmup(lrs, round(train_cfg.warmup_epochs * steps_per_epoch))


def param_groups(net, weight_decay: float) -> List[dict]:
    """Trainable parameters in two groups: weights with `weight_decay`, and BN, bias, PReLU (ndim <= 1) without."""
    params = net.trainable_params()
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def create_optimizer(net, train_cfg, lr: List[float], loss_scale: float = 1.0):
    """The optimiser named by `train.optimizer` over `param_groups(net, train.weight_decay)` with the per-step `lr`.

    "sgd" is nn.Momentum: the same update as nn.SGD without dampening or Nesterov (and as PyTorch's SGD), without
    the parameter-sized `stat` buffer nn.SGD allocates (250 MB for IResNet100; docs/performance.md).
    "adamw" is nn.AdamWeightDecay, which takes no loss scale: amp_level O0, or any level on GPU/Ascend, where the
    dynamic loss scale is removed from the gradients before the optimiser (engine/runtime.py refuses the rest).
    """
    from mindspore import nn

    name = train_cfg.optimizer.lower()
    if name not in OPTIMIZERS:
        raise UserError(f"config key train.optimizer: got {train_cfg.optimizer!r}, expected {' or '.join(OPTIMIZERS)}")
    groups = param_groups(net, train_cfg.weight_decay)
    if name == "sgd":
        return nn.Momentum(groups, learning_rate=lr, momentum=train_cfg.momentum, loss_scale=loss_scale)
    if loss_scale != 1.0:
        raise UserError(
            "config key train.optimizer: adamw takes no loss scale, so with a fixed loss scale (amp_level O1/O2/O3 on "
            "CPU) it runs at amp_level O0 only; use sgd"
        )
    return nn.AdamWeightDecay(groups, learning_rate=lr)
