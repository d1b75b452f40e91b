"""Clips to run `detect` on: SynthAU-rendered faces (MTCNN finds them at 0.98-0.999) pasted into video frames.

`speed_video`: one face moving slowly over a 640x360 background (the speed measurement's input).
`moving_video`: one face moving like a head (sub-pixel path, roll, scale, noise), for the keyframe step.
`scene_video`: a cut, a stretch without a face and two people; returns the drawn boxes per frame (the tracking
quality test's input). `write_clips` writes both as MP4 (`mindface-au synth --clips`). All are deterministic for a
seed. The container follows the file name: .avi is Motion JPEG, anything else (.mp4) MPEG-4 part 2.
"""

import os
from typing import Dict, List, Tuple

import cv2
import numpy as np

from mindface_au.data.synthau.face import render_face, sample_identity
from mindface_au.utils.guard import EnvironmentFailure

__all__ = ["CLIPS", "speed_video", "scene_video", "moving_video", "write_clips"]

Box = Tuple[int, int, int, int]
# file name -> what it shows (write_clips)
CLIPS = {
    "one_face.mp4": "one face moving over a textured background, 120 frames at 30 fps (640x360)",
    "scene.mp4": "one face, 10 frames without a face, a cut, then two faces, then one: 60 frames at 25 fps (320x180)",
}


class _Writer:
    """cv2.VideoWriter that says when it cannot write (OpenCV fails silently): EnvironmentFailure naming the file."""

    def __init__(self, path: str, fps: float, size: Tuple[int, int]) -> None:
        fourcc = "MJPG" if path.lower().endswith(".avi") else "mp4v"
        self.path = path
        self.writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), fps, size)
        if not self.writer.isOpened():
            raise EnvironmentFailure(f"{path}: cannot write the video (no {fourcc} encoder, or not writable)")

    def write(self, image: np.ndarray) -> None:
        self.writer.write(image)

    def release(self) -> None:
        self.writer.release()
        if not os.path.isfile(self.path) or os.path.getsize(self.path) == 0:
            raise EnvironmentFailure(f"{self.path}: cannot write the video (disk full or not writable)")


def _face(ident, rng: np.random.Generator, frame: int, side: int) -> np.ndarray:
    au = 0.5 + 0.5 * np.sin(frame / 9.0 + np.arange(12))  # AUs that change over time
    image, _ = render_face(ident, au)
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_LINEAR)


def _background(rng: np.random.Generator, size: Tuple[int, int], tone: int) -> np.ndarray:
    w, h = size
    noise = cv2.resize(rng.integers(0, 60, (h // 20, w // 20, 3), dtype=np.uint8), (w, h))
    return np.clip(noise.astype(np.int16) + tone, 0, 255).astype(np.uint8)


def speed_video(path: str, frames: int = 300, size: Tuple[int, int] = (640, 360), fps: float = 30.0, seed: int = 0):
    """One face (about 150 px) drifting across a textured background; written with OpenCV (mp4v or MJPG)."""
    rng = np.random.default_rng(seed)
    ident = sample_identity(rng)
    back = _background(rng, size, 70)
    writer = _Writer(path, fps, size)
    side = 150
    for i in range(frames):
        image = back.copy()
        x = int(200 + 120 * np.sin(i / 60.0))
        y = int(100 + 30 * np.cos(i / 45.0))
        image[y : y + side, x : x + side] = _face(ident, rng, i, side)
        writer.write(image)
    writer.release()


def scene_video(
    path: str, fps: float = 25.0, size: Tuple[int, int] = (320, 180), seed: int = 1
) -> Dict[int, List[Box]]:
    """Frames 1-20: person A moving; 21-30: no face; 31-50 (after a cut to another background): A and B;
    51-60: B alone. Returns {1-based frame: [drawn boxes (x, y, w, h)]}."""
    rng = np.random.default_rng(seed)
    a, b = sample_identity(rng), sample_identity(rng)
    backs = [_background(rng, size, 60), _background(rng, size, 150)]
    writer = _Writer(path, fps, size)
    drawn: Dict[int, List[Box]] = {}
    side = 84
    for frame in range(1, 61):
        image = backs[0 if frame <= 30 else 1].copy()
        boxes = []
        if frame <= 20:
            boxes.append((a, (20 + 3 * frame, 40 + frame // 2)))
        elif 31 <= frame <= 50:
            boxes.append((a, (30 + 2 * (frame - 31), 50)))
        if frame > 30:
            boxes.append((b, (200 - (frame - 31), 60)))
        drawn[frame] = []
        for ident, (x, y) in boxes:
            image[y : y + side, x : x + side] = _face(ident, rng, frame, side)
            drawn[frame].append((x, y, side, side))
        writer.write(image)
    writer.release()
    return drawn


def moving_video(
    path: str, frames: int = 240, size: Tuple[int, int] = (640, 360), fps: float = 24.0, seed: int = 2
) -> None:
    """One face (a fifth of the width) moving as a head in front of a camera does: a smooth sub-pixel path (at most
    1.5 px per frame at 640 px), a few degrees of roll, a slow change of scale and sensor noise on every frame (the
    keyframe-step measurement's input)."""
    rng = np.random.default_rng(seed)
    ident = sample_identity(rng)
    back = _background(rng, size, 70)
    writer = _Writer(path, fps, size)
    unit = size[0] / 640.0
    for i in range(frames):
        face = _face(ident, rng, i, 112)
        angle, scale = 3.0 * np.sin(i / 23.0), 130 * unit * (1.0 + 0.04 * np.sin(i / 40.0)) / 112.0
        cx, cy = size[0] / 2 + 60 * unit * np.sin(i / 50.0), size[1] / 2 + 15 * unit * np.sin(i / 31.0)
        matrix = cv2.getRotationMatrix2D((56.0, 56.0), angle, scale)
        matrix[:, 2] += (cx - 56.0, cy - 56.0)
        warped = cv2.warpAffine(face, matrix, size, flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(np.ones((112, 112), np.float32), matrix, size, flags=cv2.INTER_LINEAR)[..., None]
        image = back * (1.0 - mask) + warped * mask + rng.normal(0.0, 3.0, back.shape)
        writer.write(np.clip(image, 0, 255).astype(np.uint8))
    writer.release()


def write_clips(out_dir: str, seed: int = 0, overwrite: bool = False) -> Dict[str, str]:
    """Write the CLIPS into `out_dir` (created); {path: what it shows}. Each clip is written under a temporary name
    and renamed, so a clip that exists is whole; existing clips are refused unless `overwrite`."""
    from mindface_au.errors import UserError, param

    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserError(f"{out_dir}: exists and is not a folder")
    paths = {os.path.join(out_dir, name): what for name, what in CLIPS.items()}
    there = [p for p in paths if os.path.exists(p)]
    if there and not overwrite:
        raise UserError(f"{there[0]}: the clip already exists; choose another folder or pass {param('overwrite')}")
    os.makedirs(out_dir, exist_ok=True)
    makers = {
        "one_face.mp4": lambda p: speed_video(p, frames=120, seed=seed),
        "scene.mp4": lambda p: scene_video(p, seed=seed + 1),
    }
    for path in paths:
        name = os.path.basename(path)
        tmp = os.path.join(out_dir, f".{name[:-4]}.partial-{os.getpid()}{name[-4:]}")
        try:
            makers[name](tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return paths
