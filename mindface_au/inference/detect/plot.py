"""`--plot`: a PNG of a detect CSV: the AU time line of a video's main face, or per-image bars."""

import collections
import os
import sys
from typing import Dict

import numpy as np

from mindface_au.errors import UserError
from mindface_au.inference.detect.csvfile import read_detections
from mindface_au.inference.detect.rows import FILE_COLUMN, RowSchema

__all__ = ["plot_detections"]


def plot_detections(csv_path: str, out_png: str, video: bool = True, fps: float = 0.0, max_points: int = 10000):
    """AU time line of a detect CSV (the face track with most detections), or per-image bars for images."""
    from mindface_au.plots import plot_au_timeline, plot_image_bars

    header, rows = read_detections(csv_path)
    schema = RowSchema.from_header(header, csv_path)
    if not video:
        probs, names = [], []
        for fields in rows:
            if fields[3] == "1" and fields[2] in ("0", ""):
                probs.append(schema.probs(fields))
                names.append(fields[-1] if header[-1] == FILE_COLUMN else fields[0])
            if len(probs) >= 20:
                print("--plot: showing the first 20 images", file=sys.stderr)
                break
        if not probs:
            raise UserError(f"--plot: no face was found in any image of {csv_path}; nothing to plot")
        plot_image_bars(np.asarray(probs), names, out_png, title=os.path.basename(csv_path))
        return
    counts: Dict[str, int] = collections.Counter()
    frames = 0
    for fields in rows:
        frames = max(frames, int(fields[0]))
        if fields[3] == "1":
            counts[fields[2]] += 1
    face = counts.most_common(1)[0][0] if counts else "0"
    step = max(1, -(-frames // max_points))
    probs = np.full(((frames + step - 1) // step, len(schema.au_names)), np.nan)
    _, rows = read_detections(csv_path)
    for fields in rows:
        frame = int(fields[0])
        if fields[3] == "1" and fields[2] == face and (frame - 1) % step == 0:
            probs[(frame - 1) // step] = schema.probs(fields)
    idx = np.arange(probs.shape[0]) * step
    times = idx / fps if fps else None
    plot_au_timeline(probs, out_png, times=times, title=f"{os.path.basename(csv_path)} face {face}")
