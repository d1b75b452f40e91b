"""`mindface-au synth`: write the SynthAU procedural dataset to a folder, in the layout of any data.format.

`--format affwild2` (default: data.format of the config) writes the demo data (byte-identical for a seed);
`bp4d`, `disfa` and `list` write that layout with its AU set and subjects from each of the three subject parts
(`mindface_au.data.synthau.write_synthau`). `--clips` writes MP4 clips to run `detect` on instead
(`mindface_au.data.synthau.clips`). The "train with:" line it prints is a command that runs as pasted."""

import argparse
import json
import shlex

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
    parser.add_argument(
        "--clips",
        action="store_true",
        help="write MP4 clips to run detect on into --out instead of a dataset (one face; several faces, a cut and "
        "frames without a face)",
    )


def _check_flags(args: argparse.Namespace) -> None:
    """Counts the generator would refuse, named by their flags."""
    from mindface_au.errors import UserError

    for flag, value, low in (
        ("--videos", args.videos, 2), ("--frames", args.frames, 10), ("--subjects", args.subjects, 1),
        ("--tasks", args.tasks, 1), ("--test-videos", args.test_videos, 0), ("--seed", args.seed, 0),
        ("--workers", args.workers, 1),
    ):  # fmt: skip
        if value is not None and value < low:
            raise UserError(f"{flag} {value}: expected an integer >= {low}")


def train_hint(fmt: str, out: str, au_names) -> str:
    """The command that trains the quick recipe on the data just written (list data names its AUs)."""
    hint = f"mindface-au train --config quick --set data.format={fmt} --set data.root={shlex.quote(out)}"
    if fmt == "list":  # list files name no AUs: the config does
        hint += " --set " + shlex.quote(f"model.au_names=[{', '.join(au_names)}]")
    return hint + (" --fold 1" if fmt != "affwild2" else "") + f" --out runs/quick_{fmt}"


def run(args: argparse.Namespace) -> int:
    from mindface_au.data.synthau import write_synthau
    from mindface_au.errors import UserError

    _check_flags(args)
    if args.clips:
        from mindface_au.data.synthau.clips import write_clips

        if not args.out:
            raise UserError("--clips: name the folder to write the clips to with --out")
        written = write_clips(args.out, seed=args.seed, overwrite=args.overwrite)
        if args.json:
            print(json.dumps({"clips": written}, indent=1))
            return 0
        for path, what in written.items():
            print(f"{path}: {what}")
        return 0
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
        print(f"train with (folds 1 to 3): {train_hint(fmt, out, names)}")
        return 0
    print(f"SynthAU written to {out} in {summary['seconds']:.1f} s (seed {args.seed})")
    for split, info in summary["splits"].items():
        rates = " ".join(f"{au}={rate:.3f}" for au, rate in info["positive_rate"].items())
        print(f"  {split:5s} {len(info['videos']):3d} videos {info['frames']:6d} frames  positive rate: {rates}")
    print(f"train with: {train_hint(fmt, out, summary.get('au_names', []))}")
    return 0
