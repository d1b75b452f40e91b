"""The model loader's former home: it lives in `mindface_au.modelfile.loader` (below the engine); these names stay
importable from here."""

from mindface_au.modelfile.loader import (
    BACKENDS,
    MODEL_INFO_KEY,
    ONNX_EXTRA,
    AUProbabilities,
    InferenceModel,
    build_network,
    checkpoint_model_config,
    inference_network,
    is_backbone,
    load_inference_model,
    model_metadata,
    output_width,
)

__all__ = [
    "MODEL_INFO_KEY",
    "ONNX_EXTRA",
    "BACKENDS",
    "InferenceModel",
    "load_inference_model",
    "AUProbabilities",
    "checkpoint_model_config",
    "is_backbone",
    "output_width",
    "build_network",
    "inference_network",
    "model_metadata",
]
