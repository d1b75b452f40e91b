"""`mindface-au convert`: a model-zoo IResNet checkpoint -> MindSpore .ckpt, torch.save files read without PyTorch.

Accepted layouts: insightface .pth state_dicts, arcface_torch training checkpoints (state_dict_backbone),
MindFace recognition .ckpt (_backbone.*) and MindSpore IResNet .ckpt (mindface_au.convert.ACCEPTED).

Tiny or non-standard networks: override the stage widths, block counts and embedding size through the config,
e.g. `--set model.widths=[8,16,16,32] --set model.layers=[1,1,1,1] --set model.embedding_size=16`.
"""

import argparse

from mindface_au.cli.common import add_config_args, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--src",
        required=True,
        help="glint360k_r100.pth, arcface_torch checkpoint_gpu_0.pt or a MindFace recognition .ckpt",
    )
    parser.add_argument("--arch", required=True, help="iresnet18, iresnet34, iresnet50, iresnet100 or iresnet200")
    parser.add_argument("--out", required=True, help="MindSpore checkpoint to write (.ckpt)")
    parser.add_argument(
        "--verify", action="store_true", help="compare PyTorch and MindSpore embeddings on a random batch (needs torch)"
    )
    parser.add_argument("--device", default="auto", help="MindSpore device for --verify: auto, CPU, GPU or Ascend")
    add_config_args(parser)
    parser.epilog = (
        "Non-standard networks: --set model.widths=[8,16,16,32] --set model.layers=[1,1,1,1] "
        "--set model.embedding_size=16 (stage widths, blocks per stage, embedding size)."
    )


def run(args: argparse.Namespace) -> int:
    from mindface_au.convert import convert_checkpoint

    cfg = config_from_args(args, echo=False).model
    print(
        f"# convert {args.arch}: widths={cfg.widths} layers={cfg.layers or 'default'} "
        f"embedding_size={cfg.embedding_size} input_size={cfg.input_size}",
        flush=True,
    )
    summary = convert_checkpoint(
        args.src,
        args.arch,
        args.out,
        widths=cfg.widths,
        layers=cfg.layers or None,
        verify=args.verify,
        embedding_size=cfg.embedding_size,
        input_size=cfg.input_size,
        device=args.device,
    )
    from mindface_au.weights.layouts import summarise_names

    ignored = f"; ignored {summarise_names(summary['ignored'])}" if summary["ignored"] else ""
    print(f"layout: {summary['layout']}{ignored}")
    print(
        f"converted {summary['tensors']} tensors ({summary['values'] / 1e6:.2f} M values, "
        f"dropped {len(summary['dropped'])} num_batches_tracked) -> {summary['out']}"
    )
    if summary["verify"]:
        check = summary["verify"]
        print(
            f"verify: max |torch - mindspore| = {check['max_abs_diff']:.3g} "
            f"(embedding scale {check['scale']:.3g}, tolerance {check['tolerance']:.3g}) OK"
        )
    print(f"time {summary['seconds']:.1f} s, peak RSS {summary['peak_rss_mb']:.0f} MiB")
    return 0
