"""`mindface-au doctor`: what to run first on a cluster node; MindSpore, device plugins and hardware, CANN and
CUDA/cuDNN needed against found, device memory, msrun, cores, the shared-folder rule of multi-machine runs, and
whether a tiny network compiles a training step here without and with dataset sink."""

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (Ascend, then GPU, then CPU), CPU, GPU or Ascend")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--no-compile", action="store_true", help="skip the training-step compile checks (faster)")


def run(args: argparse.Namespace) -> int:
    from mindface_au.engine.doctor import diagnose, format_report, steps_ok

    report = diagnose(args.device, compile_step=not args.no_compile)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print("\n".join(format_report(report)))
    return 0 if steps_ok(report) else 1
