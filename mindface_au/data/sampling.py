"""The paper's per-epoch frame sampling (section 3.4.1).

Each epoch keeps `sample_rate` (1/10) of every video's labelled frames, spread uniformly over the video with a
fresh random offset, and `rare_rate` (1/5) of the frames showing a rare AU (data.rare_aus, named with the dataset's
AU names; AU2, AU15, AU23, AU24, AU26 by default on Aff-Wild2). Frames are split into "rare" and "common" per
video and each group is strided at its own rate.

`Model.train` needs the same number of batches every epoch, while the strided count can differ by a frame per
video and epoch. So the epoch size is fixed up front as the expected count ``sum(common * sample_rate + rare *
rare_rate)`` (see `epoch_size`); an epoch that drew more frames drops random extras, one that drew fewer adds
random frames it did not draw. Everything is deterministic from (seed, epoch).
"""

from typing import List, Optional, Sequence

import numpy as np

from mindface_au.au_sets import default_au_names
from mindface_au.errors import UserError

__all__ = ["rare_mask", "uniform_positions", "epoch_size", "sample_epoch", "flat_index"]


def rare_mask(labels: np.ndarray, rare_aus: Sequence[str], au_names: Optional[Sequence[str]] = None) -> np.ndarray:
    """Boolean (T,) mask of frames where at least one of `rare_aus` is present.

    `au_names`: the AUs of the label columns (the dataset's set; None = the ABAW 12)."""
    au_names = default_au_names(au_names)
    unknown = [au for au in rare_aus if au not in au_names]
    if unknown:
        raise UserError(
            f"config key data.rare_aus: {unknown[0]!r} is not an AU of the data; valid: {', '.join(au_names)}"
        )
    if not len(rare_aus) or labels is None or not len(labels):
        return np.zeros(0 if labels is None else len(labels), dtype=bool)
    cols = [au_names.index(au) for au in rare_aus]
    return (np.asarray(labels)[:, cols] == 1).any(axis=1)


def uniform_positions(count: int, rate: float, offset: float) -> np.ndarray:
    """Indices floor((offset + j) / rate) < count: every 1/rate-th item starting at a fraction `offset` in [0, 1)."""
    if count <= 0 or rate <= 0:
        return np.zeros(0, dtype=np.int64)
    if rate >= 1:
        return np.arange(count, dtype=np.int64)
    step = 1.0 / rate
    n = int(np.ceil(count * rate - offset + 1e-9))
    pos = np.floor((offset + np.arange(max(n, 0))) * step + 1e-9).astype(np.int64)
    return pos[pos < count]


def _check_rates(sample_rate: float, rare_rate: float) -> None:
    for key, rate in (("data.sample_rate", sample_rate), ("data.rare_rate", rare_rate)):
        if not 0.0 < rate <= 1.0:
            raise UserError(f"config key {key}: got {rate}, expected 0 < rate <= 1")


def flat_index(lengths: Sequence[int]) -> np.ndarray:
    """Start of each video in the flat frame table (videos concatenated in order); length len(lengths) + 1."""
    return np.concatenate([[0], np.cumsum(np.asarray(lengths, dtype=np.int64))]).astype(np.int64)


def epoch_size(rare_masks: List[np.ndarray], sample_rate: float, rare_rate: float) -> int:
    """Fixed number of frames per epoch: the expected strided count, rounded, at least 1 if any frame exists."""
    _check_rates(sample_rate, rare_rate)
    expected = sum(float((~m).sum()) * sample_rate + float(m.sum()) * rare_rate for m in rare_masks)
    total = sum(len(m) for m in rare_masks)
    return int(min(total, max(1 if total else 0, round(expected))))


def sample_epoch(
    rare_masks: List[np.ndarray], sample_rate: float, rare_rate: float, seed: int, epoch: int
) -> np.ndarray:
    """Flat frame indices (into the concatenated videos) of one epoch, in a random order, `epoch_size` of them."""
    _check_rates(sample_rate, rare_rate)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch), 0x5A3])
    starts = flat_index([len(m) for m in rare_masks])
    chosen = []
    for start, mask in zip(starts[:-1], rare_masks):
        for group, rate in ((np.flatnonzero(~mask), sample_rate), (np.flatnonzero(mask), rare_rate)):
            if len(group):
                chosen.append(start + group[uniform_positions(len(group), rate, rng.random())])
    picked = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    target = epoch_size(rare_masks, sample_rate, rare_rate)
    if len(picked) > target:
        picked = rng.choice(picked, size=target, replace=False)
    elif len(picked) < target:
        rest = np.setdiff1d(np.arange(int(starts[-1]), dtype=np.int64), picked, assume_unique=False)
        picked = np.concatenate([picked, rng.choice(rest, size=target - len(picked), replace=False)])
    return rng.permutation(picked).astype(np.int64)
