"""The model-file reader's former home: it lives in `mindface_au.modelfile.reader` (below the engine); these names
stay importable from here."""

from mindface_au.modelfile.reader import (
    EVAL_KEYS,
    KINDS,
    MODEL_INFO_KEY,
    ONNX_EXTRA,
    ModelFile,
    apply_model_file,
    check_config,
    onnx_session,
    read_model_file,
)

__all__ = ["MODEL_INFO_KEY", "ONNX_EXTRA", "ModelFile", "read_model_file", "apply_model_file"]
__all__ += ["EVAL_KEYS", "KINDS", "check_config", "onnx_session"]
