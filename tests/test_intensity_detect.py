"""detect with a model that has the intensity head: `AUxx_intensity` columns (0-5, 4 decimals, empty without a
face) after the 0/1 columns; --prob-k smooths them per track; resume, folders, shards and re-run checks keep
working; the report, --plot and --overlay draw them. A model without the head writes what it wrote before.

Most tests drive the detect API with `StubModel`, a DetectModel whose outputs are a known function of the input
(so every expected value is computed here independently); the CLI test at the end runs a tiny checkpoint with the
head.
"""

import csv
import dataclasses
import json
import os
import shutil
import subprocess
import tempfile

import cv2
import numpy as np
import pytest
from helpers import TINY_AUNET, run_cli

import mindface_au.inference.detect.run as run_mod
from mindface_au.errors import UserError
from mindface_au.inference.detect import RowSchema, detect, iter_rows, to_dataframe
from mindface_au.inference.detect.collection import merge_summaries
from mindface_au.inference.detect.model import model_outputs
from mindface_au.inference.detect.rows import DetectionRow
from mindface_au.inference.faces import Face

INTENSITY_AUS = ["AU1", "AU6", "AU12"]  # a subset of the ABAW 12, not in their order's first places only


class StubModel:
    """A DetectModel with fixed outputs: u = the mean of a face's normalised input mapped to [0, 1]; probability
    of AU c (of C) = u * (c + 1) / C; intensity of AU k (of K) = 5 * u * (K - k) / K."""

    backend, device, card, file = "stub", "CPU", None, None

    def __init__(self, path, intensity_au_names=INTENSITY_AUS, batch_size=4, outputs=True):
        from mindface_au.config import ModelConfig
        from mindface_au.models.registry import face_input

        self.path, self.batch_size = str(path), batch_size
        self.model_config = ModelConfig(**TINY_AUNET)
        self.face_input = face_input(self.model_config)
        self.au_names = list(self.model_config.au_names)
        self.intensity_au_names = list(intensity_au_names)
        if not outputs:  # a model from before the contract: predict only
            del self.intensity_au_names

    sha256 = None

    def _u(self, x):
        return (np.asarray(x, np.float64).reshape(len(x), -1).mean(axis=1) + 1.0) / 2.0

    def predict(self, x, pad=False):
        c = len(self.au_names)
        return (self._u(x)[:, None] * (np.arange(c) + 1) / c).astype(np.float32)

    def predict_outputs(self, x, pad=False):
        k = len(self.intensity_au_names)
        intensity = (5.0 * self._u(x)[:, None] * (k - np.arange(k)) / k).astype(np.float32) if k else None
        return self.predict(x, pad), intensity

    def describe(self):
        return "stub"

    def card_text(self):
        return "# stub"

    def crop_problem(self, aligned=False):
        return None


class OldStub(StubModel):
    """A model of before the intensity contract: no intensity_au_names, no predict_outputs."""

    def __init__(self, path):
        super().__init__(path, outputs=False)

    predict_outputs = property()  # hasattr() is False


def stub_path(tmp_path):
    path = tmp_path / "stub.model"
    path.write_bytes(b"stub model")
    return path


def expected_u(bgr):
    """u of a BGR crop as the stub sees it, from the crop's own pixels (mean 127.5, std 127.5 normalisation)."""
    from mindface_au.data.transforms import resize_face

    return float(((resize_face(bgr, 32).astype(np.float64) - 127.5) / 127.5).mean() + 1.0) / 2.0


