"""The one preprocessing definition: what a face image becomes before the network (as timm's resolve_data_config).

A `FaceInput` is built from numbers its caller passes: the side and the per-channel mean/std in [0, 1] units
(x_norm = (x / 255 - mean) / std per RGB channel). This module knows no model: the numbers of a model come from
`mindface_au.models.face_input(model_cfg)` (its `ModelConfig.input_size` and the registered model's default
config) or from a model file's preprocessing record. Training (the batch stage of mindface_au.data.pipeline),
evaluation, prediction, detection and exported files all use it; `resize_face` is the one resize rule
(INTER_AREA to shrink, INTER_LINEAR to enlarge).
"""

from dataclasses import dataclass
from typing import Sequence, Tuple

import cv2
import numpy as np

from mindface_au.errors import UserError

__all__ = ["FaceInput", "ARCFACE_MEAN", "ARCFACE_STD", "make_face_input", "resize_face", "preprocess_faces"]

# The ArcFace normalisation, (x / 255 - 0.5) / 0.5, that every registered model uses: the models register it in
# their default config (models.iresnet.FACE_INPUT_CFG); the data pipeline takes it when given no model's FaceInput.
ARCFACE_MEAN = (0.5, 0.5, 0.5)
ARCFACE_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class FaceInput:
    """Square RGB network input: side `size`, per-channel `mean` and `std` in [0, 1] units."""

    size: int
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]

    @property
    def mean255(self) -> Tuple[float, ...]:
        """Mean in 0..255 units (what MindSpore's vision.Normalize takes)."""
        return tuple(255.0 * m for m in self.mean)

    @property
    def std255(self) -> Tuple[float, ...]:
        return tuple(255.0 * s for s in self.std)

    def as_dict(self) -> dict:
        return {"input_size": self.size, "mean": list(self.mean), "std": list(self.std)}


def make_face_input(size: int, mean: Sequence[float], std: Sequence[float]) -> FaceInput:
    """A FaceInput from its numbers (`size` from config key model.input_size; mean/std in [0, 1] units)."""
    side = int(size)
    if side < 1:
        raise UserError(f"config key model.input_size: got {side}, expected a positive integer")
    return FaceInput(side, tuple(float(v) for v in mean), tuple(float(v) for v in std))


def resize_face(image: np.ndarray, size: int) -> np.ndarray:
    """Resize an (H, W, C) uint8 image to (size, size): INTER_AREA to shrink, INTER_LINEAR to enlarge."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    shrink = image.shape[0] > size or image.shape[1] > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def preprocess_faces(crops: Sequence[np.ndarray], spec: FaceInput, rgb: bool = False) -> np.ndarray:
    """Face crops (H, W, 3) uint8, BGR unless `rgb` -> (N, 3, S, S) float32 normalised network input."""
    size = spec.size
    mean = np.asarray(spec.mean255, np.float32)
    std = np.asarray(spec.std255, np.float32)
    out = np.empty((len(crops), 3, size, size), dtype=np.float32)
    for i, crop in enumerate(crops):
        img = np.asarray(crop)
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        if img.ndim != 3 or img.shape[2] not in (3, 4):
            raise UserError(f"image {i}: expected an (H, W, 3) array, got shape {img.shape}")
        img = img[:, :, :3]
        if img.dtype != np.uint8:
            img = np.clip(img, 0, 255).astype(np.uint8)
        img = resize_face(img, size)
        if not rgb:
            img = img[:, :, ::-1]
        out[i] = ((img.astype(np.float32) - mean) / std).transpose(2, 0, 1)
    return out
