"""SynthAU: a procedural facial-action-unit video dataset in exactly the Aff-Wild2 layout.

Every frame is a 112x112 aligned face drawn with OpenCV. Each of the 12 challenge AUs moves its own facial
region as FACS describes it, with a continuous intensity in [0, 1]:

    AU1 inner brow raiser   inner brow ends up, central forehead wrinkles
    AU2 outer brow raiser   outer brow ends up, lateral forehead wrinkles
    AU4 brow lowerer        brows down and together, vertical furrows between them
    AU6 cheek raiser        cheeks up, lower lids pushed up, crow's feet
    AU7 lid tightener       narrower eye aperture, straight tense lower lid
    AU10 upper lip raiser   upper lip and nostril wings up, deeper nasolabial folds
    AU12 lip corner puller  mouth corners out and up
    AU15 lip corner depr.   mouth corners down, folds below the corners
    AU23 lip tightener      narrower mouth, thinner red lips
    AU24 lip pressor        lips pressed thin, darker lip line, skin bulges above and below
    AU25 lips part          gap between the lips, teeth visible
    AU26 jaw drop           chin and lower lip down, wide opening

Intensities follow temporal episodes (onset, apex, offset) plus sub-threshold movements; a frame is labelled
1 when the intensity reaches `LABEL_THRESHOLD`. AUs co-occur as in real faces (AU6 with AU12, AU1 with AU2,
AU25 with AU26, AU7 with AU4) and the positive rates roughly follow the Aff-Wild2 training set (Figure 2 of
the paper): AU2, AU15, AU23, AU24 and AU26 a few per cent, AU25 most frequent. Identity, skin tone, lighting,
small pose and scale jitter, blinks, gaze, sensor noise and occasional blur vary per video and frame. Like the
real data some rows are -1 (unlabelled), some labelled frames have no image (no face found), some images have no
row, and a few videos are two-person videos split into `_left` / `_right`.

Output (see mindface_au.data.affwild2 for the layout): train and val annotations (about 2/3 of the videos for
training; both halves of a pair in the same split), a test split with `Test_Set/names.txt` and images but no
labels, the hidden test labels in `synthau_test_labels/<video>.txt` (same format, for `mindface-au score`), and
`synthau.json` (parameters and counts). The dataset is built in a temporary folder beside `out_dir` and renamed
when complete. Everything is deterministic for a seed: each video draws from its own seed sequence, so the
result does not depend on the number of worker processes.
"""

import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from mindface_au.config import AU_NAMES
from mindface_au.data.affwild2 import ANNOTATION_DIR, IMAGE_DIR, SPLIT_DIRS, TEST_LIST, image_name
from mindface_au.data.au_txt import write_au_file
from mindface_au.errors import UserError

LABEL_THRESHOLD = 0.3
TEST_LABEL_DIR = "synthau_test_labels"
SUMMARY_FILE = "synthau.json"
SIZE = 112
_SCALE = 2  # draw at 224x224 with anti-aliasing, then shrink: smooth edges at 112
_SHIFT = 3  # fractional bits of OpenCV drawing coordinates
_MUL = _SCALE * (1 << _SHIFT)

# Target share of frames above threshold per AU (before per-video variation); calibrated so that the final
# rates, after co-occurrence coupling, resemble the Aff-Wild2 training set.
BASE_RATES = np.array([0.09, 0.048, 0.16, 0.11, 0.37, 0.39, 0.33, 0.036, 0.035, 0.033, 0.64, 0.076])
_A = {name: i for i, name in enumerate(AU_NAMES)}

__all__ = [
    "Identity",
    "sample_identity",
    "au_intensities",
    "face_geometry",
    "render_face",
    "synth_video",
    "generate",
    "LABEL_THRESHOLD",
]


@dataclass
class Identity:
    """Appearance of one person in one video (all lengths in pixels of the 112x112 crop)."""

    skin: Tuple[float, float, float]  # BGR
    hair: Tuple[float, float, float]
    brow: Tuple[float, float, float]
    lip: Tuple[float, float, float]
    iris: Tuple[float, float, float]
    background: Tuple[float, float, float]
    face_w: float
    face_up: float
    face_low: float
    center_y: float
    hairline: float
    eye_dx: float
    eye_y: float
    eye_w: float
    eye_h: float
    brow_gap: float
    brow_thick: float
    brow_arch: float
    nose_y: float
    mouth_y: float
    mouth_w: float
    lip_up: float
    lip_low: float
    light_angle: float
    light_strength: float
    noise: float
    blur_prob: float


