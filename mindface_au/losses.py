"""Training losses: BCE on sigmoid(logits) + multi-label circle loss on the logits (paper eq. 1-3).

Both terms work on raw logits in a numerically stable form, so logits of +-1e4 give finite values and gradients:

- BCE with logits: softplus(s) - y * s, softplus(s) = max(s, 0) + log(1 + exp(-|s|)).
- Circle loss (Sun et al. 2020, multi-label form): log(1 + sum_{neg} e^{s_i}) + log(1 + sum_{pos} e^{-s_j}).
  Each term is a logsumexp over the masked scores plus the implicit 0 term: log(1 + sum e^z) =
  logsumexp([0, z...]), computed as m + log(sum exp(z - m)) with m the (detached) maximum.

Labels are float32 (B, C) in {0, 1}, C the model's AUs. Any entry < 0 (Aff-Wild2's -1 "unlabelled", BP4D's 9
and a list file's -1 / 9 "not coded", which the readers turn into -1) is masked out of both terms. BCE is the
mean over the coded entries; the circle loss is the mean, over the frames with at least one coded entry, of the
per-frame sum over that frame's coded entries. tests/test_losses.py pins both denominators against numpy.

With the intensity head (model.intensity) the network returns (logits (B, C), intensity (B, K)) and a batch's
label column holds both targets side by side, (B, C + K): the C occurrence labels, then the K intensities on the
0-5 scale (-1 = not coded). `OccurrenceIntensityLoss` splits them: the occurrence loss above on the first C, plus
loss.intensity_weight times the mean squared error of intensity / 5 over the coded intensity entries (so a
perfect guess costs 0 and the worst 1, the scale of the BCE term).
"""

import mindspore as ms
from mindspore import nn, ops

from mindface_au.au_sets import INTENSITY_MAX
from mindface_au.config import LossConfig, ModelConfig

__all__ = ["BCEWithLogits", "MultiLabelCircleLoss", "AULoss", "IntensityLoss", "OccurrenceIntensityLoss", "create_loss"]

_MASKED = -1.0e12  # added to masked scores so exp() underflows to exactly 0


def _log1p_sum_exp(scores: ms.Tensor, mask: ms.Tensor) -> ms.Tensor:
    """Per row: log(1 + sum_{mask} e^{scores}), stable for any score magnitude; (B, n) -> (B,)."""
    z = scores * mask + (1.0 - mask) * _MASKED
    z = ops.concat((ops.zeros((z.shape[0], 1), z.dtype), z), axis=1)  # the implicit e^0 = 1 term
    m = ops.stop_gradient(ops.ReduceMax(keep_dims=True)(z, 1))
    return (m + ops.log(ops.ReduceSum(keep_dims=True)(ops.exp(z - m), 1))).squeeze(1)


class BCEWithLogits(nn.Cell):
    """Mean binary cross-entropy of sigmoid(logits) over the labelled entries (labels >= 0)."""

    def construct(self, logits: ms.Tensor, labels: ms.Tensor) -> ms.Tensor:
        s = logits.astype(ms.float32)
        y = labels.astype(ms.float32)
        mask = (y >= 0).astype(ms.float32)
        per_entry = ops.relu(s) - s * y + ops.log(1.0 + ops.exp(-ops.abs(s)))
        return (per_entry * mask).sum() / ops.maximum(mask.sum(), 1.0)


class MultiLabelCircleLoss(nn.Cell):
    """Mean over coded frames of log(1 + sum_{y=0} e^{s}) + log(1 + sum_{y=1} e^{-s}); entries y < 0 are ignored.

    A frame with no coded entry adds 0 and is not counted in the mean."""

    def construct(self, logits: ms.Tensor, labels: ms.Tensor) -> ms.Tensor:
        s = logits.astype(ms.float32)
        y = labels.astype(ms.float32)
        pos = (y > 0.5).astype(ms.float32)
        neg = ((y >= 0) & (y <= 0.5)).astype(ms.float32)
        per_frame = _log1p_sum_exp(s, neg) + _log1p_sum_exp(-s, pos)
        coded = ((pos + neg).sum(axis=1) > 0).astype(ms.float32)
        return (per_frame * coded).sum() / ops.maximum(coded.sum(), 1.0)


class AULoss(nn.Cell):
    """bce_weight * BCE + circle_weight * circle loss, each term switchable (paper eq. 3 with both weights 1)."""

    def __init__(self, bce: bool = True, circle: bool = True, bce_weight: float = 1.0, circle_weight: float = 1.0):
        super().__init__()
        if not bce and not circle:
            raise ValueError("AULoss needs at least one of bce and circle")
        self.use_bce = bool(bce)
        self.use_circle = bool(circle)
        self.bce_weight = float(bce_weight)
        self.circle_weight = float(circle_weight)
        self.bce = BCEWithLogits()
        self.circle = MultiLabelCircleLoss()

    def construct(self, logits: ms.Tensor, labels: ms.Tensor) -> ms.Tensor:
        loss = ops.zeros((), ms.float32)
        if self.use_bce:
            loss = loss + self.bce_weight * self.bce(logits, labels)
        if self.use_circle:
            loss = loss + self.circle_weight * self.circle(logits, labels)
        return loss


class IntensityLoss(nn.Cell):
    """Mean of ((prediction - label) / 5)^2 over the coded entries (labels >= 0); 0 when none is coded."""

    def construct(self, intensity: ms.Tensor, labels: ms.Tensor) -> ms.Tensor:
        p = intensity.astype(ms.float32)
        y = labels.astype(ms.float32)
        mask = (y >= 0).astype(ms.float32)
        err = (p - y) / INTENSITY_MAX
        return (err * err * mask).sum() / ops.maximum(mask.sum(), 1.0)


class OccurrenceIntensityLoss(nn.Cell):
    """occurrence loss (of the first `num_classes` label columns) + intensity_weight * IntensityLoss (the rest).

    construct((logits, intensity), labels (B, num_classes + K)); `occurrence` None trains the intensity alone."""

    def __init__(self, occurrence, num_classes: int, intensity_weight: float = 1.0) -> None:
        super().__init__()
        self.occurrence = occurrence
        self.use_occurrence = occurrence is not None
        self.num_classes = int(num_classes)
        self.intensity_weight = float(intensity_weight)
        self.intensity = IntensityLoss()

    def construct(self, outputs, labels: ms.Tensor) -> ms.Tensor:
        logits, intensity = outputs[0], outputs[1]
        loss = self.intensity_weight * self.intensity(intensity, labels[:, self.num_classes :])
        if self.use_occurrence:
            loss = loss + self.occurrence(logits, labels[:, : self.num_classes])
        return loss


def create_loss(loss_cfg: LossConfig, model_cfg: ModelConfig = None, intensity_only: bool = False) -> nn.Cell:
    """The loss a LossConfig describes for the network of `model_cfg`.

    Occurrence only: construct(logits (B, C), labels float32 (B, C)) -> scalar. With model.intensity:
    OccurrenceIntensityLoss over (logits, intensity) and labels (B, C + K); `intensity_only` drops the occurrence
    term (train.intensity_only)."""
    occurrence = AULoss(loss_cfg.bce, loss_cfg.circle, loss_cfg.bce_weight, loss_cfg.circle_weight)
    if model_cfg is None or not model_cfg.intensity:
        return occurrence
    return OccurrenceIntensityLoss(
        None if intensity_only else occurrence, model_cfg.num_classes, loss_cfg.intensity_weight
    )
