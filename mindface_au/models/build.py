"""`build_network`: the one function that builds a network from a model config.

Every place that needs a network for a `ModelConfig` (training, evaluation, export, the loaders, the benchmarks)
calls this, so a new model key (e.g. `au_names`) reaches all of them at once. The config is checked by
`mindface_au.config.validate_model_config`, the one validator of a model section.
"""

import dataclasses

from mindspore import nn

from mindface_au.config import ModelConfig, validate_model_config
from mindface_au.models.factory import BACKBONE_KEYS, create_model

__all__ = ["build_network", "create_model_from_config", "BACKBONE_KEYS"]

_AUNET_KEYS = [f.name for f in dataclasses.fields(ModelConfig) if f.name != "name"]


def build_network(model_cfg: ModelConfig, return_all: bool = False, load_backbone: bool = True) -> nn.Cell:
    """The network a ModelConfig describes: an AUNet (logits, `net.au_names`), or a bare IResNet (`iresnet*`).

    `backbone_checkpoint` is loaded strictly into an AUNet's backbone unless `load_backbone` is False (a trained
    checkpoint about to be loaded holds the backbone already). `return_all` applies to AUNets.
    """
    if model_cfg.name.startswith("aunet_"):
        validate_model_config(model_cfg, aunet=True)
        kwargs = {key: getattr(model_cfg, key) for key in _AUNET_KEYS}
        if not load_backbone:
            kwargs["backbone_checkpoint"] = ""
        return create_model(model_cfg.name, return_all=return_all, **kwargs)
    validate_model_config(model_cfg)
    return create_model(model_cfg.name, **{key: getattr(model_cfg, key) for key in BACKBONE_KEYS})


def create_model_from_config(model_cfg: ModelConfig, return_all: bool = False) -> nn.Cell:
    """Build the AUNet a ModelConfig describes and load `backbone_checkpoint` (strictly); see `build_network`."""
    validate_model_config(model_cfg, aunet=True)
    return build_network(model_cfg, return_all=return_all)
