"""Model-zoo IResNet checkpoints (insightface, arcface_torch, MindFace) -> MindSpore, without PyTorch.

`read_backbone_state(path)` recognises the layout (`ACCEPTED`) and takes out the backbone; torch.save files are
read through a restricted unpickler (tensors, containers and numbers only). `convert_checkpoint(src, arch, out)`
checks the backbone against the MindSpore network and writes the checkpoint.
"""

from mindface_au.convert.converter import convert_checkpoint, peak_rss_mb, verify_conversion
from mindface_au.weights.layouts import (
    ACCEPTED,
    BackboneState,
    read_backbone_state,
    read_torch_state_dict,
    select_state_dict,
)
from mindface_au.weights.mapping import check_against_model, mindspore_to_torch_name, torch_to_mindspore
from mindface_au.weights.torch_reader import read_torch_file

__all__ = [
    "ACCEPTED",
    "BackboneState",
    "convert_checkpoint",
    "verify_conversion",
    "read_backbone_state",
    "read_torch_state_dict",
    "read_torch_file",
    "select_state_dict",
    "torch_to_mindspore",
    "mindspore_to_torch_name",
    "check_against_model",
    "peak_rss_mb",
]
