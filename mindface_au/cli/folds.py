"""`mindface-au folds`: write Aff-Wild2's cross-validation folds (train+val, by video) as JSON.

Aff-Wild2 only: BP4D and DISFA use ME-GraphAU's fixed subject parts and list files their own fold files, so those
formats need no folds file (data.split fold1..fold3 / fold<k> selects them)."""

import argparse

from mindface_au.cli.common import add_config_args
from mindface_au.config import NUM_FOLDS, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_args(parser)
    parser.add_argument("--root", default=None, help="dataset root in Aff-Wild2 layout (default: data.root)")
    parser.add_argument("--out", required=True, help="output JSON file (use it as data.folds_file; Aff-Wild2 only)")
    parser.add_argument(
        "--num-folds",
        type=int,
        default=NUM_FOLDS,
        help=f"number of folds: only {NUM_FOLDS}, as in the paper (data.split, train --fold and cv know {NUM_FOLDS})",
    )


def run(args: argparse.Namespace) -> int:
    from mindface_au.errors import UserError

    cfg = load_config(args.config, args.overrides)  # always, so a bad --set is reported
    if cfg.data.format != "affwild2":
        raise UserError(
            f"config key data.format: folds are for affwild2 only; {cfg.data.format} has fixed folds "
            "(data.split fold1..fold3 for bp4d and disfa, the fold files present for list)"
        )
    root = args.root or cfg.data.root
    from mindface_au.data.folds import write_folds

    data = write_folds(root, args.out, args.num_folds)
    for i, (fold, frames) in enumerate(zip(data["folds"], data["frames"]), start=1):
        print(f"fold{i}: {len(fold)} videos, {frames} labelled frames")
    print(f"wrote {args.out}")
    return 0
