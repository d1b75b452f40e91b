"""Intensity labels in the data layer: the DISFA, BP4D and list readers on SynthAU trees (values checked against the
files as written, parsed here independently), their one-line errors naming the file, the config rules (DISFA
occurrence on 12 AUs, affwild2 refused with model.intensity), the pipeline's (B, C + K) label column and
check-data's intensity report."""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest

from mindface_au.au_sets import BP4D_AUS, BP4D_INTENSITY_AUS, DISFA_AUS, DISFA_INTENSITY_AUS, au_number
from mindface_au.config import load_config
from mindface_au.data import bp4d, disfa, listfiles
from mindface_au.data.folds import get_split
from mindface_au.data.synthau import write_synthau
from mindface_au.errors import UserError


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """Tiny SynthAU trees in the disfa, bp4d and list layouts (one subject per part, 16 frames): read-only."""
    base = tmp_path_factory.mktemp("intensity_data")
    out = {}
    for fmt in ("disfa", "bp4d", "list"):
        out[fmt] = str(base / fmt)
        write_synthau(out[fmt], format=fmt, frames=16, seed=3, subjects_per_part=1)
    return out


def copy_tree(src, tmp_path):
    dst = str(tmp_path / "copy")
    shutil.copytree(src, dst)
    return dst


def config(fmt, root, *over):
    base = [f"data.format={fmt}", f"data.root={root}", "data.split=fold1", "data.rare_aus=[]", "data.num_workers=1"]
    return load_config(None, base + list(over))


def one_line(excinfo):
    text = str(excinfo.value)
    assert "\n" not in text
    return text


# --- DISFA ---------------------------------------------------------------------------------------------------------


def disfa_file_values(root, subject, au):
    """The 0-5 column of a DISFA label file, parsed here (lines frame,intensity)."""
    path = os.path.join(root, "ActionUnit_Labels", subject, f"{subject}_au{au_number(au)}.txt")
    with open(path) as handle:
        return np.array([int(line.split(",")[1]) for line in handle if line.strip()])


def test_disfa_reads_the_12_aus_values_and_derives_occurrence(trees):
    root = trees["disfa"]
    videos = disfa.load_disfa(root, au_names=DISFA_INTENSITY_AUS, intensity_au_names=DISFA_INTENSITY_AUS)
    assert len(videos) == 3
    for video in videos:
        kept = [int(os.path.basename(p)[: -len(".png")]) for p in video.image_paths]  # line index t of each row
        written = np.stack([disfa_file_values(root, video.name, au) for au in DISFA_INTENSITY_AUS], axis=1)[kept]
        assert video.intensity.dtype == np.float32 and video.intensity_au_names == DISFA_INTENSITY_AUS
        np.testing.assert_array_equal(video.intensity, written)
        np.testing.assert_array_equal(video.labels, (written >= 2).astype(np.int8))  # data.intensity_threshold 2
    stacked = np.concatenate([v.intensity for v in videos])
    for au in ("AU5", "AU20"):  # SynthAU never moves them
        assert (stacked[:, DISFA_INTENSITY_AUS.index(au)] == 0).all()
    assert stacked.max() >= 2  # SynthAU moves the others: some frames reach occurrence


def test_disfa_intensity_columns_follow_the_names_given_and_occurrence_stays_on_8(trees):
    root = trees["disfa"]
    (video,) = disfa.load_disfa(root, subjects=["SN003"], intensity_au_names=["AU17", "AU1"], intensity_threshold=1)
    kept = [int(os.path.basename(p)[:-4]) for p in video.image_paths]
    assert video.labels.shape[1] == len(DISFA_AUS) and video.intensity_au_names == ("AU17", "AU1")
    np.testing.assert_array_equal(video.intensity[:, 0], disfa_file_values(root, "SN003", "AU17")[kept])
    np.testing.assert_array_equal(video.intensity[:, 1], disfa_file_values(root, "SN003", "AU1")[kept])
    np.testing.assert_array_equal(video.labels[:, 0], disfa_file_values(root, "SN003", "AU1")[kept] >= 1)
    (plain,) = disfa.load_disfa(root, subjects=["SN003"])
    assert plain.intensity is None and plain.intensity_au_names == ()


