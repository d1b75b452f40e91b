"""`mindface-au doctor`: what to run first on a cluster node; MindSpore, device plugins, devices, msrun, cores,
the shared-folder rule of multi-machine runs, and whether a tiny network compiles one training step here."""

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (Ascend, then GPU, then CPU), CPU, GPU or Ascend")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--no-compile", action="store_true", help="skip the one-step compile check (faster)")


def run(args: argparse.Namespace) -> int:
    from mindface_au.engine.doctor import diagnose, format_report

    report = diagnose(args.device, compile_step=not args.no_compile)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print("\n".join(format_report(report)))
    step = report.get("compile_step")
    return 0 if step is None or step["ok"] else 1
