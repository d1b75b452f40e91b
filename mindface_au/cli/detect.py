"""`mindface-au detect`: AU probabilities (and intensities, for a model with the intensity head) for an image, a
folder of images, a video or a folder of videos, one CSV row per frame and face (one CSV per video for a folder).

The CSV goes to OUT.partial while running and is renamed to OUT when complete; after an interruption run the same
command with --resume to continue from the last complete frame (see the package mindface_au/inference/detect/).
stdout holds only the JSON summary (one line); progress, notes and the per-video table go to stderr.
`--merge-summaries FOLDER` joins the shard summaries of a sharded folder-of-videos run into FOLDER/summary.json.
"""

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mindface_au.cli.common import add_config_args

    parser.add_argument("--input", help="image, folder of images, video file, or folder of videos (recursive)")
    parser.add_argument(
        "--out", "--output", dest="output", help="CSV file to write (a folder for a folder of videos); --output alias"
    )
    parser.add_argument(
        "--model", "--ckpt", dest="ckpt", help="model file: .ckpt, .mindir or .onnx (--ckpt is an alias)"
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
        "--prob-k",
        type=int,
        default=0,
        help="smooth probabilities (and intensities) over 2k+1 processed frames per face track",
    )
    parser.add_argument("--max-gap", type=int, default=30, help="processed frames a face may vanish, keeping its id")
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="probability threshold of the 0/1 columns (default: the one the model file was validated with, else 0.5)",
    )
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from OUT.partial")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace existing outputs (CSV, sidecar, plot, overlay, report)"
    )
    parser.add_argument("--plot", default=None, help="PNG: AU time line (video) or per-image bars (images)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-track", action="store_true", help="run the face detector on every frame (slow)")
    parser.add_argument(
        "--keyframe-every", type=int, default=15, help="tracking: frames between full face detections (default 15)"
    )
    parser.add_argument("--start", type=float, default=0.0, help="video time in seconds to start at (default 0)")
    parser.add_argument("--end", type=float, default=None, help="video time in seconds to stop after (default: end)")
    parser.add_argument("--overlay", default=None, help="MP4 to write: the video with faces, landmarks and AU bars")
    parser.add_argument("--report", default=None, help="HTML report to write (self-contained, one file)")
    parser.add_argument("--workers", type=int, default=1, help="folder of videos: processes (default 1)")
    parser.add_argument(
        "--shard",
        default=None,
        help="folder of videos: I/N, this run's share (balanced by size); auto: msrun's rank (mindface-au launch)",
    )
    parser.add_argument(
        "--merge-summaries",
        metavar="FOLDER",
        default=None,
        help="join the shard summaries of FOLDER (a sharded run's --out) into FOLDER/summary.json, then exit",
    )


def check_args(args: argparse.Namespace):
    """The checks that need no model: required flags, input and model files that exist, option values in range,
    the shard. `detect` runs them first; `launch ... -- detect` runs them before msrun starts any worker. Returns
    the DetectOptions the flags give."""
    import os

    from mindface_au.errors import UserError
    from mindface_au.inference.detect.collection import parse_shard

    for value, flag in ((args.input, "--input"), (args.output, "--out"), (args.ckpt, "--model")):
        if not value:
            raise UserError(f"{flag} is required (or --merge-summaries FOLDER)")
    for value, flag in ((args.input, "--input"), (args.ckpt, "--model")):
        if not os.path.lexists(value):
            raise UserError(f"{flag} {value}: not found")
        if not os.path.exists(value):
            raise UserError(f"{flag} {value}: a broken symbolic link")
    for value, flag, low in ((args.batch_size, "--batch-size", 1), (args.workers, "--workers", 1)):
        if value < low:
            raise UserError(f"{flag}: got {value}, expected a positive integer")
    if args.threads < 0:
        raise UserError(f"--threads: got {args.threads}, expected 0 (all cores) or a positive integer")
    options = detect_options(args)
    if args.shard != "auto":
        parse_shard(args.shard)
    return options


def detect_options(args: argparse.Namespace):
    """The DetectOptions the flags give (checked: a bad value is one line naming its flag)."""
    from mindface_au.inference.detect.options import DetectOptions

    return DetectOptions(
        aligned=args.aligned, detector=args.detector, all_faces=args.all_faces, prob_k=args.prob_k,
        threshold=args.threshold, min_face_size=args.min_face_size, max_gap=args.max_gap, every=args.every,
        detect_size=args.detect_size, track=not args.no_track, keyframe_every=args.keyframe_every,
        start_time=args.start, end_time=args.end,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from mindface_au.cli.common import options
    from mindface_au.config import load_config
    from mindface_au.inference.detect import detect

    if args.merge_summaries:
        from mindface_au.inference.detect.collection import merge_summaries

        summary = merge_summaries(args.merge_summaries, overwrite=args.overwrite)
        print(json.dumps(summary))
        return 1 if summary.get("failed") else 0
    opts = check_args(args)
    under_msrun = args.shard == "auto"
    if under_msrun:
        from mindface_au.inference.detect.collection import msrun_shard

        shard = msrun_shard()
        if shard is None:  # msrun's scheduler process: the workers do the videos
            return 0
        args.shard = f"{shard[0]}/{shard[1]}"
    config = load_config(args.config, args.overrides) if (args.config or args.overrides) else None
    summary = detect(
        args.input,
        args.output,
        config=config,
        progress=not args.no_progress,
        options=opts,
        **options(args, "ckpt device batch_size threads resume plot overlay report workers shard overwrite"),
    )
    print(json.dumps(summary))
    if under_msrun and summary.get("failed"):
        # msrun stops every worker when one exits non-zero: a failed video is reported in the shard summary (and
        # launch's merged summary and exit status) instead of ending the other ranks' work
        return 0
    return 1 if summary.get("failed") else 0
