"""`--overlay out.mp4`: the input video with each face's box, landmarks, face_id and a bar per AU (and, for a CSV
with intensity columns, an orange bar per intensity AU: its length is the intensity on the 0-5 scale).

Drawn from the finished CSV (so `--prob-k` smoothing shows), at the input's frame times (a variable-rate video
stays variable), encoded as H.264 (yuv420p, MP4), which browsers play. OpenCV's wheel only writes mp4v, which they
do not; PyAV's wheel ships libx264, so PyAV is the `video` extra (pip install mindface-au[video]). Frames between
processed ones (`every` > 1) show the last processed frame's faces.
"""

import collections
import fractions
from typing import Dict, List, Sequence

import cv2
import numpy as np

from mindface_au.au_sets import INTENSITY_MAX
from mindface_au.errors import UserError, param
from mindface_au.inference.detect.csvfile import iter_rows
from mindface_au.inference.detect.rows import INTENSITY_SUFFIX, LANDMARK_COLUMNS, RowSchema
from mindface_au.inference.detect.sources import open_source
from mindface_au.utils.io import atomic_path

__all__ = ["write_overlay", "check_overlay", "draw_faces", "face_colour"]

_INTENSITY_BGR = (13, 115, 217)  # the report's intensity orange (#d9730d)
_PALETTE = [(66, 135, 245), (60, 180, 75), (230, 159, 0), (204, 121, 167), (0, 158, 115), (213, 94, 0)]


def face_colour(face_id) -> tuple:
    """A BGR colour per face id (the same in the overlay and the report)."""
    r, g, b = _PALETTE[int(face_id or 0) % len(_PALETTE)]
    return (b, g, r)


def draw_faces(
    image: np.ndarray, rows: List[dict], au_names: List[str], intensity_au_names: Sequence[str] = ()
) -> np.ndarray:
    """Draw the face rows of one frame onto a copy of `image` (BGR): a line per AU with its probability bar, and
    its intensity bar (on a dark 0-5 track) right of it for the AUs of `intensity_au_names`."""
    out = image.copy()
    h, w = out.shape[:2]
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.35
    for row in rows:
        if not row.get("success"):
            continue
        colour = face_colour(row["face_id"])
        x, y, bw, bh = (int(row[k]) for k in ("face_x", "face_y", "face_w", "face_h"))
        cv2.rectangle(out, (x, y), (x + bw, y + bh), colour, 2)
        cv2.putText(out, f"id {row['face_id']}", (x, max(10, y - 4)), font, 0.45, colour, 1, cv2.LINE_AA)
        marks = [row[c] for c in LANDMARK_COLUMNS]
        if all(v is not None for v in marks):
            for i in range(0, 10, 2):
                cv2.circle(out, (int(round(marks[i])), int(round(marks[i + 1]))), 2, (0, 255, 255), -1, cv2.LINE_AA)
        # a bar per AU: length = probability, green where the 0/1 column is 1; then its intensity bar
        line, bar = 11, 40
        names = list(au_names) + [a for a in intensity_au_names if a not in au_names]
        panel_w = 38 + bar + (4 + bar if intensity_au_names else 0)
        px = x + bw + 4 if x + bw + 4 + panel_w <= w else max(0, x - panel_w - 4)
        py = max(0, min(y, h - line * len(names)))
        for i, au in enumerate(names):
            top = py + i * line
            cv2.rectangle(out, (px, top), (px + panel_w, top + line - 1), (30, 30, 30), -1)
            cv2.putText(out, au, (px + 2, top + line - 3), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
            if au in au_names:
                p = float(row.get(f"{au}_prob") or 0.0)
                on = bool(row.get(au))
                cv2.rectangle(out, (px + 36, top + 2), (px + 36 + int(round(p * bar)), top + line - 3),
                              (80, 200, 80) if on else (160, 160, 160), -1)  # fmt: skip
            if au in intensity_au_names:
                left, value = px + 40 + bar, float(row.get(f"{au}{INTENSITY_SUFFIX}") or 0.0)
                cv2.rectangle(out, (left, top + 2), (left + bar, top + line - 3), (70, 70, 70), -1)
                cv2.rectangle(out, (left, top + 2), (left + int(round(value / INTENSITY_MAX * bar)), top + line - 3),
                              _INTENSITY_BGR, -1)  # fmt: skip
    return out


def check_overlay(out_path: str, kind: str, input_path: str = ""):
    """Refuse an overlay that cannot be written (before any work is done); returns the PyAV module."""
    try:
        import av
    except ImportError as exc:
        raise UserError(
            f"{param('overlay')} needs PyAV for H.264 (pip install 'mindface-au[video]' or pip install av)"
        ) from exc
    if not out_path.lower().endswith((".mp4", ".m4v", ".mov")):
        raise UserError(f"{out_path}: {param('overlay')} writes H.264 MP4; give a .mp4 file name")
    if kind != "video":
        raise UserError(f"{input_path}: {param('overlay')} needs a video input")
    return av


def write_overlay(video_path: str, csv_path: str, out_path: str, crf: int = 23) -> int:
    """Write the overlay MP4 of a video and its detect CSV; returns the number of frames written."""
    source = open_source(video_path)
    av = check_overlay(out_path, source.kind, video_path)
    by_frame: Dict[int, List[dict]] = collections.defaultdict(list)
    schema = None
    for row in iter_rows(csv_path):
        by_frame[row["frame"]].append(row)
    if not by_frame:
        raise UserError(f"{csv_path}: no rows to draw")
    with open(csv_path, encoding="utf-8") as handle:
        schema = RowSchema.from_header(handle.readline().rstrip("\n").split(","), csv_path)
    first, last = min(by_frame), max(by_frame)
    fps = source.fps or 25.0
    written = 0
    with atomic_path(out_path) as tmp:
        container = av.open(tmp, mode="w", format="mp4")
        try:
            stream = container.add_stream("libx264", rate=fractions.Fraction(round(fps * 1000), 1000))
            stream.width, stream.height = source.width - source.width % 2, source.height - source.height % 2
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": "veryfast"}
            stream.codec_context.time_base = fractions.Fraction(1, 1000)
            current: List[dict] = []
            last_pts = -1
            for frame in source.frames():
                if frame.index < first:
                    continue
                if frame.index > last:
                    break
                current = by_frame.get(frame.index, current)
                image = draw_faces(frame.image, current, schema.au_names, schema.intensity_au_names)
                image = image[: stream.height, : stream.width]
                video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
                ms = (frame.timestamp if frame.timestamp is not None else (frame.index - 1) / fps) * 1000.0
                pts = max(int(round(ms)), last_pts + 1)  # strictly increasing
                video_frame.pts, video_frame.time_base, last_pts = pts, fractions.Fraction(1, 1000), pts
                for packet in stream.encode(video_frame):
                    container.mux(packet)
                written += 1
            for packet in stream.encode():
                container.mux(packet)
        finally:
            container.close()
    return written
