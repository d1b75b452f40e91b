"""Reading a MindSpore .ckpt file and the keys under which mindface-au embeds its model config and card.

Below both `models.checkpoint` (strict loading into a network) and `weights.layouts` (recognising checkpoint
layouts), so neither imports the other.
"""

import os
from typing import Any, Dict

from mindface_au.errors import UserError

MODEL_CONFIG_KEY = "mindface_au_model_config"  # JSON of the ModelConfig, stored inside training checkpoints
CARD_KEY = "mindface_au_model_card"  # the model card (JSON, mindface_au.model_card), and the card field of exports


def read_checkpoint(path: str) -> Dict[str, Any]:
    """Read a MindSpore .ckpt into {name: Parameter}, with a one-line error for a missing or broken file."""
    import mindspore as ms  # here, so that the keys above import without MindSpore (model_card uses them)

    if not os.path.isfile(path):
        raise UserError(f"{path}: checkpoint not found")
    try:
        return ms.load_checkpoint(path)
    except Exception as exc:  # noqa: BLE001 - MindSpore raises ValueError/RuntimeError for corrupt files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: not a readable MindSpore checkpoint ({first})") from exc
