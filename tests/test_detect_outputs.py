"""detect's outputs are right or absent: a finished CSV is finished only when its content says so (inputs and
rows recorded in the sidecar, checked on every re-run), merged shards account for every video once, nothing the
file system holds crashes a run, plots and reports show every face, and option values that cannot be measured are
refused. Videos here are tiny noise clips run with --aligned (no face detection), so each run takes a second.
"""

import csv
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
from helpers import TINY_AUNET, randomise_params, run_cli, run_cli_in_process

import mindface_au.inference.detect.run as run_mod
from mindface_au.errors import UserError
from mindface_au.inference.detect import detect
from mindface_au.inference.detect.collection import merge_summaries, shard_videos
from mindface_au.inference.detect.rows import RowSchema


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from mindface_au.config import ModelConfig
    from mindface_au.inference.predictor import Predictor
    from mindface_au.models import create_model_from_config
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    root = tmp_path_factory.mktemp("detectout")
    cfg = ModelConfig(**TINY_AUNET)
    ckpt = str(root / "tiny.ckpt")
    save_checkpoint_atomic(create_model_from_config(cfg), ckpt, model_config=dataclasses.asdict(cfg))
    return {"ckpt": ckpt, "predictor": Predictor(ckpt, device="CPU", batch_size=8)}


def clip(path, frames=8, seed=0, size=(48, 40)):
    """A tiny MJPG noise video (25 frames/s)."""
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, size)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    writer.release()
    return str(path)


def rows_of(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))[1:]


def statuses(summary):
    return {v["video"]: v["status"] for v in summary["videos"]}


