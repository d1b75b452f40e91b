"""`mindface-au eval`: per-AU F1 of a checkpoint on validation data, raw and smoothed; `--sweep` for Table 2. A
model with the intensity head also gets ICC(3,1), PCC and MAE per intensity AU and their means."""

import argparse
import json

from mindface_au.cli.common import add_config_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_args(parser)
    parser.add_argument(
        "--model", "--ckpt", dest="ckpt", required=True, help="model file: .ckpt, .mindir or .onnx (--ckpt is an alias)"
    )
    parser.add_argument(
        "--prob-k", type=int, default=None, help="probability smoothing half-window (default: the model file's)"
    )
    parser.add_argument("--label-k", type=int, default=None, help="label smoothing half-window (default: the file's)")
    parser.add_argument("--sweep", action="store_true", help="print the paper's Table 2 (k = 1..10)")
    parser.add_argument(
        "--fold", type=int, metavar="K", help="validate on fold K (affwild2: 1-4, bp4d/disfa: 1-3, list: its files)"
    )
    parser.add_argument(
        "--shared-aus",
        action="store_true",
        help="score only the AUs the model and the data share (default: differing AU sets are an error)",
    )
    parser.add_argument("--device", default="auto", help="CPU, GPU, Ascend or auto")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from mindface_au.cli.common import echo_config
    from mindface_au.cli.train import load_config_fold
    from mindface_au.engine.evaluator import evaluate, format_intensity_dict, format_sweep
    from mindface_au.errors import UserError
    from mindface_au.inference.model_file import apply_model_file, read_model_file
    from mindface_au.metrics import format_f1, format_mean

    for name in ("prob_k", "label_k"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise UserError(f"--{name.replace('_', '-')}: got {value}, expected an integer >= 0")
    cfg = load_config_fold(args.config, args.overrides, args.fold)
    # the model file is read once and decides the model section, input size and evaluation settings (a given
    # smoothing window overrides them, said on stderr); the echo shows what is run
    model_file = read_model_file(args.ckpt, cfg.model, args.device)
    cfg, _ = apply_model_file(model_file, cfg, args.prob_k, args.label_k, aus=False)
    if not args.json:  # --json keeps stdout to one JSON object
        echo_config(cfg)
    result = evaluate(
        cfg, model_file, args.prob_k, args.label_k, do_sweep=args.sweep, device=args.device,
        shared_aus=args.shared_aus, show_card=True,
    )  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    names = list(result["per_au"])  # the AUs scored: the model's and the data's (or those they share)
    if "shared_aus" in result:
        print(
            f"scored the {len(names)} AUs shared by the model ({', '.join(result['model_au_names'])}) and the data "
            f"({', '.join(result['data_au_names'])}): {', '.join(names)}"
        )
    print(f"{result['videos']} videos, {result['frames']} frames")
    print(format_f1([result["per_au"][n] for n in names], names, label="raw"))
    smoothed = format_f1([result["per_au_smoothed"][n] for n in names], names, label="smoothed")
    print(smoothed.splitlines()[1] + f"   (prob k {result['prob_k']}, label k {result['label_k']})")
    raw = format_mean([result["per_au"][n] for n in names])
    print(f"mean F1: {raw} raw, {format_mean([result['per_au_smoothed'][n] for n in names])} smoothed")
    if "intensity" in result:
        print(format_intensity_dict(result["intensity"]))
    if args.sweep:
        print(format_sweep(result["sweep"], result["prob_k"] or 8))
    return 0
