"""`mindface-au cv`: train every split of the data format, then print per-fold per-AU F1 and the mean.

Aff-Wild2: the official split and 4 folds (the paper's Table 1); BP4D, DISFA: the 3 subject folds; list files: one
run per fold present. The table is ME-GraphAU's layout: a row per fold, a column per AU, the mean F1 last, and a
mean row over the folds. A model with the intensity head adds the ICC(3,1), PCC and MAE tables of its AUs."""

import argparse

from mindface_au.cli.common import add_config_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_args(parser)
    parser.add_argument("--out", default=None, help="root folder, one run directory per split (train.out_dir)")
    parser.add_argument(
        "--splits",
        nargs="+",
        default=None,
        metavar="SPLIT",
        help="subset of the data format's splits (affwild2: official fold1..fold4; bp4d, disfa: fold1..fold3; "
        "list: its folds); default: all",
    )
    parser.add_argument("--device", default=None, help="CPU, GPU, Ascend or auto (train.device)")


def run(args: argparse.Namespace) -> int:
    from mindface_au.cli.common import echo_config
    from mindface_au.config import load_config
    from mindface_au.data.formats import check_folds
    from mindface_au.engine.cv import cv_splits, format_intensity_tables, format_table1, run_cv
    from mindface_au.errors import UserError

    overrides = list(args.overrides) + ([f"train.device={args.device}"] if args.device else [])
    cfg = load_config(args.config, overrides)
    valid = cv_splits(cfg)
    splits = args.splits or valid
    unknown = [s for s in splits if s not in valid]
    if unknown:
        raise UserError(
            f"--splits: unknown split {unknown[0]!r} for data.format {cfg.data.format}; valid: {', '.join(valid)}"
        )
    check_folds(cfg.data, splits)  # every fold's test subjects, before the first fold trains
    echo_config(cfg)
    summary = run_cv(cfg, args.out, splits)
    print(format_table1(summary["splits"], mean_row=True))
    if summary.get("intensity"):
        tables = format_intensity_tables(summary["intensity"])
        print(tables or "intensity: no split has intensity scores (no validated epoch)")
    for line in predict_hints(cfg.data.format, summary["best_ckpts"]):
        print(line)
    return 0


def predict_hints(data_format: str, best_ckpts) -> list:
    """Commands to paste after `cv` (`best_ckpts`: OUT/<split>/checkpoints/best.ckpt of the splits that have a score).
    affwild2: the fold models vote on the test split (none trained on it); the other formats have no test split of
    their own (a fold's test part is the others' training data), so each fold's model predicts its own part."""
    import os
    import shlex

    runs = [os.path.dirname(os.path.dirname(ckpt)) for ckpt in best_ckpts]
    if not runs:
        return []
    root = os.path.dirname(runs[0])
    if data_format == "affwild2":
        config = shlex.quote(os.path.join(runs[0], "config.yaml"))
        models = " ".join(shlex.quote(c) for c in best_ckpts)
        out = shlex.quote(os.path.join(root, "test_predictions"))
        return [f"vote on the test set with: mindface-au predict --config {config} --model {models} --out {out}"]
    lines = []
    for run, ckpt in zip(runs, best_ckpts):
        split = os.path.basename(run)
        config = shlex.quote(os.path.join(run, "config.yaml"))
        out = shlex.quote(os.path.join(root, "predictions", split))
        lines.append(
            f"predict {split}'s held-out part with: mindface-au predict --config {config} --model {shlex.quote(ckpt)} "
            f"--out {out}"
        )
    return lines
