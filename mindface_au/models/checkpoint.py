"""Strict checkpoint I/O: every parameter loaded with the right shape, or an error naming the ones that were not."""

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from typing import Dict, Optional

import mindspore as ms
import numpy as np
from mindspore import nn

from mindface_au.errors import UserError, fit_problems, listing
from mindface_au.utils.ckpt_file import MODEL_CONFIG_KEY, read_checkpoint  # noqa: F401 (re-exported)
from mindface_au.utils.io import atomic_path

logger = logging.getLogger(__name__)


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_finite(params: Dict, source: str) -> None:
    """Refuse parameters that are not numbers (NaN or Inf), naming the first: such a model predicts nothing."""
    for name, value in params.items():
        if not isinstance(value, (ms.Parameter, ms.Tensor, np.ndarray)):
            continue
        array = value.asnumpy() if hasattr(value, "asnumpy") else value
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            bad = int((~np.isfinite(array)).sum())
            raise UserError(f"{source}: parameter {name} has {bad} non-finite value(s) (NaN/Inf); the model is broken")


def load_params_strict(
    net: nn.Cell, params: Dict[str, ms.Parameter], source: str, prefix: str = "", ignore_extra: bool = False
) -> None:
    """Load `params` into `net` (names under `prefix`), failing on any missing, unexpected or mis-shaped one."""
    own = {name: p for name, p in net.parameters_and_names() if name.startswith(prefix)}
    wanted = {
        prefix + k: v
        for k, v in params.items()
        if isinstance(v, ms.Parameter) and not k.startswith(("global_step", "learning_rate", "epoch_num", "step_num"))
    }
    wanted = {k: v for k, v in wanted.items() if not k.startswith(prefix + "moments.")}  # optimiser state
    missing = set(own) - set(wanted)
    unexpected = set() if ignore_extra else set(wanted) - set(own)
    mismatched = [
        f"{name} {tuple(wanted[name].shape)} vs model {tuple(own[name].shape)}"
        for name in sorted(set(own) & set(wanted))
        if tuple(wanted[name].shape) != tuple(own[name].shape)
    ]
    problems = fit_problems(missing, unexpected, mismatched)
    if problems:
        raise UserError(f"{source}: checkpoint does not fit the model ({problems})")
    # float16 weights (a network cast for AMP O2/O3, or saved so) load into the float32 network as float32
    to_load = {k: _as_dtype(wanted[k], own[k].dtype) for k in own}
    check_finite(to_load, source)
    not_loaded, _ = ms.load_param_into_net(net, to_load, strict_load=True)
    not_loaded = [name for name in not_loaded if name.startswith(prefix)]  # only the prefixed part was asked for
    if not_loaded:
        raise UserError(f"{source}: parameters not loaded: {listing(not_loaded)}")


def _as_dtype(param: ms.Parameter, dtype) -> ms.Parameter:
    """`param` cast to `dtype` when both are floating point and differ (float16/bfloat16 -> float32); else as is."""
    floats = (ms.float16, ms.bfloat16, ms.float32, ms.float64)
    if param.dtype == dtype or param.dtype not in floats or dtype not in floats:
        return param
    return ms.Parameter(param.astype(dtype), name=param.name, requires_grad=param.requires_grad)


