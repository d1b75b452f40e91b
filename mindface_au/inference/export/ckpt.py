"""CKPT export: a model-zoo release file (mindface_au.release names it) and its recipe, from a training checkpoint.

`{model}_{spec}-{sha256[:8]}.ckpt` in folder `out` (spec: the recipe's name), with the recipe (the resolved
config YAML, `{model}_{spec}.yaml`) beside it. It holds the network's parameters only (float32; no optimiser
moments, learning rate or step counters) and the embedded ModelConfig, so `create_model`, `load_inference_model`,
`eval` and `detect` load it like a training checkpoint. The hash is of the file's bytes as written.
"""

import dataclasses
import os
from typing import Optional, Union

import numpy as np

from mindface_au.config import Config
from mindface_au.errors import UserError, param
from mindface_au.inference.export.checks import check_out, check_source
from mindface_au.release import SPEC_CHARS, check_spec, recipe_name, release_name, release_stem, safe_spec
from mindface_au.utils.io import atomic_file, share

__all__ = ["default_spec", "export_release"]

# where a run read its data and wrote its files, not how it trained: ignored when matching packaged recipes
_WHERE_KEYS = {"data": ("root", "folds_file", "num_workers", "eval_batch_size"), "train": ("out_dir", "device")}


def _recipe_key(cfg: Config) -> dict:
    from mindface_au.config import config_to_dict

    data = config_to_dict(cfg)
    for section, keys in _WHERE_KEYS.items():
        for key in keys:
            data[section].pop(key, None)
    return data


def default_spec(recipe: Config, name_or_path: str = "") -> str:
    """The recipe's name, filename-safe: the packaged config `name_or_path` names; else the packaged config that
    `recipe` equals apart from the `_WHERE_KEYS` (data root, output folder, ...); else the YAML file's stem (its
    folder's name for a run's `config.yaml`). "" when none applies."""
    from mindface_au.config import load_config, packaged_configs

    packaged = packaged_configs()
    if name_or_path and not os.path.isfile(name_or_path):
        name = name_or_path[: -len(".yaml")] if name_or_path.endswith(".yaml") else name_or_path
        full = [n for n in packaged if n == name or n.rsplit("/", 1)[-1] == name]
        if full:
            return full[0].rsplit("/", 1)[-1]
    wanted = _recipe_key(recipe)
    matches = [n for n, path in packaged.items() if _recipe_key(load_config(path)) == wanted]
    if len(matches) == 1:
        return matches[0].rsplit("/", 1)[-1]
    if not name_or_path:
        return ""
    stem = os.path.splitext(os.path.basename(name_or_path))[0]
    if stem == "config":  # a run's config.yaml: the run folder names the recipe
        stem = os.path.basename(os.path.dirname(os.path.abspath(name_or_path)))
    return safe_spec(stem)


def _release_weights(net, params: dict, path: str) -> dict:
    """{name: float32 array} of `net`'s parameters, loaded strictly from `params` read from checkpoint `path`.

    Optimiser slots (`moments.X`, `adam_m.X`, ... for a parameter X of `net`) and top-level scalars (learning
    rate, momentum, global_step, epoch_num) are dropped; any other entry that is not a parameter of `net` is an
    error (load_params_strict), so nothing unknown is silently left behind.
    """
    import mindspore as ms

    from mindface_au.models.checkpoint import load_params_strict

    own = {name for name, _ in net.parameters_and_names()}
    kept = {}
    for name, value in params.items():
        if not isinstance(value, ms.Parameter):
            continue  # embedded strings: the model config, resume's best-epoch record
        rest = name.partition(".")[2]
        if name not in own and (not rest or rest in own):
            continue  # optimiser state or a counter
        array = value.asnumpy()
        if np.issubdtype(array.dtype, np.floating) and array.dtype != np.float32:
            array = array.astype(np.float32)  # AMP float16 weights
        kept[name] = ms.Parameter(ms.Tensor(array), name=name)
    load_params_strict(net, kept, path)
    return {name: p.asnumpy().astype(np.float32, copy=False) for name, p in net.parameters_and_names()}


