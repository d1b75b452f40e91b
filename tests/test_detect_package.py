"""`detect` as a package: face tracking against per-frame detection, the row schema, container timestamps and
--start/--end, folders of videos (workers, shards, failures, resume), sidecar JSON, DataFrame, overlay, report.

Test faces: SynthAU renderings (mindface_au.data.synthau.clips; MTCNN finds them at 0.98-0.999), and the tiny AU
network.
"""

import csv
import fractions
import json
import os
import shutil
import subprocess
import tempfile

import cv2
import numpy as np
import pytest
from helpers import TINY_AUNET, run_cli, run_cli_in_process

from mindface_au.data.synthau.clips import scene_video
from mindface_au.errors import UserError
from mindface_au.inference.detect import RowSchema, detect, iter_rows, to_dataframe
from mindface_au.inference.detect.collection import output_names, shard_videos
from mindface_au.inference.detect.rows import DetectionRow
from mindface_au.inference.detect.tracking import FaceFinder
from mindface_au.inference.faces import Face, IoUTracker, MTCNNDetector, iou


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    import dataclasses

    from mindface_au.config import ModelConfig
    from mindface_au.inference.predictor import Predictor
    from mindface_au.models import create_model_from_config
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    root = tmp_path_factory.mktemp("detectpkg")
    cfg = ModelConfig(**TINY_AUNET)
    ckpt = str(root / "tiny.ckpt")
    save_checkpoint_atomic(create_model_from_config(cfg), ckpt, model_config=dataclasses.asdict(cfg))
    scene = str(root / "scene.avi")
    drawn = scene_video(scene)
    return {
        "root": root,
        "ckpt": ckpt,
        "scene": scene,
        "drawn": drawn,
        "predictor": Predictor(ckpt, device="CPU", batch_size=8),
    }


def read_csv(path):
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


# ------------------------------------------------------------------------------------------------ tracking
def test_tracking_finds_the_faces_per_frame_detection_finds(media):
    """A cut, ten frames without a face, two people: tracked boxes match per-frame detection (IoU >= 0.8 on at
    least 95% of frames), no face where there is none, one id per person while in view; far fewer detector runs."""
    detector = MTCNNDetector()
    found = {}
    finders = {}
    from mindface_au.inference.detect.sources import open_source

    for track in (False, True):
        finder = finders[track] = FaceFinder(detector, True, IoUTracker(), track=track)
        found[track] = [list(zip(*finder.find(f.image, f.index))) for f in open_source(media["scene"]).frames()]
    drawn = media["drawn"]
    good = 0
    for frame, (per_frame, tracked) in enumerate(zip(found[False], found[True]), start=1):
        assert len(per_frame) == len(drawn[frame]), frame  # the detector itself sees what was drawn
        if not drawn[frame]:
            assert tracked == [], frame  # none where there is none
        good += len(tracked) == len(per_frame) and all(
            max(iou(a.box, b.box) for b, _ in tracked) >= 0.8 for a, _ in per_frame
        )
    assert good >= 0.95 * len(drawn)
    # ids: person A in shot 1 (frames 1-20), A and B in shot 2 (31-50; left and right), B alone (51-60)
    ids = {"A1": set(), "A2": set(), "B": set()}
    for frame, faces in enumerate(found[True], start=1):
        for face, fid in faces:
            cx = face.box[0] + face.box[2] / 2
            ids["A1" if frame <= 20 else ("A2" if cx < 160 else "B")].add(fid)
    assert all(len(v) == 1 for v in ids.values()), ids
    assert len(set.union(*ids.values())) == 3  # after the gap A is a new id; B another
    assert finders[True].keyframes < 0.5 * len(drawn) and finders[False].keyframes == len(drawn)


def test_refine_follows_a_shifted_face(media):
    """O-Net on the previous box finds the face moved by a few pixels, with landmarks inside the box; a box on
    background finds nothing."""
    cap = cv2.VideoCapture(media["scene"])
    ok, image = cap.read()
    cap.release()
    detector = MTCNNDetector()
    (face,) = detector.detect(image)
    x, y, w, h = face.box
    moved, nothing = detector.refine(image, [(x + 6, y - 4, w, h), (250, 100, 50, 50)])
    assert nothing is None and iou(moved.box, face.box) > 0.85
    lm = moved.landmarks
    assert ((lm[:, 0] > x) & (lm[:, 0] < x + w) & (lm[:, 1] > y) & (lm[:, 1] < y + h)).all()


