"""Model registry in the mindcv/timm style: factories register by name, `create_model` builds by name."""

import fnmatch
import os
from typing import Callable, Dict, List, Optional

from mindface_au.data.transforms import ARCFACE_MEAN, ARCFACE_STD, FaceInput, make_face_input
from mindface_au.errors import UserError
from mindface_au.models.specs import BUILTIN_MODELS

_MODELS: Dict[str, Callable] = {}
_DEFAULT_CFGS: Dict[str, dict] = {}


def register_model(fn: Callable = None, *, name: str = None, default_cfg: dict = None):
    """Register a model factory under its function name (or `name`), with an optional default config."""

    def wrap(factory: Callable) -> Callable:
        key = name or factory.__name__
        if key in _MODELS:
            if _same_function(_MODELS[key], factory):
                return factory  # the defining module imported again under another name (MindSpore AMP O1)
            raise ValueError(f"model {key!r} is registered twice")
        _MODELS[key] = factory
        _DEFAULT_CFGS[key] = dict(default_cfg or {})
        return factory

    return wrap(fn) if fn is not None else wrap


def _same_function(a: Callable, b: Callable) -> bool:
    """True if `a` and `b` are one definition run twice: same qualified name, same source file and line.

    MindSpore's amp_level O1 rewrites the network into generated modules that import the model modules again
    under their bare names (`from aunet import AUNet`), which re-runs their registrations.
    """
    code_a, code_b = getattr(a, "__code__", None), getattr(b, "__code__", None)
    if code_a is None or code_b is None:
        return False
    return (
        a.__qualname__ == b.__qualname__
        and os.path.realpath(code_a.co_filename) == os.path.realpath(code_b.co_filename)
        and code_a.co_firstlineno == code_b.co_firstlineno
        and a.__defaults__ == b.__defaults__  # factories made in one loop differ by their bound defaults
    )


def list_models(pattern: str = "*") -> List[str]:
    """Registered model names matching a shell-style pattern, sorted."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def is_model(name: str) -> bool:
    return name in _MODELS


def get_model_factory(name: str) -> Callable:
    if name not in _MODELS:
        raise UserError(f"unknown model {name!r}; registered models: {', '.join(list_models())}")
    return _MODELS[name]


def get_default_cfg(name: str) -> dict:
    """The model's default config (input size, normalisation, checkpoint file name and hash, ...)."""
    get_model_factory(name)
    return dict(_DEFAULT_CFGS[name])


def face_input(model_cfg=None, size: Optional[int] = None) -> FaceInput:
    """The FaceInput of a model: `model_cfg` a ModelConfig (or None: the default model); `size` overrides its side.

    The side is `model_cfg.input_size`; mean and std come from the registered model's default config, or for a
    built-in model not yet registered (`specs.BUILTIN_MODELS`) the ArcFace normalisation they all use, so this
    does not import the model modules (they import the registry).
    """
    from mindface_au.config import ModelConfig

    model_cfg = model_cfg if model_cfg is not None else ModelConfig()
    name = model_cfg.name
    if name in _MODELS:
        cfg = get_default_cfg(name)
        mean, std = cfg["mean"], cfg["std"]
    elif name in BUILTIN_MODELS:
        mean, std = ARCFACE_MEAN, ARCFACE_STD
    else:
        known = sorted(set(list_models()) | set(BUILTIN_MODELS))
        raise UserError(f"unknown model {name!r}; registered models: {', '.join(known)}")
    return make_face_input(size if size is not None else model_cfg.input_size, mean, std)


def default_face_input(size: int) -> FaceInput:
    """FaceInput of the default model at side `size`."""
    return face_input(None, size=size)
