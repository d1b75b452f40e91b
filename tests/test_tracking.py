"""Face tracking in `detect`: keyframes leave no step in the landmark series, and `--resume` of a tracked run gives
the rows of an uninterrupted one.

Input: `mindface_au.data.synthau.clips.moving_video`, one SynthAU face moving like a head (sub-pixel path, roll,
scale, noise).
"""

import csv
import dataclasses
import json
import os

import numpy as np
import pytest
from helpers import TINY_AUNET

from mindface_au.data.synthau.clips import moving_video, scene_video
from mindface_au.inference.detect import detect
from mindface_au.inference.detect import run as detect_mod
from mindface_au.inference.detect.sources import open_source
from mindface_au.inference.detect.tracker_state import state_path
from mindface_au.inference.detect.tracking import FaceFinder
from mindface_au.inference.faces import IoUTracker, MTCNNDetector

FRAMES = 120  # keyframes at 1, 16, 31, ..., 106


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from mindface_au.config import ModelConfig
    from mindface_au.inference.predictor import Predictor
    from mindface_au.models import create_model_from_config
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    root = tmp_path_factory.mktemp("tracking")
    video, scene = str(root / "moving.avi"), str(root / "scene.avi")
    moving_video(video, FRAMES, (480, 270))
    scene_video(scene)
    cfg = ModelConfig(**TINY_AUNET)
    ckpt = str(root / "tiny.ckpt")
    save_checkpoint_atomic(create_model_from_config(cfg), ckpt, model_config=dataclasses.asdict(cfg))
    return {"video": video, "scene": scene, "predictor": Predictor(ckpt, device="CPU", batch_size=8)}


def landmark_series(video: str, track: bool):
    """(landmarks (frames, 5, 2) of the face, whether the full detector ran on each frame)."""
    finder = FaceFinder(MTCNNDetector(), False, IoUTracker(), track=track)
    marks, keys = [], []
    for frame in open_source(video).frames():
        before = finder.keyframes
        faces, _ = finder.find(frame.image, frame.index)
        assert len(faces) == 1, frame.index
        marks.append(faces[0].landmarks)
        keys.append(finder.keyframes > before)
    return np.array(marks), np.array(keys)


def test_keyframes_leave_no_step_in_the_landmarks(clip):
    """Frame-to-frame landmark movement (mean over the five points) on the frames where a keyframe falls is within
    1.3x the median of the other frames (the mean over keyframes too), and the tracked series is no more jittery
    (mean second difference, which smooth motion does not raise) than per-frame detection's."""
    tracked, keys = landmark_series(clip["video"], track=True)
    per_frame, all_keys = landmark_series(clip["video"], track=False)
    assert all_keys.all() and keys[0] and 5 <= keys.sum() < len(keys) / 10

    def jitter(marks):
        return float(np.linalg.norm(marks[2:] - 2 * marks[1:-1] + marks[:-2], axis=2).mean())

    move = np.linalg.norm(np.diff(tracked, axis=0), axis=2).mean(axis=1)  # movement into frame 2, 3, ...
    at_key, other = move[keys[1:]], move[~keys[1:]]
    print(  # the numbers docs/detect.md quotes (pytest -s)
        f"keyframe step / median step of the other frames: {np.median(at_key) / np.median(other):.2f} (median), "
        f"{at_key.mean() / np.median(other):.2f} (mean); jitter tracked {jitter(tracked):.3f} px, per-frame "
        f"{jitter(per_frame):.3f} px; {keys.sum()} keyframes"
    )
    assert np.median(at_key) <= 1.3 * np.median(other), (at_key, np.median(other))
    assert at_key.mean() <= 1.3 * np.median(other), (at_key, np.median(other))
    assert jitter(tracked) <= jitter(per_frame)
    # and the followed face stays on the face per-frame detection finds (no drift between keyframes)
    np.testing.assert_array_less(np.abs(tracked - per_frame).mean(axis=(1, 2)), 3.0)


