"""Measure `detect` end to end: tracked faces against per-frame detection, same video, same model, same run.

    python tools/detect_speed.py --out DIR [--frames 300] [--rounds 3]

Builds (once, in DIR) a 640x360 video of one SynthAU face (mindface_au.data.synthau.clips) and the demo-width AU network
(configs/synthau_demo.yaml, random weights: speed does not depend on them) exported to ONNX, then runs
`mindface-au detect` as a user would, pinned to one core (`taskset -c 0`, `--threads 1`), alternating the two
paths `--rounds` times, and prints frames/s (median) and milliseconds per frame of each stage.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _model(out: str) -> str:
    onnx = os.path.join(out, "demo_width.onnx")
    if os.path.exists(onnx):
        return onnx
    import dataclasses

    from mindface_au.config import load_config
    from mindface_au.models import create_model_from_config
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    cfg = load_config("synthau_demo", []).model
    cfg = dataclasses.replace(cfg, backbone_checkpoint="")
    ckpt = os.path.join(out, "demo_width.ckpt")
    save_checkpoint_atomic(create_model_from_config(cfg), ckpt, model_config=dataclasses.asdict(cfg))
    cmd = [sys.executable, "-m", "mindface_au", "export", "--model", ckpt, "--format", "ONNX", "--out", onnx]
    subprocess.run(cmd, check=True)
    return onnx


def in_process(video: str, model_path: str, rounds: int, batch_size: int, keyframe_every: int) -> dict:
    """Frames/s from the sum over frames of each frame's fastest time in `rounds` repeats (same frames, same
    work): on a machine other jobs share, a frame's minimum is its time without their interference."""
    import csv
    import io
    import time

    import cv2
    import numpy as np

    from mindface_au.inference.detect import iter_detections
    from mindface_au.inference.detect.rows import RowSchema
    from mindface_au.inference.loader import load_inference_model

    os.sched_setaffinity(0, {0})
    cv2.setNumThreads(1)
    model = load_inference_model(model_path, device="CPU", threads=1, batch_size=batch_size)
    out = {}
    for name, track in (("tracked", True), ("per_frame", False)):
        per_round = []
        for _ in range(rounds):
            marks = [time.perf_counter()]
            writer = csv.writer(io.StringIO())
            schema = RowSchema(model.au_names)
            for row in iter_detections(
                video, model, track=track, keyframe_every=keyframe_every,
                on_frame=lambda f: marks.append(time.perf_counter()),
            ):  # fmt: skip
                writer.writerow(schema.fields(row, 0.5))
            per_round.append(np.diff(marks))
        best = np.min(np.stack(per_round), axis=0)
        out[name] = {
            "fps_min_sum": round(len(best) / best.sum(), 1),
            "fps_rounds": [round(len(t) / t.sum(), 1) for t in per_round],
        }
    out["speedup_min_sum"] = round(out["tracked"]["fps_min_sum"] / out["per_frame"]["fps_min_sum"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--keyframe-every", type=int, default=None)
    parser.add_argument(
        "--in-process", action="store_true", help="time frames in one process (per-frame minimum over rounds)"
    )
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    from mindface_au.data.synthau.clips import speed_video

    video = os.path.join(args.out, f"one_face_640x360_{args.frames}.mp4")
    if not os.path.exists(video):
        speed_video(video, frames=args.frames)
    model = _model(args.out)
    if args.in_process:
        print(json.dumps(in_process(video, model, args.rounds, args.batch_size, args.keyframe_every or 15), indent=1))
        return
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOG_v="3")
    results = {"tracked": [], "per_frame": []}
    for _ in range(args.rounds):
        for name, extra in (("tracked", []), ("per_frame", ["--no-track"])):
            out = os.path.join(args.out, f"{name}.csv")
            cmd = ["taskset", "-c", "0", sys.executable, "-m", "mindface_au", "detect", "--input", video]
            cmd += ["--out", out, "--model", model, "--threads", "1", "--device", "CPU", "--no-progress", "--overwrite"]
            cmd += ["--batch-size", str(args.batch_size), *extra]
            if args.keyframe_every:
                cmd += ["--keyframe-every", str(args.keyframe_every)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            results[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    report = {}
    for name, runs in results.items():
        frames = runs[0]["frames"]
        stages = {
            k: round(1000 * statistics.median(r["stage_seconds"][k] for r in runs) / frames, 2)
            for k in runs[0]["stage_seconds"]
        }
        report[name] = {
            "fps": statistics.median(r["fps"] for r in runs),
            "fps_cpu": round(statistics.median(r["frames"] / r["cpu_seconds"] for r in runs), 2),
            "fps_runs": [r["fps"] for r in runs],
            "ms_per_frame": stages,
            "keyframes": runs[0].get("keyframes"),
            "frames": frames,
        }
    report["speedup"] = round(report["tracked"]["fps"] / report["per_frame"]["fps"], 2)
    report["speedup_cpu"] = round(report["tracked"]["fps_cpu"] / report["per_frame"]["fps_cpu"], 2)
    report["load_average"] = os.getloadavg()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
