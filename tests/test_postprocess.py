"""Smoothing against a direct per-frame loop, windows wider than the video included; nearest-frame filling."""

import numpy as np
import pytest

from mindface_au.postprocess import binarize, fill_nearest, postprocess_video, smooth_labels, smooth_probs


def loop_smooth_probs(probs, k):
    out = np.zeros_like(probs, dtype=np.float64)
    for t in range(len(probs)):
        out[t] = probs[max(0, t - k) : t + k + 1].mean(axis=0)
    return out


def loop_smooth_labels(labels, k):
    out = np.zeros_like(labels)
    for t in range(len(labels)):
        window = labels[max(0, t - k) : t + k + 1]
        ones = window.sum(axis=0)
        zeros = len(window) - ones
        out[t] = ones > zeros
    return out


@pytest.mark.parametrize("length", [1, 2, 5, 37, 200])
@pytest.mark.parametrize("k", [0, 1, 3, 8, 10, 250])
def test_smooth_probs_equals_loop(length, k):
    probs = np.random.default_rng(length * 31 + k).random((length, 12)).astype(np.float32)
    np.testing.assert_allclose(smooth_probs(probs, k), loop_smooth_probs(probs, k), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("length", [1, 2, 6, 41, 200])
@pytest.mark.parametrize("k", [0, 1, 2, 6, 10, 300])
def test_smooth_labels_equals_loop(length, k):
    labels = (np.random.default_rng(length * 17 + k).random((length, 12)) < 0.45).astype(np.int8)
    result = smooth_labels(labels, k)
    assert result.dtype == np.int8
    np.testing.assert_array_equal(result, loop_smooth_labels(labels, k))


def test_ties_stay_zero_and_windows_shrink_at_edges():
    labels = np.array([[1], [0], [1], [1]], dtype=np.int8)
    # t=0 window [1,0] is a tie -> 0; t=3 window [1,1] -> 1
    np.testing.assert_array_equal(smooth_labels(labels, 1)[:, 0], [0, 1, 1, 1])
    probs = np.array([[0.0], [1.0], [0.5]], dtype=np.float32)
    np.testing.assert_allclose(smooth_probs(probs, 1)[:, 0], [0.5, 0.5, 0.75])


def test_postprocess_video_and_binarize():
    probs = np.random.default_rng(5).random((50, 12)).astype(np.float32)
    expected = loop_smooth_labels((loop_smooth_probs(probs, 4) >= 0.5).astype(np.int8), 3)
    np.testing.assert_array_equal(postprocess_video(probs, 4, 3, 0.5), expected)
    np.testing.assert_array_equal(binarize(np.array([0.49, 0.5, 0.51]), 0.5), [0, 1, 1])


def test_fill_nearest():
    known = np.array([False, True, False, False, True, False])
    values = np.array([[10], [40]])
    np.testing.assert_array_equal(fill_nearest(values, known)[:, 0], [10, 10, 10, 40, 40, 40])
    assert fill_nearest(np.zeros((0, 12)), np.zeros(3, bool)).shape == (3, 12)
