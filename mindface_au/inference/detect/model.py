"""What detect needs of a model (`DetectModel`), and what it records about one (AU names, card, sha256, threshold).

`mindface_au.inference.loader.InferenceModel` is such a model; a `Predictor` is taken through the InferenceModel
it wraps (`detect_model`, by the `ModelWrapper` protocol: detect does not import the Predictor above it).
"""

import os
from typing import Any, List, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

from mindface_au.inference.detect.options import DEFAULT_THRESHOLD

__all__ = [
    "DetectModel",
    "ModelWrapper",
    "detect_model",
    "model_au_names",
    "model_card",
    "model_digest",
    "model_threshold",
]


class DetectModel(Protocol):
    """A loaded model as detect uses it (the attributes and methods of `InferenceModel`)."""

    path: str
    backend: str
    device: str
    batch_size: int
    au_names: List[str]  # the AUs of the output columns
    card: Optional[dict]  # the model card; None for a file from before cards
    model_config: Any  # ModelConfig
    face_input: Any  # FaceInput: size, mean, std
    file: Any  # the ModelFile it was read from (eval settings); None for a model built in memory

    @property
    def sha256(self) -> Optional[str]: ...

    def predict(self, x: np.ndarray, pad: bool = False) -> np.ndarray: ...

    def describe(self) -> str: ...

    def card_text(self) -> str: ...

    def crop_problem(self, aligned: bool = False) -> Optional[str]: ...


@runtime_checkable
class ModelWrapper(Protocol):
    """An object wrapping the model detect runs in its `model` attribute (a `Predictor`); detect takes the inner
    model without importing the wrapper, which sits above detect."""

    model: DetectModel


def detect_model(model) -> DetectModel:
    """The model detect runs: an InferenceModel as is, a Predictor's InferenceModel."""
    return model.model if isinstance(model, ModelWrapper) else model


def model_au_names(model: DetectModel) -> List[str]:
    """The AU names of a loaded model, the ABAW set when it has none."""
    from mindface_au.au_sets import default_au_names

    return list(default_au_names(model.au_names))


def model_threshold(model_file) -> float:
    """The threshold a model file (a `ModelFile`, or None for a model built in memory) was validated with."""
    return float(model_file.eval.threshold) if model_file is not None else DEFAULT_THRESHOLD


def model_digest(model_path: str, model: Optional[DetectModel] = None) -> Optional[str]:
    """The sha256 of the model file (computed once per run: a folder of videos passes it to every video), or the
    one a loaded model already knows; None when there is no file to hash."""
    known = model.sha256 if model is not None else None
    if known:
        return str(known)
    if model_path and os.path.isfile(model_path):
        from mindface_au.models.checkpoint import sha256_file

        return sha256_file(model_path)
    return None


def model_card(model: DetectModel, au_names: Sequence[str]) -> dict:
    """What is known about the model that made a CSV: its file, backend and AU set; `card` is the model's own
    description (training data, AU set) when the model file carries one, else None."""
    return {
        "file": os.path.basename(model.path or ""),
        "name": model.model_config.name if model.model_config is not None else None,
        "backend": model.backend,
        "au_names": list(au_names),
        "card": model.card,
    }
