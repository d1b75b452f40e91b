"""The end-to-end demo on SynthAU: generate, train the full network, evaluate, predict the test split, plot.

Everything lands in one folder::

    data/            the generated SynthAU set (Aff-Wild2 layout)
    run/             the training run (config.yaml, train.log, metrics.json, checkpoints/)
    predictions/     one ABAW txt per test video
    timeline.png     AU probabilities of one validation video against its labels
    f1_bars.png      per-AU validation F1 (smoothed)
    results.json     val_mean_f1, val_mean_f1_smoothed, per_au, baselines, timings
"""

import dataclasses
import json
import os
import time
from typing import Dict, Optional

import numpy as np

from mindface_au.config import AU_NAMES, Config, load_config
from mindface_au.metrics import f1_per_au
from mindface_au.utils.io import atomic_write

__all__ = ["DEFAULT_CONFIG", "baselines", "run_demo"]

DEFAULT_CONFIG = "synthau_demo"  # a packaged config name (mindface_au/configs/synthau_demo.yaml)


def baselines(train_videos, val_videos) -> Dict[str, float]:
    """Mean F1 on val of two label-only predictors: each AU's majority class on train, and always 1."""
    train_labels = np.concatenate([v.labels for v in train_videos])
    val_labels = np.concatenate([v.labels for v in val_videos])
    majority = (train_labels.mean(axis=0) > 0.5).astype(np.int8)
    majority_pred = np.broadcast_to(majority, val_labels.shape)
    return {
        "majority": float(f1_per_au(val_labels, majority_pred).mean()),
        "all_positive": float(f1_per_au(val_labels, np.ones_like(val_labels)).mean()),
    }


