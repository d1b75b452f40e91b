"""`mindface-au configs`: list the packaged configs (name and description) or print one for editing."""

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dump",
        metavar="NAME",
        default=None,
        help="print this packaged config (e.g. table3_6_ff) to stdout, to save and edit as your own file",
    )


def run(args: argparse.Namespace) -> int:
    from mindface_au.config import config_description, packaged_configs, read_config_text, resolve_config

    if args.dump:
        print(read_config_text(resolve_config(args.dump)), end="")
        return 0
    packaged = packaged_configs()
    width = max(map(len, packaged))
    for name, path in packaged.items():
        print(f"{name:<{width}s}  {config_description(path)}")
    return 0
