"""`mindface-au folds`: write the 4-fold cross-validation video lists (train+val, by video) as JSON."""

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", required=True, help="dataset root in Aff-Wild2 layout")
    parser.add_argument("--out", required=True, help="output JSON file (use it as data.folds_file)")
    parser.add_argument("--num-folds", type=int, default=4, help="number of folds (the paper uses 4)")


def run(args: argparse.Namespace) -> int:
    from mindface_au.data.folds import write_folds

    data = write_folds(args.root, args.out, args.num_folds)
    for i, (fold, frames) in enumerate(zip(data["folds"], data["frames"]), start=1):
        print(f"fold{i}: {len(fold)} videos, {frames} labelled frames")
    print(f"wrote {args.out}")
    return 0
