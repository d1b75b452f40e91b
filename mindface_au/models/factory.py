"""`create_model`: build a registered model by name and optionally load a local checkpoint strictly."""

from typing import Optional

from mindspore import nn

from mindface_au.errors import UserError
from mindface_au.models.checkpoint import load_checkpoint_strict
from mindface_au.models.registry import get_default_cfg, get_model_factory
from mindface_au.utils.device import prefer_gemm_convolutions


def create_model(name: str, checkpoint_path: Optional[str] = None, pretrained: bool = False, **kwargs) -> nn.Cell:
    """Build model `name`; with `checkpoint_path` load it strictly (and, if `pretrained`, check its sha256).

    No download ever happens: `pretrained=True` needs a local `checkpoint_path`. Sets the oneDNN cap first
    (`prefer_gemm_convolutions`), so Python users who never call `init_context` get fast CPU convolutions too.
    """
    prefer_gemm_convolutions()
    net = get_model_factory(name)(**kwargs)
    net.default_cfg = get_default_cfg(name)
    if pretrained and not checkpoint_path:
        raise UserError(f"model {name}: pretrained=True needs checkpoint_path (weights are never downloaded)")
    if checkpoint_path:
        expected = net.default_cfg.get("sha256") if pretrained else None
        load_checkpoint_strict(net, checkpoint_path, sha256=expected)
    return net
