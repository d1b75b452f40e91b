"""DISFA reader: one label file per subject and AU, intensities 0-5: occurrence labels and intensity labels.

Layout (as ME-GraphAU's `tool/DISFA_image_label_process.py` reads it)::

    <root>/ActionUnit_Labels/SN001/SN001_au1.txt     lines "frame,intensity", one per video frame
    <image_root>/SN001/0.png                         the crop of line t = 0 (0-based), ...

DISFA labels 12 AUs 0-5 (`DISFA_INTENSITY_AUS`: AU1 2 4 5 6 9 12 15 17 20 25 26). Occurrence labels are read for
`au_names` (the 8 of `DISFA_AUS` by default, or all 12): an AU occurs when its intensity is at least
`intensity_threshold` (data.intensity_threshold, 2 as usual). With `intensity_au_names` (model.intensity_au_names,
any of the 12) the 0-5 values themselves are returned too (`Video.intensity`, float32, in that order; DISFA codes
every frame, so none is -1). Only the files of the AUs asked for are opened.

The image of line t is `{SN}/{t}.png` with `image_index="line"` (ME-GraphAU: the frame number in the file is not
used) or `{SN}/{frame}.png` with `image_index="frame"`. Rows whose frame
number is not t + 1 are counted (`Video.frame_number_mismatch`) and logged, so a shifted tree is not silent.
With `image_index="frame"` a frame number that repeats an earlier row's would label one image twice: the later
rows are skipped with a warning and counted (`Video.duplicate_frames`), as in the BP4D reader.
Rows whose image is missing are skipped and counted. The AU files of a subject must list the same frame numbers
in the same order (else a UserError naming the first line that differs): row t of each is one frame. One `Video`
per subject, rows in file order.
"""

import logging
import os
from typing import List, Optional, Sequence

import numpy as np

from mindface_au.au_sets import DISFA_AUS, DISFA_INTENSITY_AUS, au_number
from mindface_au.data.bp4d import repeated_frames
from mindface_au.data.video import Video
from mindface_au.errors import UserError

logger = logging.getLogger(__name__)

LABEL_DIR = "ActionUnit_Labels"
IMAGE_EXT = ".png"
PARTS = (
    "SN002 SN010 SN001 SN026 SN027 SN032 SN030 SN009 SN016".split(),
    "SN013 SN018 SN011 SN028 SN012 SN006 SN031 SN021 SN024".split(),
    "SN003 SN029 SN023 SN025 SN008 SN005 SN007 SN017 SN004".split(),
)

__all__ = ["LABEL_DIR", "PARTS", "load_disfa", "label_path"]


def label_path(root: str, subject: str, au: str) -> str:
    return os.path.join(root, LABEL_DIR, subject, f"{subject}_au{au_number(au)}.txt")


def _read_au(path: str):
    if not os.path.isfile(path):
        raise UserError(f"{path}: DISFA label file not found; expected lines frame,intensity")
    frames, values, lines = [], [], []
    with open(path, encoding="utf-8-sig") as handle:
        for line_no, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            parts = text.split(",")
            try:
                frame, value = int(parts[0]), int(parts[1])
            except (ValueError, IndexError):
                raise UserError(f"{path}:{line_no}: expected frame,intensity, got {text[:60]!r}") from None
            if len(parts) != 2 or not 0 <= value <= 5:
                raise UserError(f"{path}:{line_no}: expected frame,intensity with intensity 0-5, got {text[:60]!r}")
            frames.append(frame)
            values.append(value)
            lines.append(line_no)
    return np.asarray(frames, np.int64), np.asarray(values, np.int64), lines


