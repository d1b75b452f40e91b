"""`mindface-au bench`: time the forward pass of each installed inference backend on this machine.

The full benchmark suite with the project's speed targets is not installed: `make bench` in the repository.
"""

import argparse

from mindface_au.cli.common import add_config_args
from mindface_au.config import load_config
from mindface_au.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mindface_au.inference.timing import BACKENDS

    parser.add_argument("--batch-size", type=int, default=8, help="faces per forward pass (default 8)")
    parser.add_argument(
        "--backend",
        dest="backends",
        action="append",
        choices=BACKENDS,
        default=None,
        help="backend to time; repeatable (default: every installed one)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds, every backend once per round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: every CPU)")
    parser.add_argument("--device", default="auto", help="auto, CPU, GPU or Ascend")
    parser.add_argument("--json", metavar="FILE", default=None, help="also write the results as JSON")
    parser.add_argument(
        "--model", default=None, help="model file (.ckpt/.mindir/.onnx) whose network and input size to time"
    )
    add_config_args(parser)  # the network: model.* of --config/--set (default aunet_iresnet100), or --model's


def run(args: argparse.Namespace) -> int:
    import json
    import os

    from mindface_au.inference.timing import format_timings, time_backends
    from mindface_au.utils.io import atomic_write

    cfg = load_config(args.config, args.overrides)
    if args.model:  # the file decides the network and its input size; a contradicting --config/--set is refused
        from mindface_au.inference.model_file import apply_model_file, read_model_file

        cfg = apply_model_file(read_model_file(args.model, cfg.model, args.device, args.threads), cfg)[0]
    if args.json and not os.access(os.path.dirname(os.path.abspath(args.json)), os.W_OK):
        raise UserError(f"--json {args.json}: its folder does not exist or is not writable")
    if args.batch_size < 1 or args.repeats < 1 or args.warmup < 0 or args.threads < 0:
        raise UserError("--batch-size and --repeats must be >= 1, --warmup and --threads >= 0")
    result = time_backends(
        cfg.model, args.batch_size, args.backends, args.repeats, args.warmup, args.threads, args.device
    )
    print(format_timings(result))
    if args.json:
        with atomic_write(args.json) as handle:
            json.dump(result, handle, indent=2)
        print(f"wrote {args.json}")
    return 1 if result["errors"] else 0
