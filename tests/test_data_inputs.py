"""Inputs that change what is measured: no rate over zero coded frames, repeated frame numbers, list lines outside
the data root, files that are not images, and folds with no subject (issue 26, items 4, 5 and 9)."""

import json
import logging
import os

import cv2
import numpy as np
import pytest
from helpers import TINY_AUNET, run_cli

from mindface_au.au_sets import BP4D_AUS, DISFA_AUS
from mindface_au.config import DataConfig, load_config
from mindface_au.data import bp4d, disfa, formats
from mindface_au.data.affwild2 import check_data
from mindface_au.data.au_txt import write_au_file
from mindface_au.data.folds import get_split
from mindface_au.errors import UserError

BP4D_HEADER = "0," + ",".join(str(n) for n in range(1, 28))


def image(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(str(path), np.full((4, 4, 3), 128, np.uint8))


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def bp4d_row(frame, on=(), nine=()):
    return f"{frame}," + ",".join("9" if n in nine else ("1" if n in on else "0") for n in range(1, 28))


def disfa_subject(root, subject, frames, intensity=lambda t: t % 4):
    """A DISFA subject whose label lines carry the frame numbers `frames` and an image per line index."""
    for n in (1, 2, 4, 6, 9, 12, 25, 26):
        write(
            f"{root}/ActionUnit_Labels/{subject}/{subject}_au{n}.txt",
            "".join(f"{f},{intensity(t)}\n" for t, f in enumerate(frames)),
        )
    for t in range(max(len(frames), max(frames) + 1)):
        image(f"{root}/{subject}/{t}.png")


def cfg_for(fmt, root, split="fold1", names=("AU1", "AU2", "AU4"), image_root=""):
    names = {"bp4d": BP4D_AUS, "disfa": DISFA_AUS}.get(fmt, names)
    over = [f"data.format={fmt}", f"data.root={root}", f"data.split={split}", "data.rare_aus=[AU2]"]
    over += [f"model.au_names=[{', '.join(names)}]", "model.arl_k=2", f"data.image_root={image_root}"]
    return load_config(None, over)


# --- item 4: no rate over zero coded frames ---------------------------------------------------------------------


def test_check_data_rate_is_null_where_no_frame_is_coded(tmp_path):
    """One DISFA subject (part3): fold2_test and fold3_test have no frame, so no AU has a rate; a BP4D AU coded 9
    in every row has no rate either while the others keep theirs."""
    disfa_subject(tmp_path / "d", "SN003", list(range(1, 9)))
    proc = run_cli("check-data", "--format", "disfa", "--root", tmp_path / "d", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    empty = report["fold2_test"]
    assert empty["labeled_frames"] == 0 and set(empty["positive_rate"].values()) == {None}
    assert set(empty["coded_frames"].values()) == {0}
    used = report["fold1_test"]
    assert used["labeled_frames"] == 8 and used["coded_frames"]["AU1"] == 8
    assert used["positive_rate"]["AU1"] == pytest.approx(np.mean(np.arange(8) % 4 >= 2), abs=1e-6)
    text = run_cli("check-data", "--format", "disfa", "--root", tmp_path / "d")
    assert text.returncode == 0 and "fold2_test: 0 videos" in text.stdout
    assert "AU1=n/a" in text.stdout and "AU1=0.500" in text.stdout

    root = tmp_path / "b"
    rows = [bp4d_row(f, on=(1,), nine=(2,)) for f in (1, 2, 3)]  # AU2 never coded
    write(f"{root}/AUCoding/AU_OCC/F007_T1.csv", BP4D_HEADER + "\n" + "\n".join(rows) + "\n")
    for f in (1, 2, 3):
        image(f"{root}/F007/T1/{f}.jpg")
    report = formats.check_format(cfg_for("bp4d", root).data)["fold1_test"]
    assert report["positive_rate"]["AU2"] is None and report["coded_frames"]["AU2"] == 0
    assert report["positive_rate"]["AU1"] == 1.0 and report["positive_rate"]["AU4"] == 0.0


# --- item 5: repeated frame numbers ----------------------------------------------------------------------------


def test_bp4d_repeated_frame_is_skipped_counted_and_warned_once(tmp_path, caplog):
    root = tmp_path
    rows = [bp4d_row(10, on=(1,)), bp4d_row(11), bp4d_row(10, on=(2,)), bp4d_row(12), bp4d_row(11, on=(4,))]
    path = f"{root}/AUCoding/AU_OCC/F001_T1.csv"
    write(path, BP4D_HEADER + "\n" + "\n".join(rows) + "\n")
    for f in (10, 11, 12):
        image(f"{root}/F001/T1/{f}.jpg")
    with caplog.at_level(logging.WARNING, logger="mindface_au.data.bp4d"):
        (video,) = bp4d.load_bp4d(str(root))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"{path}:4: frame 10 is listed again (first on line 2)" in warnings[0]
    assert "2 row(s)" in warnings[0]
    assert video.duplicate_frames == 2 and video.num_frames == 5 and list(video.frame_ids) == [1, 2, 4]
    assert [os.path.basename(p) for p in video.image_paths] == ["10.jpg", "11.jpg", "12.jpg"]
    first = np.zeros((3, len(BP4D_AUS)), np.int8)
    first[0, BP4D_AUS.index("AU1")] = 1  # frame 10 keeps its first row's labels
    np.testing.assert_array_equal(video.labels, first)
    report = formats.check_format(cfg_for("bp4d", root).data)["fold3_test"]
    assert report["duplicate_frames"] == 2 and report["labeled_frames"] == 3


def test_disfa_repeated_frame_number_by_frame_is_skipped_by_line_is_kept(tmp_path, caplog):
    disfa_subject(tmp_path, "SN003", [1, 2, 2, 3])
    (by_line,) = disfa.load_disfa(str(tmp_path))
    assert by_line.duplicate_frames == 0 and len(by_line) == 4  # images by line index: four images
    caplog.clear()
    (by_frame,) = disfa.load_disfa(str(tmp_path), image_index="frame")
    assert by_frame.duplicate_frames == 1 and [os.path.basename(p) for p in by_frame.image_paths] == [
        "1.png",
        "2.png",
        "3.png",
    ]
    assert "SN003_au1.txt:3: frame 2 is listed again (first on line 2)" in caplog.text


# --- item 5: list lines outside the data root, files that are not images ---------------------------------------


def list_tree(root, lines, images=True):
    """One fold of list files under `root`/lists, images under `root`/img; `lines` are the test list's paths."""
    for part, paths in (("train", ["a/0.png", "a/1.png"]), ("test", lines)):
        write(f"{root}/lists/DS_{part}_img_path_fold1.txt", "\n".join(paths) + "\n")
        write(f"{root}/lists/DS_{part}_label_fold1.txt", "1 0 -1\n" * len(paths))
    if images:
        for name in ("a/0.png", "a/1.png", "b/0.png", "b/1.png"):
            image(f"{root}/img/{name}")


def test_list_path_outside_the_image_root_is_refused(tmp_path):
    image(f"{tmp_path}/elsewhere/x.png")
    for line in (f"{tmp_path}/elsewhere/x.png", "../elsewhere/x.png", "b/../../elsewhere/x.png"):
        list_tree(tmp_path, ["b/0.png", line])
        cfg = cfg_for("list", f"{tmp_path}/lists", image_root=f"{tmp_path}/img")
        with pytest.raises(UserError, match=r"DS_test_img_path_fold1.txt:2: image .* is outside the data root") as info:
            get_split(cfg.data)
        assert "\n" not in str(info.value)
    list_tree(tmp_path, ["b/0.png", f"{tmp_path}/img/b/1.png"])  # absolute but under the root: read
    _, val = get_split(cfg_for("list", f"{tmp_path}/lists", image_root=f"{tmp_path}/img").data)
    assert [p for v in val for p in v.image_paths] == [f"{tmp_path}/img/b/0.png", f"{tmp_path}/img/b/1.png"]


def test_empty_list_file_is_refused(tmp_path):
    list_tree(tmp_path, [])
    write(f"{tmp_path}/lists/DS_test_label_fold1.txt", "")
    with pytest.raises(UserError, match=r"DS_test_img_path_fold1.txt: lists no images"):
        get_split(cfg_for("list", f"{tmp_path}/lists", image_root=f"{tmp_path}/img").data)


def test_check_data_reports_outside_paths_and_non_images_one_line_each(tmp_path):
    image(f"{tmp_path}/elsewhere/x.png")
    list_tree(tmp_path, ["b/0.png", f"{tmp_path}/elsewhere/x.png", "b/fake.jpg", "b/1.png"])
    write(f"{tmp_path}/img/b/fake.jpg", "this is not a JPEG\n")
    args = ["check-data", "--format", "list", "--root", f"{tmp_path}/lists", "--set", f"data.image_root={tmp_path}/img"]
    args += ["--set", "model.au_names=[AU1, AU2, AU4]", "--set", "data.rare_aus=[]", "--set", "model.arl_k=2"]
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    paths_file = f"{tmp_path}/lists/DS_test_img_path_fold1.txt"
    assert lines[0].startswith(f"{paths_file}:2: image ") and "outside the data root" in lines[0]
    assert lines[1] == f"{paths_file}:3: 'b/fake.jpg' is not an image (no image decoder knows its content)"
    assert len(lines) == 3 and lines[2] == "mindface-au check-data: error: 2 problem(s) in the data, listed above"
    assert "fold1_test: 1 videos, 2 labelled frames used" in proc.stdout  # the two good lines are still counted
    report = json.loads(run_cli(*args, "--json").stdout)
    assert report["problems"] == lines[:2] and report["fold1_test"]["labeled_frames"] == 2


def test_check_data_reports_a_bp4d_jpg_that_is_not_an_image(tmp_path):
    write(f"{tmp_path}/AUCoding/AU_OCC/F001_T1.csv", BP4D_HEADER + "\n" + bp4d_row(1) + "\n" + bp4d_row(2) + "\n")
    image(f"{tmp_path}/F001/T1/1.jpg")
    write(f"{tmp_path}/F001/T1/2.jpg", "")  # an empty file named like a crop
    proc = run_cli("check-data", "--format", "bp4d", "--root", tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == f"{tmp_path}/F001/T1/2.jpg: not an image (no image decoder knows its content)"
    assert len(lines) == 2 and "1 problem(s) in the data" in lines[1]


# --- item 9: folds with no subject -----------------------------------------------------------------------------


def test_cv_on_one_disfa_subject_is_one_line_naming_subjects_found_and_needed(tmp_path):
    disfa_subject(tmp_path / "d", "SN002", list(range(1, 13)))  # part1 only: fold1 tests on part3, empty
    tiny = [f"model.{k}={v}" for k, v in TINY_AUNET.items()]
    over = [f"data.root={tmp_path / 'd'}", "train.epochs=1", "data.batch_size=2", "data.sample_rate=1.0"] + tiny
    args = ["cv", "--config", "disfa/full_network", "--out", tmp_path / "cv"]
    proc = run_cli(*args, *[a for o in over for a in ("--set", o)])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "StopIteration" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "1 DISFA subject(s) found (part1: 1, part2: 0, part3: 0)" in line
    assert "the 3 subject-exclusive folds need at least 3" in line and "fold1 tests on part3, which has none" in line


@pytest.mark.parametrize(
    "present, fold, needle",
    [
        (["F007"], "fold2", r"1 BP4D subject\(s\) found \(part1: 0, part2: 0, part3: 1\).*fold2 tests on part2, which"),
        (["F001", "M011"], "fold1", r"2 BP4D subject\(s\) found.*need at least 3.*fold1 tests on part3, which has"),
        (["X999"], "fold3", r"1 BP4D subject\(s\) found \(part1: 0, part2: 0, part3: 0\)"),  # in no part
    ],
)
def test_bp4d_fold_without_test_subjects_is_refused(tmp_path, present, fold, needle):
    for subject in present:
        write(f"{tmp_path}/AUCoding/AU_OCC/{subject}_T1.csv", BP4D_HEADER + "\n" + bp4d_row(1) + "\n")
        image(f"{tmp_path}/{subject}/T1/1.jpg")
    with pytest.raises(UserError, match=needle):
        get_split(cfg_for("bp4d", tmp_path, fold).data)


def test_bp4d_fold_with_only_its_test_part_still_loads(tmp_path):
    """Evaluation needs only the test part: F007 alone (part3) is fold1's whole test part, with nothing to train."""
    write(f"{tmp_path}/AUCoding/AU_OCC/F007_T1.csv", BP4D_HEADER + "\n" + bp4d_row(1) + "\n")
    image(f"{tmp_path}/F007/T1/1.jpg")
    train, val = get_split(cfg_for("bp4d", tmp_path, "fold1").data)
    assert train == [] and [v.name for v in val] == ["F007_T1"]


# --- other inputs that changed what is measured ----------------------------------------------------------------


def test_disfa_au_files_listing_other_frames_are_refused(tmp_path):
    """Row t of each AU file is one frame: an AU file whose frames differ (here shifted) would misalign labels."""
    disfa_subject(tmp_path, "SN003", [1, 2, 3, 4])
    write(f"{tmp_path}/ActionUnit_Labels/SN003/SN003_au4.txt", "1,0\n3,0\n2,0\n4,0\n")
    with pytest.raises(UserError, match=r"SN003_au4.txt:2: frame 3, but line 2 of SN003_au1.txt is frame 2"):
        disfa.load_disfa(str(tmp_path))


def test_bp4d_header_with_two_columns_for_one_au_is_refused(tmp_path):
    write(f"{tmp_path}/AUCoding/AU_OCC/F001_T1.csv", BP4D_HEADER + ",4\n" + bp4d_row(1) + ",1\n")
    with pytest.raises(UserError, match=r"F001_T1.csv:1: 2 columns for AU4 \(header '4'\)"):
        bp4d.load_bp4d(str(tmp_path))


def test_list_test_image_also_trained_on_or_listed_twice_is_refused_and_reported(tmp_path):
    list_tree(tmp_path, ["b/0.png", "a/1.png"])  # a/1.png is in the training list too
    cfg = cfg_for("list", f"{tmp_path}/lists", image_root=f"{tmp_path}/img")
    with pytest.raises(UserError, match=r"DS_test_img_path_fold1.txt: image .*a/1.png' is also in the training list"):
        get_split(cfg.data)
    assert any("is also in the training list" in p for p in formats.check_format(cfg.data)["problems"])
    list_tree(tmp_path, ["b/0.png", "b/1.png", "b/0.png"])
    with pytest.raises(UserError, match=r"DS_test_img_path_fold1.txt: image .*b/0.png' is listed twice"):
        get_split(cfg.data)
    list_tree(tmp_path, ["b/0.png", "b/1.png"])
    write(f"{tmp_path}/lists/DS_train_img_path_fold1.txt", "a/0.png\na/1.png\na/1.png\n")  # oversampling: allowed
    write(f"{tmp_path}/lists/DS_train_label_fold1.txt", "1 0 -1\n" * 3)
    train, _ = get_split(cfg.data)
    assert sum(len(v) for v in train) == 3


def test_affwild2_video_in_train_and_val_is_refused_and_reported(tmp_path):
    root = str(tmp_path)
    for split in ("Train_Set", "Validation_Set"):
        for name in ("x", "y") if split == "Train_Set" else ("x",):
            write_au_file(f"{root}/AU_Detection_Challenge/{split}/{name}.txt", np.zeros((2, 12), np.int8))
    for name in ("x", "y"):
        image(f"{root}/cropped_aligned/{name}/00001.jpg")
    with pytest.raises(UserError, match=r"video 'x' is in both Train_Set and Validation_Set \(1 such video"):
        get_split(DataConfig(root=root, split="official"))
    assert "video 'x' is in both" in check_data(root)["problems"][0]


def test_check_folds_refuses_before_training_the_first_fold(tmp_path):
    """Subjects in part1 and part3 only: fold1 (tests on part3) and fold3 (part1) can run, fold2 (part2) cannot;
    `check_folds` says so for the whole list of splits before anything trains."""
    for subject in ("F001", "F007"):
        write(f"{tmp_path}/AUCoding/AU_OCC/{subject}_T1.csv", BP4D_HEADER + "\n" + bp4d_row(1) + "\n")
        image(f"{tmp_path}/{subject}/T1/1.jpg")
    data = cfg_for("bp4d", tmp_path).data
    formats.check_folds(data, ["fold1", "fold3"])
    with pytest.raises(UserError, match=r"2 BP4D subject\(s\) found .*fold2 tests on part2, which has none"):
        formats.check_folds(data, ["fold1", "fold2", "fold3"])


def test_cv_checks_every_fold_before_the_first_one_trains(tmp_path):
    """`mindface-au cv` refuses fold2 (no test subject) before fold1 trains: one line, exit 2, no run folder."""
    from helpers import run_cli_in_process

    for subject in ("F001", "F007"):
        write(f"{tmp_path}/AUCoding/AU_OCC/{subject}_T1.csv", BP4D_HEADER + "\n" + bp4d_row(1) + "\n")
        image(f"{tmp_path}/{subject}/T1/1.jpg")
    sets = ["data.format=bp4d", f"data.root={tmp_path}", f"model.au_names=[{', '.join(BP4D_AUS)}]"]
    proc = run_cli_in_process("cv", *[arg for s in sets for arg in ("--set", s)], "--out", tmp_path / "cv")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "fold2 tests on part2, which has none" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "cv").exists()
