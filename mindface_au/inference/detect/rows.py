"""The one row schema of `detect`: CSV writer, CSV reader, Python rows (`as_dict`) and the report all use it.

Columns: frame, timestamp, face_id, success, confidence, face_x, face_y, face_w, face_h, the five landmarks
(left_eye_x, left_eye_y, right_eye_x, ..., mouth_right_y), `{AU}_prob` per AU, a 0/1 column per AU, then, for a
model with the intensity head, `{AU}_intensity` per intensity AU (FACS 0-5, 4 decimals), and `file` for image
inputs. The AU names come from the caller (the model's AU sets). `frame` is 1-based; `timestamp` is the
container's frame time in seconds (empty for images). A frame without a face keeps one row with success=0 and
empty face, AU and intensity values; `confidence` is empty for Haar and --aligned, landmarks empty where the
detector has none. The 0/1 labels are the written probabilities thresholded, so a file's labels always equal its
own probability columns thresholded, and the Python rows are the CSV rows parsed. A model without the intensity
head writes exactly the columns it wrote before the head existed.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mindface_au.au_sets import INTENSITY_MAX
from mindface_au.errors import UserError
from mindface_au.inference.faces import Face

__all__ = [
    "META_COLUMNS",
    "LANDMARK_COLUMNS",
    "FILE_COLUMN",
    "RowSchema",
    "DetectionRow",
    "prob_fields",
    "intensity_fields",
    "INTENSITY_SUFFIX",
]

BOX_COLUMNS = ["face_x", "face_y", "face_w", "face_h"]
META_COLUMNS = ["frame", "timestamp", "face_id", "success", "confidence"] + BOX_COLUMNS
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
LANDMARK_COLUMNS = [f"{name}_{axis}" for name in LANDMARK_NAMES for axis in ("x", "y")]
FILE_COLUMN = "file"
INTENSITY_SUFFIX = "_intensity"  # `{AU}_intensity`: the intensity head's 0-5 value
_INT_COLUMNS = {"frame", "face_id", "success"}


def prob_fields(probs, threshold: float) -> Tuple[List[str], List[str]]:
    """CSV fields of probabilities (6 decimals) and their 0/1 labels, thresholded as written, so that a file's
    labels always equal its own probability columns thresholded (a value within 5e-7 of the threshold would
    otherwise print as the threshold and carry the other label)."""
    texts = [f"{p:.6f}" for p in probs]
    return texts, [str(int(float(t) >= threshold)) for t in texts]


def intensity_fields(values) -> List[str]:
    """CSV fields of intensities: 4 decimals on the FACS 0-5 scale (a value a hair outside it, as a quantised
    graph may give, is clipped to it)."""
    return [f"{v:.4f}" for v in np.clip(np.asarray(values, dtype=np.float64), 0.0, INTENSITY_MAX)]


@dataclass
class DetectionRow:
    """One output row: a face in a frame (face given) or a frame without a face (face None)."""

    frame: int
    timestamp: Optional[float]
    face_id: Optional[int] = None
    face: Optional[Face] = None
    probs: Optional[np.ndarray] = None
    intensity: Optional[np.ndarray] = None  # the intensity head's values (K,), None for a model without it
    name: Optional[str] = None
    slot: Optional[int] = None  # index into the pending batch while waiting for the network
    schema: Optional["RowSchema"] = None  # set by iter_detections; used by fields() / as_dict()

    def fields(self, threshold: float, with_file: bool = False) -> List[str]:
        """The CSV fields of this row (the file column only when the schema has one or `with_file`)."""
        return (self.schema or RowSchema(with_file=with_file)).fields(self, threshold)

    def as_dict(self, threshold: float = 0.5) -> dict:
        """The row as {column: value}: the CSV row parsed (numbers; None where the CSV is empty)."""
        schema = self.schema or RowSchema(with_file=self.name is not None)
        return schema.parse(schema.fields(self, threshold))


class RowSchema:
    """Columns of a detect CSV for an AU set (`au_names`), with the intensity columns of `intensity_au_names` (none:
    a model without the intensity head), with or without the trailing `file` column."""

    def __init__(
        self,
        au_names: Optional[Sequence[str]] = None,
        with_file: bool = False,
        intensity_au_names: Sequence[str] = (),
    ) -> None:
        if au_names is None:
            from mindface_au.au_sets import default_au_names

            au_names = default_au_names(None)
        self.au_names = [str(a) for a in au_names]
        if not self.au_names:
            raise UserError("au_names: the model has no AU outputs (a backbone?); detect needs an AU network")
        self.with_file = bool(with_file)
        self.prob_columns = [f"{au}_prob" for au in self.au_names]
        self.intensity_au_names = [str(a) for a in intensity_au_names]
        self.intensity_columns = [f"{au}{INTENSITY_SUFFIX}" for au in self.intensity_au_names]
        self.columns = META_COLUMNS + LANDMARK_COLUMNS + self.prob_columns + self.au_names + self.intensity_columns
        if with_file:
            self.columns = self.columns + [FILE_COLUMN]
        self.index = {c: i for i, c in enumerate(self.columns)}
        self.prob_start = len(META_COLUMNS) + len(LANDMARK_COLUMNS)
        self.label_start = self.prob_start + len(self.au_names)
        self.intensity_start = self.label_start + len(self.au_names)
        self.intensity_end = self.intensity_start + len(self.intensity_au_names)

    @classmethod
    def from_header(cls, header: Sequence[str], where: str = "") -> "RowSchema":
        """The schema a CSV header was written with (AU names read from its `_prob` columns, intensity AUs from its
        `_intensity` columns)."""
        header = list(header)
        aus = [c[: -len("_prob")] for c in header if c.endswith("_prob")]
        intensity = [c[: -len(INTENSITY_SUFFIX)] for c in header if c.endswith(INTENSITY_SUFFIX)]
        schema = cls(aus or ["?"], with_file=bool(header) and header[-1] == FILE_COLUMN, intensity_au_names=intensity)
        if schema.columns != header:
            raise UserError(f"{where or 'CSV'}: not a detect CSV of this version (unexpected columns)")
        return schema

    def fields(self, row: DetectionRow, threshold: float) -> List[str]:
        """CSV fields of a row."""
        ts = "" if row.timestamp is None else f"{row.timestamp:.3f}"
        n = len(self.au_names)
        face = row.face
        k = len(self.intensity_au_names)
        if face is None:
            out = [str(row.frame), ts, "", "0"] + [""] * (1 + 4 + len(LANDMARK_COLUMNS) + 2 * n + k)
        else:
            conf = "" if face.confidence is None else f"{face.confidence:.4f}"
            box = [str(int(round(v))) for v in face.box]
            if face.landmarks is None:
                marks = [""] * len(LANDMARK_COLUMNS)
            else:
                marks = [f"{v:.1f}" for v in np.asarray(face.landmarks, dtype=np.float64).reshape(-1)]
            probs, labels = prob_fields(row.probs, threshold)
            out = [str(row.frame), ts, str(row.face_id), "1", conf] + box + marks + probs + labels
            if k:
                if row.intensity is None or len(row.intensity) != k:
                    got = "none" if row.intensity is None else len(row.intensity)
                    raise ValueError(f"row of frame {row.frame}: {got} intensities for {k} intensity columns")
                out += intensity_fields(row.intensity)
        return out + ([row.name or ""] if self.with_file else [])

    def parse(self, fields: Sequence[str]) -> dict:
        """{column: value} of a CSV row: ints for frame/face_id/success/labels, floats otherwise, None if empty."""
        out: Dict[str, object] = {}
        for i, col in enumerate(self.columns):
            text = fields[i]
            if col == FILE_COLUMN:
                out[col] = text
            elif text == "":
                out[col] = None
            elif col in _INT_COLUMNS or self.label_start <= i < self.label_start + len(self.au_names):
                out[col] = int(text)
            else:
                out[col] = float(text)
        return out

    def probs(self, fields: Sequence[str]) -> np.ndarray:
        """The probability columns of a face row as float64."""
        return np.asarray([float(v) for v in fields[self.prob_start : self.label_start]], dtype=np.float64)

    def intensities(self, fields: Sequence[str]) -> np.ndarray:
        """The intensity columns of a face row as float64 (shape (0,) without the intensity head)."""
        return np.asarray([float(v) for v in fields[self.intensity_start : self.intensity_end]], dtype=np.float64)

    def set_intensities(self, fields: List[str], values) -> None:
        """Replace a row's intensities (in place)."""
        fields[self.intensity_start : self.intensity_end] = intensity_fields(values)

    def set_probs(self, fields: List[str], probs, threshold: float) -> None:
        """Replace a row's probabilities and labels (in place), labels thresholded as written."""
        texts, labels = prob_fields(probs, threshold)
        n = len(self.au_names)
        fields[self.prob_start : self.label_start] = texts
        fields[self.label_start : self.label_start + n] = labels
