"""Make the documentation's report screenshot (docs/images/detect_report.png) from scratch, offline.

1. a small SynthAU set (synthetic faces) and a tiny AU network trained on it for a few epochs (`mindface-au train`);
2. `mindface_au.data.synthau.clips.scene_video`: 60 frames of SynthAU faces in a scene (one person, ten empty
   frames, a cut to two people);
3. `mindface-au detect --all-faces --prob-k 2 --report` on that video;
4. a headless Chromium screenshot of the report.

The model has seen synthetic faces only: the screenshot shows what a report looks like, not AU measurements.

    python tools/detect_report_image.py --work runs/report-demo --png docs/images/detect_report.png
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

from mindface_au.data.synthau.clips import scene_video


def _cli(*args: str) -> None:
    cmd = [sys.executable, "-m", "mindface_au", *map(str, args)]
    print("$ mindface-au " + " ".join(map(str, args)), flush=True)
    subprocess.run(cmd, check=True, env=dict(os.environ, GLOG_v="3"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="folder for the data, the run, the video and the report")
    parser.add_argument("--png", default="docs/images/detect_report.png", help="screenshot to write")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--height", type=int, default=1500, help="screenshot height in pixels")
    args = parser.parse_args()

    from mindface_au.data.synthau import generate

    os.makedirs(args.work, exist_ok=True)
    data = os.path.join(args.work, "synthau")
    if not os.path.isdir(data):
        generate(data, videos=16, frames=120, seed=1, workers=1)
    config = os.path.join(args.work, "tiny.yaml")
    cfg = {
        "model": {"name": "aunet_iresnet18", "widths": [8, 16, 16, 32], "layers": [1, 1, 1, 1], "input_size": 64,
                  "head_dim": 16, "fusion_heads": 2, "lrp_num": 2, "lrp_reduction": 4},
        "data": {"root": data, "batch_size": 16, "eval_batch_size": 64, "num_workers": 1, "sample_rate": 1.0},
        "train": {"epochs": args.epochs, "lr": 0.05, "milestones": [args.epochs * 3 // 4], "seed": 0},
    }  # fmt: skip
    with open(config, "w") as handle:
        yaml.safe_dump(cfg, handle)
    run = os.path.join(args.work, "run")
    if not os.path.isfile(os.path.join(run, "checkpoints", "best.ckpt")):
        _cli("train", "--config", config, "--out", run, "--device", "CPU")
    video = os.path.join(args.work, "scene.avi")
    scene_video(video)
    csv = os.path.join(args.work, "scene.csv")
    html = os.path.join(args.work, "scene.html")
    model = os.path.join(run, "checkpoints", "best.ckpt")
    options = ["--device", "CPU", "--all-faces", "--prob-k", "2", "--no-progress", "--overwrite"]
    _cli("detect", "--input", video, "--out", csv, "--model", model, "--report", html, *options)
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("chromium not found: the report is at " + html, file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.png)), exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             f"--user-data-dir={profile}", f"--window-size=1120,{args.height}",
             f"--screenshot={os.path.abspath(args.png)}", "file://" + os.path.abspath(html)],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    print(f"wrote {args.png} from {html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