def sample_identity(rng: np.random.Generator) -> Identity:
    """A random person: skin tone from light to dark, face shape, features, colours, lighting, sensor noise."""
    tone = rng.uniform(0, 1)
    skin = np.array([200, 215, 240]) * (1 - tone) + np.array([60, 85, 120]) * tone  # BGR light -> dark
    skin = skin * rng.uniform(0.92, 1.06, 3)
    hair = rng.choice([[20, 20, 25], [30, 45, 70], [40, 90, 150], [120, 130, 140], [15, 30, 60]]).astype(float)
    lip = skin * np.array([0.75, 0.62, 0.95]) + np.array([0, 0, 20])
    bg = rng.uniform(30, 230, 3)
    return Identity(
        skin=tuple(np.clip(skin, 0, 255)),
        hair=tuple(hair * rng.uniform(0.8, 1.2)),
        brow=tuple(np.clip(hair * 0.8 + skin * 0.15, 0, 255)),
        lip=tuple(np.clip(lip, 0, 255)),
        iris=tuple(rng.choice([[40, 60, 90], [120, 90, 50], [60, 110, 70], [30, 30, 40]]).astype(float)),
        background=tuple(bg),
        face_w=rng.uniform(34, 39),
        face_up=rng.uniform(46, 52),
        face_low=rng.uniform(40, 45),
        center_y=rng.uniform(57, 60),
        hairline=rng.uniform(20, 28),
        eye_dx=rng.uniform(16, 19),
        eye_y=rng.uniform(50, 53),
        eye_w=rng.uniform(7, 8.5),
        eye_h=rng.uniform(3.3, 4.2),
        brow_gap=rng.uniform(9, 11.5),
        brow_thick=rng.uniform(2.2, 3.4),
        brow_arch=rng.uniform(1.0, 2.8),
        nose_y=rng.uniform(71, 74),
        mouth_y=rng.uniform(89, 92),
        mouth_w=rng.uniform(11.5, 14),
        lip_up=rng.uniform(2.6, 3.8),
        lip_low=rng.uniform(3.2, 4.6),
        light_angle=rng.uniform(0, 2 * np.pi),
        light_strength=rng.uniform(0.0, 0.3),
        noise=rng.uniform(1.0, 4.0),
        blur_prob=rng.uniform(0.01, 0.06),
    )


# ----------------------------------------------------------------------------------------------- intensities
def _profile(length: int, onset: int, apex: int, offset: int, peak: float) -> np.ndarray:
    """Onset (cosine ramp up), apex (flat with a small wobble), offset (ramp down)."""
    up = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, onset + 2)[1:-1])
    down = 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, offset + 2)[1:-1])
    flat = np.ones(apex)
    return peak * np.concatenate([up, flat, down])[:length]


def _episodes(
    rng: np.random.Generator,
    num_frames: int,
    rate: float,
    apex: Tuple[int, int],
    ramp: Tuple[int, int],
    peak: Tuple[float, float],
) -> List[Tuple[int, int, int, int, float]]:
    """Episodes (start, onset, apex, offset, peak) covering about `rate` of the frames above threshold."""
    if rate <= 0:
        return []
    mean_len = (apex[0] + apex[1]) / 2 + (ramp[0] + ramp[1]) / 2 * 1.1
    gap = mean_len * (1 - rate) / rate
    out = []
    t = -rng.uniform(0, gap + mean_len)
    while t < num_frames:
        t += rng.exponential(gap)
        on, ap, off = int(rng.integers(*ramp)), int(rng.integers(*apex)), int(rng.integers(*ramp))
        if t + on + ap + off > 0 and t < num_frames:
            out.append((int(t), on, ap, off, float(rng.uniform(*peak))))
        t += on + ap + off
    return out


def _paint(track: np.ndarray, episode: Tuple[int, int, int, int, float]) -> None:
    start, on, ap, off, peak = episode
    prof = _profile(on + ap + off, on, ap, off, peak)
    lo, hi = max(0, start), min(len(track), start + len(prof))
    if hi > lo:
        np.maximum(track[lo:hi], prof[lo - start : hi - start], out=track[lo:hi])


