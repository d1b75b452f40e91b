"""`mindface-au train`: train an AU model into a run directory (data parallel: `mindface-au launch`)."""

import argparse
from typing import Optional, Sequence

from mindface_au.cli.common import add_config_args


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
        metavar="K",
        help="validate on fold K, train on the others (affwild2: 1-4, bp4d/disfa: 1-3, list: its fold files)",
    )
    group.add_argument("--split", choices=["official"], help="the official train/validation split")


def split_overrides(args: argparse.Namespace, fold: bool = True) -> list:
    """--set values plus those implied by --out / --fold (unless `fold` is False) / --split."""
    overrides = list(args.overrides)
    if getattr(args, "out", None):
        overrides.append(f"train.out_dir={args.out}")
    if getattr(args, "fold", None) is not None and fold:
        overrides.append(f"data.split=fold{args.fold}")
    elif getattr(args, "split", None):
        overrides.append(f"data.split={args.split}")
    return overrides


def load_config_fold(config: Optional[str], overrides: Sequence[str], fold: Optional[int]):
    """The config with data.split = fold<`fold`>, the fold count taken from its data format once it is loaded
    (affwild2 4, bp4d and disfa 3, list the fold files present); a fold outside it names --fold and the count."""
    from mindface_au.config import load_config
    from mindface_au.data.formats import num_folds
    from mindface_au.errors import UserError

    cfg = load_config(config, overrides)
    if fold is None:
        return cfg
    count = num_folds(cfg.data)
    if not 1 <= fold <= count:
        raise UserError(f"--fold {fold}: data.format {cfg.data.format} has folds 1 to {count}")
    return load_config(config, list(overrides) + [f"data.split=fold{fold}"])


def run(args: argparse.Namespace) -> int:
    from mindface_au.cli.common import echo_config
    from mindface_au.engine.callbacks import describe_best
    from mindface_au.engine.trainer import train
    from mindface_au.errors import UserError

    overrides = split_overrides(args)
    if args.resume:
        if args.config:
            raise UserError("--resume RUN_DIR uses the run's saved config.yaml; drop --config (use --set to change)")
        result = train(
            None, resume=args.resume, distributed=args.distributed, device=args.device, overrides=overrides,
            on_start=echo_config,
        )  # fmt: skip
    else:
        cfg = load_config_fold(args.config, split_overrides(args, fold=False), args.fold)
        result = train(
            cfg, distributed=args.distributed, device=args.device, overwrite=args.overwrite, on_start=echo_config
        )
    best = result["best"]
    if result.get("rank", 0) != 0:
        return 0
    print(f"{describe_best(best)}; run directory {result['run_dir']}")
    for line in next_steps(result["run_dir"], result["best_ckpt"]):
        print(line)
    return 0


def next_steps(run_dir: str, best_ckpt: str) -> list:
    """The commands that evaluate and export the run's best checkpoint, ready to paste (paths shell-quoted)."""
    import os
    import shlex

    config = shlex.quote(os.path.join(run_dir, "config.yaml"))
    model = shlex.quote(best_ckpt)
    return [
        f"evaluate with: mindface-au eval --config {config} --model {model}",
        f"export with: mindface-au export --model {model} --out {shlex.quote(os.path.join(run_dir, 'model.mindir'))}",
    ]