def run_demo(
    out_dir: str = "runs/demo",
    config: Optional[str] = None,
    overrides=(),
    videos: int = 0,
    frames: int = 0,
    device: str = "auto",
    log=print,
    result_line=print,
) -> Dict:
    """Run the whole demo into `out_dir`; returns the results.json dict.

    `config` is a file path or a packaged config name (default `synthau_demo`, resolved by `load_config`);
    `videos` / `frames` (0 = the config's defaults below) size the generated SynthAU set. `log` takes the progress
    lines, `result_line` the final summary (the CLI: stderr and stdout).
    """
    from mindface_au.data import get_split
    from mindface_au.data.synthau import GENERATOR, generate
    from mindface_au.engine.evaluator import evaluate_probs, format_sweep, predict_videos, sweep
    from mindface_au.engine.predict import predict
    from mindface_au.engine.trainer import train
    from mindface_au.modelfile.loader import load_inference_model
    from mindface_au.plots import plot_au_bars, plot_au_timeline
    from mindface_au.submission import score_folders
    from mindface_au.utils.device import init_context

    t_start = time.time()
    data_root = os.path.join(out_dir, "data")
    cfg: Config = load_config(
        config or DEFAULT_CONFIG,
        [f"data.root={data_root}", f"train.out_dir={os.path.join(out_dir, 'run')}", *overrides],
    )
    init_context(device)
    videos = videos or DEMO_DATA["videos"]
    frames = frames or DEMO_DATA["frames"]
    summary_path = os.path.join(data_root, "synthau.json")  # written by the generator
    existing = json.load(open(summary_path, encoding="utf-8")) if os.path.isfile(summary_path) else {}
    if all(
        existing.get(k) == v
        for k, v in (("generator", GENERATOR), ("videos", videos), ("frames", frames), ("seed", cfg.train.seed))
    ):
        log(f"[1/5] SynthAU already in {data_root}")
    else:
        log(f"[1/5] generating SynthAU ({videos} videos x {frames} frames) in {data_root}")
        generate(data_root, videos=videos, frames=frames, seed=cfg.train.seed, overwrite=True)
    t_data = time.time()

    log(f"[2/5] training {cfg.model.name} (widths {cfg.model.widths}) for {cfg.train.epochs} epochs")
    trained = train(cfg, overwrite=True)  # the demo manages its own folder: a second `make demo` starts over
    t_train = time.time()

    log("[3/5] evaluating the best checkpoint on val, raw and smoothed")
    train_videos, val_videos = get_split(cfg.data)
    model = load_inference_model(trained["best_ckpt"], device=device)  # the one inference path (BatchNorm folded)
    predictions = predict_videos(model, val_videos, cfg.data)
    result = evaluate_probs(val_videos, predictions, cfg.eval.prob_k, cfg.eval.label_k, cfg.eval.threshold)
    table = sweep(val_videos, result["full_probs"], cfg.eval.threshold, fixed_prob_k=cfg.eval.prob_k)
    log(format_sweep(table, cfg.eval.prob_k))

    log("[4/5] predicting the test split")
    pred_dir = os.path.join(out_dir, "predictions")
    written = predict(cfg, [trained["best_ckpt"]], pred_dir, split="test", overwrite=True)

    hidden = os.path.join(data_root, "synthau_test_labels")  # SynthAU keeps the test labels aside
    test_score = score_folders(pred_dir, hidden) if os.path.isdir(hidden) else None

    log("[5/5] plotting")
    video = max(val_videos, key=len)
    full = result["full_probs"][val_videos.index(video)]
    truth = np.full(full.shape, np.nan)  # unlabelled frames and frames without a face leave gaps in the truth
    truth[np.asarray(video.frame_ids) - 1] = video.labels
    timeline = os.path.join(out_dir, "timeline.png")
    plot_au_timeline(full, timeline, truth=truth, title=f"{video.name} (val): prediction vs labels (shaded)")
    bars = os.path.join(out_dir, "f1_bars.png")
    smoothed = [result["per_au_smoothed"][n] for n in AU_NAMES]
    plot_au_bars(np.asarray(smoothed), bars, title=f"val F1 per AU (smoothed), mean {100 * np.mean(smoothed):.1f}")

    base = baselines(train_videos, val_videos)
    results = {
        "val_mean_f1": result["mean_f1"],
        "val_mean_f1_smoothed": result["mean_f1_smoothed"],
        "per_au": result["per_au"],
        "per_au_smoothed": result["per_au_smoothed"],
        "prob_k": cfg.eval.prob_k,
        "label_k": cfg.eval.label_k,
        "majority_baseline_f1": base["majority"],
        "all_positive_baseline_f1": base["all_positive"],
        "test_mean_f1_smoothed": test_score["mean_f1"] if test_score else None,
        "sweep": table,
        "best_epoch": trained["best"]["epoch"],
        "epochs": cfg.train.epochs,
        "model": dataclasses.asdict(cfg.model),
        "data": {
            "videos": videos,
            "frames": frames,
            "train_videos": len(train_videos),
            "val_videos": len(val_videos),
            "test_videos": written["videos"],
            "test_frames": written["frames"],
        },
        "files": {
            "run": trained["run_dir"],
            "best_ckpt": trained["best_ckpt"],
            "predictions": pred_dir,
            "timeline": timeline,
            "f1_bars": bars,
        },
        "time_s": {"data": t_data - t_start, "train": t_train - t_data, "total": time.time() - t_start},
    }
    with atomic_write(os.path.join(out_dir, "results.json")) as handle:
        json.dump(results, handle, indent=2)
    result_line(
        f"val mean F1 {100 * results['val_mean_f1']:.2f} raw, {100 * results['val_mean_f1_smoothed']:.2f} smoothed "
        f"(majority baseline {100 * base['majority']:.2f}, all-positive {100 * base['all_positive']:.2f}); "
        f"{results['time_s']['total']:.0f} s; results in {os.path.join(out_dir, 'results.json')}"
    )
    return results


DEMO_DATA = {"videos": 24, "frames": 300}
