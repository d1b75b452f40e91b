"""`mindface-au export`: write a trained checkpoint as a MindIR file (fixed batch, outputs AU probabilities)."""

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mindface_au.cli.common import add_config_args

    add_config_args(parser)
    parser.add_argument("--ckpt", required=True, help="trained checkpoint (.ckpt)")
    parser.add_argument("--format", default="MINDIR", type=str.upper, choices=["MINDIR"], help="export format")
    parser.add_argument("--out", required=True, help="output file, e.g. model.mindir")
    parser.add_argument("--batch-size", type=int, default=8, help="fixed batch size of the exported graph (default 8)")
    parser.add_argument("--device", default="auto", help="auto, CPU, GPU or Ascend (default auto)")


def run(args: argparse.Namespace) -> int:
    from mindface_au.cli.common import echo_config
    from mindface_au.config import load_config
    from mindface_au.inference.export import export_mindir

    config = load_config(args.config, args.overrides) if (args.config or args.overrides) else None
    if config is not None:
        echo_config(config)
    info = export_mindir(args.ckpt, args.out, config=config, batch_size=args.batch_size, device=args.device)
    print(json.dumps({"out": args.out, "batch_size": info["batch_size"], "input_size": info["input_size"]}))
    return 0
