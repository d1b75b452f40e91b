"""`create_model`: build a registered model by name and optionally load a local checkpoint strictly."""

import os
import re
from dataclasses import fields
from typing import Optional

from mindspore import nn

from mindface_au.config import ModelConfig, section_from_dict
from mindface_au.errors import UserError
from mindface_au.models.checkpoint import (
    MODEL_CONFIG_KEY,
    load_checkpoint_strict,
    read_checkpoint_contents,
    sha256_file,
)
from mindface_au.models.registry import get_default_cfg, get_model_factory
from mindface_au.utils.device import prefer_gemm_convolutions
from mindface_au.weights.torch_reader import is_torch_file

BACKBONE_KEYS = ("widths", "layers", "embedding_size", "input_size", "dropout")  # what a bare IResNet takes

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


def _stored_arguments(name: str, path: str, contents, kwargs: dict) -> dict:
    """The constructor arguments of model `name` for checkpoint `path`: the file's embedded model config when it
    has one (the architecture it holds must be `name`, and any given argument must agree with it), else `kwargs`.
    """
    stored = contents.json(MODEL_CONFIG_KEY) if contents is not None else None
    if stored is None:
        return kwargs
    held = stored.get("name")
    if held != name:
        raise UserError(
            f"create_model({name!r}): {path} holds the network {held}, not {name}; build it with "
            f"create_model({held!r}, checkpoint_path=...) or mindface_au.inference.model_file.read_model_file(path)"
            ".build_network()"
        )
    try:
        model_cfg = section_from_dict("model", {k: v for k, v in stored.items() if k != "backbone_checkpoint"})
    except UserError as exc:
        raise UserError(f"{path}: embedded: {exc}") from exc
    keys = BACKBONE_KEYS if name.startswith("iresnet") else [f.name for f in fields(ModelConfig) if f.name != "name"]
    arguments = {key: getattr(model_cfg, key) for key in keys if key != "backbone_checkpoint"}
    for key, value in kwargs.items():
        if key in arguments and value != arguments[key] and not (key == "num_classes" and value == 0):
            raise UserError(
                f"create_model({name!r}, {key}={value!r}): {path} holds {name} with {key}={arguments[key]!r}; "
                "leave the argument out (the file's model config is used) or give its value"
            )
    return {**arguments, **{k: v for k, v in kwargs.items() if k not in arguments}}


def create_model(name: str, checkpoint_path: Optional[str] = None, pretrained: bool = False, **kwargs) -> nn.Cell:
    """Build model `name`; with `checkpoint_path` load it strictly (and, if `pretrained`, check its sha256).

    No download ever happens: `pretrained=True` needs a local `checkpoint_path`. A file named like a mindcv
    release, `{model}_{spec}-{sha256[:8]}.ckpt`, is checked against the hash in its name first. A checkpoint with
    an embedded model config (training checkpoints, release files) gives the constructor arguments itself: it
    must hold a `name` network (else a one-line refusal naming both) and any argument given must match it. To
    build from a file without naming the model: `mindface_au.inference.model_file.read_model_file(path)
    .build_network()`. Sets the oneDNN cap first (`prefer_gemm_convolutions`), so Python users who never call
    `init_context` get fast CPU convolutions.
    """
    prefer_gemm_convolutions()
    factory = get_model_factory(name)
    if pretrained and not checkpoint_path:
        raise UserError(f"model {name}: pretrained=True needs checkpoint_path (weights are never downloaded)")
    contents = None
    if checkpoint_path:
        check_release_hash(checkpoint_path)
        if not os.path.isfile(checkpoint_path) or not is_torch_file(checkpoint_path):  # read once, used twice
            contents = read_checkpoint_contents(checkpoint_path)
        kwargs = _stored_arguments(name, checkpoint_path, contents, kwargs)
    net = factory(**kwargs)
    net.default_cfg = get_default_cfg(name)
    if checkpoint_path:
        expected = net.default_cfg.get("sha256") if pretrained else None
        params = contents.params if contents is not None else None
        load_checkpoint_strict(net, checkpoint_path, sha256=expected, params=params)
    return net