def test_disfa_intensity_errors_name_the_file(trees, tmp_path):
    root = copy_tree(trees["disfa"], tmp_path)
    au5 = os.path.join(root, "ActionUnit_Labels", "SN003", "SN003_au5.txt")
    with open(au5) as handle:
        lines = handle.readlines()
    good, lines[3] = lines[3], "4,7\n"
    with open(au5, "w") as handle:
        handle.writelines(lines)
    disfa.load_disfa(root, subjects=["SN003"])  # AU5 is not asked for: its file is not opened
    with pytest.raises(UserError) as excinfo:
        disfa.load_disfa(root, subjects=["SN003"], intensity_au_names=["AU5"])
    assert one_line(excinfo).startswith(f"{au5}:4: ") and "intensity 0-5" in str(excinfo.value)
    lines[3] = good
    with open(au5, "w") as handle:
        handle.writelines(lines)
    os.remove(os.path.join(root, "ActionUnit_Labels", "SN003", "SN003_au15.txt"))
    with pytest.raises(UserError, match=r"SN003_au15\.txt: DISFA label file not found") as excinfo:
        disfa.load_disfa(root, subjects=["SN003"], au_names=DISFA_INTENSITY_AUS)
    one_line(excinfo)
    with pytest.raises(UserError, match="intensity_au_names: DISFA has no label file for AU7"):
        disfa.load_disfa(root, subjects=["SN003"], intensity_au_names=["AU7"])


# --- BP4D ----------------------------------------------------------------------------------------------------------


def bp4d_file_values(root, name, au):
    """{frame: value} of a BP4D intensity file, parsed here (AUCoding/AU_INT/AU06/F001_T1_AU06.csv, frame,value)."""
    path = os.path.join(root, "AUCoding", "AU_INT", f"AU{au_number(au):02d}", f"{name}_AU{au_number(au):02d}.csv")
    with open(path) as handle:
        rows = [line.strip().split(",") for line in handle if line.strip()]
    return {int(frame): int(value) for frame, value in rows}


def test_bp4d_reads_its_intensity_files_by_frame_number(trees):
    root = trees["bp4d"]
    videos = bp4d.load_bp4d(root, intensity_au_names=BP4D_INTENSITY_AUS)
    uncoded = 0
    for video in videos:
        frames = [int(os.path.basename(p)[: -len(".jpg")]) for p in video.image_paths]
        assert video.intensity.shape == (len(video), 5) and video.intensity_au_names == BP4D_INTENSITY_AUS
        for j, au in enumerate(BP4D_INTENSITY_AUS):
            written = bp4d_file_values(root, video.name, au)
            expected = [-1 if written[f] == 9 else written[f] for f in frames]
            np.testing.assert_array_equal(video.intensity[:, j], expected)
            uncoded += sum(written[f] == 9 for f in frames)
        coded = video.intensity >= 0  # SynthAU: intensity >= 2 is its occurrence label
        occurrence = video.labels[:, [BP4D_AUS.index(au) for au in BP4D_INTENSITY_AUS]]
        np.testing.assert_array_equal((video.intensity >= 2)[coded & (occurrence >= 0)], (occurrence == 1)[coded])
    assert uncoded > 0  # the 9s (not coded) are -1
    assert all(v.intensity is None for v in bp4d.load_bp4d(root))


def test_bp4d_intensity_errors_name_the_file(trees, tmp_path):
    root = copy_tree(trees["bp4d"], tmp_path)
    path = bp4d.intensity_path(root, "F001_T1", "AU12")
    assert path == os.path.join(root, "AUCoding", "AU_INT", "AU12", "F001_T1_AU12.csv")
    with open(path) as handle:
        lines = handle.readlines()
    frame = lines[1].split(",")[0]
    lines[1] = f"{frame},6\n"
    with open(path, "w") as handle:
        handle.writelines(lines)
    with pytest.raises(UserError) as excinfo:
        bp4d.load_bp4d(root, subjects=["F001"], intensity_au_names=["AU12"])
    assert one_line(excinfo).startswith(f"{path}:2: ") and "0-5 or 9" in str(excinfo.value)
    os.remove(bp4d.intensity_path(root, "F001_T1", "AU17"))
    with pytest.raises(UserError) as excinfo:
        bp4d.load_bp4d(root, subjects=["F001"], intensity_au_names=["AU17"])
    assert one_line(excinfo).startswith(f"{bp4d.intensity_path(root, 'F001_T1', 'AU17')}: BP4D intensity file not")
    with pytest.raises(UserError, match="BP4D has no intensity labels for AU1;"):
        bp4d.load_bp4d(root, subjects=["F001"], intensity_au_names=["AU1"])


