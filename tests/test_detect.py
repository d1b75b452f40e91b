"""`mindface-au detect` and `Predictor`: videos, folders, aligned crops, tracking, smoothing, resume, errors, memory.

Test media: a face cut from matplotlib's bundled sample photo `grace_hopper.jpg` (ships offline; MTCNN and Haar
both find it) pasted into generated frames at known boxes, with some frames left blank.
"""

import csv
import dataclasses
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from helpers import TINY_AUNET, cli_env, run_cli, tiny_overrides
from matplotlib import cbook

from mindface_au.config import AU_NAMES, ModelConfig, load_config
from mindface_au.errors import UserError
from mindface_au.inference.detect import COLUMNS, detect, smooth_csv
from mindface_au.inference.detect import run as detect_mod
from mindface_au.inference.faces import iou
from mindface_au.postprocess import smooth_probs

TINY = TINY_AUNET
FPS = 25.0
FACE_SIZE = (70, 78)  # pasted face w, h
BLANK = {4, 14, 24}  # 1-based frames without a face
LANDMARKS = [f"{n}_{a}" for n in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right") for a in "xy"]


def face_patch(size=FACE_SIZE) -> np.ndarray:
    photo = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), cv2.IMREAD_COLOR)
    return cv2.resize(photo[90:370, 140:390], size, interpolation=cv2.INTER_AREA)


def face_box(frame: int):
    """Drawn box (x, y, w, h) of the face in 1-based `frame`, None for blank frames."""
    return None if frame in BLANK else (20 + frame, 20, FACE_SIZE[0], FACE_SIZE[1])


def write_video(path: str, frames: int, two_faces: bool = False, size=(160, 120)) -> None:
    width = size[0] * (2 if two_faces else 1)
    patch = face_patch()
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), FPS, (width, size[1]))
    for frame in range(1, frames + 1):
        image = np.full((size[1], width, 3), 40, np.uint8)
        box = face_box((frame - 1) % 30 + 1)
        if box is not None:
            x, y, w, h = box
            image[y : y + h, x : x + w] = patch
        if two_faces:
            image[25 : 25 + FACE_SIZE[1], 230 : 230 + FACE_SIZE[0]] = patch  # a second, static face
        writer.write(image)
    writer.release()


def save_tiny_checkpoint(path: str, embed: bool = True, **changes) -> ModelConfig:
    from mindface_au.models import create_model_from_config
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    cfg = ModelConfig(**{**TINY, **changes})
    net = create_model_from_config(cfg)
    save_checkpoint_atomic(net, path, model_config=dataclasses.asdict(cfg) if embed else None)
    return cfg


def read_csv(path: str):
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def probs_of(row, header):
    start = header.index("AU1_prob")
    return np.array([float(v) for v in row[start : start + len(AU_NAMES)]])


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("detect")
    ckpt = str(root / "tiny.ckpt")
    save_tiny_checkpoint(ckpt)
    video = str(root / "faces.avi")
    write_video(video, 30)
    folder = root / "images"
    folder.mkdir()
    photo = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), cv2.IMREAD_COLOR)
    cv2.imwrite(str(folder / "face1.jpg"), photo)
    frame = np.full((120, 160, 3), 40, np.uint8)
    frame[20:98, 30:100] = face_patch()
    cv2.imwrite(str(folder / "face2.png"), frame)
    cv2.imwrite(str(folder / "blank.png"), np.full((120, 160, 3), 128, np.uint8))
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    (folder / "notes.txt").write_text("not an image")
    return {"root": root, "ckpt": ckpt, "video": video, "folder": str(folder)}


@pytest.fixture(scope="module")
def predictor(media):
    from mindface_au.inference.predictor import Predictor

    return Predictor(media["ckpt"], device="CPU", batch_size=8)


def check_rows(header, rows, expected_frames):
    assert header[: len(COLUMNS)] == COLUMNS
    meta = ["frame", "timestamp", "face_id", "success", "confidence", "face_x", "face_y", "face_w", "face_h"]
    assert header[:9] == meta and header[9:19] == LANDMARKS
    assert header[19:31] == [f"{au}_prob" for au in AU_NAMES] and header[31:43] == list(AU_NAMES)
    assert [int(r[0]) for r in rows] == expected_frames
    for row in rows:
        assert len(row) == len(header)
        if row[3] == "1":
            probs = probs_of(row, header)
            assert ((probs >= 0) & (probs <= 1)).all()
            labels = np.array([int(v) for v in row[31:43]])
            np.testing.assert_array_equal(labels, (probs >= 0.5).astype(int))
        else:
            assert row[3] == "0" and all(v == "" for v in row[2:3] + row[4:43])


