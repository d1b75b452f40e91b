"""Synthetic test videos for `detect`: SynthAU-rendered faces (MTCNN finds them at 0.98-0.999) pasted into frames.

`speed_video`: one face moving slowly over a 640x360 background (the speed measurement's input).
`moving_video`: one face moving like a head (sub-pixel path, roll, scale, noise), for the keyframe step.
`scene_video`: a cut, a stretch without a face and two people; returns the drawn boxes per frame (the tracking
quality test's input). All are deterministic for a seed.
"""

from typing import Dict, List, Tuple

import cv2
import numpy as np

from mindface_au.data.synthau.face import render_face, sample_identity

Box = Tuple[int, int, int, int]


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
    fourcc = "MJPG" if path.endswith(".avi") else "mp4v"
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), fps, size)
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
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
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
    fourcc = "MJPG" if path.endswith(".avi") else "mp4v"
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), fps, size)
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
