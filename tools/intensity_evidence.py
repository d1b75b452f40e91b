"""Intensity evidence: a trained model's validation ICC(3,1), PCC and MAE per AU beside the trivial baseline that
predicts each AU's training mean, on the same validation frames and with the same metrics.

    python tools/intensity_evidence.py --model RUN/checkpoints/best.ckpt --config RUN/config.yaml [--json]

The model file decides the model section (its intensity AUs); the config gives the data (data.root, data.split).
The model's scores are `mindface-au eval`'s (engine/evaluator.evaluate); the baseline reads the same split's
training videos (`training_mean_baseline`).
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def evidence(config: str, model: str, overrides=(), device: str = "auto") -> dict:
    """{"model": eval's intensity scores, "baseline": the training-mean baseline's, "mean_f1": the model's raw
    validation mean F1, "frames": validation frames} of model file `model` on the validation part of `config`."""
    from mindface_au.config import load_config
    from mindface_au.engine.evaluator import evaluate, split_videos, training_mean_baseline
    from mindface_au.errors import UserError
    from mindface_au.modelfile.reader import apply_model_file, read_model_file

    cfg = load_config(config, list(overrides))
    mf = read_model_file(model, cfg.model, device)
    cfg, _ = apply_model_file(mf, cfg, aus=False)
    if not cfg.model.intensity:
        raise UserError(f"{model}: the model has no intensity head (model.intensity false)")
    result = evaluate(cfg, mf, device=device)
    train_videos, val_videos = split_videos(cfg)
    baseline = training_mean_baseline(train_videos, val_videos, cfg.model.intensity_au_names)
    return {
        "model": result["intensity"],
        "baseline": baseline,
        "mean_f1": result["mean_f1"],
        "frames": result["frames"],
    }


def main(argv=None) -> int:
    from mindface_au.engine.evaluator import format_intensity_dict
    from mindface_au.errors import UserError

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the run's config.yaml (or a packaged config name)")
    parser.add_argument("--model", required=True, help="model file: the run's checkpoints/best.ckpt")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    try:
        out = evidence(args.config, args.model, args.overrides, args.device)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    f1 = "n/a" if out["mean_f1"] is None else f"{100 * out['mean_f1']:.2f}"
    print(f"{out['frames']} validation frames; the model's raw mean F1 {f1}")
    print(format_intensity_dict(out["model"], label="model"))
    print(format_intensity_dict(out["baseline"], label="train mean"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
