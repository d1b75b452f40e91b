"""SynthAU AU intensities: temporal episodes (onset, apex, offset), co-occurrence and sub-threshold movements.

`au_intensities` gives one person's (T, 12) intensity tracks in [0, 1]; `labels_from_intensity` thresholds them
at `LABEL_THRESHOLD` into the 0/1 labels written to the annotation files.
"""

from typing import List, Tuple

import numpy as np

from mindface_au.config import AU_NAMES

LABEL_THRESHOLD = 0.3

# Target share of frames above threshold per AU (before per-video variation); calibrated so that the final
# rates, after co-occurrence coupling, resemble the Aff-Wild2 training set.
BASE_RATES = np.array([0.09, 0.048, 0.16, 0.11, 0.37, 0.39, 0.33, 0.036, 0.035, 0.033, 0.64, 0.076])
_A = {name: i for i, name in enumerate(AU_NAMES)}

__all__ = [
    "LABEL_THRESHOLD",
    "BASE_RATES",
    "EXTRA_RATES",
    "au_intensities",
    "extra_intensities",
    "labels_from_intensity",
]

# AU9, AU14, AU17 (the BP4D / DISFA AUs outside the ABAW 12): drawn from their own random stream by
# `extra_intensities`, so the ABAW 12 and the Aff-Wild2-layout data do not change for a seed.
EXTRA_RATES = np.array([0.06, 0.35, 0.3])


def _profile(length: int, onset: int, apex: int, offset: int, peak: float) -> np.ndarray:
    """Onset (cosine ramp up), apex (flat with a small wobble), offset (ramp down)."""
    up = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, onset + 2)[1:-1])
    down = 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, offset + 2)[1:-1])
    flat = np.ones(apex)
    return peak * np.concatenate([up, flat, down])[:length]


def _episodes(
    rng: np.random.Generator,
    num_frames: int,
    rate: float,
    apex: Tuple[int, int],
    ramp: Tuple[int, int],
    peak: Tuple[float, float],
) -> List[Tuple[int, int, int, int, float]]:
    """Episodes (start, onset, apex, offset, peak) covering about `rate` of the frames above threshold."""
    if rate <= 0:
        return []
    mean_len = (apex[0] + apex[1]) / 2 + (ramp[0] + ramp[1]) / 2 * 1.1
    gap = mean_len * (1 - rate) / rate
    out = []
    t = -rng.uniform(0, gap + mean_len)
    while t < num_frames:
        t += rng.exponential(gap)
        on, ap, off = int(rng.integers(*ramp)), int(rng.integers(*apex)), int(rng.integers(*ramp))
        if t + on + ap + off > 0 and t < num_frames:
            out.append((int(t), on, ap, off, float(rng.uniform(*peak))))
        t += on + ap + off
    return out


def _paint(track: np.ndarray, episode: Tuple[int, int, int, int, float]) -> None:
    start, on, ap, off, peak = episode
    prof = _profile(on + ap + off, on, ap, off, peak)
    lo, hi = max(0, start), min(len(track), start + len(prof))
    if hi > lo:
        np.maximum(track[lo:hi], prof[lo - start : hi - start], out=track[lo:hi])


def au_intensities(rng: np.random.Generator, num_frames: int) -> np.ndarray:
    """(T, 12) float intensities in [0, 1] with episodes, co-occurrence and sub-threshold movements."""
    scale = np.exp(rng.normal(0, 0.35, 12))  # some people smile more than others
    scale[rng.random(12) < 0.06] = 0.0  # ... and some never show a given AU
    rates = np.clip(BASE_RATES * scale, 0, 0.85)
    tracks = np.zeros((12, num_frames))
    episodes = {}
    for i, name in enumerate(AU_NAMES):
        if name == "AU25":  # speech: many short openings
            episodes[i] = _episodes(rng, num_frames, rates[i], (3, 25), (2, 6), (0.4, 1.0))
        else:
            apex = (4, 20) if BASE_RATES[i] < 0.1 else (6, 36)
            episodes[i] = _episodes(rng, num_frames, rates[i], apex, (3, 10), (0.45, 1.0))

    def copy(src: str, dst: str, prob: float, gain: Tuple[float, float], widen: int = 0) -> None:
        for start, on, ap, off, peak in list(episodes[_A[src]]):
            if rng.random() < prob:
                shift = int(rng.integers(-2, 3)) - widen
                new_peak = float(np.clip(peak * rng.uniform(*gain), 0.0, 1.0))
                episodes[_A[dst]].append((start + shift, on, ap + 2 * widen, off, new_peak))

    copy("AU12", "AU6", 0.7, (0.75, 1.05))  # Duchenne smile
    copy("AU12", "AU25", 0.35, (0.8, 1.1))  # open smile
    copy("AU2", "AU1", 0.85, (0.85, 1.1))  # brows raised together
    copy("AU26", "AU25", 1.0, (1.0, 1.3), widen=2)  # the jaw drops with the lips parted
    copy("AU4", "AU7", 0.4, (0.7, 1.0))  # frown
    for i in range(12):
        for episode in episodes[i]:
            _paint(tracks[i], episode)
        # sub-threshold movements: visible, not labelled
        for episode in _episodes(rng, num_frames, 0.08, (4, 20), (3, 8), (0.06, LABEL_THRESHOLD * 0.85)):
            _paint(tracks[i], episode)
    return np.clip(tracks.T, 0.0, 1.0)


def extra_intensities(rng: np.random.Generator, num_frames: int) -> np.ndarray:
    """(T, 3) intensities of AU9, AU14, AU17 in [0, 1]: episodes and sub-threshold movements, from `rng` only."""
    scale = np.exp(rng.normal(0, 0.35, 3))
    tracks = np.zeros((3, num_frames))
    for i, rate in enumerate(np.clip(EXTRA_RATES * scale, 0, 0.85)):
        apex = (4, 20) if rate < 0.1 else (6, 36)
        for episode in _episodes(rng, num_frames, rate, apex, (3, 10), (0.45, 1.0)):
            _paint(tracks[i], episode)
        for episode in _episodes(rng, num_frames, 0.08, (4, 20), (3, 8), (0.06, LABEL_THRESHOLD * 0.85)):
            _paint(tracks[i], episode)
    return np.clip(tracks.T, 0.0, 1.0)


def labels_from_intensity(intensity: np.ndarray) -> np.ndarray:
    """0/1 int8 labels: intensity at or above LABEL_THRESHOLD."""
    return (intensity >= LABEL_THRESHOLD).astype(np.int8)
