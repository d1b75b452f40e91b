"""SynthAU dataset generation (mindface_au.data.synthau.dataset): layout, determinism, CLI and a learning signal."""

import hashlib
import json
import os

import cv2
import numpy as np
import pytest
from helpers import run_cli_in_process
from sklearn.metrics import f1_score

from mindface_au.config import AU_NAMES, DataConfig
from mindface_au.data import check_data, get_split, load_split, synthau
from mindface_au.errors import UserError


def _tree_digest(root):
    """sha256 of every file (path and bytes) except the timing in synthau.json."""
    digest = hashlib.sha256()
    for folder, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            path = os.path.join(folder, name)
            digest.update(os.path.relpath(path, root).encode())
            with open(path, "rb") as handle:
                data = handle.read()
            if name == synthau.SUMMARY_FILE:
                summary = json.loads(data)
                summary.pop("seconds")
                data = json.dumps(summary, sort_keys=True).encode()
            digest.update(data)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("synth") / "ds")
    summary = synthau.generate(root, videos=8, frames=40, seed=11, workers=1)
    return root, summary


def test_layout_accepted_by_reader(small, cli):
    root, summary = small
    train, val, test = (load_split(root, s) for s in ("train", "val", "test"))
    assert len(train) + len(val) == 8 and len(test) == summary["test_videos"] >= 1
    assert sorted(v.name for v in train) == summary["splits"]["train"]["videos"]
    names = {v.name for v in train + val}
    pairs = {n[: -len("_left")] for n in names if n.endswith("_left")}
    assert pairs and all(p + "_right" in names for p in pairs)
    for video in train + val:  # both halves of a pair in the same split
        other = video.name.replace("_left", "_right")
        if other != video.name:
            assert other in {v.name for v in (train if video in train else val)}
    assert all(v.labels is None and v.num_frames == len(v.frame_ids) for v in test)
    report = check_data(root)
    assert report["train"]["labeled_frames"] == sum(len(v) for v in train)
    proc = cli("check-data", "--root", root, "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["val"]["videos"] == len(val)
    image = cv2.imread(train[0].image_paths[0])
    assert image.shape == (112, 112, 3)
    for video in test:  # hidden labels for scoring, one row per frame
        rows = open(os.path.join(root, synthau.TEST_LABEL_DIR, video.name + ".txt")).read().split()
        assert rows[0] == ",".join(AU_NAMES) and len(rows) - 1 == video.num_frames
    folds_train, folds_val = get_split(DataConfig(root=root, split="fold2"))
    assert len(folds_train) + len(folds_val) == 8


def test_deterministic_for_a_seed(small, tmp_path):
    root, _ = small
    again = str(tmp_path / "again")
    synthau.generate(again, videos=8, frames=40, seed=11, workers=1)
    assert _tree_digest(again) == _tree_digest(root)
    other = str(tmp_path / "other")
    synthau.generate(other, videos=8, frames=40, seed=12, workers=1)
    assert _tree_digest(other) != _tree_digest(root)


@pytest.mark.slow
def test_worker_processes_give_the_same_dataset(tmp_path):
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    synthau.generate(one, videos=6, frames=260, seed=2, workers=1)
    synthau.generate(two, videos=6, frames=260, seed=2, workers=2)
    assert _tree_digest(one) == _tree_digest(two)


def _pixels(videos, size=24):
    """Grey 24x24 pixels minus each video's mean frame (removes identity; uses no labels)."""
    feats = []
    for video in videos:
        x = (
            np.asarray(
                [
                    cv2.resize(cv2.imread(p, cv2.IMREAD_GRAYSCALE), (size, size), interpolation=cv2.INTER_AREA)
                    for p in video.image_paths
                ],
                np.float64,
            ).reshape(len(video), -1)
            / 255.0
        )
        feats.append(x - x.mean(axis=0))
    return np.concatenate(feats), np.concatenate([v.labels for v in videos]).astype(int)


def test_learning_signal_beats_majority(tmp_path):
    """Ridge regression on pixels, thresholds fit on train, beats the per-AU majority F1 on val by far."""
    root = str(tmp_path / "learn")
    synthau.generate(root, videos=12, frames=110, seed=5, test_videos=0, workers=1)
    x_tr, y_tr = _pixels(load_split(root, "train"))
    x_va, y_va = _pixels(load_split(root, "val"))
    sd = x_tr.std(0) + 1e-3
    a, b = x_tr / sd, x_va / sd
    w = np.linalg.solve(a.T @ a + 1000.0 * np.eye(a.shape[1]), a.T @ (y_tr - y_tr.mean(0)))
    s_tr, s_va = a @ w, b @ w
    model, majority = [], []
    for j in range(12):
        grid = np.quantile(s_tr[:, j], np.linspace(0.02, 0.98, 49))
        best = max(grid, key=lambda t: f1_score(y_tr[:, j], s_tr[:, j] >= t, zero_division=0))
        model.append(f1_score(y_va[:, j], s_va[:, j] >= best, zero_division=0))
        vote = int(y_tr[:, j].mean() >= 0.5)
        majority.append(f1_score(y_va[:, j], np.full(len(y_va), vote), zero_division=0))
    model, majority = np.array(model), np.array(majority)
    assert model.mean() > majority.mean() + 0.2, (np.round(model, 2), np.round(majority, 2))
    common = [AU_NAMES.index(au) for au in ("AU4", "AU6", "AU7", "AU10", "AU12")]
    assert (model[common] > majority[common] + 0.3).all(), np.round(model, 2)


def test_synth_cli_and_errors(tmp_path, cli):
    out = tmp_path / "cli"
    proc = cli("synth", "--out", out, "--videos", 3, "--frames", 12, "--seed", 1)
    assert proc.returncode == 0, proc.stderr
    assert "SynthAU written" in proc.stdout and (out / synthau.SUMMARY_FILE).is_file()
    before = sorted(os.listdir(out))
    again = run_cli_in_process("synth", "--out", out, "--videos", 3, "--frames", 12)
    assert again.returncode == 2 and "--overwrite" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert sorted(os.listdir(out)) == before
    assert cli("synth", "--out", out, "--videos", 3, "--frames", 12, "--overwrite").returncode == 0
    bad = run_cli_in_process("synth", "--out", tmp_path / "x", "--videos", 1)
    assert bad.returncode == 2 and "--videos" in bad.stderr and not (tmp_path / "x").exists()
    other = tmp_path / "notsynth"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    refused = run_cli_in_process("synth", "--out", other, "--overwrite")
    assert refused.returncode == 2 and (other / "keep.txt").read_text() == "mine"
    assert not [n for n in os.listdir(tmp_path) if ".partial-" in n]
    with pytest.raises(UserError, match="^frames: "):
        synthau.generate(str(tmp_path / "y"), videos=4, frames=3)


def test_package_exports_the_modules_api(small):
    """`mindface_au.data.synthau` re-exports each module's public names; SynthAU writes -1 rows as promised."""
    from mindface_au.data.synthau import dataset, face, intensity, layouts

    for name in synthau.__all__:
        obj = getattr(synthau, name)
        assert any(getattr(m, name, None) is obj for m in (dataset, face, intensity, layouts)), name
    root, _ = small
    videos = load_split(root, "train") + load_split(root, "val")
    assert sum(v.invalid_rows for v in videos) > 0 and sum(v.missing_images for v in videos) > 0
