"""Typed run configuration: a YAML file (or a packaged config by name) plus `section.key=value` overrides.

- `schema`: one dataclass per section (model, loss, data, train, eval) and the key-by-key type check; an unknown
  key or a wrong type is a UserError naming the key and the valid ones.
- `loading`: the safe YAML reader, packaged-config lookup, `load_config`, `section_from_dict`, saving.
- `rules`: the RANGES table, the cross-field checks (`validate`, `validate_model_config`) and the defaults that
  follow data.format. The data formats are mindface_au.data.registry; the IResNet depths mindface_au.models.specs.

Everything is importable from `mindface_au.config`, as before the split.
"""

from mindface_au.config.loading import (
    CONFIG_DIR,
    MAX_CONFIG_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    config_description,
    config_to_dict,
    dump_config,
    load_config,
    packaged_configs,
    parse_override,
    read_config_text,
    resolve_config,
    save_config,
    section_from_dict,
)
from mindface_au.config.rules import (
    JIT_LEVELS,
    RANGES,
    SINK_MODES,
    TRAIN_PRELU_FORMS,
    check_ranges,
    format_defaults,
    validate,
    validate_model_config,
)
from mindface_au.config.schema import (
    AU_NAMES,
    RARE_AUS,
    Config,
    DataConfig,
    EvalConfig,
    LossConfig,
    ModelConfig,
    TrainConfig,
)
from mindface_au.data.registry import (
    CROPS,
    DATA_FORMATS,
    FOLD_SPLITS,
    FORMAT_AU_SETS,
    FORMAT_CROPS,
    NUM_FOLDS,
    format_au_names,
)
from mindface_au.models.specs import IRESNET_LAYERS

__all__ = [
    "AU_NAMES",
    "RARE_AUS",
    "IRESNET_LAYERS",
    "NUM_FOLDS",
    "FOLD_SPLITS",
    "CONFIG_DIR",
    "ModelConfig",
    "LossConfig",
    "DataConfig",
    "TrainConfig",
    "EvalConfig",
    "Config",
    "SINK_MODES",
    "JIT_LEVELS",
    "TRAIN_PRELU_FORMS",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_CONFIG_BYTES",
    "read_config_text",
    "parse_override",
    "packaged_configs",
    "config_description",
    "resolve_config",
    "load_config",
    "section_from_dict",
    "format_defaults",
    "validate",
    "RANGES",
    "check_ranges",
    "DATA_FORMATS",
    "FORMAT_AU_SETS",
    "CROPS",
    "FORMAT_CROPS",
    "format_au_names",
    "validate_model_config",
    "config_to_dict",
    "dump_config",
    "save_config",
]
