"""Cross-validation: one run per split of the data format, printed as a per-fold per-AU F1 table.

Aff-Wild2: the official split plus the paper's 4 folds over train+val (Table 1). BP4D / DISFA: the 3 subject-
exclusive folds; list files: one run per fold file set. The table is laid out as ME-GraphAU's: one row per fold,
one column per AU of the data's set, the mean F1 last, and a mean row over the folds. A model with the intensity
head adds one such table each for ICC(3,1), PCC and MAE over the head's AUs (the best epoch's validation scores).
"""

import copy
import json
import os
import sys
from typing import Dict, List, Optional, Sequence

from mindface_au.au_sets import default_au_names
from mindface_au.config import FOLD_SPLITS, Config
from mindface_au.metrics import INTENSITY_METRICS, mean_of_coded
from mindface_au.utils.io import atomic_write

__all__ = ["SPLITS", "run_cv", "format_table1", "format_intensity_tables", "intensity_fold_means", "cv_splits"]

SPLITS = ("official", *FOLD_SPLITS)  # Aff-Wild2's; other formats: mindface_au.data.formats.fold_names


def _pct(value: Optional[float], width: int, scale: float = 100.0) -> str:
    return f"{'n/a':>{width}s}" if value is None else f"{scale * value:{width}.2f}"


def format_table1(
    rows: Dict[str, Dict[str, Optional[float]]], mean_row: bool = False, title: str = "F1", scale: float = 100.0
) -> str:
    """One row per split, per-AU F1 and the mean, in percent; AU columns from the rows' own keys (the data's set).
    `title` and `scale` lay out another per-AU score the same way (e.g. "ICC", 1: intensity scores as they are).

    An F1 of None (an AU without coded frames in that split, or a split that has no score) is `n/a` and is left
    out of the row's mean, which then says how many AUs it covers. `mean_row` adds ME-GraphAU's last row: per AU,
    the mean over the fold rows that have a value (the official split is not a fold); a fold with no value at all
    is left out of it, and the row says over how many folds it is."""
    if not rows:
        return ""
    names = list(next(iter(rows.values())))
    for split, per_au in rows.items():
        if list(per_au) != names:
            raise ValueError(f"split {split}: AUs {', '.join(per_au)} differ from {', '.join(names)}")

    def line(label: str, values: List[Optional[float]], note: str = "") -> str:
        mean, count = mean_of_coded(values)
        if mean is not None and count < len(values):
            note = f" (mean over {count} of {len(values)} AUs)" + note
        return f"{label:<10s}" + "".join(_pct(v, 7, scale) for v in values) + _pct(mean, 9, scale) + note

    lines = [f"{'Val Set':<10s}" + "".join(f"{n:>7s}" for n in names) + f"{title:>9s}"]
    for split, per_au in rows.items():
        label = "Official" if split == "official" else f"Fold-{split[4:]}"
        lines.append(line(label, [per_au[n] for n in names]))
    folds = [per_au for split, per_au in rows.items() if split != "official"]
    scored = [f for f in folds if any(v is not None for v in f.values())]
    if mean_row and scored:
        means = [mean_of_coded([f[n] for f in scored])[0] for n in names]
        note = (
            ""
            if len(scored) == len(folds)
            else f" (over {len(scored)} of {len(folds)} folds; the others have no score)"
        )
        lines.append(line("Mean", means, note))
    return "\n".join(lines)


_TITLES = {"icc": "ICC", "pcc": "PCC", "mae": "MAE"}


def intensity_fold_means(intensity: Dict[str, Optional[Dict]]) -> Optional[Dict]:
    """The mean over the folds of each split's intensity scores (`evaluator.score_intensity` dicts; the official
    split is not a fold): per metric and AU the mean of the folds that have a value (None: none has), and
    "mean_icc" etc. the mean of those over the AUs; "folds" per metric and AU, how many folds each covers. None
    when no fold has intensity scores."""
    folds = [d for split, d in intensity.items() if split != "official" and d]
    if not folds:
        return None
    names = list(folds[0]["au_names"])
    out: Dict = {"au_names": names}
    for metric in INTENSITY_METRICS:
        per_au, counts = {}, {}
        for name in names:
            values = [d[metric].get(name) for d in folds]
            per_au[name], counts[name] = mean_of_coded(values)
        out[metric] = per_au
        out[f"mean_{metric}"] = mean_of_coded(list(per_au.values()))[0]
        out.setdefault("folds", {})[metric] = counts
    return out