def au_intensities(rng: np.random.Generator, num_frames: int) -> np.ndarray:
    """(T, 12) float intensities in [0, 1] with episodes, co-occurrence and sub-threshold movements."""
    scale = np.exp(rng.normal(0, 0.35, 12))  # some people smile more than others
    scale[rng.random(12) < 0.06] = 0.0  # ... and some never show a given AU
    rates = np.clip(BASE_RATES * scale, 0, 0.85)
    tracks = np.zeros((12, num_frames))
    episodes = {}
    for i, name in enumerate(AU_NAMES):
        if name == "AU25":  # speech: many short openings
            episodes[i] = _episodes(rng, num_frames, rates[i], (3, 25), (2, 6), (0.4, 1.0))
        else:
            apex = (4, 20) if BASE_RATES[i] < 0.1 else (6, 36)
            episodes[i] = _episodes(rng, num_frames, rates[i], apex, (3, 10), (0.45, 1.0))

    def copy(src: str, dst: str, prob: float, gain: Tuple[float, float], widen: int = 0) -> None:
        for start, on, ap, off, peak in list(episodes[_A[src]]):
            if rng.random() < prob:
                shift = int(rng.integers(-2, 3)) - widen
                new_peak = float(np.clip(peak * rng.uniform(*gain), 0.0, 1.0))
                episodes[_A[dst]].append((start + shift, on, ap + 2 * widen, off, new_peak))

    copy("AU12", "AU6", 0.7, (0.75, 1.05))  # Duchenne smile
    copy("AU12", "AU25", 0.35, (0.8, 1.1))  # open smile
    copy("AU2", "AU1", 0.85, (0.85, 1.1))  # brows raised together
    copy("AU26", "AU25", 1.0, (1.0, 1.3), widen=2)  # the jaw drops with the lips parted
    copy("AU4", "AU7", 0.4, (0.7, 1.0))  # frown
    for i in range(12):
        for episode in episodes[i]:
            _paint(tracks[i], episode)
        # sub-threshold movements: visible, not labelled
        for episode in _episodes(rng, num_frames, 0.08, (4, 20), (3, 8), (0.06, LABEL_THRESHOLD * 0.85)):
            _paint(tracks[i], episode)
    return np.clip(tracks.T, 0.0, 1.0)


def labels_from_intensity(intensity: np.ndarray) -> np.ndarray:
    """0/1 int8 labels: intensity at or above LABEL_THRESHOLD."""
    return (intensity >= LABEL_THRESHOLD).astype(np.int8)


# ------------------------------------------------------------------------------------------------ geometry
_BASIS = {}


def _quad(p0, p1, p2, n: int = 9) -> np.ndarray:
    """Points of the quadratic Bezier curve p0 -> p2 with control point p1."""
    basis = _BASIS.get(n)
    if basis is None:
        t = np.linspace(0, 1, n)[:, None]
        basis = _BASIS[n] = np.concatenate([(1 - t) ** 2, 2 * (1 - t) * t, t**2], axis=1)
    return basis @ np.array((p0, p1, p2), dtype=float)


def face_geometry(ident: Identity, a: np.ndarray, blink: float = 0.0) -> Dict[str, float]:
    """Facial landmarks and measures (crop pixels, before pose jitter) for AU intensities `a` (12,).

    Exposed so tests can check that what is drawn matches the labels (e.g. `mouth_open` grows with AU26).
    """
    a = np.clip(np.asarray(a, dtype=float), 0, 1)
    au1, au2, au4, au6, au7, au10, au12, au15, au23, au24, au25, au26 = a
    g: Dict[str, float] = {}
    base = ident.eye_y - ident.brow_gap
    g["brow_inner_y"] = base - 5.5 * au1 + 4.0 * au4
    g["brow_outer_y"] = base + 1.0 - 5.5 * au2 + 1.5 * au4
    g["brow_inner_dx"] = ident.eye_dx - ident.eye_w + 1.0 - 2.5 * au4
    g["brow_outer_dx"] = ident.eye_dx + ident.eye_w + 3.0
    g["eye_upper"] = ident.eye_h * (1.0 - 0.5 * au7) * (1.0 - 0.9 * blink)
    g["eye_lower"] = ident.eye_h * 0.75 * (1.0 - 0.45 * au7 - 0.5 * au6) * (1.0 - 0.9 * blink)
    g["eye_aperture"] = g["eye_upper"] + g["eye_lower"]
    g["cheek_y"] = ident.eye_y + 12.0 - 4.5 * au6
    g["nostril_y"] = ident.nose_y - 1.8 * au10
    g["mouth_w"] = ident.mouth_w * (1.0 + 0.22 * au12 - 0.25 * au23 + 0.06 * au24 - 0.04 * au15)
    g["corner_y"] = ident.mouth_y - 3.5 * au12 + 4.0 * au15
    g["mouth_open"] = 3.5 * au25 + 7.5 * au26
    g["upper_lip_y"] = ident.mouth_y - 2.8 * au10 - 0.25 * g["mouth_open"]  # lower edge of the upper lip
    g["lower_lip_y"] = g["upper_lip_y"] + g["mouth_open"]  # upper edge of the lower lip
    g["lip_up"] = ident.lip_up * (1.0 - 0.5 * au23 - 0.6 * au24)
    g["lip_low"] = ident.lip_low * (1.0 - 0.5 * au23 - 0.6 * au24)
    g["smile_bend"] = 1.5 * au12 - 1.5 * au15  # lip line centre below the corners when smiling
    g["jaw_drop"] = 0.55 * g["mouth_open"] + 3.0 * au26
    g["fold_alpha"] = 0.15 + 0.5 * au10 + 0.3 * au12
    return g


