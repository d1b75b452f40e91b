"""`mindface-au score`: score a folder of challenge txt predictions against annotation txt files.

Both headers must name the AUs of the config's data (data.au_names: the ABAW 12 for affwild2, the model's for
others, e.g. `--set data.format=list --set "model.au_names=[AU1, AU2]"`)."""

import argparse
import json
import os

from mindface_au.cli.common import add_config_args
from mindface_au.config import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pred", required=True, help="folder of <video>.txt predictions")
    add_config_args(parser)
    parser.add_argument(
        "--gt", default=None, help="folder of <video>.txt annotations (default: the config's Validation_Set)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from mindface_au.metrics import format_f1, format_mean
    from mindface_au.submission import score_folders

    cfg = load_config(args.config, args.overrides)
    gt = args.gt or os.path.join(cfg.data.root, "AU_Detection_Challenge", "Validation_Set")
    result = score_folders(args.pred, gt, au_names=cfg.data.au_names)  # both headers must name the data's AUs
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['videos']} videos, {result['frames']} frames with every AU labelled")
        names = list(result["per_au"])
        print(format_f1([result["per_au"][n] for n in names], names, label="score"))
        print(f"mean F1: {format_mean([result['per_au'][n] for n in names])}")
    return 0
