"""Official split and the paper's 4-fold (NUM_FOLDS) cross-validation over train+val, split by video.

Both halves of a two-person video (`<name>_left`, `<name>_right`) always land in the same fold, so no face is
seen in training and validation of one fold. Folds are balanced by labelled frame count with a greedy
largest-first assignment (each group of videos goes to the fold with the fewest frames so far; ties go to the
lower fold, groups of equal size are ordered by name), which is deterministic. `mindface-au folds` writes the
result as JSON so that runs can be repeated even if the data folder changes; `get_split` reads that file when
`data.folds_file` is set and computes the folds otherwise.
"""

import json
import os
from collections import OrderedDict
from typing import Dict, List, Sequence, Tuple

from mindface_au.data.affwild2 import Video, load_split, pair_key, shared_videos
from mindface_au.data.registry import FOLD_SPLITS, NUM_FOLDS, check_intensity_format
from mindface_au.errors import UserError
from mindface_au.utils.io import atomic_write

FOLDS_FORMAT = "mindface-au-folds/1"

__all__ = ["compute_folds", "write_folds", "read_folds", "make_folds", "get_split", "NUM_FOLDS"]


def compute_folds(frame_counts: Dict[str, int], num_folds: int = NUM_FOLDS) -> List[List[str]]:
    """Assign videos (name -> labelled frames) to `num_folds` folds; returns sorted video names per fold."""
    if num_folds < 2:
        raise UserError(f"number of folds: got {num_folds}, expected at least 2")
    groups: Dict[str, List[str]] = OrderedDict()
    for name in sorted(frame_counts):
        groups.setdefault(pair_key(name), []).append(name)
    if len(groups) < num_folds:
        raise UserError(f"{len(groups)} video groups cannot make {num_folds} folds; need at least {num_folds}")
    order = sorted(groups, key=lambda key: (-sum(frame_counts[n] for n in groups[key]), key))
    folds: List[List[str]] = [[] for _ in range(num_folds)]
    totals = [0] * num_folds
    for key in order:
        target = min(range(num_folds), key=lambda i: (totals[i], i))
        folds[target].extend(groups[key])
        totals[target] += sum(frame_counts[n] for n in groups[key])
    return [sorted(fold) for fold in folds]


def make_folds(root: str, num_folds: int = NUM_FOLDS) -> Dict:
    """Folds over train+val of the dataset at `root`, with frame totals, as written by `write_folds`.

    Only NUM_FOLDS folds: `data.split`, `train --fold` and `cv` know fold1..fold<NUM_FOLDS>, so any other count
    would write a file that no run can use.
    """
    if num_folds != NUM_FOLDS:
        raise UserError(
            f"number of folds: got {num_folds}, only {NUM_FOLDS} is supported (data.split knows fold1..fold{NUM_FOLDS})"
        )
    train, val = load_train_val(root)
    counts = {v.name: len(v) for v in train + val}
    folds = compute_folds(counts, num_folds)
    return {
        "format": FOLDS_FORMAT,
        "num_folds": num_folds,
        "folds": folds,
        "frames": [int(sum(counts[n] for n in fold)) for fold in folds],
    }


def write_folds(root: str, out_path: str, num_folds: int = NUM_FOLDS) -> Dict:
    """Compute the folds of `root` and write them as JSON to `out_path` (atomically); returns the object."""
    data = make_folds(root, num_folds)
    with atomic_write(out_path) as handle:
        json.dump(data, handle, indent=1)
        handle.write("\n")
    return data


def read_folds(path: str) -> List[List[str]]:
    """Video names per fold from a file written by `write_folds`; malformed content is a UserError."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: folds file not found (write one with `mindface-au folds`)")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a JSON folds file ({exc})") from exc
    folds = data.get("folds") if isinstance(data, dict) else None
    if (
        not isinstance(folds, list)
        or not folds
        or not all(isinstance(f, list) and all(isinstance(n, str) for n in f) for f in folds)
    ):
        raise UserError(f"{path}: key 'folds' must be a list of lists of video names")
    if len(folds) != NUM_FOLDS:
        raise UserError(f"{path}: {len(folds)} folds, expected {NUM_FOLDS} (data.split knows fold1..fold{NUM_FOLDS})")
    seen: Dict[str, int] = {}
    for i, fold in enumerate(folds):
        for name in fold:
            if name in seen:
                raise UserError(f"{path}: video {name!r} is in fold {seen[name] + 1} and fold {i + 1}")
            seen[name] = i
    return folds


def load_train_val(root: str) -> Tuple[List[Video], List[Video]]:
    """Aff-Wild2's Train_Set and Validation_Set videos; a video name in both is a UserError naming it (the
    official split would validate on a video it trains on, the folds would count it twice)."""
    train, val = load_split(root, "train"), load_split(root, "val")
    shared = shared_videos(root, train, val)
    if shared:
        raise UserError(shared)
    return train, val


def split_by_folds(
    videos: Sequence[Video], folds: List[List[str]], fold: int, source: str = "folds"
) -> Tuple[List[Video], List[Video]]:
    """(train, val) for 1-based `fold`: val = that fold's videos, train = all the other folds."""
    by_name = {v.name: v for v in videos}
    listed = {name for f in folds for name in f}
    for name in sorted(listed - set(by_name)):
        raise UserError(f"{source}: video {name!r} is not in the dataset's train or val split")
    for name in sorted(set(by_name) - listed):
        raise UserError(f"{source}: dataset video {name!r} is in no fold; rewrite the folds file")
    val_names = set(folds[fold - 1])
    train = [v for v in videos if v.name not in val_names]
    val = [v for v in videos if v.name in val_names]
    return train, val


def get_split(data_cfg, intensity_au_names: Sequence[str] = ()) -> Tuple[List[Video], List[Video]]:
    """(train_videos, val_videos) for `data_cfg.split`: "official" or one of FOLD_SPLITS (see module docstring);
    bp4d, disfa and list data (`data_cfg.format`) split by their own protocols (mindface_au.data.formats), with the
    intensity labels of `intensity_au_names` (model.intensity_au_names; Aff-Wild2 has none and refuses them)."""
    fmt = getattr(data_cfg, "format", "affwild2")
    if fmt != "affwild2":
        from mindface_au.data.formats import fold_split

        return fold_split(data_cfg, intensity_au_names)
    if intensity_au_names:
        check_intensity_format(fmt)
    root = data_cfg.root
    if data_cfg.split in ("official", ""):  # "" is a DataConfig not yet validated: the default, official
        return load_train_val(root)
    if data_cfg.split not in FOLD_SPLITS:
        raise UserError(f"config key data.split: got {data_cfg.split!r}, expected official or fold1..fold{NUM_FOLDS}")
    train, val = load_train_val(root)
    videos = train + val
    if data_cfg.folds_file:
        folds, source = read_folds(data_cfg.folds_file), data_cfg.folds_file
    else:
        folds = compute_folds({v.name: len(v) for v in videos}, NUM_FOLDS)
        source = f"{root} (computed folds)"
    return split_by_folds(videos, folds, FOLD_SPLITS.index(data_cfg.split) + 1, source)
