"""Aff-Wild2 / ABAW AU-detection reader: annotation files, image folders and the test-set frame lists.

Layout under a dataset root (the real Aff-Wild2 release and SynthAU share it)::

    AU_Detection_Challenge/Train_Set/<video>.txt       header + one row of 12 values (-1, 0, 1) per frame
    AU_Detection_Challenge/Validation_Set/<video>.txt
    AU_Detection_Challenge/Test_Set/names.txt          one test video per line: "<video>" or "<video>,<num_frames>"
    cropped_aligned/<video>/00001.jpg                  112x112 aligned face of frame 1, ...

Row j (1-based, after the header) of an annotation labels image ``cropped_aligned/<video>/<j:05d>.jpg``.
Rows containing -1 are unlabelled and skipped; labelled rows whose image is missing (no face found) are skipped
too; both are counted. Images without a row are ignored. Videos with two people are split into
``<name>_left`` / ``<name>_right``. The txt format itself (header, values, errors) is `mindface_au.data.au_txt`.

The challenge gives the test set as a list of video names; the number of frames of each test video comes from
the video itself. ``names.txt`` holds that list, with the frame count after a comma; when the count is left out
it is taken as the highest image number found in ``cropped_aligned/<video>/``. Predictions need one row for
every frame, so a test `Video` lists all frames, with ``None`` as the image path of frames that have no face.
"""

import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mindface_au.au_sets import ABAW_AUS
from mindface_au.data.au_txt import read_au_file
from mindface_au.data.video import Video  # also importable from here, as before
from mindface_au.errors import UserError

ANNOTATION_DIR = "AU_Detection_Challenge"
IMAGE_DIR = "cropped_aligned"
SPLIT_DIRS = {"train": "Train_Set", "val": "Validation_Set", "test": "Test_Set"}
TEST_LIST = "names.txt"
IMAGE_EXT = ".jpg"

__all__ = [
    "Video",
    "load_split",
    "read_test_list",
    "image_name",
    "split_summary",
    "check_data",
    "is_image_file",
    "image_problems",
    "shared_videos",
    "pair_key",
]


def image_name(frame_id: int) -> str:
    """File name of a frame's aligned crop: 1 -> '00001.jpg'."""
    return f"{int(frame_id):05d}{IMAGE_EXT}"


