"""Aff-Wild2 reader and `mindface-au check-data` on hand-made fixtures."""

import json
import os

import cv2
import numpy as np
import pytest

from mindface_au.config import AU_NAMES
from mindface_au.data.affwild2 import check_data, load_split, read_test_list
from mindface_au.data.au_txt import HEADER
from mindface_au.errors import UserError


def _row(values):
    return ",".join(str(v) for v in values)


def write_video(root, split, name, rows, images, header=HEADER, newline="\n", trailing="", raw=None):
    """Annotation `rows` (lists of 12 ints) for `name` plus tiny JPEGs for the 1-based frame numbers `images`."""
    folder = os.path.join(root, "AU_Detection_Challenge", {"train": "Train_Set", "val": "Validation_Set"}[split])
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.txt")
    if raw is None:
        raw = newline.join([header] + [_row(r) for r in rows]) + newline + trailing
    with open(path, "w", newline="", encoding="utf-8") as handle:
        handle.write(raw)
    image_dir = os.path.join(root, "cropped_aligned", name)
    os.makedirs(image_dir, exist_ok=True)
    for frame in images:
        cv2.imwrite(os.path.join(image_dir, f"{frame:05d}.jpg"), np.full((8, 8, 3), frame % 255, np.uint8))
    return path


@pytest.fixture
def dataset(tmp_path):
    """Train: 'a' (CRLF, -1 rows, missing and extra images), 'b' header only, 'c_left'/'c_right'. Val: 'v'."""
    root = str(tmp_path / "data")
    rng = np.random.default_rng(0)
    rows_a = rng.integers(0, 2, (10, 12)).tolist()
    rows_a[2] = [-1] * 12
    rows_a[5][3] = -1  # any -1 makes the row unlabelled
    # frames 1..10 labelled; image 7 missing (labelled), image 3 missing (-1 row anyway), extra images 11, 12
    write_video(root, "train", "a", rows_a, [1, 2, 4, 5, 6, 8, 9, 10, 11, 12], newline="\r\n", trailing="\r\n\r\n")
    write_video(root, "train", "b", [], [1, 2])
    rows_c = rng.integers(0, 2, (4, 12)).tolist()
    write_video(root, "train", "c_left", rows_c, [1, 2, 3, 4])
    write_video(root, "train", "c_right", rows_c[::-1], [1, 2, 3])
    rows_v = rng.integers(0, 2, (6, 12)).tolist()
    write_video(root, "val", "v", rows_v, [1, 2, 3, 4, 5, 6], trailing="\n\n")
    return root, {"a": rows_a, "c_left": rows_c, "c_right": rows_c[::-1], "v": rows_v}


def test_reader_counts_and_labels(dataset):
    root, rows = dataset
    videos = {v.name: v for v in load_split(root, "train")}
    assert sorted(videos) == ["a", "b", "c_left", "c_right"]
    a = videos["a"]
    assert a.num_frames == 10 and a.invalid_rows == 2 and a.missing_images == 1
    assert a.frame_ids.tolist() == [1, 2, 4, 5, 8, 9, 10]
    expected = np.array([rows["a"][f - 1] for f in a.frame_ids], np.int8)
    np.testing.assert_array_equal(a.labels, expected)
    assert a.labels.dtype == np.int8 and a.labels.shape == (7, 12)
    assert [os.path.basename(p) for p in a.image_paths] == [f"{f:05d}.jpg" for f in a.frame_ids]
    assert all(os.path.isfile(p) for p in a.image_paths)
    b = videos["b"]  # header only: a valid, empty video
    assert len(b) == 0 and b.num_frames == 0 and b.labels.shape == (0, 12)
    assert videos["c_right"].missing_images == 1 and len(videos["c_left"]) == 4
    np.testing.assert_array_equal(videos["c_right"].labels, np.array(rows["c_right"][:3], np.int8))


