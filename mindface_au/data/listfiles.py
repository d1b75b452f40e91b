"""ME-GraphAU list files: the route for a user's own AU data set (OpenFace 3.0 reads the same names).

Under a folder, per fold k (the fold count is the number of test path files present)::

    <DS>_train_img_path_fold<k>.txt    one image path per line (relative to data.image_root, or absolute under it)
    <DS>_train_label_fold<k>.txt       one row of space-separated labels per image, one column per AU
    <DS>_test_img_path_fold<k>.txt     ... the images fold k evaluates on
    <DS>_test_label_fold<k>.txt

The AU names of the columns come from the config (data.au_names, else model.au_names). 0 and 1 are labels;
-1 and 9 mean "not labelled" for that AU (-1 in the returned labels: masked out of the loss and its F1). Any
other value, a row with the wrong number of columns, a path without an image, a path outside the image root
(absolute, or climbing out with `..`: a list never makes a run read elsewhere), an empty list, or path and label
files of different lengths is an error naming the file and line. Images are grouped into one `Video` per image folder
(in listed order), the sequence over which predictions are smoothed.

Intensity labels (model.intensity) live in their own file per list, so the 0/1 label files keep their meaning::

    <DS>_train_intensity_fold<k>.txt   one row per line of <DS>_train_img_path_fold<k>.txt, in the same order:
                                       the image path exactly as listed there, then one value per AU of
                                       model.intensity_au_names, in that order, space-separated
    <DS>_test_intensity_fold<k>.txt    ... the same for the test list

Values are FACS intensities 0-5 (decimals allowed); -1 and 9 mean "not coded" (-1 in `Video.intensity`, left out
of the intensity loss and metrics). The path at the start of each row ties it to its image: a row whose path is not
the one on the same line of the image list, a different row count, a wrong column count or a value outside 0-5
(other than -1 / 9) is an error naming the intensity file and line. The file is read only when intensity labels
are asked for (`intensity_au_names`); then a missing one is an error naming it.
"""

import os
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mindface_au.data.affwild2 import is_image_file
from mindface_au.data.video import Video
from mindface_au.errors import UserError

_PATHS = re.compile(r"^(?P<ds>.+)_(?P<part>train|test)_img_path_fold(?P<k>[0-9]+)\.txt$")
NOT_LABELLED = ("-1", "9")
INTENSITY_FILE = "{ds}_{part}_intensity_fold{k}.txt"  # beside {ds}_{part}_img_path_fold{k}.txt

__all__ = ["list_folds", "load_list", "fold_files", "fold_problem", "intensity_file"]


def list_folds(root: str) -> Dict[int, Dict[str, Tuple[str, str]]]:
    """{k: {"train": (paths file, labels file), "test": (...)}} of the list files in `root`, folds 1..K."""
    if not os.path.isdir(root):
        raise UserError(f"{root}: list-file folder not found")
    found: Dict[int, Dict[str, Tuple[str, str]]] = {}
    for name in sorted(os.listdir(root)):
        match = _PATHS.match(name)
        if match:
            k, part = int(match.group("k")), match.group("part")
            labels = f"{match.group('ds')}_{part}_label_fold{k}.txt"
            if not os.path.isfile(os.path.join(root, labels)):
                raise UserError(f"{os.path.join(root, name)}: its label file {labels} is missing")
            found.setdefault(k, {})[part] = (os.path.join(root, name), os.path.join(root, labels))
    if not found:
        raise UserError(
            f"{root}: no list files; expected <DS>_train_img_path_fold<k>.txt, <DS>_train_label_fold<k>.txt "
            "and the same for test"
        )
    if sorted(found) != list(range(1, len(found) + 1)):
        raise UserError(f"{root}: folds {sorted(found)} found; expected fold1..fold{len(found)} without gaps")
    for k, parts in found.items():
        for part in ("train", "test"):
            if part not in parts:
                raise UserError(f"{root}: fold{k} has no {part} list (<DS>_{part}_img_path_fold{k}.txt)")
    return found


def fold_files(root: str, fold: int, part: str) -> Tuple[str, str]:
    folds = list_folds(root)
    if fold not in folds:
        raise UserError(f"config key data.split: fold{fold}; {root} has list files for fold1..fold{len(folds)}")
    return folds[fold][part]


def intensity_file(paths_file: str) -> str:
    """The intensity list beside image list `paths_file`: <DS>_<part>_intensity_fold<k>.txt (INTENSITY_FILE)."""
    folder, name = os.path.split(paths_file)
    match = _PATHS.match(name)
    if not match:
        raise UserError(f"{paths_file}: not a list file name; expected <DS>_<train|test>_img_path_fold<k>.txt")
    return os.path.join(folder, INTENSITY_FILE.format(**match.groupdict()))


