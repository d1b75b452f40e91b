"""The paper's temporal post-processing (section 3.4.3), per video, in O(T) whatever the window.

Probability smoothing: frame t gets the mean probability of frames t-k .. t+k. Label smoothing: frame t is 1
only where ones outnumber zeros among the 0/1 labels of frames t-k .. t+k. The window shrinks at the video
edges (only existing frames count) and never crosses into another video: call these on one video at a time.
"""

from typing import Optional

import numpy as np

__all__ = ["window_sums", "smooth_probs", "smooth_labels", "binarize", "postprocess_video", "fill_nearest"]


def _check(name: str, array: np.ndarray, k: int) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim not in (1, 2):
        raise ValueError(f"{name}: expected a (T,) or (T, C) array, got shape {array.shape}")
    if int(k) != k or k < 0:
        raise ValueError(f"{name}: window half-width k must be an integer >= 0, got {k}")
    return array


def window_sums(values: np.ndarray, k: int):
    """Sums of values[max(0, t-k) : t+k+1] along axis 0 and the window lengths, via one cumulative sum."""
    values = np.asarray(values, dtype=np.float64)
    length = values.shape[0]
    csum = np.concatenate([np.zeros((1,) + values.shape[1:]), np.cumsum(values, axis=0)], axis=0)
    t = np.arange(length)
    hi = np.minimum(t + k + 1, length)
    lo = np.maximum(t - k, 0)
    counts = (hi - lo).reshape((length,) + (1,) * (values.ndim - 1))
    return csum[hi] - csum[lo], counts


def smooth_probs(probs: np.ndarray, k: int) -> np.ndarray:
    """Mean of the probabilities of frames t-k .. t+k (clipped to the video) for every frame; k=0 is identity."""
    probs = _check("smooth_probs", probs, k)
    if k == 0 or probs.shape[0] == 0:
        return probs.astype(np.float32, copy=True)
    sums, counts = window_sums(probs, int(k))
    return (sums / counts).astype(np.float32)


def smooth_labels(labels: np.ndarray, k: int) -> np.ndarray:
    """1 where ones outnumber zeros among frames t-k .. t+k (clipped to the video), else 0; k=0 is identity."""
    labels = _check("smooth_labels", labels, k)
    if k == 0 or labels.shape[0] == 0:
        return (labels > 0).astype(np.int8)
    ones, counts = window_sums(labels > 0, int(k))
    return (2 * ones > counts).astype(np.int8)


def binarize(probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """0/1 labels: 1 where the probability is at least `threshold`."""
    return (np.asarray(probs) >= threshold).astype(np.int8)


def postprocess_video(probs: np.ndarray, prob_k: int = 0, label_k: int = 0, threshold: float = 0.5) -> np.ndarray:
    """Probabilities of one video (T, C) -> 0/1 labels: probability smoothing, threshold, label smoothing."""
    return smooth_labels(binarize(smooth_probs(probs, prob_k), threshold), label_k)


def fill_nearest(values: np.ndarray, known: np.ndarray, length: Optional[int] = None) -> np.ndarray:
    """Spread rows of `values` (one per True entry of `known`) onto every frame from the nearest known frame.

    `known` is a boolean mask over the frames; ties between an earlier and a later known frame take the earlier.
    With no known frame at all, every row is 0.
    """
    known = np.asarray(known, dtype=bool)
    length = known.shape[0] if length is None else length
    values = np.asarray(values)
    out = np.zeros((length,) + values.shape[1:], dtype=values.dtype)
    idx = np.flatnonzero(known)
    if idx.size == 0:
        return out
    if idx.size != values.shape[0]:
        raise ValueError(f"fill_nearest: {values.shape[0]} rows for {idx.size} known frames")
    t = np.arange(length)
    right = np.clip(np.searchsorted(idx, t), 0, idx.size - 1)
    left = np.clip(right - 1, 0, idx.size - 1)
    use_left = np.abs(t - idx[left]) <= np.abs(idx[right] - t)
    return values[np.where(use_left, left, right)]
