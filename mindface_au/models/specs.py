"""The IResNet depths as data: blocks per stage (insightface's iresnet.py). One table for the MindSpore model, the
config validator, the converter and the PyTorch reference; it imports nothing, so the config reads it without
MindSpore or PyTorch."""

from typing import Dict, Tuple

__all__ = ["BUILTIN_MODELS", "IRESNET_LAYERS"]

IRESNET_LAYERS: Dict[str, Tuple[int, int, int, int]] = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
    "iresnet200": (6, 26, 60, 6),
}

# Every built-in model name: the backbones (iresnet.py) and the AUNet on each (aunet.py). They all take ArcFace
# faces (`data.transforms.ARCFACE_MEAN` / `ARCFACE_STD`), so the registry knows their face input without
# importing the modules that register them.
BUILTIN_MODELS: Tuple[str, ...] = tuple(IRESNET_LAYERS) + tuple(f"aunet_{arch}" for arch in IRESNET_LAYERS)
