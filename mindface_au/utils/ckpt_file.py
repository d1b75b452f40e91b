"""Reading a MindSpore .ckpt file and the key under which mindface-au embeds its model config.

Below both `models.checkpoint` (strict loading into a network) and `weights.layouts` (recognising checkpoint
layouts), so neither imports the other.
"""

import os
from typing import Dict

import mindspore as ms

from mindface_au.errors import UserError

MODEL_CONFIG_KEY = "mindface_au_model_config"  # JSON of the ModelConfig, stored inside training checkpoints


def read_checkpoint(path: str) -> Dict[str, ms.Parameter]:
    """Read a MindSpore .ckpt into {name: Parameter}, with a one-line error for a missing or broken file."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: checkpoint not found")
    try:
        return ms.load_checkpoint(path)
    except Exception as exc:  # noqa: BLE001 - MindSpore raises ValueError/RuntimeError for corrupt files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: not a readable MindSpore checkpoint ({first})") from exc