def _pts(points) -> np.ndarray:
    return np.round(np.asarray(points, dtype=float) * _MUL).astype(np.int32).reshape(-1, 1, 2)


def _mix(color, towards, alpha: float) -> Tuple[float, ...]:
    alpha = min(1.0, max(0.0, float(alpha)))
    return (
        tuple(float(c) for c in color)
        if alpha <= 0
        else tuple(float(c) * (1 - alpha) + float(t) * alpha for c, t in zip(color, towards))
    )


def _shade(color, towards, alpha: float) -> Optional[Tuple[float, ...]]:
    """Like _mix, but None (draw nothing) for a negligible alpha: invisible marks must not cover other parts."""
    return None if alpha < 0.02 else _mix(color, towards, alpha)


def _line(img, points, color, thick: float) -> None:
    if color is None:
        return
    cv2.polylines(img, [_pts(points)], False, color, max(1, int(round(thick * _SCALE))), cv2.LINE_AA, _SHIFT)


def _fill(img, points, color) -> None:
    cv2.fillPoly(img, [_pts(points)], color, cv2.LINE_AA, _SHIFT)


def _ellipse(img, center, axes, color, angle: float = 0.0, start: float = 0, end: float = 360) -> None:
    if color is None:
        return
    c = tuple(int(round(v * _MUL)) for v in center)
    ax = tuple(max(1, int(round(v * _MUL))) for v in axes)
    cv2.ellipse(img, c, ax, angle, start, end, color, -1, cv2.LINE_AA, _SHIFT)


def _light_map(ident: Identity) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE - 0.5
    ramp = np.cos(ident.light_angle) * xx + np.sin(ident.light_angle) * yy
    return (1.0 + 2 * ident.light_strength * ramp)[..., None].astype(np.float32)


