"""The challenge metric: per-AU F1 at a fixed threshold, accumulated over the whole set, and its mean.

Counts are kept per AU (true positives, false positives, false negatives and coded frames) so a set can be scored
in chunks (`F1Accumulator`), or in shards on several processes whose counts are summed, with the same result as
scoring it in one go. Labels of -1 (unlabelled, or that AU not coded in that frame) are ignored. The AU set is
whatever the columns are: pass the model's or dataset's names to `per_au_dict` / `format_f1` (default ABAW).

No number over zero samples: an AU with no coded frame in the scored part has no F1 (NaN here, `None` in
`per_au_dict`, `n/a` in `format_f1`) and is left out of the mean, which says how many AUs it covers. An AU with
coded frames but no positive and no positive prediction scores 0, as sklearn's `zero_division=0` does.

Intensity (FACS 0-5) is scored with the field's three metrics per AU (`intensity_per_au`): ICC(3,1) between label
and prediction as two raters over the frames (Shrout & Fleiss 1979; `icc_3_1` takes any number of raters), Pearson
correlation and mean absolute error. Uncoded labels (negative or NaN, or `mask` False) are left out. An AU whose
labels do not vary (or, for Pearson, whose predictions do not), or with fewer than 2 coded frames, has no ICC/PCC
(NaN, `None`, `n/a`), not 0; MAE needs one coded frame. Means leave such AUs out and say how many they cover.
"""

from typing import Dict, NamedTuple, Optional, Sequence, Tuple

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
    "INTENSITY_METRICS",
    "icc_3_1",
    "IntensityScores",
    "intensity_per_au",
    "intensity_dict",
    "format_intensity",
    "format_intensity_means",
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
    """(mean over the AUs that have a value (an F1, an ICC, ...), how many those are); (None, 0) when none has."""
    values = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    known = ~np.isnan(values)
    count = int(known.sum())
    return (float(values[known].mean()) if count else None), count


def mean_f1(y_true, y_pred) -> Optional[float]:
    """The challenge score: the unweighted mean of the per-AU F1 values over the AUs with coded frames (None if
    none has one)."""
    return mean_of_coded(f1_per_au(y_true, y_pred))[0]


def format_mean(values: Sequence[float], scale: float = 100.0, missing: str = "no AU has a coded frame") -> str:
    """The mean F1 in percent as printed next to a table: "78.20", "78.20 over 11 of 12 AUs" when some AU has no
    coded frame, "n/a (no AU has a coded frame)" when none has. Other metrics pass their `scale` (1 for ICC, PCC
    and MAE) and the reason no AU has a value (`missing`)."""
    mean, count = mean_of_coded(values)
    if mean is None:
        return f"n/a ({missing})"
    total = len(values)
    return f"{scale * mean:.2f}" + ("" if count == total else f" over {count} of {total} AUs")


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


# --- intensity (0-5): ICC(3,1), Pearson correlation, mean absolute error ---

INTENSITY_METRICS = ("icc", "pcc", "mae")
_INTENSITY_TITLES = {"icc": "ICC", "pcc": "PCC", "mae": "MAE"}
_INTENSITY_MISSING = {
    "icc": "no AU has 2 coded frames with varying labels",
    "pcc": "no AU has 2 coded frames with varying labels and predictions",
    "mae": "no AU has a coded frame",
}


