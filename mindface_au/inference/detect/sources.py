"""Frame sources of `detect`: a video streamed with cv2.VideoCapture, or image files decoded one at a time.

Video timestamps are the container's frame times (`CAP_PROP_POS_MSEC` after each grab), so variable-frame-rate
phone videos get their true times; constant-rate videos get (frame - 1) / fps as before. Frames outside
[`start_time`, `end_time`] (seconds) and frames not on the `every` step are skipped without decoding.
"""

import os
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence

import cv2
import numpy as np

from mindface_au.errors import UserError

__all__ = ["IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "Frame", "FrameSource", "open_source", "find_videos"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jp2")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts")


@dataclass
class Frame:
    """One decoded input frame: 1-based index, timestamp in seconds (None for images), BGR image or None."""

    index: int
    timestamp: Optional[float]
    image: Optional[np.ndarray]
    name: Optional[str] = None


class FrameSource:
    """Frames of a video (streamed with cv2.VideoCapture) or of a list of image files (decoded one at a time)."""

    def __init__(self, path: str, kind: str, files: Sequence[str] = (), skipped: Sequence[str] = ()) -> None:
        self.path = path
        self.kind = kind  # "video" or "images"
        self.files = list(files)
        self.skipped = list(skipped)  # non-image files of a folder
        self.unreadable: List[str] = []  # images that failed to decode
        self.fps = 0.0
        self.width = self.height = 0
        self.count: Optional[int] = len(self.files) if kind == "images" else None
        self.decoded = 0  # frames delivered (processed)
        self.seen = 0  # frames read or skipped from the start of the input (the highest 1-based index reached)
        self._cap = None
        self._first = None
        self._first_ms = 0.0
        if kind == "video":
            self._open_video()

    def _open_video(self) -> None:
        # FFmpeg's own log lines would break the one-line error contract; set OPENCV_FFMPEG_LOGLEVEL to see them
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        cap = cv2.VideoCapture(self.path)
        if not cap.isOpened():
            raise UserError(f"{self.path}: cannot open as a video (unreadable or unsupported format)")
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise UserError(f"{self.path}: video has no decodable frames")
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else 0.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.count = count if count > 0 else None
        self.height, self.width = first.shape[:2]
        self._cap, self._first, self._first_ms = cap, first, cap.get(cv2.CAP_PROP_POS_MSEC)

    def _time(self, index: int, msec: float, origin: float) -> Optional[float]:
        """Seconds of frame `index` from the container time `msec` (relative to the first frame's), or from the
        frame rate when the container gives none."""
        if msec is not None and np.isfinite(msec) and (msec > 0 or index == 1):
            return max(0.0, (msec - origin) / 1000.0)
        return (index - 1) / self.fps if self.fps else None

    def frames(
        self, start: int = 1, every: int = 1, start_time: float = 0.0, end_time: Optional[float] = None
    ) -> Iterator[Frame]:
        """Frames 1, 1 + every, 1 + 2 * every, ... from 1-based index `start` on, with timestamps in
        [start_time, end_time] seconds (videos only); the others are not decoded."""
        if self.kind == "images":
            for i, file in enumerate(self.files[start - 1 :], start=start):
                self.seen = i
                if (i - 1) % every:
                    continue
                image = cv2.imread(file, cv2.IMREAD_COLOR)
                name = os.path.basename(file)
                if image is None or image.size == 0:
                    self.unreadable.append(name)
                    image = None
                self.decoded += 1
                yield Frame(i, None, image, name)
            return
        cap, image, index = self._cap, self._first, 1
        self._first = None
        if cap is None:
            raise RuntimeError("a video FrameSource can be iterated once")
        self._cap = None
        origin = self._first_ms if self._first_ms and np.isfinite(self._first_ms) else 0.0
        stamp = self._time(1, self._first_ms, origin)
        try:
            while True:
                self.seen = index
                if end_time is not None and stamp is not None and stamp > end_time + 1e-9:
                    break
                wanted = index >= start and (index - 1) % every == 0
                if wanted and (stamp is None or stamp >= start_time - 1e-9):
                    if image is None:  # grabbed only (before start_time was known to be reached)
                        ok, image = cap.retrieve()
                        if not ok or image is None:
                            break
                    self.decoded += 1
                    yield Frame(index, stamp, image)
                index += 1
                if not cap.grab():  # advance; decode only the frames that are processed
                    break
                image = None
                stamp = self._time(index, cap.get(cv2.CAP_PROP_POS_MSEC), origin)
        finally:
            cap.release()


def open_source(path: str) -> FrameSource:
    """A FrameSource for an image file, a folder of images (sorted; other files skipped) or a video file."""
    if not os.path.exists(path):
        raise UserError(f"{path}: input not found")
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if os.path.isfile(os.path.join(path, n)))
        images = [n for n in names if n.lower().endswith(IMAGE_EXTENSIONS)]
        skipped = [n for n in names if n not in set(images)]
        if not images:
            raise UserError(f"{path}: folder has no image files ({', '.join(IMAGE_EXTENSIONS)})")
        return FrameSource(path, "images", [os.path.join(path, n) for n in images], skipped)
    if path.lower().endswith(IMAGE_EXTENSIONS):
        if cv2.imread(path, cv2.IMREAD_COLOR) is None:
            raise UserError(f"{path}: cannot decode the image")
        return FrameSource(path, "images", [path])
    return FrameSource(path, "video")


def find_videos(folder: str) -> List[str]:
    """Video files (by extension, `VIDEO_EXTENSIONS`) anywhere under `folder`, as sorted relative paths."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in files:
            if name.lower().endswith(VIDEO_EXTENSIONS) and not name.startswith("."):
                found.append(os.path.relpath(os.path.join(root, name), folder))
    return sorted(found)