def render_face(
    ident: Identity,
    a: np.ndarray,
    rng: Optional[np.random.Generator] = None,
    pose=(0.0, 0.0, 0.0, 1.0),
    blink: float = 0.0,
    gaze: float = 0.0,
    light: Optional[np.ndarray] = None,
    brightness: float = 1.0,
) -> Tuple[np.ndarray, Dict[str, float]]:
    """Draw one BGR uint8 112x112 face with AU intensities `a`; returns (image, geometry).

    pose = (angle in degrees, dx, dy, scale). With `rng` the frame gets sensor noise and maybe blur.
    """
    g = face_geometry(ident, a, blink)
    au = np.clip(np.asarray(a, dtype=float), 0, 1)
    s = SIZE * _SCALE
    img = np.empty((s, s, 3), np.uint8)
    img[:] = np.clip(ident.background, 0, 255).astype(np.uint8)
    skin = ident.skin
    dark = tuple(c * 0.45 for c in skin)
    cx, cy = SIZE / 2, ident.center_y
    # head: hair behind, neck, ears, face (upper half + jaw), hair cap
    _ellipse(img, (cx, cy - 4), (ident.face_w + 5, ident.face_up + 4), ident.hair)
    _fill(
        img,
        [(cx - 15, cy + 20), (cx + 15, cy + 20), (cx + 18, SIZE + 2), (cx - 18, SIZE + 2)],
        _mix(skin, (0, 0, 0), 0.15),
    )
    for side in (-1, 1):
        _ellipse(img, (cx + side * (ident.face_w - 1), ident.eye_y + 6), (4.5, 8), _mix(skin, (0, 0, 0), 0.1))
    _ellipse(img, (cx, cy), (ident.face_w, cy - ident.hairline), skin, start=180, end=360)  # forehead to hairline
    _ellipse(img, (cx, cy), (ident.face_w, ident.face_low + g["jaw_drop"]), skin, start=0, end=180)
    # forehead wrinkles (AU1 centre, AU2 sides) and glabella furrows (AU4)
    for k in range(3):
        y = ident.eye_y - ident.brow_gap - 6 - 3.0 * k
        if y < ident.hairline + 2:
            break
        _line(img, _quad((cx - 8, y + 0.6), (cx, y - 0.8), (cx + 8, y + 0.6)), _shade(skin, dark, 0.9 * au[0]), 0.7)
        for side in (-1, 1):
            x0 = cx + side * (ident.eye_dx + 1)
            _line(img, _quad((x0 - 5, y + 1), (x0, y - 1), (x0 + 5, y + 1)), _shade(skin, dark, 0.9 * au[1]), 0.7)
    for side in (-1, 1):
        x = cx + side * 2.2
        _line(
            img,
            [(x, ident.eye_y - ident.brow_gap - 3), (x + side * 0.6, ident.eye_y - 3)],
            _shade(skin, dark, 0.95 * au[2]),
            0.8,
        )
    # eyes, lids, crow's feet (AU6), infraorbital furrow and cheek (AU6), tense lower lid (AU7)
    for side in (-1, 1):
        ex = cx + side * ident.eye_dx
        ey = ident.eye_y
        inner, outer = (ex - side * ident.eye_w, ey), (ex + side * ident.eye_w, ey + 0.4)
        upper = _quad(inner, (ex, ey - 2 * g["eye_upper"]), outer)
        lower = _quad(outer, (ex, ey + 2 * g["eye_lower"]), inner)
        _ellipse(img, (ex, g["cheek_y"]), (9, 5.5), _mix(skin, (255, 255, 255), 0.1 + 0.25 * au[3]))
        _line(
            img,
            _quad((ex - 6, ey + 5.5 - 2.5 * au[3]), (ex, ey + 7.5 - 3 * au[3]), (ex + 6, ey + 5.5 - 2.5 * au[3])),
            _mix(skin, dark, 0.2 + 0.7 * au[3]),
            0.7,
        )
        eye = np.concatenate([upper, lower])
        _fill(img, eye, (235, 238, 240))
        _draw_iris(img, eye, (ex + gaze, ey - 0.2), ident.eye_h * 0.95, ident.iris)
        _line(img, upper, (35, 30, 30), 1.1)
        _line(img, lower, _mix(skin, (40, 30, 30), 0.4 + 0.5 * au[4]), 0.5 + 0.6 * au[4])
        ox = outer[0] + side * 1.5
        for k, dy in enumerate((-2.2, 0.0, 2.2)):
            _line(
                img, [(ox, ey + dy * 0.5), (ox + side * 4.5, ey + dy * (1.3 + 0.2 * k))], _shade(skin, dark, au[3]), 0.6
            )
        # brow
        inner_b = (cx + side * g["brow_inner_dx"], g["brow_inner_y"])
        outer_b = (cx + side * g["brow_outer_dx"], g["brow_outer_y"])
        mid = ((inner_b[0] + outer_b[0]) / 2, (inner_b[1] + outer_b[1]) / 2 - 2 * ident.brow_arch + 1.5 * au[2])
        _line(img, _quad(inner_b, mid, outer_b), ident.brow, ident.brow_thick)
    # nose: bridge shading, nostrils (raised by AU10), nasolabial folds (AU10, AU12)
    _line(
        img,
        _quad((cx - 3, ident.eye_y + 2), (cx - 4, ident.nose_y - 8), (cx - 5, ident.nose_y - 2)),
        _mix(skin, dark, 0.25),
        0.8,
    )
    _ellipse(img, (cx, g["nostril_y"] - 2), (5, 3), _mix(skin, (255, 255, 255), 0.08))
    for side in (-1, 1):
        _ellipse(img, (cx + side * 3.6, g["nostril_y"]), (2.0, 1.1), _mix(skin, (20, 20, 30), 0.6), angle=side * 15)
        corner = (cx + side * (g["mouth_w"] + 1.5), g["corner_y"] + 1)
        _line(
            img,
            _quad((cx + side * 7.5, g["nostril_y"] - 2), (cx + side * (g["mouth_w"] + 5), ident.nose_y + 6), corner),
            _mix(skin, dark, g["fold_alpha"]),
            0.9,
        )
    _draw_mouth(img, ident, g, au, skin, dark)
    # chin shading moves down with the jaw
    _ellipse(img, (cx, cy + ident.face_low + g["jaw_drop"] - 6), (8, 2.5), _mix(skin, dark, 0.12))
    small = cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    angle, dx, dy, scale = pose
    if angle or dx or dy or scale != 1.0:
        m = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), angle, scale)
        m[:, 2] += (dx, dy)
        small = cv2.warpAffine(small, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out = small.astype(np.float32)
    out *= (light if light is not None else _light_map(ident)) * np.float32(brightness)
    if rng is not None:
        if rng.random() < ident.blur_prob:
            out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.7, 1.4))
        noise = np.empty_like(out)
        cv2.randn(noise, 0.0, float(ident.noise))  # seeded per video in synth_video; much faster than numpy
        out += noise
    return cv2.convertScaleAbs(out), g


