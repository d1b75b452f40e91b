"""`mindface-au models`: list registered models; `--table` adds parameters and GFLOPs at 112x112."""

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'aunet_*'")
    parser.add_argument("--table", action="store_true", help="print a Markdown table with params and GFLOPs (slower)")


def run(args: argparse.Namespace) -> int:
    from mindface_au.models import list_models

    names = list_models(args.pattern)
    if not args.table:
        print("\n".join(names))
        return 0
    from mindface_au.models.zoo import format_model_table, model_table
    from mindface_au.utils.device import init_context

    init_context("CPU", "graph")
    print(format_model_table(model_table(names)))
    return 0
