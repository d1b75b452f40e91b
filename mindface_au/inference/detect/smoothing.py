"""`--prob-k`: a streaming pass over a detect CSV that smooths each face track's probabilities (and intensities).

`smooth_csv` uses `mindface_au.postprocess.smooth_probs` (the evaluation's function: the mean over the window) on
each row's window of 2k+1 detections of that track, clipped at the track's ends (identical to smoothing the whole
track at once), and recomputes the 0/1 columns. A CSV with intensity columns gets them smoothed by the same window
(an intensity jitters from frame to frame like a probability, and a track's mean over 2k+1 frames is the same
estimate for both). A track restarts after a gap of more than `max_gap` processed frames without that
face. Memory holds only the rows of the open windows, whatever the video length.
"""

import collections
import csv
from typing import Deque, Dict, List, Tuple

import numpy as np

from mindface_au.inference.detect.csvfile import read_detections
from mindface_au.inference.detect.rows import RowSchema
from mindface_au.utils.io import atomic_write

__all__ = ["smooth_csv"]


class _Track:
    """Smoothing state of one face track segment: the last 2k+1 rows' values (probabilities, then intensities) and
    the rows awaiting output."""

    def __init__(self) -> None:
        self.buf: Deque[Tuple[list, np.ndarray]] = collections.deque()
        self.base = 0  # segment index of buf[0]
        self.count = 0  # rows in the segment so far
        self.next = 0  # first segment index not yet smoothed
        self.last_frame = 0


def smooth_csv(src: str, dst: str, k: int, threshold: float = 0.5, max_gap: int = 30, every: int = 1) -> int:
    """Stream `src` (a detect CSV) into `dst` with probabilities (and intensities, where the CSV has them) smoothed
    per face track over 2k+1 detections.

    A track restarts after more than `max_gap` processed frames without its face (`every`: the processing step).
    Returns the number of rows written. `dst` is written atomically.
    """
    from mindface_au.postprocess import smooth_probs

    header, rows = read_detections(src)
    schema = RowSchema.from_header(header, src)
    n_probs = len(schema.au_names)
    out_queue: Deque[List] = collections.deque()  # [fields, waiting]
    tracks: Dict[str, _Track] = {}
    written = 0

    def resolve(track: _Track, final: bool) -> None:
        while track.next < track.count and (final or track.next + k < track.count):
            i = track.next
            lo, hi = max(0, i - k), min(track.count, i + k + 1)
            window = np.stack([track.buf[j - track.base][1] for j in range(lo, hi)])
            smoothed = smooth_probs(window, k)[i - lo]
            entry = track.buf[i - track.base][0]
            schema.set_probs(entry[0], smoothed[:n_probs], threshold)
            if schema.intensity_columns:
                schema.set_intensities(entry[0], smoothed[n_probs:])
            entry[1] = False
            track.next += 1
            while track.base < track.next - k:
                track.buf.popleft()
                track.base += 1

    with atomic_write(dst, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        current_frame = None
        for fields in rows:
            frame = int(fields[0])
            if frame != current_frame:
                current_frame = frame
                for fid in [f for f, t in tracks.items() if frame - t.last_frame > max_gap * every]:
                    resolve(tracks.pop(fid), final=True)
            entry = [fields, False]
            if fields[3] == "1":
                fid = fields[2]
                track = tracks.get(fid)
                if track is None:
                    track = tracks[fid] = _Track()
                entry[1] = True
                values = schema.probs(fields)
                if schema.intensity_columns:
                    values = np.concatenate([values, schema.intensities(fields)])
                track.buf.append((entry, values))
                track.count += 1
                track.last_frame = frame
                out_queue.append(entry)
                resolve(track, final=False)
            else:
                out_queue.append(entry)
            while out_queue and not out_queue[0][1]:
                writer.writerow(out_queue.popleft()[0])
                written += 1
        for track in tracks.values():
            resolve(track, final=True)
        while out_queue:
            writer.writerow(out_queue.popleft()[0])
            written += 1
    return written