def icc_3_1(ratings) -> float:
    """ICC(3,1) of an (n targets, k raters) array (Shrout & Fleiss 1979, two-way mixed, consistency, single
    measures): (BMS - EMS) / (BMS + (k - 1) EMS), BMS the between-targets and EMS the residual mean square of the
    two-way ANOVA. NaN with fewer than 2 targets or raters, or when the denominator is 0 (no variation but the
    raters' offsets)."""
    ratings = np.asarray(ratings, dtype=np.float64)
    if ratings.ndim != 2:
        raise ValueError(f"ratings: expected an (n targets, k raters) array, got shape {ratings.shape}")
    n, k = ratings.shape
    if n < 2 or k < 2:
        return float("nan")
    grand = ratings.mean()
    target_means = ratings.mean(axis=1, keepdims=True)
    rater_means = ratings.mean(axis=0, keepdims=True)
    bms = k * np.sum((target_means - grand) ** 2) / (n - 1)
    ems = np.sum((ratings - target_means - rater_means + grand) ** 2) / ((n - 1) * (k - 1))
    denom = bms + (k - 1) * ems
    return float((bms - ems) / denom) if denom > 0 else float("nan")


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r of two 1-D float64 arrays; NaN with fewer than 2 values or when either does not vary."""
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    r = np.sum(dx * dy) / np.sqrt(np.sum(dx * dx) * np.sum(dy * dy))
    return float(np.clip(r, -1.0, 1.0))


class IntensityScores(NamedTuple):
    """Per-AU intensity scores, one float64 array of C values each: ICC(3,1), Pearson r and MAE (NaN: no value),
    and the number of coded frames they were computed over."""

    icc: np.ndarray
    pcc: np.ndarray
    mae: np.ndarray
    coded: np.ndarray


def intensity_per_au(y_true, y_pred, mask: Optional[np.ndarray] = None) -> IntensityScores:
    """ICC(3,1), Pearson r and MAE per column of (N, C) intensity labels and predictions on the 0-5 scale.

    A label that is negative (-1: not coded) or NaN, or where `mask` is False, is left out with its prediction.
    ICC (label and prediction as 2 raters, `icc_3_1`) is NaN for an AU with fewer than 2 coded frames or labels
    that do not vary; Pearson r also when the predictions do not vary; MAE is NaN only without a coded frame.
    Coded labels above 5 (e.g. BP4D's 9 = not coded, left unconverted) or predictions that are not finite at a
    coded frame are refused.
    """
    y_true = _as_2d("y_true", y_true).astype(np.float64)
    y_pred = _as_2d("y_pred", y_pred).astype(np.float64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    valid = np.isfinite(y_true)
    valid[valid] = y_true[valid] >= 0
    if mask is not None:
        valid &= np.broadcast_to(np.asarray(mask, dtype=bool), valid.shape)
    columns = y_true.shape[1]
    icc, pcc, mae = (np.full(columns, np.nan) for _ in range(3))
    coded = valid.sum(axis=0).astype(np.int64)
    for c in range(columns):
        truth, pred = y_true[valid[:, c], c], y_pred[valid[:, c], c]
        if truth.size and truth.max() > 5:
            raise ValueError(
                f"y_true column {c}: intensity labels are 0-5 (negative or NaN: not coded), got {truth.max():g}"
            )
        if not np.all(np.isfinite(pred)):
            raise ValueError(f"y_pred column {c}: a prediction at a coded frame is not finite")
        if truth.size:
            mae[c] = np.mean(np.abs(pred - truth))
        if truth.size >= 2 and not np.all(truth == truth[0]):
            icc[c] = icc_3_1(np.stack([truth, pred], axis=1))
            pcc[c] = _pearson(truth, pred)
    return IntensityScores(icc, pcc, mae, coded)


def intensity_dict(scores: IntensityScores, names: Sequence[str]) -> Dict:
    """The JSON form of `intensity_per_au` output: per-AU dicts "icc", "pcc", "mae" (None: no value), their means
    "mean_icc", "mean_pcc", "mean_mae" (None when no AU has one), "mean_aus" (how many AUs each mean covers) and
    "coded_frames" per AU."""
    result: Dict = {metric: per_au_dict(getattr(scores, metric), names) for metric in INTENSITY_METRICS}
    means = {metric: mean_of_coded(getattr(scores, metric)) for metric in INTENSITY_METRICS}
    result.update({f"mean_{metric}": means[metric][0] for metric in INTENSITY_METRICS})
    result["mean_aus"] = {metric: means[metric][1] for metric in INTENSITY_METRICS}
    result["coded_frames"] = {name: int(n) for name, n in zip(names, scores.coded)}
    return result


def format_intensity(scores: IntensityScores, names: Sequence[str], label: str = "") -> str:
    """A table like `format_f1`'s: AU names, then one row each of ICC, PCC and MAE (n/a: no value) with the mean
    over the AUs that have one, which says how many it covers when that is fewer than all."""
    head = f"{label:12s}" + "".join(f"{n:>7s}" for n in names) + f"{'mean':>8s}"
    lines = [head]
    for metric in INTENSITY_METRICS:
        values = [_plain(v) for v in getattr(scores, metric)]
        _check_names(values, names)
        mean, count = mean_of_coded(values)
        row = f"{_INTENSITY_TITLES[metric]:12s}" + "".join("    n/a" if v is None else f"{v:7.2f}" for v in values)
        row += "     n/a" if mean is None else f"{mean:8.2f}"
        if mean is not None and count < len(values):
            row += f" (mean over {count} of {len(values)} AUs)"
        lines.append(row)
    return "\n".join(lines)


def format_intensity_means(scores: IntensityScores) -> str:
    """One line of the three means for a log or a summary: "ICC 0.52, PCC 0.60 over 10 of 12 AUs, MAE 0.31"
    (`format_mean` of each; n/a with the reason when no AU has a value)."""
    return ", ".join(
        f"{_INTENSITY_TITLES[m]} {format_mean(getattr(scores, m), scale=1.0, missing=_INTENSITY_MISSING[m])}"
        for m in INTENSITY_METRICS
    )