def _intensity_rows(path: str, paths: List[Tuple[int, str]], paths_file: str, au_names: Sequence[str]):
    """float32 (N, K) intensities of an intensity list, row i for line i of the image list (see the module
    docstring); -1 where not coded."""
    if not os.path.isfile(path):
        raise UserError(
            f"{path}: intensity list not found; model.intensity needs one row per image of "
            f"{os.path.basename(paths_file)} (the image path, then {len(au_names)} values 0-5: {' '.join(au_names)})"
        )
    rows = _lines(path)
    if len(rows) != len(paths):
        raise UserError(f"{path}: {len(rows)} rows, {paths_file} lists {len(paths)} images; expected one row per image")
    out = np.empty((len(rows), len(au_names)), np.float32)
    for i, ((line, text), (p_line, listed)) in enumerate(zip(rows, paths)):
        rest = text[len(listed) :]
        if not text.startswith(listed) or (rest and not rest[0].isspace()):
            raise UserError(
                f"{path}:{line}: row {text[:80]!r} does not start with the image on line {p_line} of {paths_file}, "
                f"{listed[:80]!r}; rows follow the image list, one per line"
            )
        tokens = rest.split()
        if len(tokens) != len(au_names):
            raise UserError(
                f"{path}:{line}: {len(tokens)} values after the image path, expected {len(au_names)} "
                f"({' '.join(au_names)})"
            )
        for j, token in enumerate(tokens):
            try:
                value = float(token)
            except ValueError:
                value = float("nan")
            if value in (-1.0, 9.0):
                value = -1.0
            elif not 0.0 <= value <= 5.0:  # also NaN
                raise UserError(
                    f"{path}:{line}: {au_names[j]} value {token[:20]!r}; expected an intensity 0-5, or -1 / 9 "
                    "(not coded)"
                )
            out[i, j] = value
    return out


def _lines(path: str) -> List[Tuple[int, str]]:
    with open(path, encoding="utf-8-sig") as handle:
        return [(i, line.strip()) for i, line in enumerate(handle, start=1) if line.strip()]


def _inside(path: str, root: str) -> bool:
    """True when `path` lies under `root` once both are made absolute and `..` is resolved (by name: a symbolic
    link inside the root is the user's own choice and is followed)."""
    root = os.path.abspath(root or ".")
    return os.path.commonpath([os.path.abspath(path), root]) == root


def load_list(
    paths_file: str,
    labels_file: str,
    au_names: Sequence[str],
    image_root: str = "",
    problems: Optional[List[str]] = None,
    intensity_au_names: Sequence[str] = (),
) -> List[Video]:
    """Videos (one per image folder) of one paths/labels pair; see the module docstring.

    `intensity_au_names`: the columns of the intensity list beside `paths_file` (`intensity_file`), read into
    `Video.intensity`; () = none (`Video.intensity` None).

    A path outside `image_root` (absolute, or climbing out with `..`) or without an image is a UserError naming the
    list file and line. With a `problems` list (check-data), such lines and lines whose file is not an image
    are appended to it, one line each, and left out instead."""
    paths, rows = _lines(paths_file), _lines(labels_file)
    if len(paths) != len(rows):
        raise UserError(f"{labels_file}: {len(rows)} label rows, {paths_file} lists {len(paths)} images")
    if not paths:
        raise UserError(f"{paths_file}: lists no images; expected one image path per line")
    intensity = None
    if intensity_au_names:
        intensity = _intensity_rows(intensity_file(paths_file), paths, paths_file, intensity_au_names)
    root_text = image_root or "."
    groups: "OrderedDict[str, List[Tuple[str, np.ndarray, int]]]" = OrderedDict()
    for index, ((p_line, rel), (l_line, row)) in enumerate(zip(paths, rows)):
        values = row.split()
        if len(values) != len(au_names):
            raise UserError(
                f"{labels_file}:{l_line}: {len(values)} columns, expected {len(au_names)} ({' '.join(au_names)})"
            )
        labels = []
        for value in values:
            if value in NOT_LABELLED:
                labels.append(-1)
            elif value in ("0", "1"):
                labels.append(int(value))
            else:
                raise UserError(f"{labels_file}:{l_line}: value {value!r}; expected 0, 1, or -1 / 9 (not labelled)")
        path = rel if os.path.isabs(rel) else os.path.join(image_root, rel)
        problem = None
        if not _inside(path, image_root):
            problem = (
                f"{paths_file}:{p_line}: image {rel[:80]!r} is outside the data root {root_text} "
                "(data.image_root, else data.root); list paths under it or set data.image_root to a folder holding them"
            )
        elif not os.path.isfile(path):
            problem = f"{paths_file}:{p_line}: image {rel[:80]!r} not found under {root_text}"
        elif problems is not None and not is_image_file(path):
            problem = f"{paths_file}:{p_line}: {rel[:80]!r} is not an image (no image decoder knows its content)"
        if problem is not None:
            if problems is None:
                raise UserError(problem)
            problems.append(problem)
            continue
        groups.setdefault(os.path.dirname(rel) or ".", []).append((path, np.asarray(labels, np.int8), index))
    videos = []
    for folder, items in groups.items():
        n = len(items)
        videos.append(
            Video(
                name=folder,
                frame_ids=np.arange(1, n + 1, dtype=np.int64),
                labels=np.stack([lab for _, lab, _ in items]).reshape(n, len(au_names)),
                image_paths=[p for p, _, _ in items],
                num_frames=n,
                intensity=intensity[[i for _, _, i in items]] if intensity is not None else None,
                intensity_au_names=tuple(intensity_au_names),
            )
        )
    return videos


def fold_problem(files: Dict[str, Tuple[str, str]], train: Sequence[Video], test: Sequence[Video]) -> Optional[str]:
    """The problem line of one fold's lists, else None: an image in both the train and the test list (the fold
    would score images it trains on), or listed twice in the test list (scored twice). The train list may repeat
    an image on purpose (oversampling)."""
    trained = {os.path.abspath(p) for v in train for p in v.image_paths}
    seen: set = set()
    for path in (os.path.abspath(p) for v in test for p in v.image_paths):
        if path in trained:
            return f"{files['test'][0]}: image {path[-80:]!r} is also in the training list {files['train'][0]}"
        if path in seen:
            return f"{files['test'][0]}: image {path[-80:]!r} is listed twice; each test image is scored once"
        seen.add(path)
    return None
