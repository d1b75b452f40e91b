"""`mindface-au synth`: write the SynthAU procedural dataset (Aff-Wild2 layout) to a folder."""

import argparse
import json

from mindface_au.cli.common import add_config_args, options
from mindface_au.config import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_args(parser)
    parser.add_argument("--out", default=None, help="output folder, created (default: data.root of the config)")
    parser.add_argument("--videos", type=int, default=24, help="labelled videos (train + val annotation files)")
    parser.add_argument("--frames", type=int, default=300, help="mean frames per video")
    parser.add_argument("--test-videos", type=int, default=None, help="unlabelled test videos (default videos // 6)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same dataset")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU count)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing SynthAU folder at --out")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    from mindface_au.data.synthau import generate

    cfg = load_config(args.config, args.overrides)  # always, so a bad --set is reported
    out = args.out or cfg.data.root
    summary = generate(out, **options(args, "videos frames seed test_videos workers overwrite"))
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    print(f"SynthAU written to {out} in {summary['seconds']:.1f} s (seed {args.seed})")
    for split, info in summary["splits"].items():
        rates = " ".join(f"{au}={rate:.3f}" for au, rate in info["positive_rate"].items())
        print(f"  {split:5s} {len(info['videos']):3d} videos {info['frames']:6d} frames  positive rate: {rates}")
    return 0
