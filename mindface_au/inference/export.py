"""Export a trained AU network to MindIR for deployment (MindSpore Lite, `nn.GraphCell`, `mindface-au detect`).

The exported graph takes a fixed batch of (B, 3, S, S) float32 normalised RGB faces ((x - 127.5) / 127.5) and
returns (B, 12) sigmoid probabilities. Its metadata (MindIR user_info key "mindface_au", JSON) records the input
size, batch size, AU names and the ModelConfig, so `Predictor` needs no other file. The batch is fixed because a
dynamic batch dimension fails to export with the transformer fusion layers.
"""

import dataclasses
import json
import os
from typing import Union

import mindspore as ms
import numpy as np

from mindface_au.config import AU_NAMES, Config, ModelConfig
from mindface_au.errors import UserError
from mindface_au.utils.io import atomic_path

__all__ = ["export_mindir", "FORMATS"]

FORMATS = ("MINDIR",)


def export_mindir(
    ckpt: str,
    out: str,
    config: Union[None, str, Config, ModelConfig] = None,
    batch_size: int = 8,
    device: str = "auto",
) -> dict:
    """Rebuild the network of `ckpt` (embedded or given config), load it strictly and write `out` (.mindir).

    Returns the metadata stored in the file.
    """
    from mindface_au.inference.predictor import MINDIR_INFO_KEY, Predictor

    if batch_size < 1:
        raise UserError(f"--batch-size: got {batch_size}, expected a positive integer")
    if not out.lower().endswith(".mindir"):
        raise UserError(f"--out {out}: expected a file name ending in .mindir")
    if os.path.isdir(out):
        raise UserError(f"--out {out}: is a folder; give a .mindir file name")
    if ckpt.lower().endswith(".mindir"):
        raise UserError(f"--ckpt {ckpt}: already a MindIR file; export needs a training checkpoint (.ckpt)")
    predictor = Predictor(ckpt, device=device, config=config, batch_size=batch_size)
    model_cfg = predictor.model_config
    info = {
        "format_version": 1,
        "input_size": predictor.input_size,
        "batch_size": int(batch_size),
        "input": "float32 (B, 3, S, S) RGB normalised as (x - 127.5) / 127.5",
        "output": "float32 (B, 12) AU probabilities (sigmoid)",
        "au_names": list(AU_NAMES),
        "model": dataclasses.asdict(model_cfg),
        "source_checkpoint": os.path.basename(ckpt),
    }
    dummy = ms.Tensor(np.zeros((batch_size, 3, predictor.input_size, predictor.input_size), np.float32))

    def add_info(proto) -> None:
        proto.user_info[MINDIR_INFO_KEY] = json.dumps(info)

    with atomic_path(out) as tmp:
        ms.export(predictor.net, dummy, file_name=tmp, file_format="MINDIR", custom_func=add_info)
        if not os.path.isfile(tmp) or os.path.getsize(tmp) == 0:
            raise UserError(f"--out {out}: MindSpore wrote no MindIR file")
    return info
