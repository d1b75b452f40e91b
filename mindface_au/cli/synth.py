"""`mindface-au synth`: write the SynthAU procedural dataset to a folder, in the layout of any data.format.

`--format affwild2` (default: data.format of the config) writes the demo data (byte-identical for a seed);
`bp4d`, `disfa` and `list` write that layout with its AU set and subjects from each of the three subject parts
(`mindface_au.data.synthau.write_synthau`)."""

import argparse
import json

from mindface_au.cli.common import add_config_args, options
from mindface_au.config import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_args(parser)
    parser.add_argument("--out", default=None, help="output folder, created (default: data.root of the config)")
    parser.add_argument(
        "--format",
        default=None,
        choices=["affwild2", "bp4d", "disfa", "list"],
        help="layout to write (default: data.format of the config)",
    )
    parser.add_argument("--videos", type=int, default=24, help="affwild2: labelled videos (train + val files)")
    parser.add_argument("--frames", type=int, default=300, help="mean frames per video (bp4d, disfa, list: each)")
    parser.add_argument(
        "--subjects", type=int, default=2, help="bp4d, disfa, list: subjects from each of the 3 subject parts"
    )
    parser.add_argument("--tasks", type=int, default=1, help="bp4d: tasks per subject")
    parser.add_argument("--test-videos", type=int, default=None, help="unlabelled test videos (default videos // 6)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same dataset")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU count)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing SynthAU folder at --out")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    from mindface_au.data.synthau import write_synthau

    cfg = load_config(args.config, args.overrides)  # always, so a bad --set is reported
    out = args.out or cfg.data.root
    fmt = args.format or cfg.data.format
    if fmt == "affwild2":
        summary = write_synthau(out, format=fmt, **options(args, "videos frames seed test_videos workers overwrite"))
    else:
        summary = write_synthau(
            out, format=fmt, frames=args.frames, seed=args.seed, subjects_per_part=args.subjects, tasks=args.tasks,
            overwrite=args.overwrite,
        )  # fmt: skip
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    if fmt != "affwild2":
        names = summary["au_names"]
        print(f"SynthAU in {fmt} layout written to {out} (seed {args.seed}); {len(names)} AUs: {', '.join(names)}")
        for key, value in summary["images"].items():
            print(f"  {key}: {value}")
        hint = f"--set data.format={fmt} --set data.root={out}"
        if fmt == "list":  # list files name no AUs: the config does
            hint += f' --set "model.au_names=[{", ".join(names)}]"'
        print(f"  train with: {hint} --fold 1 (folds 1 to 3)")
        return 0
    print(f"SynthAU written to {out} in {summary['seconds']:.1f} s (seed {args.seed})")
    for split, info in summary["splits"].items():
        rates = " ".join(f"{au}={rate:.3f}" for au, rate in info["positive_rate"].items())
        print(f"  {split:5s} {len(info['videos']):3d} videos {info['frames']:6d} frames  positive rate: {rates}")
    return 0