# --- list files ----------------------------------------------------------------------------------------------------


def test_list_intensity_rows_follow_the_image_list(trees):
    root = trees["list"]
    cfg = config("list", root, f"model.au_names=[{', '.join(BP4D_AUS)}]", "model.intensity=true")
    assert cfg.model.intensity_au_names == list(BP4D_AUS)  # list data: model.au_names by default
    train, val = get_split(cfg.data, cfg.model.intensity_au_names)
    for part, videos in (("train", train), ("test", val)):
        with open(os.path.join(root, f"SynthAU_{part}_intensity_fold1.txt")) as handle:
            rows = [line.split() for line in handle if line.strip()]
        written = {os.path.join(root, r[0]): [-1 if v == "9" else int(v) for v in r[1:]] for r in rows}
        got = {p: row for v in videos for p, row in zip(v.image_paths, v.intensity.tolist())}
        assert got == written
    assert any((v.intensity == -1).any() for v in train + val)
    assert all(v.intensity is None for v in get_split(cfg.data)[0])  # not asked for: not read


def test_list_intensity_mismatches_are_refused_naming_file_and_line(trees, tmp_path):
    root = copy_tree(trees["list"], tmp_path)
    paths, labels = listfiles.fold_files(root, 1, "test")
    path = listfiles.intensity_file(paths)
    assert path == os.path.join(root, "SynthAU_test_intensity_fold1.txt")
    names = ["AU6", "AU12"]
    with open(path) as handle:
        original = handle.readlines()

    def refused(lines, match):
        with open(path, "w") as handle:
            handle.writelines(lines)
        with pytest.raises(UserError, match=match) as excinfo:
            listfiles.load_list(paths, labels, BP4D_AUS, root, intensity_au_names=names)
        return one_line(excinfo)

    refused(original, rf"^{path}:1: 12 values after the image path, expected 2 \(AU6 AU12\)$")
    two = [" ".join(line.split()[:3]) + "\n" for line in original]  # the path and two values
    with open(path, "w") as handle:
        handle.writelines(two)
    videos = listfiles.load_list(paths, labels, BP4D_AUS, root, intensity_au_names=names)
    assert videos[0].intensity.shape == (len(videos[0]), 2)
    swapped = [two[1], two[0]] + two[2:]
    refused(swapped, rf"^{path}:1: row .* does not start with the image on line 1 of {paths}, ")
    refused(two[:-1], rf"^{path}: {len(two) - 1} rows, {paths} lists {len(two)} images")
    refused([two[0].rsplit(" ", 1)[0] + " 5.5\n"] + two[1:], rf"^{path}:1: AU12 value '5.5'; expected")
    refused([two[0].rsplit(" ", 1)[0] + " nan\n"] + two[1:], rf"^{path}:1: AU12 value 'nan'")
    refused([two[0].rsplit(" ", 1)[0] + "\n"] + two[1:], rf"^{path}:1: 1 values after the image path, expected 2")
    os.remove(path)
    with pytest.raises(UserError, match=rf"^{path}: intensity list not found") as excinfo:
        listfiles.load_list(paths, labels, BP4D_AUS, root, intensity_au_names=names)
    one_line(excinfo)
    listfiles.load_list(paths, labels, BP4D_AUS, root)  # occurrence alone needs no intensity list


# --- config --------------------------------------------------------------------------------------------------------


def test_disfa_occurrence_on_12_and_intensity_defaults(trees):
    twelve = ", ".join(DISFA_INTENSITY_AUS)
    cfg = config("disfa", trees["disfa"], f"model.au_names=[{twelve}]", "model.intensity=true")
    assert cfg.data.au_names == list(DISFA_INTENSITY_AUS) and cfg.model.intensity_au_names == list(DISFA_INTENSITY_AUS)
    train, val = get_split(cfg.data, cfg.model.intensity_au_names)
    assert all(v.labels.shape[1] == 12 and v.intensity.shape[1] == 12 for v in train + val)
    cfg = config("disfa", trees["disfa"], f"data.au_names=[{twelve}]")
    assert cfg.model.au_names == list(DISFA_INTENSITY_AUS) and not cfg.model.intensity
    cfg = config("disfa", trees["disfa"], "model.intensity=true")
    assert cfg.data.au_names == list(DISFA_AUS) and cfg.model.intensity_au_names == list(DISFA_AUS)
    with pytest.raises(UserError, match="config key data.au_names: disfa labels AU1, .* or AU1, .*; got AU1, AU5$"):
        config("disfa", trees["disfa"], "data.au_names=[AU1, AU5]", "model.arl_k=1")


