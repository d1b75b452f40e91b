"""One reader interface for every AU data set, chosen by `data.format` (see docs/datasets.md).

- `affwild2`: Aff-Wild2 / ABAW (mindface_au.data.affwild2); official split or 4 folds by video.
- `bp4d`, `disfa`: ME-GraphAU's 3-fold subject-exclusive protocol: fold k tests on subject part 4 - k (fold1 on
  part3, fold2 on part2, fold3 on part1) and trains on the other two.
- `list`: ME-GraphAU list files; fold k trains on its train list and tests on its test list; the fold count is
  the number of folds whose files are present.

Every reader returns `Video` records whose labels hold -1 where an AU is not coded; `au_names(data_cfg)` gives
the set of their columns. `fold_split` is what `data.split` = fold<k> means for the non-Aff-Wild2 formats.

Intensity labels (model.intensity): `fold_split`, `load_part` and `check_format` take `intensity_au_names` (the
config's model.intensity_au_names, empty when the head is off) and pass them to the reader, which fills
`Video.intensity` in that order (bp4d: its intensity files, disfa: the 0-5 label files, list: the intensity
lists); a format without intensity labels (affwild2) is refused (`registry.check_intensity_format`).
"""

import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mindface_au.au_sets import au_number
from mindface_au.data import bp4d, disfa, listfiles
from mindface_au.data.affwild2 import image_problems, split_summary
from mindface_au.data.registry import DATA_FORMATS, FORMATS, check_intensity_format, get_format
from mindface_au.data.video import Video
from mindface_au.errors import UserError

__all__ = [
    "DATA_FORMATS",
    "au_names",
    "num_folds",
    "fold_names",
    "load_part",
    "fold_split",
    "check_format",
    "subjects_found",
    "check_fold_subjects",
    "check_folds",
    "intensity_summary",
]

SUBJECT_PARTS = {name: fmt.subject_parts for name, fmt in FORMATS.items() if fmt.subject_parts}


def au_names(data_cfg) -> Tuple[str, ...]:
    """The AU set of the data's label columns: data.au_names when it is one the format reads (DISFA: its 8 or its
    12), else the format's known set; data.au_names for list files."""
    fmt = get_format(data_cfg.format)
    if fmt.au_names:
        given = tuple(data_cfg.au_names or ())
        return given if given in fmt.label_au_sets else fmt.au_names
    if not data_cfg.au_names:
        raise UserError("config key data.au_names: empty; list files need the AU names of their columns")
    return tuple(data_cfg.au_names)


def num_folds(data_cfg) -> int:
    """Folds of the format: 4 (affwild2), 3 (bp4d, disfa), or the number of list-file folds present."""
    return get_format(data_cfg.format).num_folds or len(listfiles.list_folds(data_cfg.root))


def fold_names(data_cfg) -> List[str]:
    """The `data.split` values of the format: official (affwild2 only) and fold1..fold<num_folds>."""
    folds = [f"fold{k}" for k in range(1, num_folds(data_cfg) + 1)]
    return (["official"] if get_format(data_cfg.format).official else []) + folds


def load_part(data_cfg, subjects: Sequence[str], intensity_au_names: Sequence[str] = ()) -> List[Video]:
    """BP4D / DISFA videos of the given subjects, with the intensities of `intensity_au_names` when given."""
    reader = get_format(data_cfg.format).reader
    intensity_au_names = tuple(intensity_au_names or ())
    if data_cfg.format == "bp4d":
        return reader(data_cfg.root, data_cfg.image_root, subjects, au_names(data_cfg), intensity_au_names)
    if data_cfg.format == "disfa":
        return reader(
            data_cfg.root,
            data_cfg.image_root,
            subjects,
            au_names(data_cfg),
            data_cfg.intensity_threshold,
            data_cfg.disfa_image_index,
            intensity_au_names,
        )
    raise UserError(f"config key data.format: {data_cfg.format} has no subject parts")


def _fold_number(data_cfg) -> int:
    split = data_cfg.split
    if not (split.startswith("fold") and split[4:].isdigit()):
        raise UserError(
            f"config key data.split: got {split!r}; {data_cfg.format} has {', '.join(fold_names(data_cfg))}"
        )
    fold, count = int(split[4:]), num_folds(data_cfg)
    if not 1 <= fold <= count:
        raise UserError(f"config key data.split: got {split!r}; {data_cfg.format} has fold1..fold{count}")
    return fold


