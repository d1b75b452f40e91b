"""Model zoo: IResNet backbones and the AU detection network, built by name through the registry.

The names below are imported on first use (they import MindSpore), so `mindface_au.models.specs` (the IResNet
depths) stays importable by the config without MindSpore. Using any of them registers every built-in model.
"""

import importlib

_EXPORTS = {
    "create_model": "factory",
    "list_models": "registry",
    "register_model": "registry",
    "get_default_cfg": "registry",
    "face_input": "registry",
    "default_face_input": "registry",
    "IResNet": "iresnet",
    "create_iresnet": "iresnet",
    "AUNet": "aunet",
    "create_aunet": "aunet",
    "create_model_from_config": "build",
    "build_network": "build",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        importlib.import_module("mindface_au.models.aunet")  # registers iresnet18 ... and aunet_iresnet18 ...
        return getattr(importlib.import_module(f"mindface_au.models.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'mindface_au.models' has no attribute {name!r}")
