"""Cross-validation: one run per split of the data format, printed as a per-fold per-AU F1 table.

Aff-Wild2: the official split plus the paper's 4 folds over train+val (Table 1). BP4D / DISFA: the 3 subject-
exclusive folds; list files: one run per fold file set. The table is laid out as ME-GraphAU's: one row per fold,
one column per AU of the data's set, the mean F1 last, and a mean row over the folds.
"""

import copy
import json
import os
import sys
from typing import Dict, List, Optional, Sequence

from mindface_au.config import FOLD_SPLITS, Config
from mindface_au.utils.io import atomic_write

__all__ = ["SPLITS", "run_cv", "format_table1", "cv_splits"]

SPLITS = ("official", *FOLD_SPLITS)  # Aff-Wild2's; other formats: mindface_au.data.formats.fold_names


def format_table1(rows: Dict[str, Dict[str, float]], mean_row: bool = False) -> str:
    """One row per split, per-AU F1 and the mean, in percent; AU columns from the rows' own keys (the data's set).

    `mean_row` adds ME-GraphAU's last row, the mean over the fold rows (the official split is not a fold)."""
    if not rows:
        return ""
    names = list(next(iter(rows.values())))
    for split, per_au in rows.items():
        if list(per_au) != names:
            raise ValueError(f"split {split}: AUs {', '.join(per_au)} differ from {', '.join(names)}")

    def line(label: str, values: List[float]) -> str:
        mean = 100 * sum(values) / len(values)
        return f"{label:<10s}" + "".join(f"{100 * v:7.2f}" for v in values) + f"{mean:9.2f}"

    lines = [f"{'Val Set':<10s}" + "".join(f"{n:>7s}" for n in names) + f"{'F1':>9s}"]
    for split, per_au in rows.items():
        label = "Official" if split == "official" else f"Fold-{split[4:]}"
        lines.append(line(label, [per_au[n] for n in names]))
    folds = [per_au for split, per_au in rows.items() if split != "official"]
    if mean_row and folds:
        lines.append(line("Mean", [sum(f[n] for f in folds) / len(folds) for n in names]))
    return "\n".join(lines)


def cv_splits(cfg: Config) -> List[str]:
    """The splits `cv` runs for the config's data format: official + 4 folds (affwild2), fold1..fold3 (bp4d,
    disfa), fold1..fold<k> (list files present)."""
    from mindface_au.data.formats import fold_names

    return fold_names(cfg.data)


def run_cv(cfg: Config, out_root: Optional[str] = None, splits: Optional[Sequence[str]] = None, train_fn=None) -> Dict:
    """Train one run per split under <out_root>/<split> and collect each run's best-epoch per-AU F1.

    Returns {"splits": {split: per_au}, "mean_f1": {split: mean}, "best_ckpts": [...]}; writes cv.json.
    Splits whose run already finished (metrics.json with every epoch) are not retrained; an unfinished one (with
    checkpoints/resume.ckpt) is resumed.
    """
    from mindface_au.engine.trainer import RUN_FILES, train

    train_fn = train_fn or train
    splits = cv_splits(cfg) if splits is None else splits
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
                print(
                    f"{split}: finished run found in {split_cfg.train.out_dir}, not retrained",
                    file=sys.stderr,
                    flush=True,
                )
        if history is None:
            resume_ckpt = os.path.join(split_cfg.train.out_dir, RUN_FILES["resume"])
            if os.path.isfile(resume_ckpt):  # an unfinished split continues where it stopped
                print(
                    f"{split}: unfinished run found in {split_cfg.train.out_dir}, resumed", file=sys.stderr, flush=True
                )
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
