"""`mindface-au detect`: AU probabilities for an image, a folder of images or a video, one CSV row per frame and face.

The CSV goes to OUT.partial while running and is renamed to OUT when complete; after an interruption run the same
command with --resume to continue from the last complete frame (see mindface_au/inference/detect.py).
"""

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mindface_au.cli.common import add_config_args

    parser.add_argument("--input", required=True, help="image, folder of images, or video file")
    parser.add_argument("--output", required=True, help="CSV file to write")
    parser.add_argument(
        "--ckpt", required=True, help="model file: checkpoint (.ckpt), MindIR (.mindir) or ONNX (.onnx)"
    )
    add_config_args(parser)
    parser.add_argument("--device", default="auto", help="auto, CPU, GPU or Ascend (default auto)")
    parser.add_argument("--batch-size", type=int, default=32, help="faces per forward pass (default 32)")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (default 0: all cores)")
    parser.add_argument("--every", type=int, default=1, help="process every N-th frame (default 1: all)")
    parser.add_argument(
        "--detect-size", type=int, default=640, help="longest side faces are searched at (default 640; 0 = full)"
    )
    parser.add_argument("--aligned", action="store_true", help="inputs are aligned face crops: skip detection")
    parser.add_argument("--detector", default="mtcnn", choices=["mtcnn", "haar"], help="face detector (default mtcnn)")
    parser.add_argument("--all-faces", action="store_true", help="every face with a tracked face_id (default: largest)")
    parser.add_argument("--min-face-size", type=int, default=20, help="smallest face side in pixels (default 20)")
    parser.add_argument(
        "--prob-k", type=int, default=0, help="smooth probabilities over 2k+1 processed frames per face track"
    )
    parser.add_argument("--max-gap", type=int, default=30, help="processed frames a face may vanish, keeping its id")
    parser.add_argument("--threshold", type=float, default=0.5, help="probability threshold of the 0/1 columns")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from OUTPUT.partial")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT (and --plot file)")
    parser.add_argument("--plot", default=None, help="PNG: AU time line (video) or per-image bars (images)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from mindface_au.cli.common import options
    from mindface_au.config import load_config
    from mindface_au.inference.detect import detect

    config = load_config(args.config, args.overrides) if (args.config or args.overrides) else None
    summary = detect(
        args.input,
        args.output,
        config=config,
        progress=not args.no_progress,
        **options(
            args,
            "ckpt device batch_size aligned detector all_faces prob_k threshold resume plot min_face_size max_gap "
            "every detect_size threads overwrite",
        ),
    )
    print(json.dumps(summary))
    return 0
