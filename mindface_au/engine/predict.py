"""Challenge predictions: one ABAW txt per video, one row per frame of its frame list, voting over checkpoints.

The txt header names the models' AUs (every voting model must predict the same AU set). Aff-Wild2 predicts a
split (test, val, train) or the validation videos of data.split; BP4D, DISFA and list files have no test split:
they predict the test part of data.split's fold (a BP4D subject-task, a DISFA subject, a list file's image folder
per file; "/" in a folder name becomes "__").

Each checkpoint predicts the frames that have an image; frames without one take the nearest predicted frame;
each video is then post-processed (probability smoothing, threshold, label smoothing). Several checkpoints vote:
"majority" of their 0/1 labels (a tie goes to the mean probability), or "mean" of their probabilities
before post-processing.
"""

import dataclasses
import os
import sys
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from mindface_au.config import Config
from mindface_au.errors import UserError, param
from mindface_au.modelfile.reader import ModelFile
from mindface_au.postprocess import binarize, postprocess_video
from mindface_au.utils import guard

__all__ = ["vote", "predict"]

VOTES = ("majority", "mean")


def vote(
    probs: Sequence[np.ndarray], method: str = "majority", prob_k: int = 0, label_k: int = 0, threshold: float = 0.5
) -> np.ndarray:
    """Combine the (T, C) probabilities of several models for one video into post-processed 0/1 labels."""
    if method not in VOTES:
        raise UserError(f"{param('method')}: got {method!r}, expected {' or '.join(VOTES)}")
    stacked = np.stack([np.asarray(p, np.float32) for p in probs])
    mean = stacked.mean(axis=0)
    if method == "mean" or len(probs) == 1:
        return postprocess_video(mean, prob_k, label_k, threshold)
    labels = np.stack([postprocess_video(p, prob_k, label_k, threshold) for p in stacked]).astype(np.int32)
    ones = labels.sum(axis=0)
    n = len(probs)
    tie_break = binarize(mean, threshold)
    return np.where(2 * ones > n, 1, np.where(2 * ones < n, 0, tie_break)).astype(np.int8)


def trained_on_warnings(cfg, ckpts, models, videos) -> List[str]:
    """One line per model whose card says it trained on some of `videos` (a `cv` fold model voting on a part it
    trained on): same data format and data folder name, and the videos are in the training part of its split."""
    from mindface_au.data import get_split

    names = {v.name for v in videos}
    out = []
    for ckpt, model in zip(ckpts, models):
        card = getattr(model, "card", None) or {}
        split = card.get("val_split")
        if not split or card.get("data_format") != cfg.data.format:
            continue
        if card.get("data_root") != os.path.basename(os.path.abspath(os.path.normpath(cfg.data.root))):
            continue
        try:
            trained = {v.name for v in get_split(dataclasses.replace(cfg.data, split=split))[0]} & names
        except UserError:
            continue  # its split does not exist in this data: nothing to compare
        if trained:
            out.append(
                f"{ckpt} trained on {len(trained)} of the {len(names)} videos predicted here (its data.split "
                f"{split}); these predictions are not held out"
            )
    return out