def read_rows(path: str):
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def interrupt_after(monkeypatch, rows: int):
    """Make detect stop after `rows` rows as Ctrl-C would; returns the real iterator."""
    real_iter = detect_mod.iter_detections

    def interrupted(*args, **kwargs):
        for i, row in enumerate(real_iter(*args, **kwargs)):
            if i == rows:
                raise KeyboardInterrupt
            yield row

    monkeypatch.setattr(detect_mod, "iter_detections", interrupted)
    return real_iter


@pytest.mark.parametrize(
    "which, all_faces, stop",
    [("video", False, 52), ("scene", True, 44)],  # frame 52 (keyframes at 46, 61); frame 37 of the two-person shot
)
def test_resume_of_a_tracked_run_gives_the_uninterrupted_rows(clip, tmp_path, monkeypatch, which, all_faces, stop):
    """Interrupted in the middle of a tracked stretch, with rows written after the last flush (two made-up complete
    rows and one cut mid-write, as a kill can leave): the resume gives every row of the uninterrupted run, boxes and
    landmarks to the last digit, and counts the whole run's keyframes. The scene has a cut, a gap and two people
    (lost faces, ids)."""
    video, predictor = clip[which], clip["predictor"]
    full, out = str(tmp_path / "full.csv"), str(tmp_path / "out.csv")
    expected_summary = detect(video, full, predictor=predictor, progress=False, all_faces=all_faces)
    monkeypatch.setattr(detect_mod, "FLUSH_SECONDS", 0.0)  # flush (and save the state) at every frame boundary
    real_iter = interrupt_after(monkeypatch, stop)
    with pytest.raises(KeyboardInterrupt):
        detect(video, out, predictor=predictor, progress=False, all_faces=all_faces)
    monkeypatch.setattr(detect_mod, "iter_detections", real_iter)
    partial = out + ".partial"
    header, written = read_rows(partial)
    frames = sorted({int(r[0]) for r in written})
    assert len(written) == stop and len(frames) > 30
    with open(state_path(partial)) as handle:
        assert json.load(handle)["frame"] == frames[-2]  # the last frame flushed before the last frame's rows
    with open(partial, "a") as handle:
        for frame in (frames[-1] + 1, frames[-1] + 2):
            handle.write(",".join([str(frame)] + written[-1][1:5] + ["1.0"] * (len(header) - 5)) + "\n")
        handle.write(f"{frames[-1] + 3},2.250,0,1,0.99,1")
    summary = detect(video, out, predictor=predictor, progress=False, resume=True, all_faces=all_faces)
    header, expected = read_rows(full)
    _, got = read_rows(out)
    assert len(got) == len(expected) > len(written)
    first = header.index("AU1_prob")
    for a, b in zip(got, expected):
        assert a[:first] == b[:first], a[0]  # frame, time, id, success, confidence, box, landmarks
        # probabilities: equal up to float rounding of another batch layout (the resume's batches start elsewhere)
        np.testing.assert_allclose(
            [float(v or 0) for v in a[first:]], [float(v or 0) for v in b[first:]], atol=2e-6, err_msg=a[0]
        )
    assert summary["keyframes"] == expected_summary["keyframes"]
    assert not os.path.exists(state_path(partial)) and not os.path.exists(partial)


def test_resume_without_a_usable_state_says_tracking_restarts(clip, tmp_path, monkeypatch, capsys):
    """A damaged state file is not a failure: the resume notes that tracking restarts and finishes the run."""
    video, predictor = clip["video"], clip["predictor"]
    out = str(tmp_path / "out.csv")
    monkeypatch.setattr(detect_mod, "FLUSH_SECONDS", 0.0)
    real_iter = interrupt_after(monkeypatch, 20)
    with pytest.raises(KeyboardInterrupt):
        detect(video, out, predictor=predictor, progress=False)
    monkeypatch.setattr(detect_mod, "iter_detections", real_iter)
    with open(state_path(out + ".partial"), "w") as handle:
        handle.write('{"version": 1, "frame": 19, "end": 10, "finder": {"live": 3}}')
    detect(video, out, predictor=predictor, progress=False, resume=True)
    assert "face tracking restarts with a keyframe" in capsys.readouterr().err
    _, rows = read_rows(out)
    assert [int(r[0]) for r in rows] == list(range(1, FRAMES + 1))
