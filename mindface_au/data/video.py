"""`Video`: the record every data reader returns (Aff-Wild2, BP4D, DISFA, list files), one per video or
subject-task: its usable frames, their labels and image paths, and what was skipped while reading."""

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

__all__ = ["Video"]


@dataclass
class Video:
    """One video of a split.

    frame_ids: 1-based frame numbers of the usable frames (labelled with an image; for test: every frame).
    labels: int8 (T, 12) 0/1 labels of those frames, None for the test split.
    image_paths: image of each frame; None for a test frame without an image.
    num_frames: rows of the annotation file (test: length of the frame list).
    invalid_rows / missing_images: rows skipped for -1 / labelled rows whose image is missing.
    Every reader (mindface_au.data.registry) returns this record: -1 in `labels` marks an AU not coded in that
    frame (BP4D's 9, a list file's -1 or 9), left out of the losses and of that AU's F1.
    intensity: float32 (T, K) FACS 0-5 intensities of the data set's intensity AUs (`intensity_au_names`, in that
    order), -1 where not coded; None when the data has no intensity labels (Aff-Wild2) or none were asked for.
    frame_number_mismatch: DISFA rows whose frame number is not the 0-based line index + 1.
    duplicate_frames: rows skipped because an earlier row of the file has the same frame number (BP4D; DISFA when
    images are taken by frame number): each image is labelled once, by its first row.
    """

    name: str
    frame_ids: np.ndarray
    labels: Optional[np.ndarray]
    image_paths: List[Optional[str]]
    num_frames: int
    invalid_rows: int = 0
    missing_images: int = 0
    frame_number_mismatch: int = 0
    duplicate_frames: int = 0
    intensity: Optional[np.ndarray] = None
    intensity_au_names: Tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.frame_ids)
