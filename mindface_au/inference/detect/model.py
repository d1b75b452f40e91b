"""What detect needs of a model (`DetectModel`), and what it records about one (AU names, card, sha256, threshold).

`mindface_au.inference.loader.InferenceModel` is such a model; a `Predictor` is taken through the InferenceModel
it wraps (`detect_model`, by the `ModelWrapper` protocol: detect does not import the Predictor above it). A model
with an intensity head names its intensity AUs (`intensity_au_names`) and gives (probabilities, intensities) from
`predict_outputs`; `model_outputs` asks any model for both.
"""

import os
from typing import Any, List, Optional, Protocol, Sequence, Tuple, runtime_checkable

import numpy as np

from mindface_au.errors import UserError
from mindface_au.inference.detect.options import DEFAULT_THRESHOLD

__all__ = [
    "DetectModel",
    "ModelWrapper",
    "detect_model",
    "model_au_names",
    "model_intensity_au_names",
    "model_outputs",
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
    intensity_au_names: List[str]  # the AUs of the intensity head's outputs; empty: no head
    card: Optional[dict]  # the model card; None for a file from before cards
    model_config: Any  # ModelConfig
    face_input: Any  # FaceInput: size, mean, std
    file: Any  # the ModelFile it was read from (eval settings); None for a model built in memory

    @property
    def sha256(self) -> Optional[str]: ...

    def predict(self, x: np.ndarray, pad: bool = False) -> np.ndarray: ...

    def predict_outputs(self, x: np.ndarray, pad: bool = False) -> Tuple[np.ndarray, Optional[np.ndarray]]: ...

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


def model_intensity_au_names(model: DetectModel) -> List[str]:
    """The AUs a model gives intensities for; empty for a model without the intensity head (or one that predates
    it and has no such attribute)."""
    return [str(a) for a in (getattr(model, "intensity_au_names", None) or [])]


def model_outputs(model: DetectModel, x: np.ndarray, pad: bool = False) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(probabilities (N, C), intensities (N, K) or None) of a batch: `predict_outputs` where the model has it,
    else `predict` and no intensities. Intensities are checked against the model's intensity AUs: a model that
    names K intensity AUs must give K columns, one that names none must give none."""
    if not hasattr(model, "predict_outputs"):
        probs, intensities = model.predict(x, pad=pad), None
    else:
        probs, intensities = model.predict_outputs(x, pad=pad)
    names = model_intensity_au_names(model)
    if intensities is None:
        if names:
            raise UserError(f"{model.path}: names intensity AUs {names} but gave no intensity output")
        return probs, None
    intensities = np.asarray(intensities, dtype=np.float32)
    if intensities.ndim != 2 or intensities.shape != (len(probs), len(names)):
        raise UserError(
            f"{model.path}: intensity output of shape {intensities.shape}, expected ({len(probs)}, {len(names)}) "
            f"for its intensity AUs {names}"
        )
    return probs, intensities


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
    """What is known about the model that made a CSV: its file, backend and AU set (and its intensity AUs, for a
    model with the intensity head); `card` is the model's own description (training data, AU set) when the model
    file carries one, else None."""
    out = {
        "file": os.path.basename(model.path or ""),
        "name": model.model_config.name if model.model_config is not None else None,
        "backend": model.backend,
        "au_names": list(au_names),
    }
    intensity = model_intensity_au_names(model)
    if intensity:
        out["intensity_au_names"] = intensity
    out["card"] = model.card
    return out
