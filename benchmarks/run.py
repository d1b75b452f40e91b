"""`python -m benchmarks` (`make bench`): matmul limit, forward/train vs PyTorch, inference backends, end-to-end
detect, data pipeline, post-processing, and the speed targets with pass/fail. Exit status 1 when a measurement
failed, 2 on bad options."""

import argparse
import os
import sys
from typing import List, Optional

from mindface_au.cli.common import add_config_args
from mindface_au.config import load_config
from mindface_au.errors import UserError


def _int_list(text: str) -> List[int]:
    try:
        return [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few minutes: aunet_iresnet100 at batch 8, the backends' forward in turns, detect at full width on "
        "30 frames; no framework rows and no per-backend memory processes unless asked (--frameworks, "
        "--backend-memory)",
    )
    parser.add_argument("--json", metavar="FILE", default=None, help="also write the full results as JSON")
    parser.add_argument(
        "--model",
        dest="models",
        action="append",
        default=None,
        metavar="NAME",
        help="model to measure; repeatable (default: iresnet100 and aunet_iresnet100; quick: aunet_iresnet100)",
    )
    parser.add_argument(
        "--batch",
        dest="batches",
        action="append",
        type=int,
        default=None,
        help="repeatable (default: 8 and 32 for the framework rows, 1, 8 and 32 for the backends; quick: 8)",
    )
    parser.add_argument("--widths", type=_int_list, default=None, help="4 stage widths, e.g. 8,16,16,32 (tests)")
    parser.add_argument("--layers", type=_int_list, default=None, help="4 block counts, e.g. 1,1,1,1 (tests)")
    parser.add_argument("--input-size", type=int, default=112)
    parser.add_argument("--threads", type=int, default=0, help="threads for numpy, MindSpore and PyTorch (0: all)")
    parser.add_argument("--device", default="CPU", help="MindSpore device: CPU, GPU, Ascend or auto")
    parser.add_argument("--repeats", type=int, default=0, help="timed repeats per measurement (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls first (the first one compiles)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--no-train", action="store_true", help="framework rows: forward only")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the data pipeline measurement")
    parser.add_argument(
        "--frameworks",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the MindSpore-vs-PyTorch forward/train rows, their ratios and the heads' cost (default: on; quick: off)",
    )
    parser.add_argument(
        "--backend-memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="each backend's peak RSS alone in its own process (default: on; quick: off)",
    )
    parser.add_argument("--no-deploy", action="store_true", help="skip the forward of the inference backends")
    parser.add_argument("--no-detect", action="store_true", help="skip the end-to-end detect measurement")
    parser.add_argument(
        "--backend",
        dest="backends",
        action="append",
        default=None,
        metavar="NAME",
        help="inference backend to measure; repeatable: mindspore, mindir, onnx, onnx-int8, torch (default: all)",
    )
    parser.add_argument(
        "--detect-width",
        dest="detect_widths",
        action="append",
        default=None,
        choices=["full", "demo"],
        help="detect with the first AUNet of --model at --widths (full) or the demo config's network; repeatable "
        "(default: both; quick: full)",
    )
    parser.add_argument(
        "--detect-path",
        dest="detect_paths",
        action="append",
        default=None,
        choices=["tracked", "per-frame"],
        help="detect's face path: keyframes + tracking, or detection on every frame (--no-track); repeatable "
        "(default: both, side by side)",
    )
    parser.add_argument("--detect-frames", type=int, default=0, help="frames of the generated video (300; quick 30)")
    parser.add_argument("--detect-rounds", type=int, default=0, help="detect runs per backend, in turns (2; quick 1)")
    parser.add_argument(
        "--detect-batch", type=int, default=0, help="detect's batch size (32; quick: the forward's largest batch)"
    )
    parser.add_argument("--calib-frames", type=int, default=0, help="int8 calibration frames (64; quick 16)")
    parser.add_argument(
        "--cache",
        default="",
        metavar="DIR",
        help="keep the exported files and the video here and reuse them in later runs (default: a temporary folder)",
    )
    parser.add_argument("--jit-level", default="", choices=["", "O0", "O1"], help="MindSpore JIT level")
    parser.add_argument("--fuse-bn", action="store_true", help="fold BatchNorm into convs for the forward pass")
    parser.add_argument("--matmul-size", type=int, default=0, help="square matmul side (default 4096; quick 1024)")
    parser.add_argument("--post-frames", type=int, default=1_000_000, help="frames for the post-processing test")
    parser.add_argument(
        "--data-root",
        default="",
        help="dataset for the pipeline test (default: data.root of --config, else temporary SynthAU)",
    )
    add_config_args(parser)
    parser.add_argument("--pipeline-batches", type=int, default=0, help="batches timed in the pipeline test")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds allowed per measurement")


PROG = "python -m benchmarks"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_arguments(parser)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Parse the options, run the suite, print the tables; bad options: one line on stderr and exit status 2."""
    os.environ.setdefault("GLOG_v", "3")
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    """Run the suite described by parsed options; 1 when a measurement failed."""
    import json

    from benchmarks import BenchOptions, format_table, run_bench
    from mindface_au.utils.io import atomic_write

    if (
        args.threads < 0
        or args.repeats < 0
        or args.warmup < 1
        or args.post_frames < 1
        or args.matmul_size < 0
        or args.pipeline_batches < 0
        or args.detect_frames < 0
        or args.detect_rounds < 0
        or args.calib_frames < 0
        or args.detect_batch < 0
    ):
        raise UserError("--threads/--repeats/--detect-*/--calib-frames must be >= 0 and --warmup/--post-frames >= 1")
    cfg = load_config(args.config, args.overrides)  # always, so a bad --set is reported
    config_root = cfg.data.root if (args.config or args.overrides) else ""  # else: a temporary SynthAU
    opts = BenchOptions(
        quick=args.quick,
        input_size=args.input_size,
        threads=args.threads,
        device=args.device,
        repeats=args.repeats,
        warmup=args.warmup,
        torch=not args.no_torch,
        train=not args.no_train,
        pipeline=not args.no_pipeline,
        jit_level=args.jit_level,
        fuse_bn=args.fuse_bn,
        matmul_size=args.matmul_size,
        post_frames=args.post_frames,
        data_root=args.data_root or config_root,
        pipeline_batches=args.pipeline_batches,
        timeout=args.timeout,
        framework_rows=args.frameworks,
        backend_memory=args.backend_memory,
        deploy=not args.no_deploy,
        detect=not args.no_detect,
        detect_frames=args.detect_frames,
        detect_rounds=args.detect_rounds,
        detect_batch=args.detect_batch,
        calib_frames=args.calib_frames,
        cache=args.cache,
    )
    if args.backends:
        opts.backends = args.backends
    if args.detect_widths:
        opts.detect_widths = args.detect_widths
    if args.detect_paths:
        opts.detect_paths = [p for p in ("tracked", "per-frame") if p in args.detect_paths]
    if args.models:
        opts.models = args.models
    if args.batches:
        opts.batches = args.batches
    if args.widths is not None:
        opts.widths = args.widths
    if args.layers is not None:
        opts.layers = args.layers
    if args.json:  # fail on an unwritable path before measuring for minutes, without creating the file
        folder = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
            raise UserError(f"--json {args.json}: folder {folder} does not exist or is not writable")
    report = run_bench(opts, log=lambda msg: print(msg, flush=True))
    print(format_table(report))
    if args.json:
        with atomic_write(args.json) as handle:
            json.dump(report, handle, indent=2)
        print(f"wrote {args.json}")
    return 1 if report["failed"] else 0
