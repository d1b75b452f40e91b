"""`DetectOptions`: the options that decide a detect CSV's rows, in one record checked when it is made.

`detect_one`, `iter_detections`, `collection.detect_videos` and the CLI all take this record (or its fields as
keyword arguments); `settings` gives what a sidecar and a partial file's settings record (what a resume or a re-run
compares). `threshold` None means the threshold the model file was validated with: `resolve` settles it once the
model file is read.
"""

import dataclasses
import math
import os
import sys
from typing import Optional, Tuple

from mindface_au.errors import UserError, param, render
from mindface_au.inference.detect.tracking import KEYFRAME_EVERY
from mindface_au.inference.faces import DETECT_SIZE

__all__ = ["DetectOptions", "DEFAULT_THRESHOLD"]

DEFAULT_THRESHOLD = 0.5  # a model file that does not say which threshold it was validated with


@dataclasses.dataclass(frozen=True)
class DetectOptions:
    """How detect finds faces and writes rows (the CLI flag of each in brackets where the name differs).

    aligned: inputs are aligned face crops (no face detection); detector: mtcnn or haar; all_faces: every face
    (default the largest); prob_k: smoothing window per face track (0: none); threshold: of the 0/1 columns (None:
    the model file's); min_face_size: pixels; max_gap: processed frames a face may vanish keeping its id; every:
    process every N-th frame; detect_size: longest side faces are searched at (0: full frame); track: follow faces
    between keyframes (--no-track); keyframe_every: processed frames between full detections; start_time, end_time:
    video seconds (--start, --end; None: the end).
    """

    aligned: bool = False
    detector: str = "mtcnn"
    all_faces: bool = False
    prob_k: int = 0
    threshold: Optional[float] = None
    min_face_size: int = 20
    max_gap: int = 30
    every: int = 1
    detect_size: int = DETECT_SIZE
    track: bool = True
    keyframe_every: int = KEYFRAME_EVERY
    start_time: float = 0.0
    end_time: Optional[float] = None
    resolved: bool = dataclasses.field(default=False, compare=False, repr=False)  # threshold settled by `resolve`

    def __post_init__(self) -> None:
        """Refuse bad values with one line naming the option (`errors.param`: the CLI shows its flag)."""
        if self.prob_k < 0:
            raise UserError(f"{param('prob_k')}: got {self.prob_k}, expected an integer >= 0")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise UserError(f"{param('threshold')}: got {self.threshold}, expected 0 <= t <= 1")
        if self.detector not in ("mtcnn", "haar"):
            raise UserError(f"{param('detector')}: got {self.detector!r}, expected mtcnn or haar")
        if self.min_face_size < 12:
            raise UserError(f"{param('min_face_size')}: got {self.min_face_size}, expected at least 12 pixels")
        if self.max_gap < 0:
            raise UserError(f"{param('max_gap')}: got {self.max_gap}, expected an integer >= 0")
        if self.every < 1:
            raise UserError(f"{param('every')}: got {self.every}, expected a positive integer (1 = every frame)")
        if self.detect_size < 0 or 0 < self.detect_size < 32:
            raise UserError(
                f"{param('detect_size')}: got {self.detect_size}, expected 0 (full frame) or at least 32 pixels"
            )
        if self.keyframe_every < 1:
            raise UserError(f"{param('keyframe_every')}: got {self.keyframe_every}, expected a positive integer")
        start, end = self.start_time, self.end_time
        if not math.isfinite(start) or start < 0:
            raise UserError(f"{param('start_time')}: got {start}, expected a finite number of seconds >= 0")
        if end is not None and not math.isfinite(end):
            raise UserError(
                f"{param('end_time')}: got {end}, expected a finite number of "
                f"seconds (omit {param('end_time')} for the end)"
            )
        if end is not None and end < start:
            raise UserError(f"{param('end_time')}: got {end}, expected seconds >= {param('start_time')} ({start})")

    @classmethod
    def split(cls, values: dict, base: Optional["DetectOptions"] = None) -> Tuple["DetectOptions", dict]:
        """(the options named in `values`, over `base` or the defaults; the other entries of `values`)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"resolved"}
        mine = {k: v for k, v in values.items() if k in names}
        rest = {k: v for k, v in values.items() if k not in names}
        if base is None:
            return cls(**mine), rest
        return (dataclasses.replace(base, **mine) if mine else base), rest

    def resolve(self, file_threshold: float) -> "DetectOptions":
        """These options with the threshold settled against the model file's (`file_threshold`): the file's when
        none was given; a given one wins and, when it differs from the file's, a line on stderr says so."""
        if self.resolved:
            return self
        if self.threshold is None:
            return dataclasses.replace(self, threshold=float(file_threshold), resolved=True)
        if float(self.threshold) != float(file_threshold):
            print(
                render(
                    f"note: {param('threshold')} {self.threshold} (the model file was validated with {file_threshold})"
                ),
                file=sys.stderr,
            )
        return dataclasses.replace(self, resolved=True)

    def settings(
        self,
        input_path: str,
        model_path: str,
        input_file: Optional[dict] = None,
        model_sha256: Optional[str] = None,
    ) -> dict:
        """The settings that decide a CSV's rows: what must not change between an interrupted run and its resume,
        and what a finished CSV's sidecar must hold for a re-run to keep it (with `prob_k`). `input_file` (see
        `csvfile.input_identity`) and `model_sha256` identify the inputs behind the paths."""
        aligned = bool(self.aligned)
        return {
            "input": os.path.abspath(input_path),
            "model": os.path.abspath(model_path),
            "aligned": aligned,
            "detector": None if aligned else self.detector,
            "all_faces": bool(self.all_faces),
            "threshold": None if self.threshold is None else float(self.threshold),
            "min_face_size": int(self.min_face_size),
            "max_gap": int(self.max_gap),
            "every": int(self.every),
            "detect_size": None if aligned else int(self.detect_size),
            "track": None if aligned else bool(self.track) and self.detector == "mtcnn",
            "keyframe_every": int(self.keyframe_every),
            "start_time": float(self.start_time),
            "end_time": None if self.end_time is None else float(self.end_time),
            "input_file": input_file,
            "model_sha256": model_sha256,
        }
