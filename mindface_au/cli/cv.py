"""`mindface-au cv`: train the official split and every fold, then print the paper's Table 1."""

import argparse

from mindface_au.cli.common import add_config_args
from mindface_au.config import FOLD_SPLITS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_args(parser)
    parser.add_argument("--out", default=None, help="root folder, one run directory per split (train.out_dir)")
    parser.add_argument(
        "--splits",
        nargs="+",
        default=None,
        metavar="SPLIT",
        help=f"subset of official {' '.join(FOLD_SPLITS)} (default: all)",
    )
    parser.add_argument("--device", default=None, help="CPU, GPU, Ascend or auto (train.device)")


def run(args: argparse.Namespace) -> int:
    from mindface_au.cli.common import echo_config
    from mindface_au.config import load_config
    from mindface_au.engine.cv import SPLITS, format_table1, run_cv
    from mindface_au.errors import UserError

    splits = args.splits or list(SPLITS)
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise UserError(f"--splits: unknown split {unknown[0]!r}; valid: {', '.join(SPLITS)}")
    overrides = list(args.overrides) + ([f"train.device={args.device}"] if args.device else [])
    cfg = load_config(args.config, overrides)
    echo_config(cfg)
    summary = run_cv(cfg, args.out, splits)
    print(format_table1(summary["splits"]))
    print("vote on the test set with: mindface-au predict --config CONFIG --model " + " ".join(summary["best_ckpts"]))
    return 0
