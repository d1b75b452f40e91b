"""Plots: each writes a decodable PNG atomically, draws the data it is given and rejects wrong shapes."""

import os

import cv2
import numpy as np
import pytest

from mindface_au.config import AU_NAMES
from mindface_au.errors import UserError
from mindface_au.plots import plot_au_bars, plot_au_timeline, plot_image_bars


def _png(path: str) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    assert image is not None, f"{path} is not a decodable PNG"
    with open(path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    return image


def _no_temp_files(folder) -> None:
    assert [n for n in os.listdir(folder) if ".tmp" in n] == []


def test_timeline_draws_probabilities_truth_and_gaps(tmp_path):
    t = 200
    rng = np.random.default_rng(0)
    probs = rng.uniform(size=(t, len(AU_NAMES)))
    probs[50:60] = np.nan  # frames without a face leave gaps
    truth = (rng.uniform(size=(t, len(AU_NAMES))) > 0.7).astype(np.int8)
    out = tmp_path / "timeline.png"
    plot_au_timeline(probs, str(out), truth=truth, times=np.arange(t) / 25.0, title="video")
    image = _png(str(out))
    assert image.shape[0] > 300 and image.shape[1] > 300
    flat = tmp_path / "flat.png"
    plot_au_timeline(np.zeros((t, len(AU_NAMES))), str(flat))
    # the data shows up in the picture: random probabilities + truth bands differ from an all-zero plot
    other = cv2.imread(str(flat))
    assert other.shape == image.shape and np.abs(other.astype(int) - image).sum() > 0
    _no_temp_files(tmp_path)


def test_bars_heights_follow_values(tmp_path):
    low, high = tmp_path / "low.png", tmp_path / "high.png"
    plot_au_bars(np.full(len(AU_NAMES), 0.1), str(low), title="F1")
    plot_au_bars(np.full(len(AU_NAMES), 0.9), str(high), title="F1")
    a, b = _png(str(low)), _png(str(high))
    assert a.shape == b.shape
    # taller bars cover more of the (blue) bar colour
    blue = lambda img: int(((img[:, :, 0] > 150) & (img[:, :, 2] < 100)).sum())  # noqa: E731
    assert blue(b) > blue(a) > 0


# matplotlib's default colour cycle: one colour per image in plot_image_bars (RGB)
_CYCLE = {"a.jpg": (31, 119, 180), "b.jpg": (255, 127, 14), "c.jpg": (44, 160, 44)}


def _colour_pixels(image: np.ndarray, rgb, tol: int = 12) -> int:
    """Pixels of a BGR image within `tol` of colour `rgb` on every channel."""
    return int((np.abs(image.astype(int) - np.array(rgb[::-1])).max(axis=2) <= tol).sum())


def test_image_bars(tmp_path):
    names = list(_CYCLE)
    probs = np.linspace(0, 1, 3 * len(AU_NAMES)).reshape(3, len(AU_NAMES))  # image c > b > a, rising along AUs
    paths = {k: str(tmp_path / f"{k}.png") for k in ("data", "zero", "flipped")}
    plot_image_bars(probs, names, paths["data"])
    plot_image_bars(np.zeros_like(probs), names, paths["zero"])  # no bars: only the legend's colour patches
    plot_image_bars(probs[:, ::-1], names, paths["flipped"])
    image, zero, flipped = (_png(paths[k]) for k in ("data", "zero", "flipped"))
    assert image.shape == zero.shape == flipped.shape == (400, 950, 3)  # figsize (8 + 0.5 per image, 4), 100 dpi
    # each image's bars cover pixels of its colour in proportion to the sum of its probabilities (y from 0)
    area = np.array([_colour_pixels(image, c) - _colour_pixels(zero, c) for c in _CYCLE.values()], float)
    assert (area > 1000).all()
    per_unit = area / probs.sum(axis=1)
    assert per_unit.max() < 1.05 * per_unit.min(), per_unit
    # ... and each bar sits over its AU: rising probabilities put more colour on the right than the mirror image
    half = image.shape[1] // 2
    for colour in _CYCLE.values():
        assert _colour_pixels(image[:, half:], colour) > _colour_pixels(flipped[:, half:], colour) + 1000
    _no_temp_files(tmp_path)


@pytest.mark.parametrize(
    "call",
    [
        lambda p: plot_au_timeline(np.zeros((10, 11)), p),
        lambda p: plot_au_timeline(np.zeros((10, 12)), p, truth=np.zeros((9, 12))),
        lambda p: plot_au_timeline(np.zeros((10, 12)), p, times=np.arange(9)),
        lambda p: plot_au_bars(np.zeros(11), p),
        lambda p: plot_image_bars(np.zeros((2, 12)), ["only-one"], p),
    ],
)
def test_wrong_shapes_raise_and_write_nothing(tmp_path, call):
    out = tmp_path / "bad.png"
    with pytest.raises(UserError):
        call(str(out))
    assert os.listdir(tmp_path) == []
