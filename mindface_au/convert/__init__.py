"""Glint360K (insightface arcface_torch) IResNet checkpoints -> MindSpore, without PyTorch.

`read_torch_state_dict(path)` reads a torch.save zip through a restricted unpickler (tensors and dicts only);
`convert_checkpoint(src, arch, out)` renames, checks and writes the MindSpore checkpoint.
"""

from mindface_au.convert.converter import convert_checkpoint, peak_rss_mb, verify_conversion
from mindface_au.convert.mapping import check_against_model, mindspore_to_torch_name, torch_to_mindspore
from mindface_au.convert.torch_reader import read_torch_file, read_torch_state_dict, unwrap_state_dict

__all__ = [
    "convert_checkpoint",
    "verify_conversion",
    "read_torch_state_dict",
    "read_torch_file",
    "unwrap_state_dict",
    "torch_to_mindspore",
    "mindspore_to_torch_name",
    "check_against_model",
    "peak_rss_mb",
]