def test_intensity_on_affwild2_is_refused_in_one_line(tmp_path):
    with pytest.raises(UserError) as excinfo:
        config("affwild2", tmp_path, "model.intensity=true", "data.split=official")
    assert one_line(excinfo).startswith("config key model.intensity: data.format affwild2 has no intensity labels")
    with pytest.raises(UserError) as excinfo:
        config("bp4d", tmp_path, "model.intensity=true", "model.intensity_au_names=[AU6, AU1]")
    assert one_line(excinfo) == (
        "config key model.intensity_au_names: data.format bp4d has no intensity labels for AU1; it labels AU6, "
        "AU10, AU12, AU14, AU17"
    )
    cfg = config("affwild2", tmp_path, "data.split=official")
    with pytest.raises(UserError, match="data.format affwild2 has no intensity labels"):
        get_split(cfg.data, ["AU12"])


# --- pipeline and check-data ---------------------------------------------------------------------------------------


def test_pipeline_label_column_is_occurrence_then_intensity(trees):
    from mindface_au.data.pipeline import create_eval_dataset, create_train_dataset

    cfg = config(
        "bp4d", trees["bp4d"], "model.input_size=32", "model.intensity=true", "data.batch_size=4", "data.sample_rate=1"
    )
    assert cfg.model.intensity_au_names == list(BP4D_INTENSITY_AUS)
    train, val = get_split(cfg.data, cfg.model.intensity_au_names)
    expected = np.concatenate([np.concatenate([v.labels, v.intensity], axis=1) for v in val]).astype(np.float32)
    dataset = create_eval_dataset(val, cfg.data)
    got = np.concatenate([row["label"] for row in dataset.create_dict_iterator(num_epochs=1, output_numpy=True)])
    assert got.dtype == np.float32 and got.shape == (len(expected), 12 + 5)
    np.testing.assert_array_equal(got, expected)
    rows = {tuple(r) for v in train for r in np.concatenate([v.labels, v.intensity], axis=1).astype(np.float32)}
    dataset = create_train_dataset(train, cfg.data, seed=1)
    batch = next(dataset.create_dict_iterator(num_epochs=1, output_numpy=True))["label"]
    assert batch.dtype == np.float32 and batch.shape == (4, 12 + 5)
    assert all(tuple(r) in rows for r in batch)
    n = len(val[0]) - 1
    assert n >= 1
    cut = dataclasses.replace(val[0], frame_ids=val[0].frame_ids[:n], labels=val[0].labels[:n])
    cut.image_paths = cut.image_paths[:n]  # a video cut without its intensities is refused, not misread
    with pytest.raises(ValueError, match=rf"video '{cut.name}': {n + 1} intensity rows for {n} frames"):
        create_eval_dataset([cut], cfg.data)
    plain = create_train_dataset(get_split(cfg.data)[0], cfg.data, seed=1)  # without intensity: (B, C) as before
    assert next(plain.create_dict_iterator(num_epochs=1, output_numpy=True))["label"].shape == (4, 12)


def test_check_data_reports_intensity_coverage(trees, cli_in_process):
    root = trees["disfa"]
    result = cli_in_process("check-data", "--format", "disfa", "--root", root, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    (video,) = disfa.load_disfa(root, subjects=["SN003"], intensity_au_names=DISFA_INTENSITY_AUS)  # fold1's test part
    intensity = report["fold1_test"]["intensity"]
    assert list(intensity) == list(DISFA_INTENSITY_AUS)
    for j, au in enumerate(DISFA_INTENSITY_AUS):
        assert intensity[au]["coded_frames"] == len(video)
        assert intensity[au]["mean"] == round(float(np.mean(video.intensity[:, j])), 6)
    table = cli_in_process("check-data", "--format", "disfa", "--root", root)
    assert table.returncode == 0 and "intensity (coded frames, mean 0-5): AU1=" in table.stdout
    bp4d_report = json.loads(cli_in_process("check-data", "--format", "bp4d", "--root", trees["bp4d"], "--json").stdout)
    assert list(bp4d_report["fold2_test"]["intensity"]) == list(BP4D_INTENSITY_AUS)
