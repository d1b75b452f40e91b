"""`mindface-au detect`: AU probabilities for an image, a folder of images, a video or a folder of videos.

The package's parts, one job each:
- `sources`: frames of a video (container timestamps, --start/--end) or of image files; finding videos in a folder.
- `tracking`: faces per frame: MTCNN on keyframes and O-Net tracking in between, or detection on every frame.
- `rows`: the one row schema (CSV writer, CSV reader, Python rows, report), AU columns from the model's AU set.
- `run`: `iter_detections` (the streaming loop) and `detect` (one input -> one CSV, resumable, sidecar JSON).
- `csvfile`: the partial file and its resume; reading a CSV back by column name.
- `smoothing`: `--prob-k`, per face track.
- `collection`: a folder of videos -> one CSV per video, workers, shards, a summary.
- outputs: `plot` (PNG), `overlay` (H.264 MP4), `report` (self-contained HTML), `frame` (pandas DataFrame).
"""

from mindface_au.inference.detect.csvfile import iter_rows, read_detections
from mindface_au.inference.detect.rows import FILE_COLUMN, DetectionRow, RowSchema, prob_fields
from mindface_au.inference.detect.run import STAGES, StageTimer, detect, iter_detections
from mindface_au.inference.detect.smoothing import smooth_csv
from mindface_au.inference.detect.sources import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, Frame, FrameSource, open_source

COLUMNS = RowSchema().columns  # the columns for the ABAW AU set (a model with another AU set has its own)

__all__ = [
    "COLUMNS",
    "FILE_COLUMN",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "STAGES",
    "StageTimer",
    "DetectionRow",
    "RowSchema",
    "Frame",
    "FrameSource",
    "open_source",
    "iter_detections",
    "detect",
    "smooth_csv",
    "read_detections",
    "iter_rows",
    "prob_fields",
    "plot_detections",
]


def plot_detections(*args, **kwargs):
    """See `mindface_au.inference.detect.plot.plot_detections` (matplotlib is imported only when plotting)."""
    from mindface_au.inference.detect.plot import plot_detections as _plot

    return _plot(*args, **kwargs)
