"""The challenge metric: per-AU F1 at a fixed threshold, accumulated over the whole set, and its mean.

Counts are kept per AU (true positives, false positives, false negatives and coded frames) so a set can be scored
in chunks (`F1Accumulator`), or in shards on several processes whose counts are summed, with the same result as
scoring it in one go. Labels of -1 (unlabelled, or that AU not coded in that frame) are ignored. The AU set is
whatever the columns are: pass the model's or dataset's names to `per_au_dict` / `format_f1` (default ABAW).

No number over zero samples: an AU with no coded frame in the scored part has no F1 (NaN here, `None` in
`per_au_dict`, `n/a` in `format_f1`) and is left out of the mean, which says how many AUs it covers. An AU with
coded frames but no positive and no positive prediction scores 0, as sklearn's `zero_division=0` does.
"""

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from mindface_au.config import AU_NAMES

__all__ = [
    "COUNT_ROWS",
    "confusion_counts",
    "f1_from_counts",
    "f1_per_au",
    "mean_f1",
    "mean_of_coded",
    "format_mean",
    "F1Accumulator",
    "per_au_dict",
    "format_f1",
]

COUNT_ROWS = ("tp", "fp", "fn", "coded")  # the rows of a counts array, one column per AU


def _as_2d(name: str, array) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{name}: expected an (N, C) array, got shape {array.shape}")
    return array


def confusion_counts(y_true, y_pred, mask: Optional[np.ndarray] = None) -> np.ndarray:
    """(4, C) int64 array of true positives, false positives, false negatives and coded frames per column.

    Entries where `y_true` is negative (the -1 'unlabelled' code) or `mask` is False are not counted (and are not
    coded frames).
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
    coded = np.sum(valid, axis=0, dtype=np.int64)
    return np.stack([tp, fp, fn, coded])


def f1_from_counts(counts: np.ndarray) -> np.ndarray:
    """F1 = 2TP / (2TP + FP + FN) per column of a (4, C) counts array; NaN where the AU has no coded frame, 0
    where it has coded frames but the denominator is 0 (sklearn's zero_division=0)."""
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[0] != len(COUNT_ROWS):
        raise ValueError(
            f"counts: expected a ({len(COUNT_ROWS)}, C) array ({', '.join(COUNT_ROWS)}), got {counts.shape}"
        )
    tp, fp, fn, coded = (np.asarray(c, dtype=np.float64) for c in counts)
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(denom), where=denom > 0)
    f1[coded <= 0] = np.nan
    return f1


def f1_per_au(y_true, y_pred) -> np.ndarray:
    """Per-AU F1 of 0/1 arrays of shape (N, C), -1 = not coded: sklearn f1_score(average=None, zero_division=0)
    for every AU with a coded frame, NaN for an AU without one."""
    return f1_from_counts(confusion_counts(y_true, y_pred))


def mean_of_coded(values: Sequence[float]) -> Tuple[Optional[float], int]:
    """(mean over the AUs that have an F1, how many those are); (None, 0) when no AU has one."""
    values = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    known = ~np.isnan(values)
    count = int(known.sum())
    return (float(values[known].mean()) if count else None), count


def mean_f1(y_true, y_pred) -> Optional[float]:
    """The challenge score: the unweighted mean of the per-AU F1 values over the AUs with coded frames (None if
    none has one)."""
    return mean_of_coded(f1_per_au(y_true, y_pred))[0]


def format_mean(values: Sequence[float]) -> str:
    """The mean F1 in percent as printed next to a table: "78.20", "78.20 over 11 of 12 AUs" when some AU has no
    coded frame, "n/a (no AU has a coded frame)" when none has."""
    mean, count = mean_of_coded(values)
    if mean is None:
        return "n/a (no AU has a coded frame)"
    total = len(values)
    return f"{100 * mean:.2f}" + ("" if count == total else f" over {count} of {total} AUs")


class F1Accumulator:
    """Accumulate counts batch by batch (or video by video) and report per-AU and mean F1 (see module docstring)."""

    def __init__(self, num_classes: int = len(AU_NAMES)) -> None:
        self.counts = np.zeros((len(COUNT_ROWS), num_classes), dtype=np.int64)

    def update(self, y_true, y_pred, mask: Optional[np.ndarray] = None) -> None:
        self.counts += confusion_counts(y_true, y_pred, mask)

    def coded(self) -> np.ndarray:
        """Coded frames per AU."""
        return self.counts[COUNT_ROWS.index("coded")].copy()

    def per_au(self) -> np.ndarray:
        return f1_from_counts(self.counts)

    def mean(self) -> Optional[float]:
        return mean_of_coded(self.per_au())[0]


def _check_names(values: Sequence, names: Sequence[str]) -> None:
    if len(values) != len(names):
        raise ValueError(f"{len(values)} per-AU values for {len(names)} AU names ({', '.join(names)})")


def _plain(value) -> Optional[float]:
    return None if value is None or np.isnan(value) else float(value)


def per_au_dict(values: Sequence[float], names: Sequence[str] = AU_NAMES) -> Dict[str, Optional[float]]:
    """{"AU1": v1, ...} with plain floats, None for an AU without a coded frame (JSON null); `names` is the
    model's or dataset's AU set."""
    values = list(values)
    _check_names(values, names)
    return {name: _plain(v) for name, v in zip(names, values)}


def format_f1(values: Sequence[Optional[float]], names: Sequence[str] = AU_NAMES, label: str = "") -> str:
    """Two aligned lines: AU names and F1 in percent (n/a: no coded frame), then the mean over the AUs that have
    one (the paper's table layout); a mean over fewer than all AUs says how many it covers."""
    values = [_plain(v) for v in values]
    _check_names(values, names)
    mean, count = mean_of_coded(values)
    head = f"{'':12s}" + "".join(f"{n:>7s}" for n in names) + f"{'F1':>8s}"
    row = f"{label:12s}" + "".join("    n/a" if v is None else f"{100 * v:7.2f}" for v in values)
    row += "     n/a" if mean is None else f"{100 * mean:8.2f}"
    if mean is not None and count < len(values):
        row += f" (mean over {count} of {len(values)} AUs)"
    return head + "\n" + row