# ------------------------------------------------------------------------------------------------ item 2
def test_a_finished_csv_is_finished_only_if_its_content_says_so(model, tmp_path, capsys):
    videos, out = tmp_path / "videos", tmp_path / "out"
    videos.mkdir()
    for i, name in enumerate(("a.avi", "b.avi", "c.avi", "d.avi")):
        clip(videos / name, seed=i)
    run = dict(predictor=model["predictor"], aligned=True, progress=False)
    first = detect(str(videos), str(out), **run)
    assert set(statuses(first).values()) == {"ok"}
    side = json.load(open(out / "a.csv.json"))
    assert side["version"] == 2 and side["output"]["rows"] == 8 == len(rows_of(out / "a.csv"))
    assert side["settings"]["input_file"]["size"] == os.path.getsize(videos / "a.avi")
    assert side["settings"]["model_sha256"] and len(side["settings"]["model_sha256"]) == 64
    assert set(statuses(detect(str(videos), str(out), **run)).values()) == {"done before"}
    capsys.readouterr()

    # a CSV cut mid-line, a CSV emptied to 0 bytes, a video replaced by another clip, a sidecar of the version
    # before these checks: all redone with a note naming why; nothing else is touched
    text = (out / "a.csv").read_text()
    (out / "a.csv").write_text(text[: len(text) // 2])
    (out / "b.csv").write_text("")
    clip(videos / "c.avi", seed=9)
    old = json.load(open(out / "d.csv.json"))
    old["version"] = 1
    del old["output"], old["settings"]["input_file"], old["settings"]["model_sha256"]
    json.dump(old, open(out / "d.csv.json", "w"))
    again = detect(str(videos), str(out), **run)
    err = capsys.readouterr().err
    assert statuses(again) == {"a.avi": "ok", "b.avi": "ok", "c.avi": "ok", "d.avi": "ok"}
    assert "a.csv: redone: the CSV is damaged" in err and "b.csv: redone: the CSV is damaged" in err
    assert "c.csv: redone: the input changed" in err and "d.csv: redone: its sidecar is from an earlier" in err
    for name in "abcd":
        assert len(rows_of(out / f"{name}.csv")) == 8
        assert json.load(open(out / f"{name}.csv.json"))["result"]["rows"] == 8
    summary = json.load(open(out / "summary.json"))
    assert [v["frames"] for v in summary["videos"]] == [8, 8, 8, 8]

    # a retrained model copied over the same path: every video is redone
    from mindface_au.config import ModelConfig
    from mindface_au.models import create_model_from_config
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    ckpt = str(tmp_path / "model.ckpt")
    shutil.copy(model["ckpt"], ckpt)
    os.chmod(ckpt, 0o644)
    base = ["detect", "--input", videos, "--out", tmp_path / "cli", "--model", ckpt, "--aligned", "--no-progress"]
    assert run_cli_in_process(*base).returncode == 0
    cfg = ModelConfig(**TINY_AUNET)
    net = randomise_params(create_model_from_config(cfg), seed=3)
    os.remove(ckpt)
    save_checkpoint_atomic(net, ckpt, model_config=dataclasses.asdict(cfg))
    proc = run_cli_in_process(*base)
    assert proc.returncode == 0, proc.stderr
    assert set(statuses(json.loads(proc.stdout)).values()) == {"ok"} and "the model file changed" in proc.stderr


def interrupt_after(monkeypatch, rows):
    real = run_mod.iter_detections

    def interrupted(*args, **kwargs):
        for i, row in enumerate(real(*args, **kwargs)):
            if i == rows:
                raise KeyboardInterrupt
            yield row

    monkeypatch.setattr(run_mod, "iter_detections", interrupted)
    return real


def test_resume_counts_the_whole_csv_and_single_files_follow_the_same_rule(model, tmp_path, monkeypatch, capsys):
    video, out = clip(tmp_path / "v.avi", frames=20), str(tmp_path / "v.csv")
    run = dict(predictor=model["predictor"], aligned=True, progress=False)
    real = interrupt_after(monkeypatch, 12)
    with pytest.raises(KeyboardInterrupt):
        detect(video, out, **run)
    monkeypatch.setattr(run_mod, "iter_detections", real)
    summary = detect(video, out, resume=True, **run)
    side = json.load(open(out + ".json"))
    assert len(rows_of(out)) == 20
    assert summary["rows"] == summary["frames"] == side["result"]["rows"] == side["result"]["frames"] == 20
    assert side["output"]["rows"] == 20
    # --resume on a finished single file: kept when its content checks, redone (with a note) when it does not
    capsys.readouterr()
    kept = detect(video, out, resume=True, **run)
    assert kept["status"] == "done before" and kept["rows"] == 20
    with open(out, "r+") as handle:
        handle.truncate(os.path.getsize(out) - 7)
    redone = detect(video, out, resume=True, **run)
    assert "redone: the CSV is damaged" in capsys.readouterr().err
    assert redone["rows"] == 20 and len(rows_of(out)) == 20
    # a partial file of another clip (same path, same settings) is started over, not continued
    real = interrupt_after(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        detect(video, str(tmp_path / "w.csv"), **run)
    monkeypatch.setattr(run_mod, "iter_detections", real)
    clip(tmp_path / "v.avi", frames=20, seed=5)
    capsys.readouterr()
    detect(video, str(tmp_path / "w.csv"), resume=True, **run)
    assert "started over, not resumed: the input changed" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ item 3
def test_merged_shards_account_for_every_video(model, tmp_path):
    videos, out = tmp_path / "videos", tmp_path / "out"
    videos.mkdir()
    for i in range(3):
        clip(videos / f"v{i}.avi", frames=4 + i, seed=i)
    run = dict(predictor=model["predictor"], aligned=True, progress=False)
    for i in range(2):
        detect(str(videos), str(out), shard=f"{i}/2", **run)
    shard0 = json.load(open(out / "summary-shard-0-of-2.json"))
    assert shard0["shards"] == 2 and sorted(shard0["all_videos"]) == ["v0.avi", "v1.avi", "v2.avi"]
    merged = merge_summaries(str(out))
    assert sorted(statuses(merged)) == ["v0.avi", "v1.avi", "v2.avi"] and merged["failed"] == 0

    def edit(name, change):
        data = json.load(open(out / name))
        change(data)
        json.dump(data, open(out / name, "w"))

    saved = {n: (out / n).read_text() for n in os.listdir(out) if n.startswith("summary-shard")}
    edit("summary-shard-0-of-2.json", lambda d: d["videos"].pop())
    with pytest.raises(UserError, match="1 video\\(s\\) in no shard: v"):
        merge_summaries(str(out))
    for name, text in saved.items():
        (out / name).write_text(text)
    edit("summary-shard-1-of-2.json", lambda d: d["videos"].append(dict(shard0["videos"][0])))
    with pytest.raises(UserError, match="in more than one shard: " + shard0["videos"][0]["video"]):
        merge_summaries(str(out))
    for name, text in saved.items():
        (out / name).write_text(text)
    edit("summary-shard-1-of-2.json", lambda d: d["videos"][0].update(status="failed", error="x"))
    proc = run_cli_in_process("detect", "--merge-summaries", out)
    assert proc.returncode == 1 and json.loads(proc.stdout)["failed"] == 1  # the shard said failed: 0
    edit("summary-shard-1-of-2.json", lambda d: d.pop("all_videos"))
    proc = run_cli_in_process("detect", "--merge-summaries", out)
    assert proc.returncode == 2 and "summary-shard-1-of-2.json: records no video list" in proc.stderr


# ------------------------------------------------------------------------------------------------ item 6
def test_shards_take_no_memory_per_shard_and_split_as_before():
    rng = np.random.default_rng(0)
    sizes = {f"v{i}.mp4": int(s) for i, s in enumerate(rng.integers(0, 5, 40))}  # many ties, zero sizes too

    def by_list(sizes, i, n):  # the rule written out with one load per shard
        loads, mine = [0] * n, []
        for video in sorted(sizes, key=lambda v: (-sizes[v], v)):
            k = min(range(n), key=lambda j: (loads[j], j))
            loads[k] += sizes[video]
            if k == i:
                mine.append(video)
        return mine

    for n in (1, 3, 7, 50):
        for i in range(n):
            assert shard_videos(sizes, (i, n)) == by_list(sizes, i, n)
    assert len(shard_videos(sizes, (0, 10**12))) == 1  # one video per shard, without a list of 10**12 loads


def test_what_the_file_system_holds_does_not_crash_a_folder_run(model, tmp_path):
    videos, out = tmp_path / "videos", tmp_path / "out"
    videos.mkdir()
    clip(videos / "good.avi")
    shutil.copy(videos / "good.avi", os.path.join(os.fsencode(videos), b"caf\xe9.avi"))  # Latin-1, not UTF-8
    os.symlink(tmp_path / "gone.avi", videos / "link.avi")
    base = ["detect", "--input", videos, "--out", out, "--model", model["ckpt"], "--aligned", "--no-progress"]
    proc = run_cli(*base, "--device", "CPU")
    assert proc.returncode == 1, proc.stderr[-2000:]  # the broken link failed; the others finished
    assert (
        "Traceback" not in proc.stderr and "link.avi failed:" in proc.stderr and "broken symbolic link" in proc.stderr
    )
    summary = json.loads(proc.stdout)
    assert statuses(summary) == {"good.avi": "ok", "caf\udce9.avi": "ok", "link.avi": "failed"}
    assert len(rows_of(os.path.join(os.fsencode(out), b"caf\xe9.csv"))) == 8
    assert not [n for n in os.listdir(out) if n.endswith(".lock")]
    proc = run_cli_in_process(*base, "--shard", "0/1000000000000")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr and len(json.loads(proc.stdout)["videos"]) == 1
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.zeros((32, 32, 3), np.uint8))
    shutil.copy(images / "a.png", os.path.join(os.fsencode(images), b"b\xff.png"))
    proc = run_cli_in_process("detect", "--input", images, "--out", tmp_path / "i.csv", "--model", model["ckpt"])
    assert proc.returncode == 2 and "b\\xff.png'" in proc.stderr and "not valid UTF-8" in proc.stderr, proc.stderr


def test_a_signal_during_an_import_ends_the_command_after_the_import(tmp_path):
    """A SIGTERM that arrives while a module imports (MindSpore takes seconds) does not stop the import half-way
    (an ImportError, or "Fatal Python error" from the half-imported module's exit hooks): it is raised once the
    import has finished, and the CLI ends with 143."""
    (tmp_path / "slow_module.py").write_text(textwrap.dedent("""
            import os, signal, time
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.3)
            COMPLETE = True
            """))
    script = textwrap.dedent("""
        import sys, time
        from mindface_au.utils import guard
        guard.install_signal_handlers()
        try:
            import slow_module
            print("imported", slow_module.COMPLETE, flush=True)
            time.sleep(30)
        except guard.Interrupted as exc:
            print("interrupted", exc.signum, "slow_module" in sys.modules, flush=True)
        """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert proc.stdout.split() == ["imported", "True", "interrupted", str(int(signal.SIGTERM)), "True"], proc.stderr


def test_launch_detect_checks_the_detect_arguments_before_msrun(model, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    clip(videos / "a.avi")
    head = ["launch", "--workers", "2", "--dry-run", "--", "detect"]
    good = ["--input", videos, "--out", tmp_path / "o", "--model", model["ckpt"]]
    assert run_cli_in_process(*head, *good).returncode == 0
    for args, words in (
        (["--input", videos, "--out", tmp_path / "o", "--model", tmp_path / "missing.ckpt"], "missing.ckpt: not found"),
        (["--input", tmp_path / "nothing", "--out", tmp_path / "o", "--model", model["ckpt"]], "nothing: not found"),
        ([*good, "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["--input", videos, "--model", model["ckpt"]], "--out is required"),
        ([*good, "--batch-size", "0"], "--batch-size: got 0"),
        ([*good, "--merge-summaries", tmp_path / "o"], "--merge-summaries runs once"),
    ):
        proc = run_cli_in_process(*head, *args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and words in lines[0], (args, proc.stderr)
        assert "msrun" not in proc.stdout  # refused before the msrun command line


# ------------------------------------------------------------------------------------------------ item 7
def write_csv(path, rows, with_file=False):
    schema = RowSchema(with_file=with_file)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(schema.columns)
        for frame, face, name in rows:
            probs = [0.1 * (face + 1)] * len(schema.au_names)
            fields = [frame, "" if with_file else f"{(frame - 1) / 25:.3f}", face, 1, 0.99, 1, 2, 30, 30]
            fields += [5] * 10 + probs + [0] * len(schema.au_names) + ([name] if with_file else [])
            writer.writerow(fields)
    return str(path)


def test_plots_draw_every_face(tmp_path, monkeypatch):
    import mindface_au.plots as plots
    from mindface_au.inference.detect.plot import plot_detections

    seen = {}
    monkeypatch.setattr(plots, "plot_image_bars", lambda probs, names, *a, **k: seen.update(names=list(names)))
    monkeypatch.setattr(plots, "plot_au_timeline", lambda probs, *a, **k: seen.update(shape=np.shape(probs), **k))
    images = write_csv(tmp_path / "i.csv", [(1, 0, "a.png"), (1, 1, "a.png"), (2, 0, "b.png")], with_file=True)
    plot_detections(images, str(tmp_path / "i.png"), video=False)
    assert seen["names"] == ["a.png face 0", "a.png face 1", "b.png"]
    video = write_csv(tmp_path / "v.csv", [(f, face, "") for f in range(1, 6) for face in (0, 1, 2)])
    plot_detections(video, str(tmp_path / "v.png"), video=True, fps=25)
    assert seen["shape"][0] == 3 and seen["labels"] == ["face 0", "face 1", "face 2"]


def test_report_index_and_working_file_names(model, tmp_path):
    videos, out = tmp_path / "videos", tmp_path / "out"
    (videos / "sub").mkdir(parents=True)
    clip(videos / "sub" / "a.mov")
    (videos / "broken.mp4").write_bytes(b"\x00not a video" * 50)
    run = dict(predictor=model["predictor"], aligned=True, progress=False)
    detect(str(videos), str(out), report=str(tmp_path / "index.html"), **run)
    index = (tmp_path / "index.html").read_text()
    assert ">sub/a.mov</a>" in index and "0:00.28" in index and "<td>ok</td>" in index
    assert "broken.mp4" in index and "failed" in index and "not validated" in index
    video = clip(tmp_path / "v.avi")
    for name in ("v.csv.lock", "v.csv.partial", "v.csv.partial.json", "v.csv.json"):
        with pytest.raises(UserError, match="detect's own working files"):
            detect(video, str(tmp_path / "v.csv"), report=str(tmp_path / name), **run)
    with pytest.raises(UserError, match="detect's own working files"):
        detect(str(videos), str(tmp_path / "o2"), report=str(tmp_path / "o2" / "summary.json.lock"), **run)


# ------------------------------------------------------------------------------------------------ items 5, 9
def test_option_values_that_cannot_be_measured_are_refused(model, tmp_path):
    video = clip(tmp_path / "v.avi")
    base = ["detect", "--input", video, "--out", tmp_path / "v.csv", "--model", model["ckpt"], "--aligned"]
    for flag, value in (("--start", "nan"), ("--end", "nan"), ("--start", "inf"), ("--end", "inf")):
        proc = run_cli_in_process(*base, flag, value)
        assert proc.returncode == 2 and f"{flag}: got {value}" in proc.stderr, proc.stderr
    for value in ("0", "-1"):
        proc = run_cli_in_process(*base, "--batch-size", value)
        assert proc.returncode == 2 and f"--batch-size: got {value}" in proc.stderr, proc.stderr
    (tmp_path / "file").write_text("x")
    under_file = [
        [*base[:3], "--out", tmp_path / "file" / "x.csv", *base[5:]],
        [*base, "--report", tmp_path / "file" / "x.html"],
        [*base, "--overlay", tmp_path / "file" / "x.mp4"],
    ]
    for args in under_file:
        proc = run_cli_in_process(*args)
        assert proc.returncode == 1 and "is a file, not a folder" in proc.stderr, (args, proc.stderr)
    assert not os.path.exists(tmp_path / "v.csv")


def test_start_past_the_end_of_a_video_says_so(model, tmp_path, capsys):
    video = clip(tmp_path / "v.avi")
    summary = detect(video, str(tmp_path / "v.csv"), predictor=model["predictor"], aligned=True, start_time=5)
    assert "--start 5" in capsys.readouterr().err and summary["frames"] == 0
    assert "past the end of the video (8 frames, 0.32 s)" in summary["notes"][0]


def test_threshold_defaults_to_the_model_files(tmp_path):
    """Without --threshold the 0/1 columns (and the sidecar) use the threshold the model file was validated with;
    an explicit --threshold wins and stderr says it differs from the file's."""
    import mindspore as ms

    from mindface_au.config import EvalConfig, ModelConfig
    from mindface_au.inference.predictor import Predictor
    from mindface_au.model_card import run_settings
    from mindface_au.models import create_model_from_config
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    ms.set_seed(5)
    cfg = ModelConfig(**TINY_AUNET)
    net = randomise_params(create_model_from_config(cfg), seed=5)
    plain = str(tmp_path / "plain.ckpt")
    save_checkpoint_atomic(net, plain, model_config=dataclasses.asdict(cfg))
    rng = np.random.default_rng(0)
    folder = tmp_path / "faces"
    folder.mkdir()
    crops = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(6)]
    for i, crop in enumerate(crops):
        cv2.imwrite(str(folder / f"{i}.png"), crop)
    probs = Predictor(plain, device="CPU", show_card=False).predict_faces(crops)
    quartiles = [round(float(q), 3) + 0.0005 for q in np.quantile(probs, [0.25, 0.75])]  # between written values
    threshold = max(quartiles, key=lambda q: abs(q - 0.5))  # a quarter of the values or more lie between it and 0.5
    assert np.any((probs >= threshold) != (probs >= 0.5))  # the two thresholds give other labels
    ckpt = str(tmp_path / "tuned.ckpt")  # the same network, validated with `threshold`
    card = run_settings(cfg, EvalConfig(threshold=threshold))
    save_checkpoint_atomic(net, ckpt, model_config=dataclasses.asdict(cfg), card=card)

    def labels(out):
        """(written probabilities, their 0/1 columns, the sidecar's threshold) of CSV `out`."""
        with open(out, newline="") as handle:
            header, *rows = list(csv.reader(handle))
        probs = [header.index(f"{au}_prob") for au in cfg.au_names]
        flags = [header.index(au) for au in cfg.au_names]
        written = np.array([[float(r[i]) for i in probs] for r in rows])
        labelled = np.array([[int(r[i]) for i in flags] for r in rows])
        assert written.shape[1] == len(cfg.au_names) and len(written) > 0
        with open(out + ".json") as handle:
            return written, labelled, json.load(handle)["settings"]["threshold"]

    base = ["detect", "--input", folder, "--model", ckpt, "--aligned", "--no-progress", "--device", "CPU"]
    proc = run_cli_in_process(*base, "--out", tmp_path / "default.csv")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--threshold" not in proc.stderr
    written, flags, recorded = labels(str(tmp_path / "default.csv"))
    assert recorded == pytest.approx(threshold)
    np.testing.assert_array_equal(flags, (written >= threshold).astype(int))
    assert np.any(flags != (written >= 0.5))
    proc = run_cli_in_process(*base, "--out", tmp_path / "given.csv", "--threshold", "0.5")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"--threshold 0.5 (the model file was validated with {threshold})" in proc.stderr
    written, flags, recorded = labels(str(tmp_path / "given.csv"))
    assert recorded == 0.5
    np.testing.assert_array_equal(flags, (written >= 0.5).astype(int))

    # a folder of videos: every video's CSV at the file's threshold, and a re-run keeps them
    videos = tmp_path / "videos"
    videos.mkdir()
    clip(videos / "a.avi", frames=3)
    base = ["detect", "--input", videos, "--out", tmp_path / "per_video", "--model", ckpt, "--aligned", "--no-progress"]
    for status in ("ok", "done before"):
        proc = run_cli_in_process(*base, "--device", "CPU", "--resume")
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert statuses(json.loads(proc.stdout)) == {"a.avi": status}
    written, flags, recorded = labels(str(tmp_path / "per_video" / "a.csv"))
    assert recorded == pytest.approx(threshold)
    np.testing.assert_array_equal(flags, (written >= threshold).astype(int))