def _draw_iris(img: np.ndarray, eye: np.ndarray, center, radius: float, color) -> None:
    """Iris and pupil clipped to the eye opening (drawn in a small region of interest)."""
    x0, y0 = np.floor(eye.min(axis=0) * _SCALE).astype(int) - 2
    x1, y1 = np.ceil(eye.max(axis=0) * _SCALE).astype(int) + 2
    x0, y0 = max(x0, 0), max(y0, 0)
    roi = img[y0:y1, x0:x1]
    mask = np.zeros(roi.shape[:2], np.uint8)
    offset = np.array([x0, y0], float) / _SCALE
    _fill(mask, eye - offset, 255)
    layer = roi.copy()
    c = (center[0] - offset[0], center[1] - offset[1])
    _ellipse(layer, c, (radius, radius), color)
    _ellipse(layer, c, (radius * 0.45, radius * 0.45), (15, 15, 15))
    keep = mask > 127
    roi[keep] = layer[keep]


def _draw_mouth(img: np.ndarray, ident: Identity, g: Dict[str, float], au: np.ndarray, skin, dark) -> None:
    cx = SIZE / 2
    w, cy_corner = g["mouth_w"], g["corner_y"]
    left, right = (cx - w, cy_corner), (cx + w, cy_corner)
    bend = g["smile_bend"]
    ul, ll = g["upper_lip_y"] + bend, g["lower_lip_y"] + bend  # centre of the lips' inner edges
    # skin bulges of the lip pressor (AU24)
    for y in (ul - g["lip_up"] - 2.5, ll + g["lip_low"] + 2.5):
        _ellipse(img, (cx, y), (w * 0.7, 2.0), _shade(skin, (255, 255, 255), 0.3 * au[9]))
    up_top = _quad(left, (cx - w * 0.45, ul - 2 * g["lip_up"] - 0.6), (cx, ul - g["lip_up"] * 0.85))
    up_top = np.concatenate(
        [up_top, _quad((cx, ul - g["lip_up"] * 0.85), (cx + w * 0.45, ul - 2 * g["lip_up"] - 0.6), right)[1:]]
    )
    up_low = _quad(right, (cx, 2 * ul - cy_corner), left)
    low_top = _quad(left, (cx, 2 * ll - cy_corner), right)
    low_bot = _quad(right, (cx, 2 * (ll + g["lip_low"]) - cy_corner + 1), left)
    if g["mouth_open"] > 0.3:
        _fill(img, np.concatenate([up_low[::-1], low_top[::-1]]), (45, 30, 50))
        teeth_h = min(2.8, 0.45 * g["mouth_open"])
        teeth = np.concatenate([up_low[::-1][2:-2], (up_low[2:-2] + [0, teeth_h])])
        _fill(img, teeth, (225, 230, 235))
    lip = ident.lip
    _fill(img, np.concatenate([up_top, up_low]), _mix(lip, (20, 10, 30), 0.25 * au[8]))
    _fill(img, np.concatenate([low_top, low_bot]), _mix(lip, (20, 10, 30), 0.25 * au[8]))
    line_color = _mix(lip, (15, 10, 20), 0.35 + 0.6 * au[9])
    _line(img, up_low, line_color, 0.6 + 0.7 * au[9])
    # corner folds: up for the puller (AU12), down for the depressor (AU15)
    for side, corner in ((-1, left), (1, right)):
        _line(img, [corner, (corner[0] + side * 2.5, corner[1] - 2.5)], _shade(skin, dark, 0.8 * au[6]), 0.6)
        _line(img, [corner, (corner[0] + side * 1.0, corner[1] + 4.5)], _shade(skin, dark, 0.9 * au[7]), 0.7)


