"""`mindface-au check-data`: validate an Aff-Wild2-layout dataset and print a per-split summary."""

import argparse
import json

from mindface_au.cli.common import add_config_args
from mindface_au.config import AU_NAMES, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_args(parser)
    parser.add_argument("--root", default=None, help="dataset root in Aff-Wild2 layout (default: data.root)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)  # always, so a bad --set is reported even with --root
    root = args.root or cfg.data.root
    from mindface_au.data.affwild2 import check_data

    report = check_data(root)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    for split, info in report.items():
        if split == "test":
            print(f"{split}: {info['videos']} videos, {info['frames']} frames, {info['missing_images']} without image")
            continue
        print(
            f"{split}: {info['videos']} videos, {info['labeled_frames']} labelled frames used, "
            f"{info['invalid_rows']} rows skipped for -1, {info['missing_images']} rows whose image is missing"
        )
        rates = info["positive_rate"]
        print("  positive rate: " + " ".join(f"{au}={rates[au]:.3f}" for au in AU_NAMES))
    return 0
