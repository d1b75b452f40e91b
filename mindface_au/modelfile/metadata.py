"""The metadata an exported MindIR or ONNX file carries: one JSON object under `MODEL_INFO_KEY` (MindIR user_info,
ONNX metadata_props), so the file alone is enough to run it.

Written by the exporters (mindface_au.inference.export: `model_metadata`, `encode_metadata`), read by the
model-file reader (mindface_au.modelfile.reader: `parse_metadata`, `stored_settings`). Keys, format_version 1:

    format_version, input_size, batch_size (None: a dynamic batch axis), mean, std, input (how to make it),
    output ("probabilities" | "embedding"), out_dim, model (the ModelConfig), source_checkpoint (its file name),
    au_names (AU networks: the AUs of the output columns), card (the model card, None for an older checkpoint),
    crop, eval (prob_k, label_k, threshold it was validated with; None: not known)

and, for a model with the intensity head only (model.intensity), intensity_au_names (the AUs of its columns) and
outputs ["probabilities", "intensity"]: the graph's two outputs, in that order (the reader refuses a file whose
graph has another number of outputs than its metadata says),

and what an exporter adds (max_abs_diff_vs_mindspore, the int8 report).
"""

import dataclasses
import json
import os
from typing import List, Optional, Tuple

from mindface_au.au_sets import default_au_names
from mindface_au.config import AU_NAMES, ModelConfig
from mindface_au.errors import UserError
from mindface_au.model_card import default_crop
from mindface_au.models.registry import face_input

__all__ = ["MODEL_INFO_KEY", "FORMAT_VERSION", "is_backbone", "output_width", "model_metadata"]
__all__ += ["intensity_names", "OUTPUT_NAMES", "encode_metadata", "parse_metadata", "stored_settings"]

MODEL_INFO_KEY = "mindface_au"  # MindIR user_info / ONNX metadata_props key of the JSON metadata
FORMAT_VERSION = 1
OUTPUT_NAMES = ("probabilities", "intensity")  # the graph outputs of a model with the intensity head, in order


def is_backbone(model_cfg: ModelConfig) -> bool:
    """True for a bare IResNet (outputs its embedding), False for an AU network (outputs probabilities)."""
    return model_cfg.name.startswith("iresnet")


def output_width(model_cfg: ModelConfig) -> int:
    """The width of the network's output: its embedding for a bare backbone, one column per AU otherwise."""
    return int(model_cfg.embedding_size if is_backbone(model_cfg) else model_cfg.num_classes)


def intensity_names(model_cfg: ModelConfig) -> List[str]:
    """The AUs of the intensity head's output columns (model.intensity_au_names, empty = model.au_names, as the
    network reads it); [] for a model without the head (and for a bare backbone)."""
    if is_backbone(model_cfg) or not model_cfg.intensity:
        return []
    return list(model_cfg.intensity_au_names or default_au_names(model_cfg.au_names))


# ------------------------------------------------------------------------------------------------ writing
def model_metadata(model_cfg: ModelConfig, batch_size: Optional[int], source: str = "", **extra) -> dict:
    """The JSON metadata stored in exported MindIR and ONNX files (one layout for both).

    `settings` (ModelFile.settings() of the source checkpoint) gives the preprocessing and evaluation settings;
    without it the packaged defaults' preprocessing and no evaluation settings are stored. `card` is the source
    checkpoint's model card; any other keyword is stored as given.
    """
    settings = extra.pop("settings", None) or {}
    spec = face_input(model_cfg).as_dict()
    spec.update((settings.get("preprocessing") or {}))
    backbone = is_backbone(model_cfg)
    size = int(spec["input_size"])
    info = {
        "format_version": FORMAT_VERSION,
        "input_size": size,
        "batch_size": batch_size,  # None: dynamic batch axis
        "mean": list(spec["mean"]),
        "std": list(spec["std"]),
        "input": f"float32 (B, 3, {size}, {size}) RGB, (x / 255 - mean) / std",
        "output": "embedding" if backbone else "probabilities",
        "out_dim": output_width(model_cfg),
        "model": dataclasses.asdict(dataclasses.replace(model_cfg, backbone_checkpoint="")),
        "source_checkpoint": os.path.basename(source) if source else "",
    }
    if not backbone:
        info["au_names"] = list(model_cfg.au_names or AU_NAMES)
    if intensity_names(model_cfg):  # a model with the intensity head: a second output, its own AU list
        info["intensity_au_names"] = intensity_names(model_cfg)
        info["outputs"] = list(OUTPUT_NAMES)
    card = extra.pop("card", None)
    info["card"] = card  # the model card (model_card.py) of the source checkpoint; None for an older one
    info["crop"] = spec.get("crop") or (card or {}).get("crop") or default_crop(size)
    info["eval"] = settings.get("eval")  # prob_k, label_k, threshold it was validated with; None: not known
    info.update(extra)
    return info


def encode_metadata(info: dict) -> str:
    """The text stored under MODEL_INFO_KEY."""
    return json.dumps(info)


# ------------------------------------------------------------------------------------------------ reading
def parse_metadata(raw: str, path: str, kind: str) -> dict:
    """The metadata dict of the text stored under MODEL_INFO_KEY in `path` (a `kind` file: "MindIR" or "ONNX");
    one line naming the file when it is absent, not JSON, or lacks the model config or input size."""
    if not raw:
        raise UserError(f"{path}: {kind} file has no mindface-au metadata; export it with `mindface-au export`")
    try:
        info = json.loads(raw)
    except ValueError as exc:
        raise UserError(f"{path}: {kind} metadata is not valid JSON ({exc})") from exc
    if not isinstance(info, dict) or "model" not in info or "input_size" not in info:
        raise UserError(f"{path}: {kind} metadata lacks the model config or input size")
    return info


def stored_settings(info: dict) -> Tuple[Optional[dict], dict]:
    """(card, {"preprocessing": ..., "eval": ...}) of parsed metadata: the card when it is a mapping; the
    preprocessing keys (input_size, mean, std, crop) are top-level ones; eval, else the card's (an older export)."""
    card = info.get("card") if isinstance(info.get("card"), dict) else None
    return card, {"preprocessing": info, "eval": info.get("eval", (card or {}).get("eval"))}
