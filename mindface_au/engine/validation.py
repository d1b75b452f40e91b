"""Per-epoch validation during training: the validation videos (optionally shortened) scored as `evaluate` does.

`EpochValidator` (engine/callbacks.py) calls the function `create_validation` returns after each epoch, on rank 0.
In a data-parallel run rank 0 validates every frame itself (rather than each rank scoring a shard and the counts
being all-reduced): the smoothing works on whole videos, this is the code `eval` runs (so the logged F1 equals a
single-process `eval` of the epoch checkpoint with data.val_max_frames 0), and no collective runs outside the
train graph. The cost: the other ranks wait for it at their next gradient all-reduce.
"""

import logging
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mindface_au.data.affwild2 import Video

__all__ = ["truncate_videos", "create_validation"]


def truncate_videos(videos: Sequence[Video], max_frames: int) -> Tuple[List[Video], int]:
    """Keep a contiguous prefix of each video so that at most ~`max_frames` frames remain (0 = keep all).

    For quick validation runs (`data.val_max_frames`): prefixes keep the temporal smoothing meaningful.
    Returns the new videos and the number of frames kept.
    """
    total = sum(len(v) for v in videos)
    if max_frames <= 0 or total <= max_frames:
        return list(videos), total
    out = []
    for v in videos:
        n = max(1, int(len(v) * max_frames / total))
        out.append(
            Video(
                v.name,
                v.frame_ids[:n],
                None if v.labels is None else v.labels[:n],
                v.image_paths[:n],
                v.num_frames,
                v.invalid_rows,
                v.missing_images,
                v.frame_number_mismatch,
            )
        )
    return out, sum(len(v) for v in out)


def create_validation(net, videos: Sequence[Video], cfg, logger: Optional[logging.Logger] = None) -> Callable[[], Dict]:
    """A function that scores `net` on `videos` (cut to `data.val_max_frames`) with the `eval` settings.

    It returns the `evaluate_probs` dict without the full probability arrays, plus "frames" (frames with an image
    scored) and "frames_unscored" (those that got no prediction; 0 unless an image is unreadable), logs both to
    `logger`, and leaves `net` in training mode.
    """
    from mindface_au.engine.evaluator import evaluate_probs, predict_videos
    from mindface_au.inference.loader import AUProbabilities

    prob_net = AUProbabilities(net)
    eval_videos, _ = truncate_videos(videos, cfg.data.val_max_frames)

    def validate() -> Dict:
        net.set_train(False)
        try:
            predictions = predict_videos(prob_net, eval_videos, cfg.data)
        finally:
            net.set_train(True)
        result = evaluate_probs(
            eval_videos, predictions, cfg.eval.prob_k, cfg.eval.label_k, cfg.eval.threshold, cfg.data.au_names or None
        )
        result.pop("full_probs")
        result["frames"] = int(sum(len(probs) for _, probs in predictions))
        result["frames_unscored"] = int(sum(np.isnan(probs).any(axis=1).sum() for _, probs in predictions))
        if logger is not None:
            logger.info(
                f"validation: {result['frames']} frames of {len(eval_videos)} videos, each predicted once "
                f"({result['frames_unscored']} without a prediction); prob k {cfg.eval.prob_k}, "
                f"label k {cfg.eval.label_k}"
            )
        return result

    return validate