# ------------------------------------------------------------------------------------------------ rows
def test_one_schema_for_csv_and_python_rows():
    """as_dict is the written row parsed: labels thresholded as written (a probability within 5e-7 of the
    threshold gets the CSV's label), AU columns from the given names, landmarks beside the box."""
    schema = RowSchema(["AU1", "AU12"])
    names = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
    assert schema.columns[9:19] == [f"{n}_{a}" for n in names for a in "xy"]
    assert schema.columns[19:] == ["AU1_prob", "AU12_prob", "AU1", "AU12"]
    lm = np.arange(10, dtype=float).reshape(5, 2) + 0.25
    row = DetectionRow(3, 0.08, 1, Face((1.2, 2.6, 30, 40), 0.98765, lm), np.array([0.4999996, 0.2]), schema=schema)
    fields = row.fields(0.5)
    assert fields[:9] == ["3", "0.080", "1", "1", "0.9877", "1", "3", "30", "40"]
    assert fields[9:11] == ["0.2", "1.2"] and fields[19:] == ["0.500000", "0.200000", "1", "0"]
    as_dict = row.as_dict(0.5)
    assert as_dict == schema.parse(fields) and as_dict["AU1"] == 1 and as_dict["left_eye_x"] == 0.2
    empty = DetectionRow(4, 0.12, schema=schema).as_dict()
    assert empty["success"] == 0 and empty["face_id"] is None and empty["AU1_prob"] is None
    with pytest.raises(UserError, match="unexpected columns"):
        RowSchema.from_header(["frame", "x"], "a.csv")


# ------------------------------------------------------------------------------------------------ sources
def _vfr_video(path, times_ms):
    av = pytest.importorskip("av")
    container = av.open(path, "w")
    stream = container.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    stream.codec_context.time_base = fractions.Fraction(1, 1000)
    for i, t in enumerate(times_ms):
        frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format="bgr24")
        frame.pts, frame.time_base = t, fractions.Fraction(1, 1000)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()


def test_container_timestamps_and_start_end(media, tmp_path):
    """A variable-frame-rate video keeps its frame times; --start/--end select by time (aligned: no detector)."""
    times = [0, 40, 80, 200, 240, 500, 540, 580, 1000, 1040]
    video = str(tmp_path / "vfr.mp4")
    _vfr_video(video, times)
    out = str(tmp_path / "vfr.csv")
    detect(video, out, predictor=media["predictor"], aligned=True, progress=False)
    _, rows = read_csv(out)
    assert [float(r[1]) for r in rows] == pytest.approx([t / 1000 for t in times], abs=1e-3)
    summary = detect(
        video, out, predictor=media["predictor"], aligned=True, progress=False, start_time=0.2, end_time=0.55,
        overwrite=True,
    )  # fmt: skip
    _, rows = read_csv(out)
    assert [int(r[0]) for r in rows] == [4, 5, 6, 7] and summary["frames"] == 4
    assert [float(r[1]) for r in rows] == pytest.approx([0.2, 0.24, 0.5, 0.54], abs=1e-3)
    with pytest.raises(UserError, match="^end_time: "):
        detect(video, out, predictor=media["predictor"], aligned=True, start_time=2, end_time=1)


# ------------------------------------------------------------------------------------------------ collections
def test_shards_are_deterministic_balanced_and_complete():
    sizes = {f"v{i}.mp4": s for i, s in enumerate([900, 100, 500, 500, 300, 300, 200, 50])}
    shards = [shard_videos(sizes, (i, 3)) for i in range(3)]
    assert sorted(sum(shards, [])) == sorted(sizes) and shards == [shard_videos(sizes, (i, 3)) for i in range(3)]
    loads = [sum(sizes[v] for v in s) for s in shards]
    assert max(loads) - min(loads) <= max(sizes.values()) // 2
    assert output_names(["a/x.mp4", "a/x.avi", "b/y.mov"]) == {
        "a/x.mp4": "a/x.mp4.csv", "a/x.avi": "a/x.avi.csv", "b/y.mov": "b/y.csv"
    }  # fmt: skip


