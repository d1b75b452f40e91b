"""The challenge metric: per-AU F1 at a fixed threshold, accumulated over the whole set, and its mean.

Counts are kept per AU (true positives, false positives, false negatives) so a set can be scored in chunks
(`F1Accumulator`) with the same result as scoring it in one go. Labels of -1 (unlabelled, or that AU not coded
in that frame) are ignored. The AU set is whatever the columns are: pass the model's or dataset's names to
`per_au_dict` / `format_f1` (default ABAW).
"""

from typing import Dict, Optional, Sequence

import numpy as np

from mindface_au.config import AU_NAMES

__all__ = ["confusion_counts", "f1_from_counts", "f1_per_au", "mean_f1", "F1Accumulator", "per_au_dict", "format_f1"]


def _as_2d(name: str, array) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{name}: expected an (N, C) array, got shape {array.shape}")
    return array


def confusion_counts(y_true, y_pred, mask: Optional[np.ndarray] = None) -> np.ndarray:
    """(3, C) int64 array of true positives, false positives and false negatives per column.

    Entries where `y_true` is negative (the -1 'unlabelled' code) or `mask` is False are not counted.
    """
    y_true = _as_2d("y_true", y_true)
    y_pred = _as_2d("y_pred", y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    valid = y_true >= 0
    if mask is not None:
        valid &= np.broadcast_to(np.asarray(mask, dtype=bool), valid.shape)
    truth = (y_true > 0) & valid
    pred = (y_pred > 0) & valid
    tp = np.sum(truth & pred, axis=0, dtype=np.int64)
    fp = np.sum(~truth & pred, axis=0, dtype=np.int64)
    fn = np.sum(truth & ~pred, axis=0, dtype=np.int64)
    return np.stack([tp, fp, fn])


def f1_from_counts(counts: np.ndarray) -> np.ndarray:
    """F1 = 2TP / (2TP + FP + FN) per column; 0 where the denominator is 0 (sklearn's zero_division=0)."""
    tp, fp, fn = (np.asarray(c, dtype=np.float64) for c in counts)
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(denom), where=denom > 0)


def f1_per_au(y_true, y_pred) -> np.ndarray:
    """Per-AU F1 of 0/1 arrays of shape (N, C), -1 = not coded; sklearn f1_score(average=None, zero_division=0)."""
    return f1_from_counts(confusion_counts(y_true, y_pred))


def mean_f1(y_true, y_pred) -> float:
    """The challenge score: the unweighted mean of the per-AU F1 values."""
    return float(np.mean(f1_per_au(y_true, y_pred)))


class F1Accumulator:
    """Accumulate confusion counts batch by batch (or video by video) and report per-AU and mean F1."""

    def __init__(self, num_classes: int = len(AU_NAMES)) -> None:
        self.counts = np.zeros((3, num_classes), dtype=np.int64)

    def update(self, y_true, y_pred, mask: Optional[np.ndarray] = None) -> None:
        self.counts += confusion_counts(y_true, y_pred, mask)

    def per_au(self) -> np.ndarray:
        return f1_from_counts(self.counts)

    def mean(self) -> float:
        return float(np.mean(self.per_au()))


def _check_names(values: Sequence[float], names: Sequence[str]) -> None:
    if len(values) != len(names):
        raise ValueError(f"{len(values)} per-AU values for {len(names)} AU names ({', '.join(names)})")


def per_au_dict(values: Sequence[float], names: Sequence[str] = AU_NAMES) -> Dict[str, float]:
    """{"AU1": v1, ...} with plain floats (JSON-ready); `names` is the model's or dataset's AU set."""
    values = list(values)
    _check_names(values, names)
    return {name: float(v) for name, v in zip(names, values)}


def format_f1(values: Sequence[float], names: Sequence[str] = AU_NAMES, label: str = "") -> str:
    """Two aligned lines: AU names and F1 in percent, then the mean (the paper's table layout)."""
    values = list(values)
    _check_names(values, names)
    head = f"{'':12s}" + "".join(f"{n:>7s}" for n in names) + f"{'F1':>8s}"
    row = f"{label:12s}" + "".join(f"{100 * v:7.2f}" for v in values) + f"{100 * float(np.mean(values)):8.2f}"
    return head + "\n" + row