def load_disfa(
    root: str,
    image_root: str = "",
    subjects: Optional[Sequence[str]] = None,
    au_names: Sequence[str] = DISFA_AUS,
    intensity_threshold: int = 2,
    image_index: str = "line",
    intensity_au_names: Sequence[str] = (),
) -> List[Video]:
    """One Video per subject of `subjects` (all when None), sorted by name; see the module docstring.

    `intensity_au_names`: the AUs whose 0-5 values fill `Video.intensity` (() = none, `Video.intensity` None)."""
    if image_index not in ("line", "frame"):
        raise UserError(f"config key data.disfa_image_index: got {image_index!r}, expected line or frame")
    for key, names in (("au_names", au_names), ("intensity_au_names", intensity_au_names)):
        outside = [au for au in names if au not in DISFA_INTENSITY_AUS]
        if outside:
            raise UserError(
                f"{key}: DISFA has no label file for {outside[0]}; it labels {', '.join(DISFA_INTENSITY_AUS)}"
            )
    wanted = list(dict.fromkeys(list(au_names) + list(intensity_au_names)))  # each file read once
    folder = os.path.join(root, LABEL_DIR)
    if not os.path.isdir(folder):
        raise UserError(f"{root}: not a DISFA tree; expected {LABEL_DIR}/<SN>/<SN>_au<N>.txt (e.g. SN001_au1.txt)")
    image_root = image_root or root
    names = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    if not names:
        raise UserError(f"{folder}: no subject folders <SN>/ with label files")
    if subjects is not None:
        names = [n for n in names if n in set(subjects)]
    videos = []
    for subject in names:
        values_of, frames = {}, None
        for au in wanted:
            path = label_path(root, subject, au)
            au_frames, values, au_lines = _read_au(path)
            if frames is None:
                frames, first, lines = au_frames, path, au_lines
            elif len(au_frames) != len(frames):
                raise UserError(f"{path}: {len(au_frames)} lines, {os.path.basename(first)} has {len(frames)}")
            elif (au_frames != frames).any():  # line t of every AU file must describe the same frame
                i = int(np.flatnonzero(au_frames != frames)[0])
                raise UserError(
                    f"{path}:{au_lines[i]}: frame {int(au_frames[i])}, but line {lines[i]} of "
                    f"{os.path.basename(first)} is frame {int(frames[i])}; a subject's AU files must list the same "
                    "frames in the same order"
                )
            values_of[au] = values
        labels = np.stack([values_of[au] >= int(intensity_threshold) for au in au_names], axis=1).astype(np.int8)
        intensity = None
        if intensity_au_names:
            intensity = np.stack([values_of[au] for au in intensity_au_names], axis=1).astype(np.float32)
        mismatch = int((frames != np.arange(1, len(frames) + 1)).sum())
        if mismatch:
            logger.warning(
                "%s: %d of %d rows have a frame number other than line index + 1; images are taken by %s "
                "(data.disfa_image_index)",
                first,
                mismatch,
                len(frames),
                "line index" if image_index == "line" else "frame number",
            )
        numbers = np.arange(len(frames)) if image_index == "line" else frames
        # by frame number, a repeated number would label one image twice: as BP4D, the first row is used
        repeat = np.zeros(len(frames), bool) if image_index == "line" else repeated_frames(first, frames, lines)
        try:
            present = set(os.listdir(os.path.join(image_root, subject)))
        except OSError:
            present = set()
        has_image = np.array([f"{n}{IMAGE_EXT}" in present for n in numbers], bool)
        keep = has_image & ~repeat
        videos.append(
            Video(
                name=subject,
                frame_ids=(np.flatnonzero(keep) + 1).astype(np.int64),
                labels=labels[keep],
                image_paths=[os.path.join(image_root, subject, f"{n}{IMAGE_EXT}") for n in numbers[keep]],
                num_frames=len(frames),
                missing_images=int((~has_image & ~repeat).sum()),
                frame_number_mismatch=mismatch,
                duplicate_frames=int(repeat.sum()),
                intensity=intensity[keep] if intensity is not None else None,
                intensity_au_names=tuple(intensity_au_names),
            )
        )
    return videos
