"""BP4D reader: occurrence labels per subject-task and the face crops named by frame number.

Layout (as ME-GraphAU's `tool/BP4D_image_label_process.py` reads it)::

    <root>/AUCoding/AU_OCC/F001_T1.csv          header: 0 (frame number), then AU numbers; one row per frame
    <image_root>/F001/T1/2440.jpg               the crop of frame 2440 (frame number not zero-padded)

Values are 0/1; 9 means "not coded": that AU is -1 in the returned labels (left out of the loss and its F1), the
frame's other AUs still count (ME-GraphAU keeps the 9s; docs/datasets.md says why we do not). A row with no coded
AU of the set is an invalid row; a row whose image is missing is skipped; both are counted. A row whose frame
number an earlier row of the file already has is skipped with a warning naming the file and frame (each image
is labelled once, by its first row) and counted (`duplicate_frames`), as DISFA's shifted frame numbers are.
Columns of AUs outside the set are ignored. One `Video` per subject-task, frames in file order (`frame_ids` are
1-based row positions, so smoothing runs over consecutive rows even where frame numbers have gaps).
"""

import csv
import logging
import os
from typing import List, Optional, Sequence

import numpy as np

from mindface_au.au_sets import BP4D_AUS, au_number
from mindface_au.data.video import Video
from mindface_au.errors import UserError

logger = logging.getLogger(__name__)

LABEL_DIR = os.path.join("AUCoding", "AU_OCC")
IMAGE_EXT = ".jpg"
# ME-GraphAU's three subject parts; fold k tests on part 4 - k and trains on the other two
PARTS = (
    "F001 M007 F018 F008 F002 M004 F010 F009 M012 M001 F016 M014 F023 M008".split(),
    "M011 F003 M010 M002 F005 F022 M018 M017 F013 M016 F020 F011 M013 M005".split(),
    "F007 F015 F006 F019 M006 M009 F012 M003 F004 F021 F017 M015 F014".split(),
)
NOT_CODED = 9

__all__ = ["LABEL_DIR", "PARTS", "load_bp4d", "subject_of", "image_path"]


def subject_of(name: str) -> str:
    """Subject of a subject-task name: "F001_T1" -> "F001"."""
    return name.split("_", 1)[0]


def image_path(image_root: str, subject: str, task: str, frame: int) -> str:
    return os.path.join(image_root, subject, task, f"{int(frame)}{IMAGE_EXT}")


def _read_csv(path: str, au_names: Sequence[str]):
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise UserError(f"{path}:1: empty BP4D label file; expected a header 0,1,2,... (frame, AU numbers)")
    header = [h.strip() for h in rows[0]]
    if not header or header[0] != "0":
        raise UserError(f"{path}:1: first header column {header[:1]}: expected 0 (the frame number column)")
    columns = []
    for au in au_names:
        key = str(au_number(au))
        if key not in header:
            raise UserError(f"{path}:1: no column for {au} (header {key!r}); the header holds {','.join(header)}")
        if header.count(key) > 1:
            raise UserError(f"{path}:1: {header.count(key)} columns for {au} (header {key!r}); expected one")
        columns.append(header.index(key))
    frames, labels, lines = [], [], []
    for line_no, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise UserError(f"{path}:{line_no}: {len(row)} columns, the header has {len(header)}")
        try:
            frames.append(int(row[0]))
            values = [int(row[c]) for c in columns]
        except ValueError:
            raise UserError(f"{path}:{line_no}: expected integers, got {','.join(row)[:60]!r}") from None
        bad = [v for v in values if v not in (0, 1, NOT_CODED)]
        if bad:
            raise UserError(f"{path}:{line_no}: AU value {bad[0]}; expected 0, 1 or 9 (not coded)")
        labels.append(values)
        lines.append(line_no)
    labels = np.asarray(labels, np.int8).reshape(-1, len(au_names))
    labels[labels == NOT_CODED] = -1
    return np.asarray(frames, np.int64), labels, lines


def repeated_frames(path: str, frames: np.ndarray, lines: Sequence[int]) -> np.ndarray:
    """Mask of rows whose frame number an earlier row already has; warns once per file, naming the first.

    A frame number names the frame's image, so a repeat would label one image twice: the first row is kept, the
    later ones are skipped and counted (`Video.duplicate_frames`). Shared by the BP4D and DISFA readers."""
    _, first = np.unique(frames, return_index=True)
    repeat = np.ones(len(frames), bool)
    repeat[first] = False
    if repeat.any():
        i = int(np.flatnonzero(repeat)[0])
        earlier = lines[int(np.flatnonzero(frames == frames[i])[0])]
        logger.warning(
            "%s:%d: frame %d is listed again (first on line %d); %d row(s) repeat an earlier frame number and are "
            "skipped, the first row of each frame is used",
            path,
            lines[i],
            int(frames[i]),
            earlier,
            int(repeat.sum()),
        )
    return repeat


def load_bp4d(
    root: str, image_root: str = "", subjects: Optional[Sequence[str]] = None, au_names: Sequence[str] = BP4D_AUS
) -> List[Video]:
    """One Video per subject-task of `subjects` (all when None), sorted by name; see the module docstring."""
    folder = os.path.join(root, LABEL_DIR)
    if not os.path.isdir(folder):
        raise UserError(f"{root}: not a BP4D tree; expected {LABEL_DIR}/<subject>_<task>.csv (e.g. F001_T1.csv)")
    image_root = image_root or root
    files = sorted(f for f in os.listdir(folder) if f.endswith(".csv"))
    if not files:
        raise UserError(f"{folder}: no <subject>_<task>.csv label files")
    wanted = None if subjects is None else set(subjects)
    videos = []
    for name in files:
        stem = name[: -len(".csv")]
        if "_" not in stem:
            raise UserError(f"{os.path.join(folder, name)}: expected a <subject>_<task>.csv name, e.g. F001_T1.csv")
        subject, task = stem.split("_", 1)
        if wanted is not None and subject not in wanted:
            continue
        path = os.path.join(folder, name)
        frames, labels, lines = _read_csv(path, au_names)
        repeat = repeated_frames(path, frames, lines)
        try:
            present = set(os.listdir(os.path.join(image_root, subject, task)))
        except OSError:
            present = set()
        coded = (labels >= 0).any(axis=1)
        has_image = np.array([f"{f}{IMAGE_EXT}" in present for f in frames], bool)
        keep = coded & has_image & ~repeat
        positions = np.flatnonzero(keep) + 1
        videos.append(
            Video(
                name=stem,
                frame_ids=positions.astype(np.int64),
                labels=labels[keep],
                image_paths=[image_path(image_root, subject, task, f) for f in frames[keep]],
                num_frames=len(frames),
                invalid_rows=int((~coded & ~repeat).sum()),
                missing_images=int((coded & ~has_image & ~repeat).sum()),
                duplicate_frames=int(repeat.sum()),
            )
        )
    return videos
