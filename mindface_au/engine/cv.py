"""Cross-validation as in the paper: the official split plus the folds over train+val, printed as Table 1."""

import copy
import json
import os
from typing import Dict, List, Optional, Sequence

from mindface_au.config import AU_NAMES, FOLD_SPLITS, Config
from mindface_au.utils.io import atomic_write

__all__ = ["SPLITS", "run_cv", "format_table1"]

SPLITS = ("official", *FOLD_SPLITS)


def format_table1(rows: Dict[str, Dict[str, float]]) -> str:
    """Table 1 layout: one row per split, per-AU F1 and the mean, in percent."""
    lines = [f"{'Val Set':<10s}" + "".join(f"{n:>7s}" for n in AU_NAMES) + f"{'F1':>9s}"]
    for split, per_au in rows.items():
        label = "Official" if split == "official" else f"Fold-{split[-1]}"
        values = [per_au[n] for n in AU_NAMES]
        lines.append(f"{label:<10s}" + "".join(f"{100 * v:7.2f}" for v in values) + f"{100 * sum(values) / 12:9.2f}")
    return "\n".join(lines)


def run_cv(cfg: Config, out_root: Optional[str] = None, splits: Sequence[str] = SPLITS, train_fn=None) -> Dict:
    """Train one run per split under <out_root>/<split> and collect each run's best-epoch per-AU F1.

    Returns {"splits": {split: per_au}, "mean_f1": {split: mean}, "best_ckpts": [...]}; writes cv.json.
    Splits whose run already finished (metrics.json with every epoch) are not retrained; an unfinished one (with
    checkpoints/resume.ckpt) is resumed.
    """
    from mindface_au.engine.trainer import RUN_FILES, train

    train_fn = train_fn or train
    out_root = out_root or cfg.train.out_dir
    rows: Dict[str, Dict[str, float]] = {}
    ckpts: List[str] = []
    for split in splits:
        split_cfg = copy.deepcopy(cfg)
        split_cfg.data.split = split
        split_cfg.train.out_dir = os.path.join(out_root, split)
        metrics_path = os.path.join(split_cfg.train.out_dir, RUN_FILES["metrics"])
        history = None
        if os.path.isfile(metrics_path):
            with open(metrics_path, encoding="utf-8") as handle:
                saved = json.load(handle)
            if len(saved.get("epochs", [])) >= split_cfg.train.epochs:
                history = saved
                print(f"{split}: finished run found in {split_cfg.train.out_dir}, not retrained", flush=True)
        if history is None:
            resume_ckpt = os.path.join(split_cfg.train.out_dir, RUN_FILES["resume"])
            if os.path.isfile(resume_ckpt):  # an unfinished split continues where it stopped
                print(f"{split}: unfinished run found in {split_cfg.train.out_dir}, resumed", flush=True)
                result = train_fn(None, resume=split_cfg.train.out_dir)
            else:  # nothing or no finished epoch yet: cv's own unfinished work, started over
                result = train_fn(split_cfg, overwrite=True)
            history = {"epochs": result["epochs"], "best": result["best"]}
        best_epoch = history["best"]["epoch"]
        record = next(r for r in history["epochs"] if r["epoch"] == best_epoch)
        rows[split] = record["val_per_au"]
        ckpts.append(os.path.join(split_cfg.train.out_dir, RUN_FILES["best"]))
    summary = {
        "splits": rows,
        "mean_f1": {s: sum(v.values()) / len(v) for s, v in rows.items()},
        "best_ckpts": ckpts,
    }
    with atomic_write(os.path.join(out_root, "cv.json")) as handle:
        json.dump(summary, handle, indent=2)
    return summary