@pytest.mark.parametrize(
    "raw, line, needle",
    [
        ("AU1,AU2\n0,1\n", 1, "header"),
        (",".join(AU_NAMES[::-1]) + "\n", 1, "header"),
        (HEADER + "\n" + _row([0] * 12) + "\n" + _row([0] * 11) + "\n", 3, "expected 12"),
        (HEADER + "\n" + _row([0] * 11 + [2]) + "\n", 2, "'2'"),
        (HEADER + "\n" + _row([0] * 11 + ["x"]) + "\n", 2, "'x'"),
        (HEADER + "\n" + _row([0] * 12) + "\n\n" + _row([0] * 12) + "\n", 3, "blank"),
        ("", 1, "empty"),
    ],
)
def test_reader_errors_name_file_and_line(tmp_path, raw, line, needle):
    root = str(tmp_path)
    path = write_video(root, "train", "bad", [], [1], raw=raw)
    with pytest.raises(UserError) as info:
        load_split(root, "train")
    message = str(info.value)
    assert f"{path}:{line}:" in message and needle in message and "\n" not in message


def test_check_data_json_cli(dataset, cli):
    root, rows = dataset
    proc = cli("check-data", "--root", root, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    train, val = report["train"], report["val"]
    assert train["videos"] == 4 and val["videos"] == 1
    assert train["labeled_frames"] == 7 + 0 + 4 + 3
    assert train["invalid_rows"] == 2 and train["missing_images"] == 1 + 1
    assert val["labeled_frames"] == 6 and val["invalid_rows"] == 0 and val["missing_images"] == 0
    used = [rows["a"][f - 1] for f in range(1, 11) if f not in (3, 6, 7)] + rows["c_left"] + rows["c_right"][:3]
    expected = np.array(used, float).mean(axis=0)
    got = np.array([train["positive_rate"][au] for au in AU_NAMES])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    text = cli("check-data", "--root", root)
    assert text.returncode == 0 and "train: 4 videos, 14 labelled frames" in text.stdout
    assert check_data(root)["val"]["positive_rate"]["AU1"] == pytest.approx(np.mean([r[0] for r in rows["v"]]))


def test_check_data_cli_errors(dataset, cli_in_process, tmp_path):
    cli = cli_in_process  # errors while reading the labels: nothing a subprocess adds
    root, _ = dataset
    bad = write_video(root, "val", "broken", [], [], raw=HEADER + "\n" + _row([0] * 12) + "\n" + _row([1] * 13) + "\n")
    proc = cli("check-data", "--root", root)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mindface-au check-data: error:") and f"{bad}:3:" in lines[0]
    missing = cli("check-data", "--root", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "nowhere" in missing.stderr and "Traceback" not in missing.stderr


def test_test_split_lists(tmp_path):
    root = str(tmp_path)
    write_video(root, "train", "t", [[0] * 12], [1])
    test_dir = os.path.join(root, "AU_Detection_Challenge", "Test_Set")
    os.makedirs(test_dir)
    for name, frames in (("x", [1, 2, 4]), ("y_left", [1, 2, 3, 7])):
        os.makedirs(os.path.join(root, "cropped_aligned", name))
        for f in frames:
            cv2.imwrite(os.path.join(root, "cropped_aligned", name, f"{f:05d}.jpg"), np.zeros((4, 4, 3), np.uint8))
    with open(os.path.join(test_dir, "names.txt"), "w", newline="") as handle:
        handle.write("x,5\r\ny_left\r\n\r\n")
    assert read_test_list(root) == [("x", 5), ("y_left", 7)]
    videos = load_split(root, "test")
    x, y = videos
    assert x.labels is None and x.num_frames == 5 and x.frame_ids.tolist() == [1, 2, 3, 4, 5]
    assert [p is not None for p in x.image_paths] == [True, True, False, True, False]
    assert x.missing_images == 2 and y.num_frames == 7 and y.missing_images == 3
    with open(os.path.join(test_dir, "names.txt"), "w") as handle:
        handle.write("x,5\nz,abc\n")
    with pytest.raises(UserError, match=r"names.txt:2: frame count 'abc'"):
        read_test_list(root)


@pytest.mark.parametrize("name", ["..", ".", "../x", "a/b"])
def test_test_list_names_stay_inside_the_image_folder(tmp_path, name):
    """A test video name is a folder of cropped_aligned/: `..` would read the images of the root's parent."""
    test_dir = os.path.join(str(tmp_path), "AU_Detection_Challenge", "Test_Set")
    os.makedirs(test_dir)
    with open(os.path.join(test_dir, "names.txt"), "w") as handle:
        handle.write(f"{name},3\n")
    with pytest.raises(UserError, match=r"names.txt:1: expected '<video>' or '<video>,<num_frames>'"):
        read_test_list(str(tmp_path))