# ------------------------------------------------------------------------------------------------- videos
def _smooth_walk(rng: np.random.Generator, num_frames: int, amplitude: float) -> np.ndarray:
    t = np.arange(num_frames)
    out = np.zeros(num_frames)
    for period in (rng.uniform(40, 90), rng.uniform(120, 300)):
        out += np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.3, 1.0)
    return out * amplitude / 2


def _spans(rng: np.random.Generator, num_frames: int, count: int, length: Tuple[int, int]) -> np.ndarray:
    mask = np.zeros(num_frames, dtype=bool)
    for _ in range(count):
        n = int(rng.integers(*length))
        start = int(rng.integers(0, max(1, num_frames - n)))
        mask[start : start + n] = True
    return mask


def synth_video(seed_seq: np.random.SeedSequence, num_frames: int, render: bool = True) -> Dict:
    """One person's video: identity, intensities (T,12), labels, -1 rows, missing images and frames."""
    rng = np.random.default_rng(seed_seq)
    cv2.setRNGSeed(int(seed_seq.generate_state(1)[0] & 0x7FFFFFFF))
    ident = sample_identity(rng)
    intensity = au_intensities(rng, num_frames)
    labels = labels_from_intensity(intensity)
    invalid = _spans(rng, num_frames, int(rng.integers(0, 3)), (5, 25))
    no_face = _spans(rng, num_frames, int(rng.integers(0, 4)), (1, 8))
    pose = np.stack([_smooth_walk(rng, num_frames, a) for a in (5.0, 2.0, 2.0, 0.05)], axis=1)
    pose[:, 3] += 1.0
    gaze = _smooth_walk(rng, num_frames, 1.5)
    brightness = 1.0 + _smooth_walk(rng, num_frames, 0.12)
    blink = np.zeros(num_frames)
    t = int(rng.integers(5, 60))
    while t < num_frames:
        blink[t : t + 3] = (0.5, 1.0, 0.6)[: len(blink[t : t + 3])]
        t += int(rng.integers(40, 140))
    frames, geometry = [], []
    if render:
        light = _light_map(ident)
        for i in range(num_frames):
            if no_face[i]:
                frames.append(None)
                geometry.append(None)
                continue
            image, geo = render_face(ident, intensity[i], rng, tuple(pose[i]), blink[i], gaze[i], light, brightness[i])
            frames.append(image)
            geometry.append(geo)
    return {
        "identity": ident,
        "intensity": intensity,
        "labels": labels,
        "invalid": invalid,
        "no_face": no_face,
        "frames": frames,
        "geometry": geometry,
    }


