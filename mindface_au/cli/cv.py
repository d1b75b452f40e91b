"""`mindface-au cv`: train every split of the data format, then print per-fold per-AU F1 and the mean.

Aff-Wild2: the official split and 4 folds (the paper's Table 1); BP4D, DISFA: the 3 subject folds; list files: one
run per fold present. The table is ME-GraphAU's layout: a row per fold, a column per AU, the mean F1 last, and a
mean row over the folds."""

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
    from mindface_au.engine.cv import cv_splits, format_table1, run_cv
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
    echo_config(cfg)
    summary = run_cv(cfg, args.out, splits)
    print(format_table1(summary["splits"], mean_row=True))
    print("vote on the test set with: mindface-au predict --config CONFIG --model " + " ".join(summary["best_ckpts"]))
    return 0
