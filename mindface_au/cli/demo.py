"""`mindface-au demo` (`make demo`): SynthAU end to end: generate, train, evaluate, predict, plot."""

import argparse

from mindface_au.cli.common import add_config_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_args(parser)
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument("--videos", type=int, default=0, help="SynthAU videos to generate (default: demo size)")
    parser.add_argument("--frames", type=int, default=0, help="frames per SynthAU video (default: demo size)")
    parser.add_argument("--device", default="auto", help="CPU, GPU, Ascend or auto")


def run(args: argparse.Namespace) -> int:
    import sys

    from mindface_au.engine.demo import run_demo

    def progress(line: str) -> None:  # progress and logs on stderr, the result on stdout (docs/training.md)
        print(line, file=sys.stderr, flush=True)

    run_demo(args.out, args.config, args.overrides, args.videos, args.frames, args.device, log=progress)
    return 0