@pytest.fixture(scope="module")
def collection(media, tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    (root / "day1").mkdir()
    (root / "day2").mkdir()
    shutil.copy(media["scene"], root / "day1" / "scene.avi")
    cap = cv2.VideoCapture(media["scene"])
    writer = cv2.VideoWriter(str(root / "day2" / "short.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 180))
    for _ in range(8):
        writer.write(cap.read()[1])
    writer.release()
    (root / "day2" / "broken.mp4").write_bytes(b"\x00not a video" * 50)
    return root


def test_folder_of_videos_cli_workers_summary_failure_and_resume(media, collection, tmp_path):
    out = tmp_path / "out"
    base = ["detect", "--input", collection, "--output", out, "--ckpt", media["ckpt"], "--device", "CPU"]
    proc = run_cli(*base, "--workers", 2, "--no-progress", "--all-faces", "--report", tmp_path / "index.html")
    assert proc.returncode != 0, proc.stderr  # the broken video failed, the others finished
    assert "broken.mp4" in proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    status = {v["video"]: v["status"] for v in summary["videos"]}
    assert status == {"day1/scene.avi": "ok", "day2/short.avi": "ok", "day2/broken.mp4": "failed"}
    assert summary["failed"] == 1 and os.path.isfile(out / "summary.json")
    by_video = {v["video"]: v for v in summary["videos"]}
    assert by_video["day1/scene.avi"]["frames"] == 60 and by_video["day2/short.avi"]["frames"] == 8
    header, rows = read_csv(out / "day1" / "scene.csv")
    assert [int(r[0]) for r in rows if r[3] == "0"] == list(range(21, 31))
    side = json.load(open(out / "day1" / "scene.csv.json"))
    assert side["settings"]["all_faces"] is True and side["model_card"]["au_names"][0] == "AU1"
    assert "card" in side["model_card"] and side["kind"] == "video" and side["fps"] == pytest.approx(25)
    index = (tmp_path / "index.html").read_text()
    assert "day1/scene.html" in index and os.path.isfile(out / "day1" / "scene.html")
    # the same command again keeps the finished CSVs (its own, same settings: done before) and retries the broken one
    again = run_cli(*base, "--no-progress", "--all-faces")
    summary = json.loads(again.stdout)  # stdout is the JSON summary and nothing else
    videos = {v["video"]: v for v in summary["videos"]}
    assert [videos[v]["status"] for v in ("day1/scene.avi", "day2/short.avi")] == ["done before"] * 2
    assert videos["day1/scene.avi"]["frames"] == 60  # the numbers come from the kept CSV's sidecar
    before = (out / "day1" / "scene.csv").read_bytes()
    # other settings: those CSVs are not this run's to keep, and not replaced without --overwrite
    other = run_cli(*base, "--no-progress")
    assert other.returncode == 2 and "all_faces" in other.stderr and "--overwrite" in other.stderr, other.stderr
    assert (out / "day1" / "scene.csv").read_bytes() == before


def test_shards_together_equal_one_run(media, collection, tmp_path):
    single = tmp_path / "single"
    detect(str(collection), str(single), predictor=media["predictor"], progress=False)
    for i in range(2):
        detect(str(collection), str(tmp_path / "sharded"), predictor=media["predictor"], progress=False, shard=f"{i}/2")
    for name in ("day1/scene.csv", "day2/short.csv"):
        assert read_csv(single / name) == read_csv(tmp_path / "sharded" / name)
    assert os.path.isfile(tmp_path / "sharded" / "summary-shard-1-of-2.json")
    with pytest.raises(UserError, match="^shard: "):
        detect(str(collection), str(tmp_path / "x"), predictor=media["predictor"], shard="2/2")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_launch_detect_command_line(media, collection, tmp_path):
    detect_args = ["--input", collection, "--out", tmp_path / "o", "--model", media["ckpt"]]
    base = ["launch", "--workers", "4", "--dry-run", "--", "detect", *detect_args]
    proc = run_cli_in_process(*base)
    assert proc.returncode == 0, proc.stderr
    cmd = proc.stdout.strip().splitlines()[-1].split()
    assert cmd[cmd.index("detect") :][:3] == ["detect", "--shard", "auto"] and "train" not in cmd
    proc = run_cli_in_process(*base, "--shard", "0/4")
    assert proc.returncode == 2 and "drop --shard" in proc.stderr
    proc = run_cli_in_process(*base[:3], "--local-workers", "2", *base[3:])
    assert proc.returncode == 2 and "--node_rank" in proc.stderr
    proc = run_cli_in_process(*base[:3], "--local-workers", "2", "--msrun-arg=--node_rank=1", *base[3:])
    assert proc.returncode == 0, proc.stderr
    proc = run_cli_in_process("detect", *detect_args, "--shard", "auto")
    assert proc.returncode == 2 and "mindface-au launch" in proc.stderr  # not under msrun


@pytest.mark.slow
def test_launch_detect_two_shards_equal_one_run_and_merge_summaries(media, tmp_path):
    """`mindface-au launch --workers 2 -- detect ...`: msrun's two ranks each take their shard (--shard auto), a
    broken video fails only itself, launch merges the shard summaries; the CSVs equal a single-process run's."""
    videos = tmp_path / "videos"
    videos.mkdir()
    cap = cv2.VideoCapture(media["scene"])
    frames = [cap.read()[1] for _ in range(36)]
    cap.release()
    for name, first in (("one_face.avi", 0), ("two_faces.avi", 30)):  # scene frames 1-6 and 31-36
        writer = cv2.VideoWriter(str(videos / name), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 180))
        for image in frames[first : first + 6]:
            writer.write(image)
        writer.release()
    (videos / "broken.mp4").write_bytes(b"\x00not a video" * 50)
    out = tmp_path / "sharded"
    proc = run_cli(
        "launch", "--workers", "2", f"--port={_free_port()}", f"--log-dir={tmp_path / 'logs'}", "--",
        "detect", "--input", videos, "--out", out, "--model", media["ckpt"], "--device", "CPU", "--all-faces",
        "--no-progress", "--batch-size", "8", timeout=600,
    )  # fmt: skip
    logs = {n: open(tmp_path / "logs" / n).read()[-1500:] for n in os.listdir(tmp_path / "logs")}
    assert proc.returncode == 1, proc.stdout[-1500:] + proc.stderr[-1500:] + str(logs)  # the broken video
    shard_files = sorted(n for n in os.listdir(out) if n.startswith("summary-shard-"))
    assert shard_files == ["summary-shard-0-of-2.json", "summary-shard-1-of-2.json"]
    merged = json.loads(proc.stdout.strip().splitlines()[-1])  # launch prints the merged summary last
    assert merged == json.load(open(out / "summary.json"))
    status = {v["video"]: v["status"] for v in merged["videos"]}
    assert status == {"one_face.avi": "ok", "two_faces.avi": "ok", "broken.mp4": "failed"} and merged["failed"] == 1
    by_shard = [json.load(open(out / name))["videos"] for name in shard_files]
    assert sorted(v["video"] for s in by_shard for v in s) == sorted(status) and all(by_shard)  # disjoint, both work

    single = tmp_path / "single"
    summary = detect(str(videos), str(single), predictor=media["predictor"], all_faces=True, progress=False)
    assert summary["failed"] == 1
    for name in ("one_face.csv", "two_faces.csv"):
        assert read_csv(single / name) == read_csv(out / name)
    assert len({r[2] for r in read_csv(out / "two_faces.csv")[1]}) == 2  # two face ids: not a trivial CSV

    # the merge as a command: the same summary; refused while a shard is missing
    again = run_cli_in_process("detect", "--merge-summaries", out)
    assert again.returncode == 1 and json.loads(again.stdout)["videos"] == merged["videos"]
    os.remove(out / shard_files[1])
    missing = run_cli_in_process("detect", "--merge-summaries", out)
    assert missing.returncode == 2 and "summary-shard-1-of-2.json" in missing.stderr


def test_every_output_is_checked_before_any_work(media, tmp_path):
    """Overlay, report and sidecar follow the CSV's rule: never an input, never replaced without overwrite; the
    sidecar an interrupted run left beside its partial file is that run's own (resume continues)."""
    video, out = media["scene"], str(tmp_path / "o.csv")
    report, side = tmp_path / "r.html", tmp_path / "o.csv.json"
    run = dict(predictor=media["predictor"], progress=False, aligned=True, end_time=0.1)
    for kwargs, culprit in (
        (dict(report=video), "input of this command"),
        (dict(report=out), "two outputs"),
        (dict(overlay=str(tmp_path / "m.mp4"), report=str(tmp_path / "m.mp4")), "two outputs"),
    ):
        with pytest.raises(UserError, match=culprit):
            detect(video, out, **run, **kwargs)
    report.write_text("mine")
    side.write_text("{}")
    with pytest.raises(UserError, match=r"r.html.*pass overwrite\b"):
        detect(video, out, **run, report=str(report))
    with pytest.raises(UserError, match=r"o.csv.json.*pass overwrite\b"):
        detect(video, out, **run)
    assert report.read_text() == "mine" and side.read_text() == "{}" and not os.path.exists(out)
    assert sorted(os.listdir(tmp_path)) == ["o.csv.json", "r.html"]
    detect(video, out, **run, report=str(report), overwrite=True)
    assert json.load(open(side))["result"]["frames"] == 3 and "<svg" in report.read_text()


# ------------------------------------------------------------------------------------------------ outputs
@pytest.fixture(scope="module")
def scene_run(media, tmp_path_factory):
    root = tmp_path_factory.mktemp("scene_run")
    out = str(root / "scene.csv")
    summary = detect(media["scene"], out, predictor=media["predictor"], all_faces=True, progress=False, prob_k=2)
    return {"csv": out, "summary": summary, "root": root}


def test_rows_dataframe_and_sidecar(media, scene_run):
    rows = list(iter_rows(scene_run["csv"]))
    api = media["predictor"].predict_video(media["scene"], all_faces=True)
    assert len(rows) == len(api)
    frame = to_dataframe(scene_run["csv"])
    assert list(frame.columns) == RowSchema().columns and len(frame) == len(rows)
    assert frame["success"].sum() == sum(r["success"] for r in rows) == scene_run["summary"]["faces"]
    side = json.load(open(scene_run["csv"] + ".json"))
    assert side["settings"]["prob_k"] == 2 and side["settings"]["track"] is True and side["width"] == 320


def test_overlay_is_h264_at_the_input_rate(media, scene_run, tmp_path):
    av = pytest.importorskip("av")
    from mindface_au.inference.detect.overlay import face_colour, write_overlay

    out = str(tmp_path / "overlay.mp4")
    assert write_overlay(media["scene"], scene_run["csv"], out) == 60
    with av.open(out) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert float(stream.average_rate) == pytest.approx(25, rel=0.02)
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
    assert len(frames) == 60
    row = next(r for r in iter_rows(scene_run["csv"]) if r["frame"] == 5 and r["success"])
    x, y = int(row["face_x"]), int(row["face_y"]) + int(row["face_h"]) // 2  # the box's left edge
    colour = np.array(face_colour(row["face_id"]), float)
    assert np.abs(frames[4][y, x - 1 : x + 2].astype(float) - colour).sum(axis=1).min() < 90


def _static_check(page: str) -> None:
    low = page.lower()
    for banned in ("http:", "https:", "<script", "@import", "url(", "<link", "@font-face", "<iframe", "<img"):
        assert banned not in low, banned


def test_report_static_video_image_and_folder(media, scene_run, tmp_path):
    from mindface_au.inference.detect.report import write_report

    out = str(tmp_path / "scene.html")
    write_report([scene_run["csv"]], out)
    page = open(out).read()
    _static_check(page)
    assert page.count("<h2>Face ") == 3 and page.count("<polyline") >= 3 * 12  # three face ids, a line per AU
    assert "10 frames without a face" in page and "Model card" in page and "keyframe_every" in page
    # what the numbers are worth comes first: this model file does not say what it was trained on
    assert page.index("does not say what it was trained on") < page.index("<h2>Face ")
    from mindface_au.inference.detect.report import _validity_note

    assert "trained on synthetic faces (SynthAU). Its outputs on real faces are not validated" in _validity_note(
        {"card": {"trained_on": "SynthAU synthetic faces"}}
    )
    assert _validity_note({"card": {"trained_on": "Aff-Wild2"}}) == ""
    # an image and a folder of images
    folder = tmp_path / "images"
    folder.mkdir()
    cap = cv2.VideoCapture(media["scene"])
    for i in range(25):
        ok, image = cap.read()
        if i in (0, 24):
            cv2.imwrite(str(folder / f"f{i}.png"), image)
    cap.release()
    for src in (str(folder / "f0.png"), str(folder)):
        csv_out = str(tmp_path / (os.path.basename(src) + ".csv"))
        html_out = csv_out[:-4] + ".html"
        detect(src, csv_out, predictor=media["predictor"], progress=False, report=html_out)
        page = open(html_out).read()
        _static_check(page)
        assert "f0.png" in page and "<svg" in page
    assert "Images without a face" in page and "f24.png" in page


def test_report_renders_in_headless_chromium(scene_run, tmp_path):
    """The report in a real browser: no console errors, and the screenshot shows the plots (blue lines, green
    periods)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed (apt-get install chromium): only the static report check ran")
    from mindface_au.inference.detect.report import write_report

    page = str(tmp_path / "report.html")
    write_report([scene_run["csv"]], page)
    shot = str(tmp_path / "shot.png")
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr",
             "--v=0", "--window-size=1100,900", f"--screenshot={shot}", "file://" + page],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
    image = cv2.imread(shot)
    assert image is not None, proc.stderr[-2000:]
    b, g, r = (image[..., i].astype(int) for i in range(3))
    blue = (b > 150) & (r < 80) & (g < 130)  # the probability lines (#1f5fbf)
    green = (g > 200) & (r > 160) & (r < 200) & (b > 160) & (b < 200)  # the 0/1 periods (#b8e0b8)
    assert blue.sum() > 500 and green.sum() > 500, (blue.sum(), green.sum())
