"""`mindface-au export`: write a trained checkpoint as a MindIR or ONNX file (AU probabilities; optional int8), or
as a model-zoo release checkpoint with its recipe (`--format CKPT`)."""

import argparse
import json
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mindface_au.cli.common import add_config_args
    from mindface_au.inference.export import FORMATS, QUANTIZE
    from mindface_au.release import SPEC_CHARS

    add_config_args(parser)
    parser.add_argument(
        "--model", "--ckpt", dest="ckpt", required=True, help="trained checkpoint (.ckpt); --ckpt is an alias"
    )
    parser.add_argument("--format", default="MINDIR", type=str.upper, choices=list(FORMATS), help="export format")
    parser.add_argument(
        "--out",
        required=True,
        help="output file, e.g. model.mindir or model.onnx; for CKPT a folder (the file name is derived)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=8, help="MindIR: fixed batch of the graph; ONNX: batch traced (default 8)"
    )
    parser.add_argument("--quantize", choices=list(QUANTIZE), default=None, help="ONNX only: static int8 (QDQ)")
    parser.add_argument("--calib", default=None, help="--quantize: folder of aligned face crops (default: SynthAU)")
    parser.add_argument("--calib-frames", type=int, default=256, help="--quantize: calibration crops (default 256)")
    parser.add_argument(
        "--spec",
        default=None,
        help=f"CKPT: the recipe's name in {{model}}_{{spec}}-{{sha256[:8]}}.ckpt ({SPEC_CHARS}; default: the "
        "packaged config the run's config.yaml matches, else the run folder's name)",
    )
    parser.add_argument("--device", default="auto", help="auto, CPU, GPU or Ascend (default auto)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")


def _run_recipe(ckpt: str):
    """The config.yaml of the run folder holding `ckpt` (RUN/checkpoints/x.ckpt), or None."""
    from mindface_au.engine.run_dir import RUN_FILES

    ckpt_dir = os.path.dirname(os.path.abspath(ckpt))
    path = os.path.join(os.path.dirname(ckpt_dir), RUN_FILES["config"])
    return path if os.path.basename(ckpt_dir) == RUN_FILES["ckpt_dir"] and os.path.isfile(path) else None


def run(args: argparse.Namespace) -> int:
    import sys

    from mindface_au.cli.common import options
    from mindface_au.config import load_config
    from mindface_au.inference.export import export_model

    config = load_config(args.config, args.overrides) if (args.config or args.overrides) else None
    if args.format == "CKPT":
        # the recipe: --config (by name, so a packaged name gives the spec), else the run folder's config.yaml
        recipe = (args.config if not args.overrides else config) if config is not None else _run_recipe(args.ckpt)
        info = export_model(args.ckpt, args.out, fmt="CKPT", device=args.device, config=recipe, spec=args.spec)
        print(json.dumps({"format": "CKPT", **info}))
        return 0
    info = export_model(
        args.ckpt,
        args.out,
        fmt=args.format,
        config=config,
        **options(args, "batch_size quantize calib calib_frames device overwrite"),
    )
    if "int8" in info:
        q = info["int8"]
        print(
            f"int8: {q['time_ratio_int8_vs_float32']}x the float32 file's time at batch {q['timed_batch']} "
            f"({q['int8_seconds']:.4f} s vs {q['float32_seconds']:.4f} s), max difference {q['max_diff']:.2e} "
            f"on {q['compared_on']}; calibrated on {q['calibration']}",
            file=sys.stderr,
        )
    keys = ("batch_size", "input_size", "output", "out_dim", "max_abs_diff_vs_mindspore", "int8")
    keys += ("intensity_au_names", "max_abs_diff_intensity_vs_mindspore")  # a model with the intensity head only
    print(json.dumps({"out": args.out, "format": args.format, **{k: info[k] for k in keys if k in info}}))
    return 0
