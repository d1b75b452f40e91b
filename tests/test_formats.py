"""The data.format readers (bp4d, disfa, list) on tiny hand-written trees, their folds and their errors."""

import os

import cv2
import numpy as np
import pytest

from mindface_au.au_sets import ABAW_AUS, BP4D_AUS, DISFA_AUS
from mindface_au.config import DataConfig, load_config
from mindface_au.data import bp4d, disfa, formats
from mindface_au.data.folds import get_split
from mindface_au.errors import UserError


def touch(path):
    """A tiny real image at `path` (its format from the extension): check-data reads image signatures."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(path, np.zeros((2, 2, 3), np.uint8))


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def bp4d_tree(root):
    header = "0," + ",".join(str(n) for n in range(1, 28))  # AU columns 1..27, some outside the set

    def row(frame, on=(), nine=()):
        values = ["9" if n in nine else ("1" if n in on else "0") for n in range(1, 28)]
        return f"{frame}," + ",".join(values)

    rows = [row(10, on=(1, 14)), row(11, nine=(2,)), row(13, on=(17,)), row(14, nine=tuple(range(1, 28))), row(15)]
    write(f"{root}/AUCoding/AU_OCC/F001_T1.csv", header + "\n" + "\n".join(rows) + "\n")
    for frame in (10, 11, 14, 15):  # 13 has no image
        touch(f"{root}/F001/T1/{frame}.jpg")
    write(f"{root}/AUCoding/AU_OCC/F007_T2.csv", header + "\n" + row(1, on=(24,)) + "\n")
    touch(f"{root}/F007/T2/1.jpg")
    write(f"{root}/AUCoding/AU_OCC/M011_T1.csv", header + "\n" + row(5) + "\n")
    touch(f"{root}/M011/T1/5.jpg")


def cfg_for(fmt, root, split="fold1", **extra):
    sets = {"bp4d": BP4D_AUS, "disfa": DISFA_AUS}
    names = list(sets.get(fmt, extra.pop("names", ["AU1", "AU2", "AU4"])))
    over = [f"data.format={fmt}", f"data.root={root}", f"data.split={split}", "data.rare_aus=[AU2]"]
    over += [f"model.au_names=[{', '.join(names)}]", "model.arl_k=2"] + [f"data.{k}={v}" for k, v in extra.items()]
    return load_config(None, over)


def test_bp4d_reader_masks_nines_skips_missing_images_and_counts(tmp_path):
    bp4d_tree(tmp_path)
    (video,) = bp4d.load_bp4d(str(tmp_path), subjects=["F001"])
    assert video.name == "F001_T1" and video.num_frames == 5
    assert video.invalid_rows == 1 and video.missing_images == 1  # frame 14: all 9; frame 13: no image
    assert list(video.frame_ids) == [1, 2, 5]  # row positions: smoothing runs over consecutive rows
    assert [os.path.basename(p) for p in video.image_paths] == ["10.jpg", "11.jpg", "15.jpg"]
    expect = np.zeros((3, 12), np.int8)
    expect[0, [BP4D_AUS.index("AU1"), BP4D_AUS.index("AU14")]] = 1
    expect[1, BP4D_AUS.index("AU2")] = -1  # 9: not coded for that AU only
    np.testing.assert_array_equal(video.labels, expect)


def test_bp4d_folds_are_subject_exclusive_parts(tmp_path):
    bp4d_tree(tmp_path)
    train, val = get_split(cfg_for("bp4d", tmp_path, "fold1").data)  # fold1 tests on part3 (F007)
    assert [v.name for v in val] == ["F007_T2"] and {v.name for v in train} == {"F001_T1", "M011_T1"}
    train, val = get_split(cfg_for("bp4d", tmp_path, "fold3").data)  # fold3 tests on part1 (F001)
    assert [v.name for v in val] == ["F001_T1"]
    assert formats.num_folds(cfg_for("bp4d", tmp_path).data) == 3
    report = formats.check_format(cfg_for("bp4d", tmp_path).data)
    assert set(report) == {"fold1_test", "fold2_test", "fold3_test"}
    assert report["fold3_test"]["missing_images"] == 1 and report["fold3_test"]["invalid_rows"] == 1
    assert report["fold3_test"]["positive_rate"]["AU2"] == 0.0 and list(report["fold3_test"]["positive_rate"]) == list(
        BP4D_AUS
    )


def test_bp4d_errors_name_file_line_or_layout(tmp_path):
    with pytest.raises(UserError, match="not a BP4D tree; expected AUCoding/AU_OCC"):
        bp4d.load_bp4d(str(tmp_path))
    write(f"{tmp_path}/AUCoding/AU_OCC/F001_T1.csv", "0,1,2\n1,0,3\n")
    with pytest.raises(UserError, match=r"F001_T1.csv:1: no column for AU4"):
        bp4d.load_bp4d(str(tmp_path))
    header = "0," + ",".join(str(n) for n in range(1, 28))
    write(f"{tmp_path}/AUCoding/AU_OCC/F001_T1.csv", header + "\n1," + ",".join(["0"] * 26 + ["3"]) + "\n")
    bp4d.load_bp4d(str(tmp_path))  # AU27 = 3 is outside the set: ignored
    write(f"{tmp_path}/AUCoding/AU_OCC/F001_T1.csv", header + "\n1," + ",".join(["2"] + ["0"] * 26) + "\n")
    with pytest.raises(UserError, match=r"F001_T1.csv:2: AU value 2; expected 0, 1 or 9"):
        bp4d.load_bp4d(str(tmp_path))


def disfa_tree(root, shift=0):
    intensities = {"AU1": [0, 1, 2, 5], "AU9": [3, 0, 0, 2]}
    for n in (1, 2, 4, 6, 9, 12, 25, 26):
        values = intensities.get(f"AU{n}", [0, 0, 0, 0])
        lines = "".join(f"{t + 1 + shift},{v}\n" for t, v in enumerate(values))
        write(f"{root}/ActionUnit_Labels/SN003/SN003_au{n}.txt", lines)
    for t in (0, 1, 3):  # line 2 has no image
        touch(f"{root}/SN003/{t}.png")


def test_disfa_threshold_line_index_and_missing_images(tmp_path, caplog):
    disfa_tree(tmp_path)
    (video,) = disfa.load_disfa(str(tmp_path))
    assert video.missing_images == 1 and list(video.frame_ids) == [1, 2, 4] and video.frame_number_mismatch == 0
    np.testing.assert_array_equal(video.labels[:, DISFA_AUS.index("AU1")], [0, 0, 1])  # intensity >= 2
    np.testing.assert_array_equal(video.labels[:, DISFA_AUS.index("AU9")], [1, 0, 1])
    (video,) = disfa.load_disfa(str(tmp_path), intensity_threshold=1)
    np.testing.assert_array_equal(video.labels[:, DISFA_AUS.index("AU1")], [0, 1, 1])


def test_disfa_reports_frame_numbers_that_are_not_line_plus_one(tmp_path, caplog):
    disfa_tree(tmp_path, shift=1)  # frame numbers 2..5
    (video,) = disfa.load_disfa(str(tmp_path))
    assert video.frame_number_mismatch == 4 and "line index + 1" in caplog.text
    assert [os.path.basename(p) for p in video.image_paths] == ["0.png", "1.png", "3.png"]
    (video,) = disfa.load_disfa(str(tmp_path), image_index="frame")  # frame numbers 2..5: only 3.png exists
    assert [os.path.basename(p) for p in video.image_paths] == ["3.png"] and video.missing_images == 3
    report = formats.check_format(cfg_for("disfa", tmp_path).data)
    assert report["fold1_test"]["frame_number_mismatch"] == 4 and report["fold1_test"]["videos"] == 1


def test_disfa_errors(tmp_path):
    with pytest.raises(UserError, match="not a DISFA tree; expected ActionUnit_Labels"):
        disfa.load_disfa(str(tmp_path))
    disfa_tree(tmp_path)
    write(f"{tmp_path}/ActionUnit_Labels/SN003/SN003_au4.txt", "1,0\n2,7\n3,0\n4,0\n")
    with pytest.raises(UserError, match=r"SN003_au4.txt:2: expected frame,intensity with intensity 0-5"):
        disfa.load_disfa(str(tmp_path))


def list_tree(root, folds=2):
    for k in range(1, folds + 1):
        for part in ("train", "test"):
            paths = [f"{part}{k}/a/{i}.png" for i in range(3)] + [f"{part}{k}/b/0.png"]
            for p in paths:
                touch(f"{root}/img/{p}")
            write(f"{root}/DS_{part}_img_path_fold{k}.txt", "\n".join(paths) + "\n")
            write(f"{root}/DS_{part}_label_fold{k}.txt", "1 0 -1\n0 9 1\n0 0 0\n9 9 9\n")


def test_list_files_folds_masks_and_errors(tmp_path):
    list_tree(tmp_path)
    cfg = cfg_for("list", tmp_path, "fold2", image_root=f"{tmp_path}/img")
    assert formats.num_folds(cfg.data) == 2 and cfg.data.au_names == ["AU1", "AU2", "AU4"]
    train, val = get_split(cfg.data)
    assert [v.name for v in val] == ["test2/a", "test2/b"] and [len(v) for v in train] == [3, 1]
    np.testing.assert_array_equal(val[0].labels, [[1, 0, -1], [0, -1, 1], [0, 0, 0]])
    np.testing.assert_array_equal(val[1].labels, [[-1, -1, -1]])
    with pytest.raises(UserError, match="data.split: got 'fold3'; list has fold1..fold2"):
        get_split(cfg_for("list", tmp_path, "fold3", image_root=f"{tmp_path}/img").data)
    write(f"{tmp_path}/DS_test_label_fold2.txt", "1 0 -1\n0 9 1\n0 2 0\n9 9 9\n")
    with pytest.raises(UserError, match=r"DS_test_label_fold2.txt:3: value '2'"):
        get_split(cfg.data)
    write(f"{tmp_path}/DS_test_label_fold2.txt", "1 0 -1\n0 9\n0 0 0\n9 9 9\n")
    with pytest.raises(UserError, match=r"DS_test_label_fold2.txt:2: 2 columns, expected 3"):
        get_split(cfg.data)
    write(f"{tmp_path}/DS_test_label_fold2.txt", "1 0 -1\n0 9 1\n0 0 0\n9 9 9\n")
    os.remove(f"{tmp_path}/img/test2/a/1.png")
    with pytest.raises(UserError, match=r"DS_test_img_path_fold2.txt:2: image 'test2/a/1.png' not found"):
        get_split(cfg.data)
    with pytest.raises(UserError, match="no list files; expected <DS>_train_img_path_fold<k>.txt"):
        formats.num_folds(DataConfig(format="list", root=str(tmp_path / "img")))


BP4D_MODEL = f"model.au_names=[{', '.join(BP4D_AUS)}]"


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["data.format=celeba"], "data.format"),
        (["data.format=bp4d", "data.split=official", "data.rare_aus=[AU2]", BP4D_MODEL], "data.split"),
        (["data.format=bp4d", "data.split=fold4", "data.rare_aus=[AU2]", BP4D_MODEL], "data.split"),
        (["data.format=bp4d", f"model.au_names=[{', '.join(ABAW_AUS)}]"], "model.au_names"),
        (["data.format=bp4d", "data.split=fold1", BP4D_MODEL, "data.rare_aus=[AU25]"], "data.rare_aus"),
        (["data.disfa_image_index=time"], "data.disfa_image_index"),
    ],
)
def test_data_config_errors_name_the_key(overrides, key):
    with pytest.raises(UserError, match=key):
        load_config(None, overrides)
