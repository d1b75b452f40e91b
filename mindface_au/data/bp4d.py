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

Intensity (FERA 2015 subset: AU6, AU10, AU12, AU14, AU17, `BP4D_INTENSITY_AUS`), read when `intensity_au_names`
asks for it (model.intensity_au_names)::

    <root>/AUCoding/AU_INT/AU06/F001_T1_AU06.csv    lines "frame,intensity", 0-5, 9 = not coded

This layout (`INTENSITY_DIR`, `INTENSITY_AU_DIR`, `INTENSITY_FILE`) follows the data set's description and is
unchecked against a real BP4D tree: if yours differs, change these constants. A first line that is not numeric is
taken as a header. Each occurrence row gets the intensity of its frame number (`Video.intensity`, float32, in
`intensity_au_names` order); a frame the intensity file does not list, or lists as 9, is -1 (not coded, left out of
the intensity loss and metrics, as 9 is in occurrence). Intensity rows of frames without an occurrence row are not
used. A missing intensity file, a value other than 0-5 or 9, or a malformed line is an error naming the file.
"""

import csv
import logging
import os
from typing import List, Optional, Sequence

import numpy as np

from mindface_au.au_sets import BP4D_AUS, BP4D_INTENSITY_AUS, au_number
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
# The intensity layout (unchecked against a real BP4D tree, see the module docstring): one file per AU and
# subject-task, e.g. AUCoding/AU_INT/AU06/F001_T1_AU06.csv; {number} is the AU's FACS number.
INTENSITY_DIR = os.path.join("AUCoding", "AU_INT")
INTENSITY_AU_DIR = "AU{number:02d}"
INTENSITY_FILE = "{name}_AU{number:02d}.csv"

__all__ = [
    "LABEL_DIR",
    "PARTS",
    "INTENSITY_DIR",
    "INTENSITY_AU_DIR",
    "INTENSITY_FILE",
    "load_bp4d",
    "subject_of",
    "image_path",
    "intensity_path",
]


def subject_of(name: str) -> str:
    """Subject of a subject-task name: "F001_T1" -> "F001"."""
    return name.split("_", 1)[0]


def image_path(image_root: str, subject: str, task: str, frame: int) -> str:
    return os.path.join(image_root, subject, task, f"{int(frame)}{IMAGE_EXT}")


def intensity_path(root: str, name: str, au: str) -> str:
    """The intensity file of AU `au` for subject-task `name` (F001_T1) under `root` (see INTENSITY_FILE)."""
    number = au_number(au)
    return os.path.join(
        root, INTENSITY_DIR, INTENSITY_AU_DIR.format(number=number), INTENSITY_FILE.format(name=name, number=number)
    )


def _read_intensity(path: str):
    """(frame numbers, values with 9 as -1, line numbers) of one intensity file; see the module docstring."""
    if not os.path.isfile(path):
        raise UserError(
            f"{path}: BP4D intensity file not found; expected lines frame,intensity (0-5, 9 = not coded) "
            "(layout unchecked against real BP4D: docs/datasets.md)"
        )
    frames, values, lines = [], [], []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        for line_no, row in enumerate(csv.reader(handle), start=1):
            cells = [c.strip() for c in row]
            if not any(cells):
                continue
            if line_no == 1 and not cells[0].lstrip("-").isdigit():
                continue  # a header
            try:
                frame, value = int(cells[0]), int(cells[1])
            except (ValueError, IndexError):
                raise UserError(f"{path}:{line_no}: expected frame,intensity, got {','.join(row)[:60]!r}") from None
            if len(cells) != 2 or not (0 <= value <= 5 or value == NOT_CODED):
                raise UserError(
                    f"{path}:{line_no}: expected frame,intensity with intensity 0-5 or 9 (not coded), "
                    f"got {','.join(row)[:60]!r}"
                )
            frames.append(frame)
            values.append(-1 if value == NOT_CODED else value)
            lines.append(line_no)
    return np.asarray(frames, np.int64), np.asarray(values, np.float32), lines


def _intensity(root: str, name: str, frames: np.ndarray, au_names: Sequence[str]) -> np.ndarray:
    """(T, K) float32 intensities of the occurrence rows' `frames` (-1 where not coded or not listed)."""
    out = np.full((len(frames), len(au_names)), -1, np.float32)
    for j, au in enumerate(au_names):
        if au not in BP4D_INTENSITY_AUS:
            raise UserError(
                f"intensity_au_names: BP4D has no intensity labels for {au}; it has {', '.join(BP4D_INTENSITY_AUS)}"
            )
        path = intensity_path(root, name, au)
        numbers, values, lines = _read_intensity(path)
        first = ~repeated_frames(path, numbers, lines)  # a frame listed twice: its first row, as in occurrence
        by_frame = dict(zip(numbers[first].tolist(), values[first].tolist()))
        out[:, j] = [by_frame.get(int(f), -1.0) for f in frames]
    return out


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
    root: str,
    image_root: str = "",
    subjects: Optional[Sequence[str]] = None,
    au_names: Sequence[str] = BP4D_AUS,
    intensity_au_names: Sequence[str] = (),
) -> List[Video]:
    """One Video per subject-task of `subjects` (all when None), sorted by name; see the module docstring.

    `intensity_au_names`: the AUs whose 0-5 values fill `Video.intensity` (() = none, `Video.intensity` None)."""
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
        intensity = _intensity(root, stem, frames[keep], intensity_au_names) if intensity_au_names else None
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
                intensity=intensity,
                intensity_au_names=tuple(intensity_au_names),
            )
        )
    return videos
