"""`mindface-au detect`: AU probabilities (and intensities, for a model with the intensity head) for an image, a
folder of images, a video or a folder of videos.

The package's parts, one job each:
- `sources`: frames of a video (container timestamps, --start/--end) or of image files; finding videos in a folder.
- `tracking`: faces per frame: MTCNN on keyframes and O-Net tracking in between, or detection on every frame.
- `rows`: the one row schema (CSV writer, CSV reader, Python rows, report), AU columns from the model's AU sets.
- `options`: `DetectOptions`, the options that decide the rows, checked once; the settings a sidecar records.
- `model`: `DetectModel`, what detect needs of a loaded model; the model card, sha256 and threshold it records.
- `run`: `iter_detections` (the streaming loop) and `detect_one` (one input -> one CSV, resumable, sidecar JSON),
  whose `DetectJob` runs the stages: prepare, resume, stream, write, finish (sidecar, plot, overlay, report).
- `csvfile`: the partial file and its resume, the names of the working files; reading a CSV back by column name.
- `tracker_state`: the tracker's state saved with each flush of the partial file, so a resume continues exactly.
- `smoothing`: `--prob-k`, per face track.
- `collection`: a folder of videos -> one CSV per video, workers, shards, a summary.
- outputs: `plot` (PNG), `overlay` (H.264 MP4), `report` (self-contained HTML); `to_dataframe` (pandas).
"""

import os
from typing import Optional

from mindface_au.errors import UserError, param
from mindface_au.inference.detect.csvfile import iter_rows, read_detections
from mindface_au.inference.detect.options import DetectOptions
from mindface_au.inference.detect.rows import FILE_COLUMN, DetectionRow, RowSchema, prob_fields
from mindface_au.inference.detect.run import STAGES, StageTimer, detect_one, iter_detections
from mindface_au.inference.detect.smoothing import smooth_csv
from mindface_au.inference.detect.sources import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    Frame,
    FrameSource,
    find_videos,
    open_source,
)

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
    "find_videos",
    "iter_detections",
    "DetectOptions",
    "detect",
    "detect_one",
    "detect_videos",
    "to_dataframe",
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


def _is_video_folder(path: str) -> bool:
    """A folder without image files of its own: taken as a folder of videos (searched recursively)."""
    if not os.path.isdir(path):
        return False
    names = [n for n in os.listdir(path) if os.path.isfile(os.path.join(path, n))]
    return not any(n.lower().endswith(IMAGE_EXTENSIONS) for n in names)


def detect(
    input_path: str,
    output: str,
    ckpt: Optional[str] = None,
    workers: int = 1,
    shard=None,
    **options,
) -> dict:
    """Detect AUs on an image, a folder of images, a video (one CSV: `detect_one`) or a folder of videos (one CSV
    per video under the folder `output`: `collection.detect_videos`, with `workers` processes and `shard` "I/N").

    Options are `detect_one`'s: `options` (a DetectOptions) or its fields (track, keyframe_every, start_time,
    end_time, every, all_faces, prob_k, threshold, ...), and config, device, batch_size, threads, predictor, resume,
    plot, overlay, report, ... Returns a summary dict.
    """
    if _is_video_folder(input_path):
        from mindface_au.inference.detect.collection import detect_videos

        model_keys = ("device", "threads", "config", "batch_size")
        model_options = {k: options.pop(k) for k in model_keys if k in options}
        if options.get("predictor") is None and not ckpt:
            raise UserError("ckpt: a model file (.ckpt, .mindir or .onnx) is required")
        model_options["path"] = ckpt
        return detect_videos(input_path, output, model_options, workers=workers, shard=shard, **options)
    if workers != 1 or shard not in (None, ""):
        raise UserError(f"{param('workers')} and {param('shard')}: need a folder of videos as {param('input_path')}")
    return detect_one(input_path, output, ckpt=ckpt, **options)


def to_dataframe(rows_or_csv):
    """A pandas DataFrame of detect rows (a CSV path, `iter_rows`/`as_dict` dicts or DetectionRows): one row per
    frame and face, the CSV's columns (pandas is an optional extra: pip install mindface-au[pandas])."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise UserError("to_dataframe needs pandas (pip install pandas)") from exc
    if isinstance(rows_or_csv, (str, os.PathLike)):
        rows = list(iter_rows(os.fspath(rows_or_csv)))
    else:
        rows = [r.as_dict() if isinstance(r, DetectionRow) else r for r in rows_or_csv]
    return pd.DataFrame(rows)
