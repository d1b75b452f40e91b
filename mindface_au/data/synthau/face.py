"""SynthAU faces: a person's appearance (`Identity`), the landmarks each AU moves, and the OpenCV drawing.

`face_geometry` turns 12 AU intensities into facial measures as FACS describes them (see the package docstring);
`render_face` draws one 112x112 aligned BGR face from them, with pose, lighting, blinks, gaze, noise and blur.
Faces are drawn at twice the size with anti-aliasing and shrunk, so edges stay smooth at 112.
"""

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import cv2
import numpy as np

SIZE = 112
_SCALE = 2  # draw at 224x224 with anti-aliasing, then shrink: smooth edges at 112
_SHIFT = 3  # fractional bits of OpenCV drawing coordinates
_MUL = _SCALE * (1 << _SHIFT)

__all__ = ["SIZE", "Identity", "sample_identity", "face_geometry", "render_face", "light_map"]


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
    g["mouth_w"] = ident.mouth_w * (1.0 + 0.22 * au12 - 0.5 * au23 + 0.06 * au24 - 0.04 * au15)
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


def light_map(ident: Identity) -> np.ndarray:
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
    extra: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, Dict[str, float]]:
    """Draw one BGR uint8 112x112 face with AU intensities `a`; returns (image, geometry).

    pose = (angle in degrees, dx, dy, scale). With `rng` the frame gets sensor noise and maybe blur. `extra`:
    intensities of AU9, AU14, AU17 (EXTRA_AUS, the BP4D / DISFA AUs outside the ABAW 12); an AU at intensity 0
    draws nothing, so a face without them is byte-identical to one drawn before they existed.
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
    if extra is not None:
        _draw_extra(img, ident, g, np.clip(np.asarray(extra, dtype=float), 0, 1), skin, dark)
    small = cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    angle, dx, dy, scale = pose
    if angle or dx or dy or scale != 1.0:
        m = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), angle, scale)
        m[:, 2] += (dx, dy)
        small = cv2.warpAffine(small, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out = small.astype(np.float32)
    out *= (light if light is not None else light_map(ident)) * np.float32(brightness)
    if rng is not None:
        if rng.random() < ident.blur_prob:
            out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.7, 1.4))
        noise = np.empty_like(out)
        cv2.randn(noise, 0.0, float(ident.noise))  # seeded per video in synth_video; much faster than numpy
        out += noise
    return cv2.convertScaleAbs(out), g


EXTRA_AUS = ("AU9", "AU14", "AU17")  # drawn by `_draw_extra` from their own intensity stream


def _draw_extra(img: np.ndarray, ident: Identity, g: Dict[str, float], extra: np.ndarray, skin, dark) -> None:
    """AU9 nose wrinkler (wrinkles across the nose bridge, darker raised nostrils), AU14 dimpler (dimples beside
    the mouth corners), AU17 chin raiser (chin boss pushed up, deep mentolabial furrow, dimpled chin); only the AUs
    with intensity > 0 draw anything. Strokes are about 2 px at 112 so they survive the 64 px demo input."""
    au9, au14, au17 = extra
    cx, cy = SIZE / 2, ident.center_y
    if au9 > 0:
        for k in range(3):
            y = ident.eye_y + 3.5 + 2.6 * k
            _line(img, _quad((cx - 6, y + 0.8), (cx, y - 0.8), (cx + 6, y + 0.8)), _shade(skin, dark, au9), 1.3)
        for side in (-1, 1):
            x = cx + side * 3.6
            _ellipse(img, (x, g["nostril_y"] - 1.5 * au9), (2.4, 1.5), _mix(skin, (20, 20, 30), 0.5 + 0.4 * au9))
    if au14 > 0:
        for side in (-1, 1):
            x = cx + side * (g["mouth_w"] + 4.0)
            y = g["corner_y"]
            _line(img, _quad((x, y - 3.5), (x + side * 2.0, y), (x, y + 3.5)), _shade(skin, dark, au14), 1.5)
    if au17 > 0:
        chin_y = cy + ident.face_low + g["jaw_drop"] - 8 - 2.0 * au17
        y = g["lower_lip_y"] + ident.lip_low + 3.0
        _line(img, _quad((cx - 7, y + 1.5), (cx, y - 1.5 * au17), (cx + 7, y + 1.5)), _shade(skin, dark, au17), 1.5)
        _ellipse(img, (cx, chin_y), (8, 4), _mix(skin, (255, 255, 255), 0.3 * au17))
        for dx, dy in ((-3, 0), (0, 1), (3, 0), (-1.5, 2.2), (1.5, 2.2)):
            _ellipse(img, (cx + dx, chin_y + dy), (0.8, 0.8), _mix(skin, dark, 0.8 * au17))


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
    _fill(img, np.concatenate([up_top, up_low]), _mix(lip, (20, 10, 30), 0.5 * au[8]))
    _fill(img, np.concatenate([low_top, low_bot]), _mix(lip, (20, 10, 30), 0.5 * au[8]))
    line_color = _mix(lip, (15, 10, 20), 0.35 + 0.6 * au[9])
    _line(img, up_low, line_color, 0.6 + 0.7 * au[9])
    # corner folds: up for the puller (AU12), down for the depressor (AU15)
    for side, corner in ((-1, left), (1, right)):
        _line(img, [corner, (corner[0] + side * 2.5, corner[1] - 2.5)], _shade(skin, dark, 0.8 * au[6]), 0.6)
        _line(img, [corner, (corner[0] + side * 1.0, corner[1] + 4.5)], _shade(skin, dark, 0.9 * au[7]), 0.7)
