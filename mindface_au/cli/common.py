"""Argument helpers shared by the subcommands: `--config` / `--set` and the echo of the resolved config."""

import argparse
import sys

from mindface_au.config import Config, dump_config, load_config

__all__ = ["add_config_args", "config_from_args", "echo_config", "options"]

CONFIG_HELP = (
    "YAML config: a packaged name (`mindface-au configs` lists them; e.g. affwild2/table3_6_ff or table3_6_ff)"
    " or a file path; an existing file path wins over a packaged name of the same spelling"
)


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """Add --config NAME_OR_FILE and repeated --set section.key=value to a command's parser."""
    parser.add_argument("--config", default=None, metavar="NAME_OR_FILE", help=CONFIG_HELP)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value (the value in YAML syntax); repeatable",
    )


def echo_config(cfg: Config) -> None:
    """Print the resolved config at the start of a long-running command, on stderr with its other progress and logs
    (stdout holds the command's results)."""
    print("# resolved config\n" + dump_config(cfg), file=sys.stderr, flush=True)


def config_from_args(args: argparse.Namespace, echo: bool = True) -> Config:
    """Load the config named by --config/--set and print the resolved values."""
    cfg = load_config(args.config, args.overrides)
    if echo:
        echo_config(cfg)
    return cfg


def options(args: argparse.Namespace, names: str) -> dict:
    """The parsed values of the space-separated option `names`, as keyword arguments of the same names."""
    return {name: getattr(args, name) for name in names.split()}