def load_checkpoint_strict(
    net: nn.Cell, path: str, prefix: str = "", sha256: Optional[str] = None, params: Optional[Dict] = None
) -> str:
    """Load a checkpoint file into `net` strictly; check its sha256 when one is given. Returns the layout's name.

    Besides MindSpore checkpoints of `net` itself, a backbone (`prefix` "") also loads from the model-zoo
    layouts in `mindface_au.weights.layouts.ACCEPTED`: torch.save files (read without PyTorch) and MindFace
    `_backbone.*` checkpoints, mapped to `net`'s names and cast to float32 first. `params`: the file's contents
    when already read (`read_checkpoint_contents(path).params`), so the file is not read again.
    """
    if sha256 is not None and os.path.isfile(path):
        actual = sha256_file(path)
        if actual != sha256:
            raise UserError(f"{path}: sha256 {actual} does not match the expected {sha256}")
    from mindface_au.weights.layouts import MINDFACE, mindspore_backbone_state, mindspore_layout, read_backbone_state
    from mindface_au.weights.torch_reader import is_torch_file

    if params is None and prefix == "" and os.path.isfile(path) and is_torch_file(path):
        state = read_backbone_state(path)
    else:
        params = read_checkpoint(path) if params is None else params
        layout = mindspore_layout(params) if prefix == "" else "MindSpore checkpoint"
        if layout != MINDFACE:  # a checkpoint of `net` itself: loaded as saved
            load_params_strict(net, params, path, prefix=prefix)
            logger.info("%s: layout: %s", path, layout)
            return layout
        state = mindspore_backbone_state(params, path)
    state.check({name: tuple(p.shape) for name, p in net.parameters_and_names()}, path, f"the model ({state.layout})")
    params = {name: ms.Parameter(ms.Tensor(array), name=name) for name, array in state.arrays.items()}
    load_params_strict(net, params, f"{path} ({state.layout})")
    logger.info("%s: layout: %s", path, state.layout)
    return state.layout


def save_checkpoint_atomic(
    params, path: str, model_config: Optional[dict] = None, extra: Optional[dict] = None, card: Optional[dict] = None
) -> None:
    """Save a Cell, or {name: array}, to `path` via a temporary file and rename.

    `model_config` (a ModelConfig as dict) is embedded so a checkpoint alone rebuilds its network;
    `extra` holds scalars such as epoch numbers; `card` is the model card (mindface_au.model_card).
    """
    if isinstance(params, dict):
        params = [{"name": k, "data": ms.Tensor(np.asarray(v))} for k, v in params.items()]
    append = dict(extra or {})
    if model_config is not None:
        append[MODEL_CONFIG_KEY] = json.dumps(model_config)
    if card is not None:
        from mindface_au.model_card import CARD_KEY

        append[CARD_KEY] = json.dumps(card)
    with atomic_path(path) as tmp:
        ms.save_checkpoint(params, tmp, append_dict=append or None)


# what a training checkpoint holds besides the network: optimiser slots (`moments.X` of SGD/Momentum, `adam_m.X` /
# `adam_v.X` of Adam and AdamWeightDecay, ...) and the step counters and scalars MindSpore or the trainer append
OPTIMIZER_PREFIXES = ("moments.", "adam_m.", "adam_v.", "accum.", "mean_grad.", "mean_square.")
COUNTERS = ("global_step", "learning_rate", "epoch_num", "step_num", "momentum", "beta1_power", "beta2_power")


@dataclass
class CheckpointContents:
    """A .ckpt read once: the network's parameters (no optimiser state, no counters) and the embedded strings
    (model config, model card, resume records), keyed as saved; `dropped` counts the entries left out."""

    params: Dict[str, ms.Parameter]
    embedded: Dict[str, str]
    dropped: int = 0

    def json(self, key: str) -> Optional[dict]:
        """The embedded JSON mapping under `key`, or None when absent or not a mapping."""
        value = self.embedded.get(key)
        if not isinstance(value, str):
            return None
        try:
            data = json.loads(value)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None


def read_checkpoint_contents(path: str) -> CheckpointContents:
    """Read a MindSpore .ckpt once and split it into network parameters and embedded strings."""
    params, embedded, dropped = {}, {}, 0
    for name, value in read_checkpoint(path).items():
        if isinstance(value, str):
            embedded[name] = value
        elif not isinstance(value, ms.Parameter) or name in COUNTERS or name.startswith(OPTIMIZER_PREFIXES):
            dropped += 1
        else:
            params[name] = value
    return CheckpointContents(params, embedded, dropped)


def read_model_config(path: str) -> Optional[dict]:
    """The ModelConfig dict embedded by `save_checkpoint_atomic`, or None for a plain checkpoint."""
    value = read_checkpoint(path).get(MODEL_CONFIG_KEY)
    return json.loads(value) if isinstance(value, str) else None
