"""`mindface-au score`: score a folder of challenge txt predictions against annotation txt files."""

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pred", required=True, help="folder of <video>.txt predictions")
    parser.add_argument("--gt", required=True, help="folder of <video>.txt annotations (e.g. .../Validation_Set)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from mindface_au.config import AU_NAMES
    from mindface_au.metrics import format_f1
    from mindface_au.submission import score_folders

    result = score_folders(args.pred, args.gt)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['videos']} videos, {result['frames']} labelled frames")
        print(format_f1([result["per_au"][n] for n in AU_NAMES], label="score"))
        print(f"mean F1: {100 * result['mean_f1']:.2f}")
    return 0