def ramp_clip(path, frames=16, size=(40, 40)):
    """An MJPG clip whose brightness follows a wave (so intensities change from frame to frame)."""
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, size)
    for i in range(frames):
        level = 128 + 90 * np.sin(i / 2.0)
        frame = np.clip(level + rng.normal(0, 10, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
        writer.write(frame)
    writer.release()
    return str(path)


def read_csv(path):
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def columns(rows, header, names):
    return np.array([[float(r[header.index(n)]) for n in names] for r in rows])


# ------------------------------------------------------------------------------------------------ schema
def test_intensity_columns_follow_the_labels_and_are_empty_without_a_face():
    schema = RowSchema(["AU1", "AU6", "AU12"], with_file=True, intensity_au_names=["AU6", "AU12"])
    assert schema.columns[19:] == [
        "AU1_prob", "AU6_prob", "AU12_prob", "AU1", "AU6", "AU12", "AU6_intensity", "AU12_intensity", "file",
    ]  # fmt: skip
    face = Face((1, 2, 30, 40), 0.9, None)
    row = DetectionRow(2, None, 0, face, np.array([0.2, 0.7, 0.5]), np.array([2.34567, 5.00002]), name="a.png")
    row.schema = schema
    fields = row.fields(0.5)
    assert fields[-3:] == ["2.3457", "5.0000", "a.png"]  # 4 decimals; a hair above 5 is clipped to the scale
    assert row.as_dict()["AU6_intensity"] == pytest.approx(2.3457) and row.as_dict()["AU6"] == 1
    empty = DetectionRow(3, None, name="b.png", schema=schema).fields(0.5)
    assert empty[-3:] == ["", "", "b.png"] and len(empty) == len(schema.columns)
    again = RowSchema.from_header(schema.columns)
    assert again.intensity_au_names == ["AU6", "AU12"] and again.columns == schema.columns
    # without the head: the columns of before
    assert RowSchema(["AU1", "AU6"]).columns[19:] == ["AU1_prob", "AU6_prob", "AU1", "AU6"]
    with pytest.raises(UserError, match="unexpected columns"):  # intensity columns in the wrong place
        RowSchema.from_header(schema.columns[:19] + ["AU6_intensity"] + schema.columns[19:25] + ["file"], "x.csv")


def test_model_outputs_contract(tmp_path):
    x = np.zeros((3, 3, 32, 32), np.float32)
    probs, intensity = model_outputs(StubModel(stub_path(tmp_path)), x)
    assert probs.shape == (3, 12) and intensity.shape == (3, 3)
    assert intensity[:, 0] == pytest.approx(2.5) and probs[:, -1] == pytest.approx(0.5)
    probs, intensity = model_outputs(OldStub(stub_path(tmp_path)), x)  # no predict_outputs: predict, no intensity
    assert probs.shape == (3, 12) and intensity is None
    probs, intensity = model_outputs(StubModel(stub_path(tmp_path), intensity_au_names=[]), x)
    assert intensity is None
    lying = StubModel(stub_path(tmp_path))
    lying.predict_outputs = lambda x, pad=False: (lying.predict(x), np.ones((len(x), 3), np.float32))
    lying.intensity_au_names = ["AU1"]  # names one AU, gives three columns
    with pytest.raises(UserError, match=r"intensity output of shape \(3, 3\), expected \(3, 1\)"):
        model_outputs(lying, x)
    silent = StubModel(stub_path(tmp_path))
    silent.predict_outputs = lambda x, pad=False: (silent.predict(x), None)
    with pytest.raises(UserError, match="names intensity AUs .* but gave no intensity output"):
        model_outputs(silent, x)


# ------------------------------------------------------------------------------------------------ the CSV
def test_images_get_intensities_and_rows_without_a_face_stay_empty(tmp_path):
    folder = tmp_path / "crops"
    folder.mkdir()
    rng = np.random.default_rng(3)
    crops = {}
    for i in range(3):
        crops[f"{i}.png"] = rng.integers(30 + 60 * i, 90 + 60 * i, (40, 40, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"{i}.png"), crops[f"{i}.png"])
    (folder / "3.png").write_bytes(b"not an image")  # a row with success=0
    out = str(tmp_path / "crops.csv")
    model = StubModel(stub_path(tmp_path))
    summary = detect(str(folder), out, predictor=model, aligned=True, progress=False)
    assert summary["faces"] == 3 and summary["no_face"] == 1
    header, rows = read_csv(out)
    names = [f"{a}_intensity" for a in INTENSITY_AUS]
    assert header == RowSchema(model.au_names, True, INTENSITY_AUS).columns
    assert header.index("AU26") + 1 == header.index("AU1_intensity") and header[-1] == "file"
    for row in rows:
        if row[-1] == "3.png":
            assert row[3] == "0" and [row[header.index(n)] for n in names] == ["", "", ""]
            continue
        u = expected_u(crops[row[-1]])
        want = [f"{5 * u * (3 - k) / 3:.4f}" for k in range(3)]
        got = [row[header.index(n)] for n in names]
        assert np.abs(np.array(got, float) - np.array(want, float)).max() <= 1e-4, (got, want)  # float32 network
    frame = to_dataframe(out)
    assert list(frame.columns) == header and frame["AU12_intensity"].isna().sum() == 1
    parsed = list(iter_rows(out))
    assert all(isinstance(r["AU1_intensity"], float) for r in parsed if r["success"])


def test_prob_k_smooths_intensities_per_track_like_probabilities(tmp_path):
    video = ramp_clip(tmp_path / "v.avi")
    model = StubModel(stub_path(tmp_path))
    raw, smooth = str(tmp_path / "raw.csv"), str(tmp_path / "smooth.csv")
    detect(video, raw, predictor=model, aligned=True, progress=False)
    detect(video, smooth, predictor=model, aligned=True, progress=False, prob_k=2)
    header, raw_rows = read_csv(raw)
    _, smooth_rows = read_csv(smooth)
    names = [f"{a}_intensity" for a in INTENSITY_AUS]
    values, smoothed = columns(raw_rows, header, names), columns(smooth_rows, header, names)
    assert values[:, 0].std() > 0.5  # the clip moves the intensities
    k = 2
    want = np.array([values[max(0, t - k) : t + k + 1].mean(axis=0) for t in range(len(values))])  # clipped window
    assert np.abs(smoothed - want).max() <= 1.5e-4
    probs = columns(raw_rows, header, [f"{a}_prob" for a in model.au_names])
    want_p = np.array([probs[max(0, t - k) : t + k + 1].mean(axis=0) for t in range(len(probs))])
    assert np.abs(columns(smooth_rows, header, [f"{a}_prob" for a in model.au_names]) - want_p).max() <= 1.5e-6


def test_resume_folders_shards_and_reruns_keep_the_intensity_columns(tmp_path, monkeypatch, capsys):
    model = StubModel(stub_path(tmp_path))
    run = dict(predictor=model, aligned=True, progress=False)
    video = ramp_clip(tmp_path / "v.avi", frames=20)
    whole = str(tmp_path / "whole.csv")
    detect(video, whole, prob_k=1, **run)
    # an interrupted run, resumed: the same bytes as the uninterrupted one
    real = run_mod.iter_detections

    def interrupted(*args, **kwargs):
        for i, row in enumerate(real(*args, **kwargs)):
            if i == 11:
                raise KeyboardInterrupt
            yield row

    out = str(tmp_path / "v.csv")
    monkeypatch.setattr(run_mod, "iter_detections", interrupted)
    with pytest.raises(KeyboardInterrupt):
        detect(video, out, prob_k=1, **run)
    monkeypatch.setattr(run_mod, "iter_detections", real)
    assert "AU12_intensity" in open(out + ".partial").readline()
    detect(video, out, resume=True, prob_k=1, **run)
    assert open(out).read() == open(whole).read()
    assert json.load(open(out + ".json"))["model_card"]["intensity_au_names"] == INTENSITY_AUS
    # a finished CSV is kept when its content checks, redone when it does not
    capsys.readouterr()
    assert detect(video, out, resume=True, prob_k=1, **run)["status"] == "done before"
    with open(out, "r+") as handle:
        handle.truncate(os.path.getsize(out) - 5)
    detect(video, out, resume=True, prob_k=1, **run)
    assert "redone: the CSV is damaged" in capsys.readouterr().err and open(out).read() == open(whole).read()

    # a folder of videos in two shards, merged; each CSV the single-video run's
    videos, results = tmp_path / "videos", tmp_path / "results"
    videos.mkdir()
    for name in ("a.avi", "b.avi", "c.avi"):
        shutil.copy(video, videos / name)
    for i in range(2):
        detect(str(videos), str(results), shard=f"{i}/2", prob_k=1, **run)
    merged = merge_summaries(str(results))
    assert merged["failed"] == 0 and len(merged["videos"]) == 3
    for name in "abc":
        assert read_csv(results / f"{name}.csv")[1] == read_csv(whole)[1]
    again = detect(str(videos), str(results), shard="0/2", prob_k=1, **run)
    assert {v["status"] for v in again["videos"]} == {"done before"}


# ------------------------------------------------------------------------------------------------ pictures
def test_report_plot_and_overlay_draw_intensities(tmp_path, monkeypatch):
    from mindface_au.inference.detect.report import INTENSITY_COLOUR, PROB_COLOUR

    video = ramp_clip(tmp_path / "v.avi")
    model, plain = StubModel(stub_path(tmp_path)), StubModel(stub_path(tmp_path), intensity_au_names=[])
    outs = {}
    for name, m in (("head", model), ("plain", plain)):
        outs[name] = tmp_path / name
        outs[name].mkdir()
        d = outs[name]
        detect(video, str(d / "v.csv"), predictor=m, aligned=True, progress=False, report=str(d / "v.html"),
               plot=str(d / "v.png"))  # fmt: skip
    page = (outs["head"] / "v.html").read_text()
    # one orange line per intensity AU (in that AU's panel), the mean intensity bars, the note saying the scale
    assert page.count(f'stroke="{INTENSITY_COLOUR}"') == 3 and page.count(f'stroke="{PROB_COLOUR}"') == 12
    assert "Mean intensity over the face&#x27;s frames (0-5)" in page or "Mean intensity over the face's" in page
    assert "orange: intensity on the 0-5 scale" in page
    panel = page[page.index("<b>AU6</b>") : page.index("<b>AU7</b>")]
    assert INTENSITY_COLOUR in panel  # AU6 has an intensity; AU2 does not
    assert INTENSITY_COLOUR not in page[page.index("<b>AU2</b>") : page.index("<b>AU4</b>")]
    plain_page = (outs["plain"] / "v.html").read_text()
    assert INTENSITY_COLOUR not in plain_page and "intensity" not in plain_page.lower()

    # the PNG: tab:orange intensity lines only with the head
    def orange(path):
        image = cv2.imread(str(path)).astype(int)
        return int((np.abs(image - np.array([14, 127, 255])).sum(axis=2) < 40).sum())

    assert orange(outs["head"] / "v.png") > 200 and orange(outs["plain"] / "v.png") == 0

    # the overlay: an orange intensity bar right of each intensity AU's probability bar
    pytest.importorskip("av")
    from mindface_au.inference.detect.overlay import draw_faces

    rows = [r for r in iter_rows(str(outs["head"] / "v.csv")) if r["frame"] == 2]
    image = np.zeros((160, 200, 3), np.uint8)
    rows[0].update(face_x=2, face_y=2, face_w=30, face_h=30)
    drawn = draw_faces(image, rows, model.au_names, INTENSITY_AUS)
    px, line, bar = 36, 11, 40
    for i, au in enumerate(model.au_names):
        top = 2 + i * line
        strip = drawn[top + 4, px + 40 + bar : px + 40 + 2 * bar].astype(int)
        lit = int((np.abs(strip - np.array([13, 115, 217])).sum(axis=1) < 10).sum())
        if au in INTENSITY_AUS:
            want = round(rows[0][f"{au}_intensity"] / 5 * bar)
            assert abs(lit - want) <= 1, (au, lit, want)
        else:
            assert lit == 0
    from mindface_au.inference.detect.overlay import write_overlay

    assert write_overlay(video, str(outs["head"] / "v.csv"), str(tmp_path / "o.mp4")) == 16


def test_report_with_intensities_renders_in_headless_chromium(tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    video = ramp_clip(tmp_path / "v.avi")
    page = str(tmp_path / "v.html")
    detect(video, str(tmp_path / "v.csv"), predictor=StubModel(stub_path(tmp_path)), aligned=True, progress=False,
           report=page)  # fmt: skip
    shot = str(tmp_path / "shot.png")
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr",
             "--v=0", "--window-size=1100,1400", f"--screenshot={shot}", "file://" + page],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line] == []
    image = cv2.imread(shot)
    assert image is not None, proc.stderr[-2000:]
    orange = (np.abs(image.astype(int) - np.array([13, 115, 217])).sum(axis=2) < 60).sum()
    assert orange > 300, orange


# ------------------------------------------------------------------------------------------------ end to end
def test_cli_with_a_tiny_intensity_checkpoint(tmp_path):
    from mindface_au.config import ModelConfig
    from mindface_au.inference.loader import InferenceModel
    from mindface_au.models import create_model_from_config
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    if not hasattr(InferenceModel, "predict_outputs"):
        pytest.skip("the model loader does not give intensities yet (InferenceModel.predict_outputs)")
    cfg = ModelConfig(**TINY_AUNET, intensity=True, intensity_au_names=["AU6", "AU12"])
    ckpt = str(tmp_path / "intensity.ckpt")
    save_checkpoint_atomic(create_model_from_config(cfg), ckpt, model_config=dataclasses.asdict(cfg))
    video = ramp_clip(tmp_path / "v.avi", frames=6)
    out = tmp_path / "v.csv"
    pictures = ["--report", tmp_path / "v.html", "--plot", tmp_path / "v.png"]
    proc = run_cli("detect", "--input", video, "--out", out, "--model", ckpt, "--aligned", "--no-progress",
                   "--device", "CPU", "--prob-k", "1", *pictures)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    header, rows = read_csv(out)
    assert header[-2:] == ["AU6_intensity", "AU12_intensity"] and header[-3] == "AU26" and len(rows) == 6
    values = columns(rows, header, header[-2:])
    assert ((values >= 0) & (values <= 5)).all()
    assert all(len(r[-1].split(".")[1]) == 4 for r in rows)
    assert "AU12_intensity" not in "".join(read_csv(tmp_path / "v.csv")[0][:-2])
    assert json.load(open(str(out) + ".json"))["model_card"]["intensity_au_names"] == ["AU6", "AU12"]
    assert "orange: intensity" in (tmp_path / "v.html").read_text()
