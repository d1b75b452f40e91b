"""`mindface-au train`: train an AU model into a run directory (data parallel: `mindface-au launch`)."""

import argparse

from mindface_au.cli.common import add_config_args
from mindface_au.config import NUM_FOLDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_args(parser)
    parser.add_argument("--out", default=None, help="run directory (overrides train.out_dir)")
    parser.add_argument("--device", default=None, help="CPU, GPU, Ascend or auto (default: train.device)")
    parser.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue an interrupted run")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the run already in the run directory (default: refuse)"
    )
    parser.add_argument("--distributed", action="store_true", help="data parallel under msrun (see mindface-au launch)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--fold",
        type=int,
        choices=range(1, NUM_FOLDS + 1),
        help=f"train on the other {NUM_FOLDS - 1} folds, validate on this one",
    )
    group.add_argument("--split", choices=["official"], help="the official train/validation split")


def split_overrides(args: argparse.Namespace) -> list:
    """--set values plus those implied by --out / --fold / --split."""
    overrides = list(args.overrides)
    if getattr(args, "out", None):
        overrides.append(f"train.out_dir={args.out}")
    if getattr(args, "fold", None):
        overrides.append(f"data.split=fold{args.fold}")
    elif getattr(args, "split", None):
        overrides.append(f"data.split={args.split}")
    return overrides


def run(args: argparse.Namespace) -> int:
    from mindface_au.cli.common import echo_config
    from mindface_au.config import load_config
    from mindface_au.engine.trainer import train
    from mindface_au.errors import UserError

    overrides = split_overrides(args)
    if args.resume:
        if args.config:
            raise UserError("--resume RUN_DIR uses the run's saved config.yaml; drop --config (use --set to change)")
        result = train(None, resume=args.resume, distributed=args.distributed, device=args.device, overrides=overrides)
    else:
        cfg = load_config(args.config, overrides)
        echo_config(cfg)
        result = train(cfg, distributed=args.distributed, device=args.device, overwrite=args.overwrite)
    best = result["best"]
    if result.get("rank", 0) != 0:
        return 0
    print(f"best epoch {best['epoch']}: val mean F1 {100 * best['mean_f1']:.2f}; run directory {result['run_dir']}")
    return 0
