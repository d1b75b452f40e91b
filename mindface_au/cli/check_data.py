"""`mindface-au check-data`: validate an Aff-Wild2-layout dataset and print a per-split summary."""

import argparse
import json

from mindface_au.config import AU_NAMES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root", required=True, help="dataset root (holds AU_Detection_Challenge/ and cropped_aligned/)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args: argparse.Namespace) -> int:
    from mindface_au.data.affwild2 import check_data

    report = check_data(args.root)
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