# ------------------------------------------------------------------------------------------------ CLI runs
def test_detect_video_cli(media, tmp_path):
    out, png = tmp_path / "out.csv", tmp_path / "timeline.png"
    proc = run_cli(
        "detect", "--input", media["video"], "--output", out, "--ckpt", media["ckpt"], "--batch-size", 8,
        "--plot", png, "--device", "CPU",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "frame/s" in proc.stderr  # progress bar with the rate
    header, rows = read_csv(str(out))
    assert header == COLUMNS
    check_rows(header, rows, list(range(1, 31)))
    for row in rows:
        frame = int(row[0])
        assert float(row[1]) == pytest.approx((frame - 1) / FPS, abs=1e-3)
        drawn = face_box(frame)
        assert (row[3] == "1") == (drawn is not None), f"frame {frame}"
        if drawn is not None:
            box = tuple(float(v) for v in row[5:9])
            assert iou(box, drawn) > 0.3, (frame, box, drawn)
            cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
            assert drawn[0] < cx < drawn[0] + drawn[2] and drawn[1] < cy < drawn[1] + drawn[3]
            assert float(row[4]) > 0.9 and row[2] == "0"
    assert not os.path.exists(str(out) + ".partial") and not os.path.exists(str(out) + ".partial.json")
    assert cv2.imread(str(png)) is not None


def test_detect_folder_cli(media, tmp_path):
    out, png = tmp_path / "images.csv", tmp_path / "bars.png"
    proc = run_cli(
        "detect", "--input", media["folder"], "--output", out, "--ckpt", media["ckpt"], "--plot", png, "--no-progress"
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "notes.txt" in proc.stderr and "broken.jpg" in proc.stderr  # skipped and undecodable files reported
    header, rows = read_csv(str(out))
    assert header == COLUMNS + ["file"]
    check_rows(header, rows, [1, 2, 3, 4])
    assert [r[-1] for r in rows] == ["blank.png", "broken.jpg", "face1.jpg", "face2.png"]
    assert [r[3] for r in rows] == ["0", "0", "1", "1"]
    assert all(r[1] == "" for r in rows)  # no timestamps for images
    assert iou(tuple(float(v) for v in rows[2][5:9]), (176, 118, 181, 219)) > 0.7
    assert iou(tuple(float(v) for v in rows[3][5:9]), (30, 20, 70, 78)) > 0.3
    assert cv2.imread(str(png)) is not None


def _assert_clean_failure(proc, out, culprit):
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr  # one error line, nothing else (no traceback, no config echo)
    assert lines[0].startswith("mindface-au detect: error:") and culprit in lines[0], lines[0]
    assert not os.path.exists(out)


def test_detect_errors_cli(media, tmp_path):
    out = str(tmp_path / "out.csv")
    base = ["detect", "--output", out, "--ckpt", media["ckpt"], "--no-progress"]
    missing = str(tmp_path / "nope.mp4")
    _assert_clean_failure(run_cli(*base, "--input", missing), out, "nope.mp4")
    bogus = tmp_path / "bogus.mp4"
    bogus.write_bytes(b"\x00garbage" * 100)
    _assert_clean_failure(run_cli(*base, "--input", bogus), out, "bogus.mp4")
    empty = str(tmp_path / "empty.avi")
    cv2.VideoWriter(empty, cv2.VideoWriter_fourcc(*"MJPG"), FPS, (160, 120)).release()  # a container, no frames
    _assert_clean_failure(run_cli(*base, "--input", empty), out, "empty.avi")
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x")
    bad_out = str(not_a_dir / "out.csv")  # parent is a file: cannot be created
    proc = run_cli("detect", "--input", media["video"], "--output", bad_out, "--ckpt", media["ckpt"])
    _assert_clean_failure(proc, bad_out, "out.csv")
    assert not os.path.exists(bad_out + ".partial")


def test_wrong_architecture_checkpoint_cli(media, tmp_path):
    other = str(tmp_path / "other.ckpt")
    save_tiny_checkpoint(other, embed=False, widths=[8, 16, 32, 32])
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("model:\n" + "".join(f"  {k}: {v!r}\n" for k, v in TINY.items()).replace("'", '"'))
    out = str(tmp_path / "out.csv")
    proc = run_cli("detect", "--input", media["video"], "--output", out, "--ckpt", other, "--config", cfg)
    _assert_clean_failure(proc, out, "other.ckpt")
    assert "shape mismatch" in proc.stderr
    assert not os.path.exists(out + ".partial")


# ------------------------------------------------------------------------------------------------ in-process
def test_haar_detector_and_predict_video(media, predictor, tmp_path):
    out = str(tmp_path / "haar.csv")
    summary = detect(media["video"], out, predictor=predictor, detector="haar", progress=False)
    assert summary["frames"] == 30 and summary["no_face"] == len(BLANK)
    header, rows = read_csv(out)
    check_rows(header, rows, list(range(1, 31)))
    for row in rows:
        drawn = face_box(int(row[0]))
        assert (row[3] == "1") == (drawn is not None)
        if drawn is not None:
            assert iou(tuple(float(v) for v in row[5:9]), drawn) > 0.3 and row[4] == ""  # Haar has no confidence
    # the Python API gives the same rows as the CSV
    dict_rows = predictor.predict_video(media["video"], detector="haar")
    assert len(dict_rows) == 30
    for row, d in zip(rows, dict_rows):
        if d["success"]:
            np.testing.assert_allclose([d[f"{au}_prob"] for au in AU_NAMES], probs_of(row, header), atol=1e-6)


def test_predict_images_largest_face_and_aligned(media, predictor):
    folder = media["folder"]
    images = [cv2.imread(os.path.join(folder, n)) for n in ("face1.jpg", "blank.png", "face2.png")]
    probs = predictor.predict_images(images)
    assert probs.shape == (3, 12)
    assert np.isnan(probs[1]).all() and np.isfinite(probs[[0, 2]]).all()
    # aligned crops: equal to running the network on the normalised crop directly
    crops = [cv2.resize(images[0], (32, 32), interpolation=cv2.INTER_AREA), images[2][20:98, 30:100]]
    ours = predictor.predict_images(crops, aligned=True)
    x = np.stack(
        [
            (cv2.resize(c, (32, 32), interpolation=cv2.INTER_AREA)[:, :, ::-1].astype(np.float32) / 255 - 0.5) / 0.5
            for c in crops
        ]
    ).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(ours, predictor.predict_array(x), atol=1e-6)
    # RGB input flag: same face given as RGB gives the same probabilities
    np.testing.assert_allclose(predictor.predict_images([c[:, :, ::-1] for c in crops], aligned=True, rgb=True), ours)


def test_all_faces_get_stable_ids(media, predictor, tmp_path):
    video = str(tmp_path / "two.avi")
    write_video(video, 30, two_faces=True)
    out = str(tmp_path / "two.csv")
    detect(video, out, predictor=predictor, all_faces=True, progress=False)
    header, rows = read_csv(out)
    frames = [int(r[0]) for r in rows]
    assert sorted(set(frames)) == list(range(1, 31))
    ids_by_side = {"left": set(), "right": set()}
    for row in rows:
        assert row[3] == "1"
        cx = float(row[5]) + float(row[7]) / 2
        ids_by_side["left" if cx < 160 else "right"].add(row[2])
        count = frames.count(int(row[0]))
        assert count == (1 if int(row[0]) in BLANK else 2)
    # the moving face keeps one id across the blank frames (gap < max_age); the static one another
    assert len(ids_by_side["left"]) == 1 and len(ids_by_side["right"]) == 1
    assert ids_by_side["left"] != ids_by_side["right"]


def test_prob_k_smooths_each_track_like_evaluation(media, predictor, tmp_path):
    video = str(tmp_path / "two.avi")
    write_video(video, 30, two_faces=True)
    raw, smooth = str(tmp_path / "raw.csv"), str(tmp_path / "smooth.csv")
    detect(video, raw, predictor=predictor, all_faces=True, progress=False)
    detect(video, smooth, predictor=predictor, all_faces=True, prob_k=3, threshold=0.5, progress=False)
    header, raw_rows = read_csv(raw)
    _, smooth_rows = read_csv(smooth)
    assert [r[:9] for r in raw_rows] == [r[:9] for r in smooth_rows]
    for fid in {r[2] for r in raw_rows}:
        idx = [i for i, r in enumerate(raw_rows) if r[2] == fid]
        expected = smooth_probs(np.stack([probs_of(raw_rows[i], header) for i in idx]), 3)
        got = np.stack([probs_of(smooth_rows[i], header) for i in idx])
        np.testing.assert_allclose(got, expected, atol=1.5e-6)
        labels = np.array([[int(v) for v in smooth_rows[i][31:43]] for i in idx])
        np.testing.assert_array_equal(labels, (got >= 0.5).astype(int))


def test_smooth_csv_streams_tracks_with_gaps(tmp_path):
    """Interleaved tracks, frames without faces and a gap longer than max_gap (the track restarts there)."""
    rng = np.random.default_rng(0)
    src, dst = str(tmp_path / "in.csv"), str(tmp_path / "out.csv")
    plan = []  # (frame, face_id or None)
    for frame in range(1, 121):
        if frame % 7 == 0:
            plan.append((frame, None))
            continue
        plan.append((frame, 0))
        if not 40 <= frame < 80:  # face 1 is away for 40 frames > max_gap
            plan.append((frame, 1))
    probs = rng.uniform(size=(len(plan), 12)).round(6)
    with open(src, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for (frame, fid), p in zip(plan, probs):
            if fid is None:
                writer.writerow([frame, "", "", 0] + [""] * 39)
            else:
                writer.writerow(
                    [frame, "", fid, 1, "0.99", 1, 2, 3, 4] + [""] * 10 + [f"{v:.6f}" for v in p] + [0] * 12
                )
    assert smooth_csv(src, dst, k=4, threshold=0.6, max_gap=30) == len(plan)
    header, rows = read_csv(dst)
    assert [(int(r[0]), r[2]) for r in rows] == [(f, "" if i is None else str(i)) for f, i in plan]
    segments = [
        [i for i, (f, fid) in enumerate(plan) if fid == 0],
        [i for i, (f, fid) in enumerate(plan) if fid == 1 and f < 40],
        [i for i, (f, fid) in enumerate(plan) if fid == 1 and f >= 80],
    ]
    for seg in segments:
        expected = smooth_probs(probs[seg], 4)
        got = np.stack([probs_of(rows[i], header) for i in seg])
        np.testing.assert_allclose(got, expected, atol=1.5e-6)
        np.testing.assert_array_equal(np.array([[int(v) for v in rows[i][31:43]] for i in seg]), got >= 0.6)


def interrupt_detections_after(monkeypatch, rows: int):
    """Make detect raise KeyboardInterrupt after `rows` rows (as Ctrl-C would); returns the real iterator."""
    real_iter = detect_mod.iter_detections

    def interrupted(*args, **kwargs):
        for i, row in enumerate(real_iter(*args, **kwargs)):
            if i == rows:
                raise KeyboardInterrupt
            yield row

    monkeypatch.setattr(detect_mod, "iter_detections", interrupted)
    return real_iter


@pytest.mark.parametrize("track", [False, True])
def test_resume_continues_an_interrupted_run(media, predictor, tmp_path, monkeypatch, track):
    """Both face paths resume to the same frames and ids as the uninterrupted run; the exact equality of tracked
    rows after a resume (the tracker's saved state) is pinned in test_tracking.py."""
    video = str(tmp_path / "two.avi")
    write_video(video, 45, two_faces=True)
    full, out = str(tmp_path / "full.csv"), str(tmp_path / "out.csv")
    detect(video, full, predictor=predictor, all_faces=True, progress=False, track=track)

    real_iter = interrupt_detections_after(monkeypatch, 40)
    with pytest.raises(KeyboardInterrupt):
        detect(video, out, predictor=predictor, all_faces=True, progress=False, track=track)
    monkeypatch.setattr(detect_mod, "iter_detections", real_iter)
    partial = out + ".partial"
    assert not os.path.exists(out) and os.path.exists(partial)
    with open(partial, "a") as handle:  # a row cut mid-write
        handle.write("23,0.880,1,1,0.99,1")
    # other settings are refused; no --resume starts over; --resume continues and equals the uninterrupted run
    with pytest.raises(UserError, match="other settings"):
        detect(video, out, predictor=predictor, all_faces=False, resume=True, progress=False, track=track)
    detect(video, out, predictor=predictor, all_faces=True, resume=True, progress=False, track=track)
    header, expected = read_csv(full)
    _, got = read_csv(out)
    assert [r[:4] for r in got] == [r[:4] for r in expected]  # same frames, faces and ids
    for a, b in zip(got, expected):
        if a[3] != "1":
            continue
        if track:
            assert iou([float(v) for v in a[5:9]], [float(v) for v in b[5:9]]) > 0.8
        else:  # same boxes; probabilities equal up to float rounding of a different batch layout
            assert a[:19] == b[:19]
            np.testing.assert_allclose(probs_of(a, header), probs_of(b, header), atol=2e-6)
    assert not os.path.exists(partial) and not os.path.exists(partial + ".json")


def test_aligned_reproduces_predict(media, tmp_path):
    """`detect --aligned` on a SynthAU video's cropped_aligned frames gives `predict`'s probabilities."""
    from mindface_au.data.synthau import generate
    from mindface_au.engine.predict import predict

    root = str(tmp_path / "synthau")
    generate(root, videos=2, frames=12, seed=0)
    overrides = tiny_overrides()
    overrides += [f"data.root={root}", "data.image_size=32", "data.eval_batch_size=8", "data.num_workers=1"]
    cfg = load_config(None, overrides)
    result = predict(cfg, [media["ckpt"]], str(tmp_path / "pred"), split="val", device="CPU", save_probs=True)
    from mindface_au.data import load_split

    (video,) = load_split(root, "val")
    out = str(tmp_path / "aligned.csv")
    proc = run_cli(
        "detect", "--input", os.path.join(root, "cropped_aligned", video.name), "--output", out,
        "--ckpt", media["ckpt"], "--aligned", "--batch-size", 8, "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    header, rows = read_csv(out)
    by_frame = {int(os.path.splitext(r[-1])[0]): probs_of(r, header) for r in rows}
    assert all(r[3] == "1" for r in rows)
    for frame_id in video.frame_ids:
        np.testing.assert_allclose(by_frame[int(frame_id)], result["probs"][video.name][frame_id - 1], atol=2e-6)


def test_every_n_keeps_real_frame_indices_and_times(media, predictor, tmp_path):
    """--every 3: rows only for frames 1, 4, 7, ...; frame and timestamp are the real ones, probabilities equal
    the full run's on those frames; the tracker's max_gap counts processed frames."""
    full, every = str(tmp_path / "full.csv"), str(tmp_path / "every.csv")
    detect(media["video"], full, predictor=predictor, progress=False, track=False)  # per frame: no history
    summary = detect(media["video"], every, predictor=predictor, progress=False, every=3, track=False)
    header, rows = read_csv(every)
    _, full_rows = read_csv(full)
    processed = list(range(1, 31, 3))
    assert [int(r[0]) for r in rows] == processed
    assert summary["frames"] == len(processed) and summary["frames_read"] == 30 and summary["every"] == 3
    assert set(summary["stage_seconds"]) == {"decode", "detect_faces", "align", "network", "write"}
    by_frame = {int(r[0]): r for r in full_rows}
    for row in rows:
        frame = int(row[0])
        assert float(row[1]) == pytest.approx((frame - 1) / FPS, abs=1e-3)
        assert row[:9] == by_frame[frame][:9]
        if row[3] == "1":
            np.testing.assert_allclose(probs_of(row, header), probs_of(by_frame[frame], header), atol=2e-6)


def test_every_n_gaps_count_processed_frames(tmp_path):
    """smooth_csv with every=5: a face missing from 3 processed frames (last seen at 26, back at 46: 4 steps)
    keeps its track with max_gap=4 and restarts with max_gap=3."""
    src = str(tmp_path / "in.csv")
    rng = np.random.default_rng(3)
    plan = [f for f in range(1, 101, 5) if not 31 <= f <= 45]  # frames 31, 36, 41 have no face
    probs = rng.uniform(size=(len(plan), 12)).round(6)
    with open(src, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for frame, p in zip(plan, probs):
            writer.writerow([frame, "", 0, 1, "0.99", 1, 2, 3, 4] + [""] * 10 + [f"{v:.6f}" for v in p] + [0] * 12)
    for max_gap, segments in ((4, [slice(None)]), (3, [slice(0, 6), slice(6, None)])):
        dst = str(tmp_path / f"out{max_gap}.csv")
        smooth_csv(src, dst, k=2, max_gap=max_gap, every=5)
        header, rows = read_csv(dst)
        got = np.stack([probs_of(r, header) for r in rows])
        expected = np.concatenate([smooth_probs(probs[seg], 2) for seg in segments])
        np.testing.assert_allclose(got, expected, atol=1.5e-6)


def test_resume_refuses_another_every(media, predictor, tmp_path, monkeypatch):
    out = str(tmp_path / "out.csv")
    real_iter = interrupt_detections_after(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt):
        detect(media["video"], out, predictor=predictor, progress=False, every=2)
    monkeypatch.setattr(detect_mod, "iter_detections", real_iter)
    with pytest.raises(UserError, match=r"other settings \(every 2 then, 3 now\)"):
        detect(media["video"], out, predictor=predictor, progress=False, every=3, resume=True)
    detect(media["video"], out, predictor=predictor, progress=False, every=2, resume=True)
    _, rows = read_csv(out)
    assert [int(r[0]) for r in rows] == list(range(1, 31, 2))


def test_detect_prints_backend_and_new_options_cli(media, tmp_path):
    out = str(tmp_path / "o.csv")
    proc = run_cli(
        "detect", "--input", media["video"], "--output", out, "--ckpt", media["ckpt"], "--no-progress",
        "--every", 10, "--detect-size", 96, "--device", "CPU",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "detect: aunet_iresnet18 from tiny.ckpt (mindspore on CPU" in proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["backend"] == "mindspore" and summary["frames"] == 3
    _, rows = read_csv(out)
    assert [int(r[0]) for r in rows] == [1, 11, 21]
    for args, culprit in [(["--every", 0], "--every"), (["--detect-size", 8], "--detect-size")]:
        proc = run_cli("detect", "--input", media["video"], "--output", out + "2", "--ckpt", media["ckpt"], *args)
        _assert_clean_failure(proc, out + "2", culprit)


def test_model_at_another_input_size_detects_at_that_size(media, tmp_path):
    """A checkpoint trained at 64x64 detects at 64: crops, preprocessing and network all follow its config."""
    from mindface_au.inference.predictor import Predictor

    ckpt = str(tmp_path / "s64.ckpt")
    save_tiny_checkpoint(ckpt, input_size=64)
    predictor = Predictor(ckpt, device="CPU", batch_size=4)
    assert predictor.input_size == 64 and predictor.face_input.size == 64
    out = str(tmp_path / "s64.csv")
    detect(media["video"], out, predictor=predictor, progress=False, every=10)
    header, rows = read_csv(out)
    assert [int(r[0]) for r in rows] == [1, 11, 21] and all(r[3] == "1" for r in rows)
    seen = []
    real = predictor.model.predict_outputs
    predictor.model.predict_outputs = lambda x, pad=False: seen.append(x.shape) or real(x, pad=pad)
    predictor.predict_video(media["video"], every=15)
    assert seen and all(shape[1:] == (3, 64, 64) for shape in seen)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["ckpt", "onnx"])
def test_memory_stays_flat_on_long_videos(media, tmp_path, backend):
    """Peak RSS of `detect` grows by less than 50 MB from a 300-frame to a 3000-frame video, for the MindSpore
    checkpoint backend and for ONNX Runtime.

    --aligned keeps it fast (whole 160x120 frames go to the network); decoding, batching, CSV writing and the
    --prob-k smoothing pass are the parts that could grow with the length.
    """
    model = media["ckpt"]
    if backend == "onnx":
        pytest.importorskip("onnxruntime")
        model = str(tmp_path / "tiny.onnx")
        run_cli("export", "--ckpt", media["ckpt"], "--format", "ONNX", "--out", model, check=True)
    peaks = []
    for frames in (300, 3000):
        video = str(tmp_path / f"v{frames}.avi")
        write_video(video, frames)
        out = str(tmp_path / f"v{frames}.csv")
        code = (
            "import resource, sys\nfrom mindface_au.cli import main\nrc = main(sys.argv[1:])\n"
            "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\nsys.exit(rc)\n"
        )
        args = ["detect", "--input", video, "--output", out, "--ckpt", model, "--aligned"]
        args += ["--prob-k", "8", "--no-progress", "--device", "CPU"]
        proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=cli_env())
        assert proc.returncode == 0, proc.stderr
        with open(out) as handle:
            assert sum(1 for _ in handle) == frames + 1
        peaks.append(int(proc.stderr.split("MAXRSS_KB")[-1].split()[0]) / 1024.0)
    print(f"peak RSS: 300 frames {peaks[0]:.1f} MB, 3000 frames {peaks[1]:.1f} MB")
    assert peaks[1] - peaks[0] < 50, f"peak RSS {peaks[0]:.0f} MB -> {peaks[1]:.0f} MB"
