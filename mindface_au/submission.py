"""ABAW AU challenge files: write one prediction txt per video, read annotation/prediction txt, score a folder.

Format (both annotations and predictions): the header line "AU1,AU2,...,AU26", then one comma-separated row
of 12 values per frame. Annotation rows may hold -1 (unlabelled, ignored when scoring); prediction rows are 0/1.
"""

import os
from typing import Dict, List, Optional

import numpy as np

from mindface_au.config import AU_NAMES
from mindface_au.errors import UserError
from mindface_au.metrics import F1Accumulator, per_au_dict
from mindface_au.utils.io import atomic_write

__all__ = ["HEADER", "write_prediction", "read_au_file", "score_folders"]

HEADER = ",".join(AU_NAMES)


def write_prediction(path: str, labels: np.ndarray) -> None:
    """Write a (T, 12) 0/1 array as a challenge txt (header + T rows), atomically."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[1] != len(AU_NAMES):
        raise ValueError(f"{path}: expected a (T, {len(AU_NAMES)}) label array, got {labels.shape}")
    rows = "\n".join(",".join(str(int(v)) for v in row) for row in labels.astype(np.int64))
    with atomic_write(path) as handle:
        handle.write(HEADER + "\n" + rows + ("\n" if len(labels) else ""))


def read_au_file(path: str, what: str = "annotation", allowed=(-1, 0, 1)) -> np.ndarray:
    """Read a challenge-format txt into an int8 (T, 12) array; errors name the file, line and what was expected."""
    name = os.path.splitext(os.path.basename(path))[0]
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise UserError(f"video {name}: cannot read {what} file {path} ({exc.strerror})") from exc
    header = lines[0].strip().replace(" ", "") if lines else ""
    if header != HEADER:
        raise UserError(f"video {name}: {what} file {path} has header {header[:80]!r}, expected {HEADER!r}")
    rows: List[List[int]] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split(",")
        try:
            values = [int(float(p)) for p in parts]
        except ValueError:
            values = []
        if len(values) != len(AU_NAMES) or any(v not in allowed for v in values):
            raise UserError(
                f"video {name}: {what} file {path} line {lineno}: {line.strip()[:60]!r}, "
                f"expected {len(AU_NAMES)} comma-separated values in {{{', '.join(map(str, allowed))}}}"
            )
        rows.append(values)
    return np.asarray(rows, dtype=np.int8).reshape(-1, len(AU_NAMES))


def score_folders(pred_dir: str, gt_dir: str, videos: Optional[List[str]] = None) -> Dict:
    """Score prediction txt files against annotation txt files the way the challenge does.

    Every annotation video (or those in `videos`) needs a prediction with the same header and row count;
    rows labelled -1 are ignored; F1 is accumulated over all frames of all videos. Returns
    {"mean_f1", "per_au": {AU: F1}, "videos", "frames"}.
    """
    for folder, what in ((pred_dir, "prediction"), (gt_dir, "annotation")):
        if not os.path.isdir(folder):
            raise UserError(f"{folder}: {what} folder not found")
    if videos is None:
        videos = sorted(os.path.splitext(f)[0] for f in os.listdir(gt_dir) if f.endswith(".txt"))
    if not videos:
        raise UserError(f"{gt_dir}: no annotation .txt files")
    acc = F1Accumulator()
    frames = 0
    for name in videos:
        pred_path = os.path.join(pred_dir, name + ".txt")
        if not os.path.isfile(pred_path):
            raise UserError(f"video {name}: prediction file missing ({pred_path})")
        truth = read_au_file(os.path.join(gt_dir, name + ".txt"), "annotation")
        pred = read_au_file(pred_path, "prediction", allowed=(0, 1))
        if pred.shape[0] != truth.shape[0]:
            raise UserError(
                f"video {name}: prediction has {pred.shape[0]} rows, annotation has {truth.shape[0]} ({pred_path})"
            )
        acc.update(truth, pred)
        frames += int(np.sum(np.all(truth >= 0, axis=1)))
    per_au = acc.per_au()
    return {"mean_f1": float(per_au.mean()), "per_au": per_au_dict(per_au), "videos": len(videos), "frames": frames}