def predict(
    cfg: Config,
    ckpts: Sequence[Union[str, ModelFile]],
    out_dir: str,
    split: str = "test",
    method: str = "majority",
    prob_k: Optional[int] = None,
    label_k: Optional[int] = None,
    device: str = "auto",
    save_probs: bool = False,
    overwrite: bool = False,
) -> Dict:
    """Write <out_dir>/<video>.txt for every video of `split` ("test", "val", "train" or "val-fold" for the
    validation videos of cfg.data.split). `ckpts`: model files (.ckpt, .mindir or .onnx), or what
    `read_model_file` read from them. The first model file's evaluation settings (prob_k, label_k, threshold)
    are used unless `prob_k` / `label_k` or the config's given values override them (model_file.apply_model_file;
    a given input size or AU set that contradicts a file is refused); "notes" in the result says so.

    An existing <video>.txt is replaced only with `overwrite`; `out_dir` is never a folder of the dataset's
    annotation files (nor a model file), whatever `overwrite` says.

    Returns {"videos", "frames", "out_dir", "au_names", "split", "probs": {video: (T, C)}, "notes": [str]}.
    """
    from mindface_au.data import bp4d, disfa, get_split, load_split
    from mindface_au.data.affwild2 import ANNOTATION_DIR, SPLIT_DIRS
    from mindface_au.engine.evaluator import frame_probs, predict_videos
    from mindface_au.modelfile.loader import load_inference_model
    from mindface_au.modelfile.reader import apply_model_file, check_config, read_model_file
    from mindface_au.submission import write_prediction

    if not ckpts:
        raise UserError("ckpts: give at least one model file")
    if method not in VOTES:
        raise UserError(f"{param('method')}: got {method!r}, expected {' or '.join(VOTES)}")
    for ckpt in ckpts:
        if isinstance(ckpt, str) and not os.path.isfile(ckpt):
            raise UserError(f"{ckpt}: checkpoint not found")
    files = [read_model_file(c, cfg.model, device) if isinstance(c, str) else c for c in ckpts]
    cfg, notes = apply_model_file(files[0], cfg, prob_k, label_k)
    for mf in files[1:]:
        check_config(mf, cfg)
        if mf.eval != files[0].eval:
            notes.append(f"{mf.path}: stores other evaluation settings than {files[0].path}; the first model's apply")
    ckpts = [mf.path for mf in files]
    prob_k, label_k = cfg.eval.prob_k, cfg.eval.label_k
    if cfg.data.format != "affwild2":
        if split not in ("test", "val-fold"):
            raise UserError(
                f"split {split!r}: {cfg.data.format} data has no {split} split; the test part of data.split "
                f"({cfg.data.split}) is predicted (split test or val-fold)"
            )
        split = "val-fold"
    videos = get_split(cfg.data)[1] if split == "val-fold" else load_split(cfg.data.root, split)
    if not videos:
        raise UserError(f"split {split!r} of {cfg.data.root} has no videos")
    annotations = os.path.join(cfg.data.root, ANNOTATION_DIR)
    label_dirs = [os.path.join(cfg.data.root, d) for d in (bp4d.LABEL_DIR, disfa.LABEL_DIR)] + [cfg.data.root]
    inputs = [annotations, *(os.path.join(annotations, d) for d in SPLIT_DIRS.values()), *label_dirs, *ckpts]
    guard.check_not_input(out_dir, inputs, "output folder")
    names = [v.name.replace("/", "__").replace(os.sep, "__") for v in videos]
    guard.check_outputs([os.path.join(out_dir, n + ".txt") for n in names], inputs, overwrite)
    models = [load_inference_model(mf, device=device, batch_size=cfg.data.eval_batch_size) for mf in files]
    au_names = list(models[0].au_names)
    for ckpt, model in zip(ckpts[1:], models[1:]):
        if list(model.au_names) != au_names:
            raise UserError(
                f"{ckpt}: predicts {', '.join(model.au_names)}; {ckpts[0]} predicts {', '.join(au_names)}: "
                "voting models must share one AU set"
            )
    for line in trained_on_warnings(cfg, ckpts, models, videos):
        print(f"warning: {line}", file=sys.stderr, flush=True)
    per_model: List[List[np.ndarray]] = []
    for model in models:
        predictions = predict_videos(model, videos, cfg.data)
        per_model.append([frame_probs(v, ids, p) for v, (ids, p) in zip(videos, predictions)])
    frames = 0
    probs_out = {}
    for i, video in enumerate(videos):
        probs = [model_probs[i] for model_probs in per_model]
        labels = vote(probs, method, prob_k, label_k, cfg.eval.threshold)
        write_prediction(os.path.join(out_dir, names[i] + ".txt"), labels, au_names=au_names)
        frames += labels.shape[0]
        if save_probs:
            probs_out[video.name] = np.mean(probs, axis=0)
    return {
        "videos": len(videos),
        "frames": frames,
        "out_dir": out_dir,
        "au_names": au_names,
        "split": split,
        "probs": probs_out,
        "notes": notes,
    }