def _make_job(job: Dict) -> Dict:
    """Render and write one video (runs in a worker process); returns its label statistics."""
    cv2.setNumThreads(1)
    video = synth_video(np.random.SeedSequence(job["entropy"]), job["frames"])
    folder = os.path.join(job["root"], IMAGE_DIR, job["name"])
    os.makedirs(folder, exist_ok=True)
    for i, image in enumerate(video["frames"]):
        if image is not None:
            cv2.imwrite(os.path.join(folder, image_name(i + 1)), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    labels, invalid = video["labels"], video["invalid"]
    rows = len(labels) - job["unlabelled_tail"]  # images at the end without an annotation row
    if job["split"] == "test":
        invalid = np.zeros_like(invalid)
        path = os.path.join(job["root"], TEST_LABEL_DIR, job["name"] + ".txt")
    else:
        path = os.path.join(job["root"], ANNOTATION_DIR, SPLIT_DIRS[job["split"]], job["name"] + ".txt")
    write_au_file(path, np.where(invalid[:rows, None], -1, labels[:rows]))  # -1: unlabelled row
    usable = ~invalid[:rows] & ~video["no_face"][:rows]
    return {
        "name": job["name"],
        "split": job["split"],
        "frames": int(len(labels)),
        "positives": labels[:rows][usable].sum(axis=0).astype(int).tolist(),
        "usable": int(usable.sum()),
    }


def _plan(videos: int, frames: int, seed: int, test_videos: int) -> List[Dict]:
    """Video names, splits, frame counts and per-video seeds; two-person videos get _left/_right halves."""
    rng = np.random.default_rng([seed, 7919])
    groups: List[List[str]] = []
    k = 0
    while sum(len(g) for g in groups) < videos:
        room = videos - sum(len(g) for g in groups)
        if k % 6 == 4 and room >= 2:
            groups.append([f"synth_{k:03d}_left", f"synth_{k:03d}_right"])
        else:
            groups.append([f"synth_{k:03d}"])
        k += 1
    order = rng.permutation(len(groups))
    n_train = max(1, int(round(len(groups) * 2 / 3))) if len(groups) > 1 else 1
    jobs = []
    for rank, gi in enumerate(order):
        split = "train" if rank < n_train else "val"
        if len(groups) == 1:
            split = "train"
        count = max(10, int(round(frames * rng.uniform(0.75, 1.25))))
        tail = int(rng.integers(0, 4)) if rng.random() < 0.3 else 0
        for name in groups[gi]:
            jobs.append({"name": name, "split": split, "frames": count, "unlabelled_tail": tail})
    for t in range(test_videos):
        count = max(10, int(round(frames * rng.uniform(0.75, 1.25))))
        jobs.append({"name": f"synth_test_{t:03d}", "split": "test", "frames": count, "unlabelled_tail": 0})
    for job in jobs:
        digest = hashlib.sha256(job["name"].encode()).digest()
        job["entropy"] = [int(seed), int.from_bytes(digest[:8], "little")]  # per video: independent of order
    return sorted(jobs, key=lambda j: -j["frames"])


def generate(
    out_dir: str,
    videos: int = 24,
    frames: int = 300,
    seed: int = 0,
    test_videos: Optional[int] = None,
    workers: Optional[int] = None,
    overwrite: bool = False,
) -> Dict:
    """Write SynthAU to `out_dir` (see the module docstring); returns a summary dict (also in synthau.json).

    `videos` counts the labelled annotation files (train + val); `test_videos` defaults to videos // 6 (>= 1).
    An existing `out_dir` is replaced only with `overwrite` and only if it holds a previous SynthAU.
    """
    if videos < 2:
        raise UserError(f"--videos: got {videos}, expected at least 2 (train and val)")
    if frames < 10:
        raise UserError(f"--frames: got {frames}, expected at least 10")
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        if not overwrite:
            raise UserError(f"{out_dir}: already exists and is not empty; choose another --out or pass --overwrite")
        if not os.path.isfile(os.path.join(out_dir, SUMMARY_FILE)):
            raise UserError(f"{out_dir}: not a SynthAU folder ({SUMMARY_FILE} missing); refusing to replace it")
    test_videos = max(1, videos // 6) if test_videos is None else int(test_videos)
    start = time.perf_counter()
    parent = os.path.dirname(out_dir)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{out_dir}: cannot create the parent folder ({exc.strerror})") from exc
    tmp = os.path.join(parent, f".{os.path.basename(out_dir)}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for sub in [os.path.join(ANNOTATION_DIR, d) for d in SPLIT_DIRS.values()] + [IMAGE_DIR, TEST_LABEL_DIR]:
            os.makedirs(os.path.join(tmp, sub), exist_ok=True)
        jobs = _plan(videos, frames, seed, test_videos)
        for job in jobs:
            job["root"] = tmp
        workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
        if workers > 1 and sum(j["frames"] for j in jobs) >= 1500:
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                results = list(pool.map(_make_job, jobs))
        else:
            results = [_make_job(job) for job in jobs]
        summary = _summarise(results, videos, frames, seed, test_videos)
        summary["seconds"] = round(time.perf_counter() - start, 2)
        tests = sorted((r["name"], r["frames"]) for r in results if r["split"] == "test")
        with open(os.path.join(tmp, ANNOTATION_DIR, SPLIT_DIRS["test"], TEST_LIST), "w", encoding="utf-8") as f:
            f.write("".join(f"{name},{count}\n" for name, count in tests))
        with open(os.path.join(tmp, SUMMARY_FILE), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1)
            f.write("\n")
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir) if os.path.isdir(out_dir) else os.remove(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


def _summarise(results: List[Dict], videos: int, frames: int, seed: int, test_videos: int) -> Dict:
    out: Dict = {
        "generator": "SynthAU 1",
        "seed": seed,
        "videos": videos,
        "frames": frames,
        "test_videos": test_videos,
        "label_threshold": LABEL_THRESHOLD,
        "splits": {},
    }
    for split in ("train", "val", "test"):
        part = [r for r in results if r["split"] == split]
        usable = sum(r["usable"] for r in part)
        pos = np.sum([r["positives"] for r in part], axis=0) if part else np.zeros(12)
        out["splits"][split] = {
            "videos": sorted(r["name"] for r in part),
            "frames": int(sum(r["frames"] for r in part)),
            "positive_rate": {au: round(float(p) / max(usable, 1), 4) for au, p in zip(AU_NAMES, pos)},
        }
    return out


def identity_dict(ident: Identity) -> Dict:
    """Plain dict of an identity (for reports)."""
    return asdict(ident)