def export_release(
    ckpt: str,
    out_dir: str,
    recipe: Union[None, str, Config],
    spec: Optional[str] = None,
    device: str = "auto",
) -> dict:
    """Write the model-zoo release of training checkpoint `ckpt` into folder `out_dir`:
    `{model}_{spec}-{sha256[:8]}.ckpt` (network parameters only, float32, ModelConfig embedded) and the recipe
    `{model}_{spec}.yaml` beside it.

    `recipe`: the config the run was trained with (a YAML path or packaged name, or a Config); its model section
    must be the checkpoint's. `spec` defaults to `default_spec(recipe)`. Everything is checked before anything is
    written; the checkpoint goes to a temporary file that is hashed and then renamed (utils.io.atomic_file).
    Returns {"out", "recipe", "sha256", "model", "spec", "tensors", "bytes", "source_bytes"}.
    """
    from mindface_au.config import load_config, save_config
    from mindface_au.inference.model_file import read_model_file
    from mindface_au.model_card import run_settings
    from mindface_au.models import build_network
    from mindface_au.models.checkpoint import save_checkpoint_atomic, sha256_file
    from mindface_au.utils.device import init_context

    check_out(out_dir, "CKPT")
    check_source(ckpt)
    init_context(device)
    recipe_cfg = load_config(recipe) if isinstance(recipe, str) else recipe
    mf = read_model_file(ckpt, recipe_cfg)
    model_cfg = mf.model_config
    if recipe_cfg is None:
        raise UserError(
            f"{ckpt}: no recipe: not in a run folder's checkpoints/ beside its config.yaml; give the config "
            "the run was trained with (recipe)"
        )
    trained = dataclasses.asdict(dataclasses.replace(recipe_cfg.model, backbone_checkpoint=""))
    differ = [k for k, v in dataclasses.asdict(model_cfg).items() if trained[k] != v]
    if differ:
        key = differ[0]
        raise UserError(
            f"{param('config')}: model.{key} is {trained[key]!r} but {ckpt} "
            f"was trained with {getattr(model_cfg, key)!r}; "
            "give the config the run was trained with"
        )
    if spec is None or spec == "":
        spec = default_spec(recipe_cfg, recipe if isinstance(recipe, str) else "")
        if not spec:
            raise UserError(
                f"{param('spec')}: the recipe's name could not be derived from the "
                f"config; give {param('spec')} ({SPEC_CHARS})"
            )
    else:
        check_spec(spec)
    net = build_network(model_cfg, load_backbone=False)
    weights = _release_weights(net, mf.params, ckpt)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{param('out')} {out_dir}: cannot create the folder ({exc.strerror})") from exc
    card = mf.card  # the model card travels into the release file; a card from before it held the settings
    if card is not None and "eval" not in card:  # gets the recipe's (what the run was validated with)
        card = {**card, **run_settings(model_cfg, recipe_cfg.eval, recipe_cfg.data.crop)}
    yaml_path = os.path.join(out_dir, recipe_name(model_cfg.name, spec))
    with atomic_file(os.path.join(out_dir, release_stem(model_cfg.name, spec) + ".ckpt")) as release:
        save_checkpoint_atomic(weights, release.tmp, model_config=dataclasses.asdict(model_cfg), card=card)
        sha256 = sha256_file(release.tmp)
        release.path = os.path.join(out_dir, release_name(model_cfg.name, spec, sha256))
        save_config(recipe_cfg, yaml_path)
        share(release.tmp)  # MindSpore leaves checkpoints owner-read-only; a release is shared
    return {
        "out": release.path,
        "recipe": yaml_path,
        "sha256": sha256,
        "model": model_cfg.name,
        "spec": spec,
        "tensors": len(weights),
        "bytes": os.path.getsize(release.path),
        "source_bytes": os.path.getsize(ckpt),
    }
