"""`create_model`: build a registered model by name and optionally load a local checkpoint strictly."""

import os
import re
from typing import Optional

from mindspore import nn

from mindface_au.errors import UserError
from mindface_au.models.checkpoint import load_checkpoint_strict, sha256_file
from mindface_au.models.registry import get_default_cfg, get_model_factory
from mindface_au.utils.device import prefer_gemm_convolutions

# mindcv's release names: {model}_{spec}-{first 8 hex digits of the file's sha256}.ckpt
_RELEASE_NAME = re.compile(r"^.+-([0-9a-f]{8})\.ckpt$")


def check_release_hash(path: str) -> Optional[str]:
    """If `path`'s file name carries a mindcv-style hash, check it against the file; the hash, or None if none."""
    match = _RELEASE_NAME.match(os.path.basename(path))
    if not match or not os.path.isfile(path):
        return None
    actual = sha256_file(path)[:8]
    if actual != match.group(1):
        raise UserError(
            f"{path}: the file name says sha256 {match.group(1)}..., the file's sha256 is {actual}... "
            "(a corrupt or renamed release file)"
        )
    return actual


def create_model(name: str, checkpoint_path: Optional[str] = None, pretrained: bool = False, **kwargs) -> nn.Cell:
    """Build model `name`; with `checkpoint_path` load it strictly (and, if `pretrained`, check its sha256).

    No download ever happens: `pretrained=True` needs a local `checkpoint_path`. A file named like a mindcv
    release, `{model}_{spec}-{sha256[:8]}.ckpt`, is checked against the hash in its name first. Sets the oneDNN
    cap first (`prefer_gemm_convolutions`), so Python users who never call `init_context` get fast CPU convolutions.
    """
    prefer_gemm_convolutions()
    net = get_model_factory(name)(**kwargs)
    net.default_cfg = get_default_cfg(name)
    if pretrained and not checkpoint_path:
        raise UserError(f"model {name}: pretrained=True needs checkpoint_path (weights are never downloaded)")
    if checkpoint_path:
        check_release_hash(checkpoint_path)
        expected = net.default_cfg.get("sha256") if pretrained else None
        load_checkpoint_strict(net, checkpoint_path, sha256=expected)
    return net
