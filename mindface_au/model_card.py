"""The model card: what a checkpoint was trained on, recorded by the trainer in every checkpoint it writes.

A card is a small JSON dict: data format, dataset name (the root's folder name, or "SynthAU"), the AU set, the face
crop the training images were made with (`crop`: "arcface5@112" = five-point alignment onto the ArcFace template
at 112 px; "box@256" = a detector's face box resized to 256 px; "other@S" = a crop this package cannot redo), the
validation split and mean F1, for a model with the intensity head its intensity AUs (`intensity_au_names`) and
validation mean ICC(3,1) (`val_mean_icc`, None when not measured), and for SynthAU-trained models a note that their
outputs on real faces are not validated. Exports (MindIR, ONNX metadata) and release files carry it on. A model
file without a card (made before cards existed) predicts the ABAW 12 from five-point aligned crops at its input
size: `default_crop`.

The card also says how to run the model (timm's `pretrained_cfg`): `preprocessing` (input size, mean and std in
[0, 1] units, crop) and `eval`, the settings it was validated with (prob_k, label_k, threshold). The model-file
reader (mindface_au.inference.model_file) reads them; a card without them (older files) gets the packaged defaults.
Nothing here imports MindSpore at import time.
"""

import os
from typing import Optional, Sequence

from mindface_au.au_sets import au_set_of
from mindface_au.utils.ckpt_file import CARD_KEY

__all__ = ["CARD_KEY", "SYNTHAU_NOTE", "make_card", "run_settings", "crop_spec", "default_crop", "parse_crop"]
__all__ += ["format_card", "read_card"]

SYNTHAU_NOTE = "trained on SynthAU (procedural faces): its outputs on real faces are not validated"
_SYNTHAU_SUMMARY = "synthau.json"


def crop_spec(crop: str, input_size: int) -> str:
    """'<method>@<size>', e.g. 'arcface5@112'."""
    return f"{crop}@{int(input_size)}"


def default_crop(input_size: int) -> str:
    """The crop of a model file without a card: five-point ArcFace alignment at its input size."""
    return crop_spec("arcface5", input_size)


def parse_crop(spec: str):
    """('arcface5', 112) from 'arcface5@112'; (spec, 0) when it has no size."""
    method, _, size = str(spec).partition("@")
    return method, int(size) if size.isdigit() else 0


def run_settings(model_cfg, eval_cfg=None, crop: str = "arcface5") -> dict:
    """{"preprocessing": {input_size, mean, std, crop}, "eval": {prob_k, label_k, threshold}}: how to feed and score
    the model of ModelConfig `model_cfg` (`eval_cfg` an EvalConfig, None: the packaged defaults; `crop` the method)."""
    from mindface_au.config import EvalConfig
    from mindface_au.models import face_input

    spec = face_input(model_cfg)
    eval_cfg = eval_cfg if eval_cfg is not None else EvalConfig()
    return {
        "preprocessing": {**spec.as_dict(), "crop": crop_spec(crop, spec.size)},
        "eval": {"prob_k": eval_cfg.prob_k, "label_k": eval_cfg.label_k, "threshold": eval_cfg.threshold},
    }


def make_card(cfg, val_mean_f1: Optional[float] = None) -> dict:
    """The card of a model trained with Config `cfg` (validation mean F1 of the checkpoint's epoch, if known)."""
    root = os.path.normpath(cfg.data.root or ".")
    synth = os.path.isfile(os.path.join(root, _SYNTHAU_SUMMARY))
    names = list(cfg.model.au_names)
    card = {
        "data_format": cfg.data.format,
        "dataset": "SynthAU" if synth else os.path.basename(os.path.abspath(root)),
        "data_root": os.path.basename(os.path.abspath(root)),
        "au_set": au_set_of(names).name,
        "au_names": names,
        "crop": crop_spec(cfg.data.crop, cfg.model.input_size),
        "val_split": cfg.data.split,
        "val_mean_f1": None if val_mean_f1 is None else round(float(val_mean_f1), 6),
    }
    if getattr(cfg.model, "intensity", False):  # the intensity head: its AUs; the run's validation ICC when known
        card["intensity_au_names"] = list(cfg.model.intensity_au_names or names)
        card["val_mean_icc"] = None
    if synth:
        card["note"] = SYNTHAU_NOTE
    card.update(run_settings(cfg.model, cfg.eval, cfg.data.crop))
    return card


def read_card(path: str) -> Optional[dict]:
    """The card stored in a checkpoint, or None (a checkpoint written before cards, or not by the trainer).
    Reads the whole file: a caller that needs more than the card uses mindface_au.inference.model_file."""
    from mindface_au.models.checkpoint import read_checkpoint_contents

    return read_checkpoint_contents(path).json(CARD_KEY)


def format_card(
    card: Optional[dict], au_names: Sequence[str], crop: str, intensity_au_names: Sequence[str] = ()
) -> str:
    """Two to four lines for stderr: what the model predicts (and, with the intensity head, for which AUs it gives
    intensities and their validation mean ICC), what it was trained on, and the SynthAU note."""
    lines = [f"# model: {len(au_names)} AUs ({', '.join(au_names)}), face crop {crop}"]
    if intensity_au_names:
        icc = (card or {}).get("val_mean_icc")
        score = f"validation mean ICC(3,1) {icc:.3f}" if isinstance(icc, (int, float)) else "no validation ICC"
        lines.append(f"# intensity (0-5): {len(intensity_au_names)} AUs ({', '.join(intensity_au_names)}); {score}")
    if not card or "dataset" not in card:  # none, or only how to run it (a file not written by the trainer)
        lines.append("# model card: none (a file from before model cards: ABAW AUs, ArcFace five-point crops)")
        return "\n".join(lines)
    f1 = card.get("val_mean_f1")
    score = f"validation mean F1 {100 * f1:.2f} on {card.get('val_split')}" if f1 is not None else "not validated"
    if f1 is not None and card.get("val_subset"):
        score += f" (over {card['val_subset']})"
    lines.append(f"# trained on {card.get('dataset')} ({card.get('data_format')} format); {score}")
    if card.get("note"):
        lines.append(f"# note: {card['note']}")
    return "\n".join(lines)
