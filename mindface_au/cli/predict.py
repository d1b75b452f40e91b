"""`mindface-au predict`: challenge txt files for a split, voting over one or more checkpoints.

The txt header names the models' AUs (all voting models must share one AU set). BP4D, DISFA and list data have no
test split: the test part of data.split's fold is predicted."""

import argparse
import os
import sys

from mindface_au.cli.common import add_config_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_args(parser)
    parser.add_argument(
        "--model",
        "--ckpt",
        dest="ckpt",
        nargs="+",
        required=True,
        help="one or more model files (.ckpt/.mindir/.onnx) that vote; --ckpt is an alias",
    )
    parser.add_argument(
        "--split",
        default="test",
        choices=["test", "val", "train", "val-fold"],
        help="videos to predict (val-fold: the validation videos of data.split); bp4d, disfa, list: the test part "
        "of data.split's fold",
    )
    parser.add_argument("--out", required=True, help="output folder, one <video>.txt per video")
    parser.add_argument(
        "--vote",
        default="majority",
        choices=["majority", "mean"],
        help="majority of the 0/1 labels, or mean of the probabilities",
    )
    parser.add_argument(
        "--prob-k", type=int, default=None, help="probability smoothing half-window (default: the model file's)"
    )
    parser.add_argument("--label-k", type=int, default=None, help="label smoothing half-window (default: the file's)")
    parser.add_argument("--device", default="auto", help="CPU, GPU, Ascend or auto")
    parser.add_argument("--overwrite", action="store_true", help="replace existing <video>.txt files in --out")


def run(args: argparse.Namespace) -> int:
    from mindface_au.cli.common import echo_config
    from mindface_au.config import load_config
    from mindface_au.engine.predict import predict
    from mindface_au.errors import UserError
    from mindface_au.inference.model_file import apply_model_file, read_model_file

    cfg = load_config(args.config, args.overrides)
    if args.prob_k is not None and args.prob_k < 0 or args.label_k is not None and args.label_k < 0:
        raise UserError(f"--prob-k {args.prob_k} / --label-k {args.label_k}: expected integers >= 0")
    for path in args.ckpt:  # before the config echo: a bad argument is one line on stderr
        if not os.path.isfile(path):
            raise UserError(f"{path}: checkpoint not found")
    # each model file is read once; the first decides the evaluation settings unless given (said on stderr)
    files = [read_model_file(path, cfg.model, args.device) for path in args.ckpt]
    echo_config(apply_model_file(files[0], cfg, args.prob_k, args.label_k)[0])
    result = predict(
        cfg, files, args.out, args.split, args.vote, args.prob_k, args.label_k, device=args.device,
        overwrite=args.overwrite,
    )  # fmt: skip
    for note in result["notes"]:
        print(note, file=sys.stderr)
    where = f"the test part of {cfg.data.split}" if cfg.data.format != "affwild2" else f"split {args.split}"
    print(
        f"wrote {result['videos']} videos ({result['frames']} frames) of {where} to {result['out_dir']}; "
        f"AUs: {', '.join(result['au_names'])}"
    )
    return 0
