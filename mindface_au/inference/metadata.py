"""The export metadata schema's former home: it lives in `mindface_au.modelfile.metadata` (below the engine);
these names stay importable from here."""

from mindface_au.modelfile.metadata import (
    FORMAT_VERSION,
    MODEL_INFO_KEY,
    OUTPUT_NAMES,
    encode_metadata,
    intensity_names,
    is_backbone,
    model_metadata,
    output_width,
    parse_metadata,
    stored_settings,
)

__all__ = ["MODEL_INFO_KEY", "FORMAT_VERSION", "is_backbone", "output_width", "model_metadata"]
__all__ += ["intensity_names", "OUTPUT_NAMES", "encode_metadata", "parse_metadata", "stored_settings"]
