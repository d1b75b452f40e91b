"""`mindface-au models`: list registered models; `--table` adds parameters and GFLOPs at 112x112, and which weights
files are on disk (in --weights-dir) and how to make the others: no weights ship with the package.

With `--config`, the table describes the config's model section (its widths, heads and input size).
"""

import argparse
import dataclasses

from mindface_au.cli.common import add_config_args
from mindface_au.config import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'aunet_*'")
    parser.add_argument("--table", action="store_true", help="print a Markdown table with params and GFLOPs (slower)")
    parser.add_argument(
        "--weights-dir",
        default=None,
        metavar="DIR",
        help="where --table looks for each model's weights file (default: checkpoints, as the recipes use)",
    )
    add_config_args(parser)


def run(args: argparse.Namespace) -> int:
    from mindface_au.models import list_models

    model_cfg = load_config(args.config, args.overrides).model if (args.config or args.overrides) else None
    names = [model_cfg.name] if model_cfg is not None else list_models(args.pattern)
    if not args.table:
        print("\n".join(names))
        return 0
    from mindface_au.models.zoo import WEIGHTS_DIR, format_model_table, model_stats, model_table
    from mindface_au.utils.device import init_context

    init_context("CPU", "graph")
    if model_cfg is None:
        weights_dir = args.weights_dir or WEIGHTS_DIR
        print(format_model_table(model_table(names, weights_dir=weights_dir)))
        print(
            "\nNo weights ship with mindface-au. 'weights' says which files are in "
            f"{weights_dir}/ and how to make the others: convert insightface's Glint360K .pth for an iresnet "
            "backbone (docs/conversion.md), train an AU model (docs/training.md)."
        )
        return 0
    from mindface_au.config import validate_model_config

    validate_model_config(model_cfg, aunet=True)
    skip = ("name", "input_size", "backbone_checkpoint")  # the table never loads weights
    kwargs = {k: v for k, v in dataclasses.asdict(model_cfg).items() if k not in skip}
    print(format_model_table([model_stats(model_cfg.name, model_cfg.input_size, **kwargs)]))
    return 0