def format_intensity_tables(intensity: Dict[str, Optional[Dict]]) -> str:
    """ICC, PCC and MAE tables (`format_table1`'s layout, values as they are) of the splits' intensity scores, each
    with the mean row over the folds that have a value; "" when no split has intensity scores."""
    scored = {split: d for split, d in intensity.items() if d}
    if not scored:
        return ""
    names = list(next(iter(scored.values()))["au_names"])
    tables = []
    for metric in INTENSITY_METRICS:
        rows = {s: (d[metric] if d else dict.fromkeys(names)) for s, d in intensity.items()}
        tables.append(format_table1(rows, mean_row=True, title=_TITLES[metric], scale=1.0))
    return "\n".join(tables)


def cv_splits(cfg: Config) -> List[str]:
    """The splits `cv` runs for the config's data format: official + 4 folds (affwild2), fold1..fold3 (bp4d,
    disfa), fold1..fold<k> (list files present)."""
    from mindface_au.data.formats import fold_names

    return fold_names(cfg.data)


def run_cv(cfg: Config, out_root: Optional[str] = None, splits: Optional[Sequence[str]] = None, train_fn=None) -> Dict:
    """Train one run per split under <out_root>/<split> and collect each run's best-epoch per-AU F1.

    Returns {"splits": {split: per_au}, "mean_f1": {split: mean}, "best_ckpts": [...], "unscored": [...]}, and
    for a model with the intensity head "intensity" ({split: the best epoch's validation ICC/PCC/MAE dict, None
    without one}) and "intensity_mean" (`intensity_fold_means`); writes cv.json. An F1 is None where it has no
    value (an AU without coded frames in that split's validation part); a split whose validation part has no frame
    to score (`EmptyValidationPart`), or whose best epoch has no validation, is listed in "unscored" with every F1
    None, and the other splits still run. Splits whose run already finished (metrics.json with every epoch) are
    not retrained; an unfinished one (with checkpoints/resume.ckpt) is resumed.
    """
    from mindface_au.engine.trainer import RUN_FILES, train
    from mindface_au.engine.validation import EmptyValidationPart

    train_fn = train_fn or train
    splits = cv_splits(cfg) if splits is None else splits
    out_root = out_root or cfg.train.out_dir
    rows: Dict[str, Dict[str, Optional[float]]] = {}
    ckpts: List[str] = []
    unscored: List[str] = []
    intensity: Dict[str, Optional[Dict]] = {}
    names = list(default_au_names(cfg.data.au_names))
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
            try:
                if os.path.isfile(resume_ckpt):  # an unfinished split continues where it stopped
                    print(
                        f"{split}: unfinished run found in {split_cfg.train.out_dir}, resumed",
                        file=sys.stderr,
                        flush=True,
                    )
                    result = train_fn(None, resume=split_cfg.train.out_dir)
                else:  # nothing or no finished epoch yet: cv's own unfinished work, started over
                    result = train_fn(split_cfg, overwrite=True)
            except EmptyValidationPart as exc:
                print(f"{split}: not trained, no score: {exc}", file=sys.stderr, flush=True)
                rows[split] = dict.fromkeys(names)
                unscored.append(split)
                intensity[split] = None
                continue
            history = {"epochs": result["epochs"], "best": result["best"]}
        best_epoch = history["best"]["epoch"]
        record = next((r for r in history["epochs"] if r["epoch"] == best_epoch), {})
        rows[split] = record.get("val_per_au") or dict.fromkeys(names)
        intensity[split] = record.get("val_intensity")
        if all(v is None for v in rows[split].values()):
            unscored.append(split)
        ckpts.append(os.path.join(split_cfg.train.out_dir, RUN_FILES["best"]))
    summary = {
        "splits": rows,
        "mean_f1": {s: mean_of_coded(list(v.values()))[0] for s, v in rows.items()},
        "best_ckpts": ckpts,
        "unscored": unscored,
    }
    if cfg.model.intensity:
        summary["intensity"] = intensity
        summary["intensity_mean"] = intensity_fold_means(intensity)
    with atomic_write(os.path.join(out_root, "cv.json")) as handle:
        json.dump(summary, handle, indent=2)
    return summary