def pair_key(name: str) -> str:
    """Video name without a `_left` / `_right` suffix: both halves of a two-person video share it."""
    for suffix in ("_left", "_right"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _list_images(folder: str) -> set:
    try:
        return {entry.name for entry in os.scandir(folder) if entry.name.endswith(IMAGE_EXT)}
    except FileNotFoundError:
        return set()
    except NotADirectoryError:
        return set()


def _annotation_dir(root: str, split: str) -> str:
    if split not in SPLIT_DIRS:
        raise UserError(f"split {split!r}: expected one of {', '.join(SPLIT_DIRS)}")
    if not os.path.isdir(root):
        raise UserError(f"{root}: dataset root not found")
    return os.path.join(root, ANNOTATION_DIR, SPLIT_DIRS[split])


def _load_labelled_video(root: str, path: str) -> Video:
    name = os.path.splitext(os.path.basename(path))[0]
    rows = read_au_file(path, "annotation")
    folder = os.path.join(root, IMAGE_DIR, name)
    images = _list_images(folder)
    valid = ~(rows == -1).any(axis=1)
    frame_ids = np.arange(1, len(rows) + 1, dtype=np.int64)
    has_image = np.array([image_name(f) in images for f in frame_ids], dtype=bool)
    keep = valid & has_image
    kept = frame_ids[keep]
    return Video(
        name=name,
        frame_ids=kept,
        labels=rows[keep].astype(np.int8),
        image_paths=[os.path.join(folder, image_name(f)) for f in kept],
        num_frames=len(rows),
        invalid_rows=int((~valid).sum()),
        missing_images=int((valid & ~has_image).sum()),
    )


def read_test_list(root: str) -> List[Tuple[str, int]]:
    """(video name, frame count) of each test video from Test_Set/names.txt (see the module docstring)."""
    path = os.path.join(_annotation_dir(root, "test"), TEST_LIST)
    if not os.path.isfile(path):
        raise UserError(f"{path}: test-set video list not found")
    with open(path, encoding="utf-8-sig") as handle:
        lines = handle.read().replace("\r\n", "\n").split("\n")
    entries: List[Tuple[str, int]] = []
    seen = set()
    for line_no, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = [p.strip() for p in text.split(",")]
        name = parts[0]
        if len(parts) > 2 or not name or os.sep in name or "/" in name or name in (".", ".."):
            raise UserError(f"{path}:{line_no}: expected '<video>' or '<video>,<num_frames>', got {text!r}")
        if name in seen:
            raise UserError(f"{path}:{line_no}: video {name!r} listed twice")
        seen.add(name)
        if len(parts) == 2:
            if not parts[1].isdigit() or int(parts[1]) <= 0:
                raise UserError(f"{path}:{line_no}: frame count {parts[1]!r} is not a positive integer")
            count = int(parts[1])
        else:
            numbers = [
                int(n[: -len(IMAGE_EXT)])
                for n in _list_images(os.path.join(root, IMAGE_DIR, name))
                if n[: -len(IMAGE_EXT)].isdigit()
            ]
            if not numbers:
                raise UserError(f"{path}:{line_no}: no frame count given and no images found for {name!r}")
            count = max(numbers)
        entries.append((name, count))
    return entries


def _load_test_video(root: str, name: str, num_frames: int) -> Video:
    folder = os.path.join(root, IMAGE_DIR, name)
    images = _list_images(folder)
    frame_ids = np.arange(1, num_frames + 1, dtype=np.int64)
    paths: List[Optional[str]] = [
        os.path.join(folder, image_name(f)) if image_name(f) in images else None for f in frame_ids
    ]
    missing = sum(p is None for p in paths)
    return Video(name, frame_ids, None, paths, num_frames, invalid_rows=0, missing_images=missing)


def load_split(root: str, split: str) -> List[Video]:
    """All videos of `split` ("train", "val" or "test") under `root`, sorted by name."""
    folder = _annotation_dir(root, split)
    if not os.path.isdir(folder):
        raise UserError(f"{folder}: annotation folder for split {split!r} not found")
    if split == "test":
        return [_load_test_video(root, name, count) for name, count in read_test_list(root)]
    files = sorted(f for f in os.listdir(folder) if f.endswith(".txt"))
    if not files:
        raise UserError(f"{folder}: no annotation files (*.txt) for split {split!r}")
    return [_load_labelled_video(root, os.path.join(folder, f)) for f in files]


def split_summary(videos: List[Video], au_names: Sequence[str] = ABAW_AUS) -> Dict:
    """Counts of one split: videos, labelled frames, skipped rows, per-AU coded frames and positive rate.

    Each AU's rate is over the frames (with an image) where that AU is coded (label >= 0); an AU with no coded
    frame has no rate (None: `null` in JSON, `n/a` in tables), as every AU of a split without labelled frames."""
    summary: Dict = {
        "videos": len(videos),
        "frames": int(sum(v.num_frames for v in videos)),
        "labeled_frames": int(sum(len(v) for v in videos if v.labels is not None)),
        "invalid_rows": int(sum(v.invalid_rows for v in videos)),
        "missing_images": int(sum(v.missing_images for v in videos)),
    }
    labelled = [v.labels for v in videos if v.labels is not None and len(v)]
    labels = np.concatenate(labelled) if labelled else np.zeros((0, len(au_names)), np.int8)
    coded = (labels >= 0).sum(axis=0)
    positives = (labels == 1).sum(axis=0)
    summary["coded_frames"] = {au: int(c) for au, c in zip(au_names, coded)}
    summary["positive_rate"] = {
        au: round(float(p) / int(c), 6) if c else None for au, p, c in zip(au_names, positives, coded)
    }
    for key in ("frame_number_mismatch", "duplicate_frames"):
        count = int(sum(getattr(v, key) for v in videos))
        if count:
            summary[key] = count
    return summary


def shared_videos(root: str, train: Sequence[Video], val: Sequence[Video]) -> Optional[str]:
    """The problem line when a video name is in both Train_Set and Validation_Set (the official split would
    validate on a video it trains on, the folds would count it twice), else None."""
    shared = sorted({v.name for v in train} & {v.name for v in val})
    if not shared:
        return None
    return (
        f"{root}: video {shared[0]!r} is in both Train_Set and Validation_Set ({len(shared)} such video(s)); "
        "a video belongs to one split"
    )


def is_image_file(path: str) -> bool:
    """True when OpenCV has a decoder for the file's first bytes (a signature check, not a full decode): a text
    file or an empty file named `.jpg` is not an image."""
    import cv2

    return os.path.isfile(path) and bool(cv2.haveImageReader(path))


def image_problems(videos: Sequence[Video]) -> List[str]:
    """One line per image of `videos` that exists but is not an image (`is_image_file`), naming its path."""
    return [
        f"{path}: not an image (no image decoder knows its content)"
        for v in videos
        for path in v.image_paths
        if path is not None and os.path.isfile(path) and not is_image_file(path)
    ]


def check_data(root: str, splits: Tuple[str, ...] = ("train", "val", "test")) -> Dict:
    """Validate every annotation under `root` and summarise each split; train and val must exist.

    The test split is summarised only when Test_Set/names.txt exists. Images that are not images and a video in
    both train and val are listed under "problems" (one line each), present only when there are any.
    """
    report: Dict = {}
    problems: List[str] = []
    loaded: Dict[str, List[Video]] = {}
    for split in splits:
        if split == "test" and not os.path.isfile(os.path.join(_annotation_dir(root, "test"), TEST_LIST)):
            continue
        videos = loaded[split] = load_split(root, split)
        report[split] = split_summary(videos)
        problems += image_problems(videos)
        if split == "test":
            for key in ("positive_rate", "coded_frames", "labeled_frames", "invalid_rows"):
                report[split].pop(key, None)
    shared = shared_videos(root, loaded.get("train", []), loaded.get("val", []))
    problems += [shared] if shared else []
    if problems:
        report["problems"] = problems
    return report
