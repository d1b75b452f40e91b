"""ABAW AU challenge files: write one prediction txt per video and score a folder of them against annotations.

The txt format (header "AU1,AU2,...,AU26", one row of 12 values per frame) and its reader and writer live in
`mindface_au.data.au_txt`; annotation rows may hold -1 (unlabelled, ignored when scoring), prediction rows 0/1.
"""

import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from mindface_au.data.au_txt import ANNOTATION_VALUES, HEADER, PREDICTION_VALUES, read_au_file, write_au_file
from mindface_au.errors import UserError
from mindface_au.metrics import F1Accumulator, mean_of_coded, per_au_dict

__all__ = ["HEADER", "write_prediction", "read_au_file", "score_folders"]  # HEADER, read_au_file: from au_txt


def write_prediction(path: str, labels: np.ndarray, au_names: Optional[Sequence[str]] = None) -> None:
    """Write a (T, C) 0/1 array as a challenge txt (header `au_names`, default the ABAW 12; T rows), atomically."""
    write_au_file(path, labels, allowed=PREDICTION_VALUES, au_names=au_names)


def _read(name: str, path: str, what: str, allowed, au_names=None) -> np.ndarray:
    """`read_au_file` with the video named first: the scorer's errors say which video is wrong."""
    try:
        return read_au_file(path, what, allowed, au_names)
    except UserError as exc:
        raise UserError(f"video {name}: {exc}") from exc


def score_folders(
    pred_dir: str, gt_dir: str, videos: Optional[List[str]] = None, au_names: Optional[Sequence[str]] = None
) -> Dict:
    """Score prediction txt files against annotation txt files the way the challenge does.

    Every annotation video (or those in `videos`) needs a prediction with the same header and row count;
    rows labelled -1 are ignored; F1 is accumulated over all frames of all videos. Returns
    {"mean_f1", "per_au": {AU: F1}, "coded_frames": {AU: n}, "mean_aus", "videos", "frames"}: an AU with no coded
    frame has F1 None and is left out of "mean_f1" (None if no AU has one), which covers "mean_aus" AUs.
    `au_names`: the header both must have (default ABAW).
    """
    for folder, what in ((pred_dir, "prediction"), (gt_dir, "annotation")):
        if not os.path.isdir(folder):
            raise UserError(f"{folder}: {what} folder not found")
    if videos is None:
        videos = sorted(os.path.splitext(f)[0] for f in os.listdir(gt_dir) if f.endswith(".txt"))
    if not videos:
        raise UserError(f"{gt_dir}: no annotation .txt files")
    names = tuple(au_names) if au_names else None
    acc = F1Accumulator(len(names) if names else 12)
    frames = 0
    for name in videos:
        pred_path = os.path.join(pred_dir, name + ".txt")
        if not os.path.isfile(pred_path):
            raise UserError(f"video {name}: prediction file missing ({pred_path})")
        truth = _read(name, os.path.join(gt_dir, name + ".txt"), "annotation", ANNOTATION_VALUES, names)
        pred = _read(name, pred_path, "prediction", PREDICTION_VALUES, names)
        if pred.shape[0] != truth.shape[0]:
            raise UserError(
                f"video {name}: prediction has {pred.shape[0]} rows, annotation has {truth.shape[0]} ({pred_path})"
            )
        acc.update(truth, pred)
        frames += int(np.sum(np.all(truth >= 0, axis=1)))
    per_au = acc.per_au()
    per_au_names = names or HEADER.split(",")
    mean, covered = mean_of_coded(per_au)
    return {
        "mean_f1": mean,
        "per_au": per_au_dict(per_au, per_au_names),
        "coded_frames": {name: int(n) for name, n in zip(per_au_names, acc.coded())},
        "mean_aus": covered,
        "videos": len(videos),
        "frames": frames,
    }