def subjects_found(data_cfg) -> List[str]:
    """The subjects of a bp4d / disfa tree: the label files' subject names (BP4D: F001 of F001_T1.csv; DISFA: the
    subject folders), sorted; a tree that is not the format's layout is a UserError."""
    label_dir = bp4d.LABEL_DIR if data_cfg.format == "bp4d" else disfa.LABEL_DIR
    folder = os.path.join(data_cfg.root, label_dir)
    if not os.path.isdir(folder):
        name = "BP4D" if data_cfg.format == "bp4d" else "DISFA"
        raise UserError(f"{data_cfg.root}: not a {name} tree; expected {label_dir}/ (see docs/datasets.md)")
    if data_cfg.format == "bp4d":
        return sorted({bp4d.subject_of(n[: -len(".csv")]) for n in os.listdir(folder) if n.endswith(".csv")})
    return sorted(n for n in os.listdir(folder) if os.path.isdir(os.path.join(folder, n)))


def check_fold_subjects(data_cfg, fold: int) -> None:
    """Refuse fold `fold` of a bp4d / disfa tree when its test part holds none of the subjects found: training
    would validate on nothing and evaluation would score nothing. Names how many subjects were found and where.

    Empty training parts are left to the trainer ("no labelled frames ... to train on"): `eval` and `predict` of a
    fold need only its test part."""
    parts = SUBJECT_PARTS[data_cfg.format]
    found = set(subjects_found(data_cfg))
    test_part = len(parts) - fold
    in_parts = [found & set(part) for part in parts]
    if in_parts[test_part]:
        return
    where = ", ".join(f"part{i + 1}: {len(p)}" for i, p in enumerate(in_parts))
    raise UserError(
        f"{data_cfg.root}: {len(found)} {data_cfg.format.upper()} subject(s) found ({where}); the {len(parts)} "
        f"subject-exclusive folds need at least {len(parts)}, one in each part, and fold{fold} tests on "
        f"part{test_part + 1}, which has none (parts: PARTS in mindface_au/data/{data_cfg.format}.py)"
    )


def check_folds(data_cfg, splits: Sequence[str]) -> None:
    """Refuse, before any training, a bp4d / disfa split whose test part holds no subject (`check_fold_subjects`):
    `cv` can call it once for all its splits instead of meeting the error after training the folds before it."""
    if data_cfg.format not in SUBJECT_PARTS:
        return
    for split in splits:
        check_fold_subjects(data_cfg, _fold_number(dataclasses.replace(data_cfg, split=split)))


def fold_split(data_cfg, intensity_au_names: Sequence[str] = ()) -> Tuple[List[Video], List[Video]]:
    """(train, val) videos of `data.split` = fold<k> for bp4d, disfa and list (see the module docstring), with the
    intensities of `intensity_au_names` (model.intensity_au_names; () = none).

    A bp4d / disfa fold whose test subjects are all absent is an error (`check_fold_subjects`); an empty list file
    is an error of `listfiles.load_list`, a test image also trained on or listed twice one of `fold_problem`."""
    get_format(data_cfg.format)  # names a bad data.format
    intensity_au_names = tuple(intensity_au_names or ())
    if intensity_au_names:
        check_intensity_format(data_cfg.format)
    fold = _fold_number(data_cfg)
    if data_cfg.format == "list":
        names = au_names(data_cfg)
        image_root = data_cfg.image_root or data_cfg.root
        files = {part: listfiles.fold_files(data_cfg.root, fold, part) for part in ("train", "test")}
        train = listfiles.load_list(*files["train"], names, image_root, intensity_au_names=intensity_au_names)
        val = listfiles.load_list(*files["test"], names, image_root, intensity_au_names=intensity_au_names)
        problem = listfiles.fold_problem(files, train, val)
        if problem:
            raise UserError(problem)
        return train, val
    check_fold_subjects(data_cfg, fold)
    parts = SUBJECT_PARTS[data_cfg.format]
    test_part = len(parts) - fold  # fold1 -> part3 (index 2), fold3 -> part1 (index 0)
    train_subjects = [s for i, part in enumerate(parts) if i != test_part for s in part]
    return (
        load_part(data_cfg, train_subjects, intensity_au_names),
        load_part(data_cfg, parts[test_part], intensity_au_names),
    )


