"""`mindface-au models`: list registered models with their parameter counts."""

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'aunet_*'")


def run(args: argparse.Namespace) -> int:
    from mindface_au.models import list_models

    for name in list_models(args.pattern):
        print(name)
    return 0
