"""`--plot`: a PNG of a detect CSV: the AU time lines of every face of a video, or bars per image and face; a CSV
with intensity columns adds each AU's intensity (0-5, a right-hand axis in the AU's panel; bars below the
probabilities for images)."""

import collections
import os
import sys
from typing import Dict

import numpy as np

from mindface_au.errors import UserError, param, render
from mindface_au.inference.detect.csvfile import read_detections
from mindface_au.inference.detect.rows import FILE_COLUMN, RowSchema

__all__ = ["plot_detections"]

MAX_BARS = 60  # bars per AU group of an image plot (faces over all images)
MAX_FACES = 12  # lines per AU panel of a video plot (the face ids with most detections)


def plot_detections(csv_path: str, out_png: str, video: bool = True, fps: float = 0.0, max_points: int = 10000):
    """AU time lines of a detect CSV (one line per face id), or bars per image and face for images (the first
    `MAX_BARS` faces); intensities too where the CSV has them."""
    from mindface_au.plots import plot_au_timeline, plot_image_bars

    header, rows = read_detections(csv_path)
    schema = RowSchema.from_header(header, csv_path)
    has_intensity = bool(schema.intensity_columns)
    intensity_args = dict(intensity_au_names=schema.intensity_au_names) if has_intensity else {}
    if not video:
        probs, names, intensity = [], [], []
        faces_per_image = collections.Counter()
        found = []
        for fields in rows:
            if fields[3] == "1":
                name = fields[-1] if header[-1] == FILE_COLUMN else fields[0]
                faces_per_image[name] += 1
                found.append((name, fields[2], schema.probs(fields), schema.intensities(fields)))
        for name, face, prob, values in found[:MAX_BARS]:
            probs.append(prob)
            intensity.append(values)
            names.append(f"{name} face {face}" if faces_per_image[name] > 1 else name)
        if len(found) > MAX_BARS:
            print(render(f"{param('plot')}: showing the first {MAX_BARS} of {len(found)} faces"), file=sys.stderr)
        if not probs:
            raise UserError(f"{param('plot')}: no face was found in any image of {csv_path}; nothing to plot")
        if has_intensity:
            intensity_args["intensity"] = np.asarray(intensity)
        plot_image_bars(
            np.asarray(probs), names, out_png, title=os.path.basename(csv_path), au_names=schema.au_names,
            **intensity_args,
        )  # fmt: skip
        return
    counts: Dict[str, int] = collections.Counter()
    frames = 0
    for fields in rows:
        frames = max(frames, int(fields[0]))
        if fields[3] == "1":
            counts[fields[2]] += 1
    faces = sorted(counts, key=lambda f: (-counts[f], int(f) if f.isdigit() else 0))[:MAX_FACES] or ["0"]
    if len(counts) > MAX_FACES:
        print(
            render(f"{param('plot')}: showing the {MAX_FACES} faces with most detections of {len(counts)}"),
            file=sys.stderr,
        )
    step = max(1, -(-frames // max_points))
    probs = np.full((len(faces), (frames + step - 1) // step, len(schema.au_names)), np.nan)
    intensity = np.full(probs.shape[:2] + (len(schema.intensity_au_names),), np.nan)
    slot = {face: i for i, face in enumerate(faces)}
    _, rows = read_detections(csv_path)
    for fields in rows:
        frame = int(fields[0])
        if fields[3] == "1" and fields[2] in slot and (frame - 1) % step == 0:
            probs[slot[fields[2]], (frame - 1) // step] = schema.probs(fields)
            intensity[slot[fields[2]], (frame - 1) // step] = schema.intensities(fields)
    if has_intensity:
        intensity_args["intensity"] = intensity
    idx = np.arange(probs.shape[1]) * step
    times = idx / fps if fps else None
    labels = [f"face {face}" for face in faces]
    plot_au_timeline(
        probs, out_png, times=times, title=os.path.basename(csv_path), labels=labels, au_names=schema.au_names,
        **intensity_args,
    )  # fmt: skip