def intensity_summary(videos: Sequence[Video], names: Sequence[str]) -> Dict:
    """{AU: {"coded_frames", "mean"}} of the videos' intensity labels of AUs `names` (frames with a value 0-5); an
    AU with no coded frame has no mean (None: `null` in JSON, `n/a` in tables)."""
    parts = [np.asarray(v.intensity, np.float32).reshape(-1, len(names)) for v in videos if v.intensity is not None]
    values = np.concatenate(parts) if parts else np.zeros((0, len(names)), np.float32)
    coded = values >= 0
    out = {}
    for j, au in enumerate(names):
        count = int(coded[:, j].sum())
        mean = round(float(values[coded[:, j], j].mean()), 6) if count else None
        out[au] = {"coded_frames": count, "mean": mean}
    return out


def _present_intensity_aus(data_cfg) -> Tuple[str, ...]:
    """The format's intensity AUs whose labels are present for check-data: bp4d, the AUs whose intensity folder
    exists; disfa, the AUs with a label file for every subject found; () for the others."""
    fmt = get_format(data_cfg.format)
    if data_cfg.format == "bp4d":
        folder = os.path.join(data_cfg.root, bp4d.INTENSITY_DIR)
        return tuple(
            au
            for au in fmt.intensity_aus
            if os.path.isdir(os.path.join(folder, bp4d.INTENSITY_AU_DIR.format(number=au_number(au))))
        )
    if data_cfg.format == "disfa":
        subjects = subjects_found(data_cfg)
        return tuple(
            au
            for au in fmt.intensity_aus
            if all(os.path.isfile(disfa.label_path(data_cfg.root, s, au)) for s in subjects)
        )
    return ()


def check_format(data_cfg, intensity_au_names: Optional[Sequence[str]] = None) -> Dict:
    """The check-data report of a bp4d / disfa / list tree: per fold's test part (bp4d, disfa: fold1_test, ...;
    list: fold<k>_train and fold<k>_test), today's summary keys, positive rates keyed by the data's AU names, and
    "intensity" (`intensity_summary`) when intensity labels are read.

    `intensity_au_names`: the intensity labels to read (model.intensity_au_names; any missing file is an error);
    None: those present (bp4d, disfa: `_present_intensity_aus`; list files name no AUs of their own: none).

    Lines that do not stop the reading are listed under "problems" (present only when there are any): images
    that are not images, list lines outside the data root or without an image, and a list fold's test image that
    is also in its training list or listed twice."""
    names = au_names(data_cfg)
    if intensity_au_names is None:
        intensity_au_names = _present_intensity_aus(data_cfg)
    elif intensity_au_names:
        check_intensity_format(data_cfg.format)
    report: Dict = {}
    problems: List[str] = []

    def summary(videos: Sequence[Video]) -> Dict:
        out = split_summary(list(videos), names)
        if intensity_au_names:
            out["intensity"] = intensity_summary(videos, intensity_au_names)
        return out

    if data_cfg.format in SUBJECT_PARTS:
        parts = SUBJECT_PARTS[data_cfg.format]
        for fold in range(1, len(parts) + 1):
            videos = load_part(data_cfg, parts[len(parts) - fold], intensity_au_names)
            report[f"fold{fold}_test"] = summary(videos)
            problems += image_problems(videos)
        known = {s for part in parts for s in part}
        outside = sorted(set(subjects_found(data_cfg)) - known)
        if outside:
            report["subjects_outside_parts"] = outside
    else:
        image_root = data_cfg.image_root or data_cfg.root
        for fold, files in listfiles.list_folds(data_cfg.root).items():
            videos = {}
            for part in ("train", "test"):
                videos[part] = listfiles.load_list(
                    *files[part], names, image_root, problems=problems, intensity_au_names=intensity_au_names
                )
                report[f"fold{fold}_{part}"] = summary(videos[part])
            problem = listfiles.fold_problem(files, videos["train"], videos["test"])
            problems += [problem] if problem else []
    if problems:
        report["problems"] = problems
    return report
