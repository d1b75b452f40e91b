"""`mindface-au check-data`: validate a dataset of any data.format and print a per-split summary.

affwild2: train / val / test; bp4d, disfa: the three subject parts as fold1_test..fold3_test; list: fold<k>_train
and fold<k>_test. Positive rates are keyed by the dataset's AU names, each over the frames where that AU is coded
and the image exists; an AU
with no coded frame has no rate (`n/a`, `null` in JSON). Problems that do not stop the reading (an image file
that is not an image, a list line outside the data root) are listed one line each on stderr and end the command
with exit 2 after the report.

Intensity labels (bp4d, disfa, list): with model.intensity, those of model.intensity_au_names (a missing file is an
error); otherwise those present (bp4d: the AUs whose intensity folder exists; disfa: the AUs with a label file for
every subject). Each split then reports per AU the frames coded 0-5 and their mean (`n/a` / `null` with none)."""

import argparse
import json
import sys

from mindface_au.cli.common import add_config_args
from mindface_au.config import load_config
from mindface_au.data.registry import FORMATS, format_au_names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_args(parser)
    parser.add_argument("--root", default=None, help="dataset root (default: data.root)")
    parser.add_argument(
        "--format",
        default=None,
        choices=list(FORMATS),
        help="dataset layout (default: data.format); list files also need data.au_names / model.au_names",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def _config(args: argparse.Namespace):
    """The config with data.format / data.root from --format / --root. With --format the model's AU set and rare
    AUs follow the format (no model is involved in checking data); --set values still win."""
    implied = []
    if args.format:
        implied += [f"data.format={args.format}", "data.rare_aus=[]"]
        names = format_au_names(args.format)
        if names:
            implied += [f"model.au_names=[{', '.join(names)}]", "data.au_names=[]"]
    if args.root:
        implied.append(f"data.root={args.root}")
    return load_config(args.config, implied + list(args.overrides))


NOTES = {
    "frame_number_mismatch": "rows whose frame number is not line index + 1 (data.disfa_image_index)",
    "duplicate_frames": "rows skipped: their frame number repeats an earlier row's",
}


def _rate(rate) -> str:
    return "n/a" if rate is None else f"{rate:.3f}"


def run(args: argparse.Namespace) -> int:
    cfg = _config(args)  # always, so a bad --set is reported even with --root
    from mindface_au.data.affwild2 import check_data
    from mindface_au.data.formats import check_format
    from mindface_au.errors import UserError

    if cfg.data.format == "affwild2":
        report = check_data(cfg.data.root)
    else:
        report = check_format(cfg.data, cfg.model.intensity_au_names if cfg.model.intensity else None)
    problems = report.get("problems", [])
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for split, info in report.items():
            if split == "problems":
                continue
            if not isinstance(info, dict):
                print(f"{split}: {', '.join(map(str, info)) if isinstance(info, list) else info}")
                continue
            if "positive_rate" not in info:
                print(
                    f"{split}: {info['videos']} videos, {info['frames']} frames, {info['missing_images']} without image"
                )
                continue
            print(
                f"{split}: {info['videos']} videos, {info['labeled_frames']} labelled frames used, "
                f"{info['invalid_rows']} rows skipped for -1, {info['missing_images']} rows whose image is missing"
            )
            rates = info["positive_rate"]
            print("  positive rate: " + " ".join(f"{au}={_rate(rate)}" for au, rate in rates.items()))
            if info.get("intensity"):
                print(
                    "  intensity (coded frames, mean 0-5): "
                    + " ".join(f"{au}={v['coded_frames']},{_rate(v['mean'])}" for au, v in info["intensity"].items())
                )
            for key, text in NOTES.items():
                if info.get(key):
                    print(f"  {info[key]} {text}")
    if problems:
        sys.stdout.flush()
        for line in problems:
            print(line, file=sys.stderr)
        raise UserError(f"{len(problems)} problem(s) in the data, listed above")
    return 0
