"""One reader interface for every AU data set, chosen by `data.format` (see docs/datasets.md).

- `affwild2`: Aff-Wild2 / ABAW (mindface_au.data.affwild2); official split or 4 folds by video.
- `bp4d`, `disfa`: ME-GraphAU's 3-fold subject-exclusive protocol: fold k tests on subject part 4 - k (fold1 on
  part3, fold2 on part2, fold3 on part1) and trains on the other two.
- `list`: ME-GraphAU list files; fold k trains on its train list and tests on its test list; the fold count is
  the number of folds whose files are present.

Every reader returns `Video` records whose labels hold -1 where an AU is not coded; `au_names(data_cfg)` gives
the set of their columns. `fold_split` is what `data.split` = fold<k> means for the non-Aff-Wild2 formats.
"""

import dataclasses
import os
from typing import Dict, List, Sequence, Tuple

from mindface_au.data import bp4d, disfa, listfiles
from mindface_au.data.affwild2 import image_problems, split_summary
from mindface_au.data.registry import DATA_FORMATS, FORMATS, get_format
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
]

SUBJECT_PARTS = {name: fmt.subject_parts for name, fmt in FORMATS.items() if fmt.subject_parts}


def au_names(data_cfg) -> Tuple[str, ...]:
    """The AU set of the data's label columns: the format's known set, or data.au_names for list files."""
    known = get_format(data_cfg.format).au_names
    if known:
        return known
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


def load_part(data_cfg, subjects: Sequence[str]) -> List[Video]:
    """BP4D / DISFA videos of the given subjects."""
    reader = get_format(data_cfg.format).reader
    if data_cfg.format == "bp4d":
        return reader(data_cfg.root, data_cfg.image_root, subjects, au_names(data_cfg))
    if data_cfg.format == "disfa":
        return reader(
            data_cfg.root,
            data_cfg.image_root,
            subjects,
            au_names(data_cfg),
            data_cfg.intensity_threshold,
            data_cfg.disfa_image_index,
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


def fold_split(data_cfg) -> Tuple[List[Video], List[Video]]:
    """(train, val) videos of `data.split` = fold<k> for bp4d, disfa and list (see the module docstring).

    A bp4d / disfa fold whose test subjects are all absent is an error (`check_fold_subjects`); an empty list file
    is an error of `listfiles.load_list`, a test image also trained on or listed twice one of `fold_problem`."""
    get_format(data_cfg.format)  # names a bad data.format
    fold = _fold_number(data_cfg)
    if data_cfg.format == "list":
        names = au_names(data_cfg)
        image_root = data_cfg.image_root or data_cfg.root
        files = {part: listfiles.fold_files(data_cfg.root, fold, part) for part in ("train", "test")}
        train = listfiles.load_list(*files["train"], names, image_root)
        val = listfiles.load_list(*files["test"], names, image_root)
        problem = listfiles.fold_problem(files, train, val)
        if problem:
            raise UserError(problem)
        return train, val
    check_fold_subjects(data_cfg, fold)
    parts = SUBJECT_PARTS[data_cfg.format]
    test_part = len(parts) - fold  # fold1 -> part3 (index 2), fold3 -> part1 (index 0)
    train_subjects = [s for i, part in enumerate(parts) if i != test_part for s in part]
    return load_part(data_cfg, train_subjects), load_part(data_cfg, parts[test_part])


def check_format(data_cfg) -> Dict:
    """The check-data report of a bp4d / disfa / list tree: per fold's test part (bp4d, disfa: fold1_test, ...;
    list: fold<k>_train and fold<k>_test), today's summary keys, positive rates keyed by the data's AU names.

    Lines that do not stop the reading are listed under "problems" (present only when there are any): images
    that are not images, list lines outside the data root or without an image, and a list fold's test image that
    is also in its training list or listed twice."""
    names = au_names(data_cfg)
    report: Dict = {}
    problems: List[str] = []
    if data_cfg.format in SUBJECT_PARTS:
        parts = SUBJECT_PARTS[data_cfg.format]
        for fold in range(1, len(parts) + 1):
            videos = load_part(data_cfg, parts[len(parts) - fold])
            report[f"fold{fold}_test"] = split_summary(videos, names)
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
                videos[part] = listfiles.load_list(*files[part], names, image_root, problems=problems)
                report[f"fold{fold}_{part}"] = split_summary(videos[part], names)
            problem = listfiles.fold_problem(files, videos["train"], videos["test"])
            problems += [problem] if problem else []
    if problems:
        report["problems"] = problems
    return report
