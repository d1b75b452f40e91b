"""Per-epoch validation during training: the validation videos (optionally shortened) scored as `evaluate` does.

`check_validation_part` runs before training: a validation part with no frame to score (no videos, images missing,
every label uncoded) is an error, unless the run asks for no validation (train.val_interval 0). `EpochValidator`
(engine/callbacks.py) calls the function `create_validation` returns after each validated epoch, on every rank.

In a data-parallel run each rank scores a shard of whole videos (`shard_videos`: the smoothing works on whole
videos, so a video's frames are post-processed exactly as in a single process), and the per-AU counts (TP, FP, FN,
coded frames) and frame counts are summed over the ranks (`engine.distributed.all_reduce_sum`, outside the train
graph): counts of disjoint videos add up, so the F1 equals a single-process `eval` of the same checkpoint. A rank
with no video (more ranks than videos) scores nothing and adds zero counts. The ranks wait for each other only at
that sum, for about the validation time divided by the number of ranks, instead of every other rank waiting at its
next gradient all-reduce while rank 0 scores everything.

A network with the intensity head is also scored on intensity (ICC(3,1), PCC, MAE per AU: `metrics`). Those are
not sums of per-video counts, so the ranks gather the predictions instead: every rank knows every validation video
(all load the whole part), so each places the float32 bit patterns of its videos' predicted intensities at those
videos' rows of one array over all videos in the single-process order, zeros elsewhere; the same integer sum then
gives every rank the single-process array bit for bit, and the same ICC.
"""

import dataclasses
import logging
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mindface_au.data.affwild2 import Video
from mindface_au.errors import UserError

__all__ = [
    "EmptyValidationPart",
    "truncate_videos",
    "scorable_frames",
    "check_validation_part",
    "shard_videos",
    "shard_indices",
    "create_validation",
]


class EmptyValidationPart(UserError):
    """The validation part of a split has no frame to score (refused before training starts)."""


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
        intensity = getattr(v, "intensity", None)
        out.append(
            dataclasses.replace(
                v,
                frame_ids=v.frame_ids[:n],
                labels=None if v.labels is None else v.labels[:n],
                image_paths=v.image_paths[:n],
                intensity=None if intensity is None else intensity[:n],
            )
        )
    return out, sum(len(v) for v in out)


def scorable_frames(videos: Sequence[Video]) -> int:
    """Frames that can be scored: with an image and at least one AU label coded (not -1)."""
    total = 0
    for v in videos:
        if v.labels is None or not len(v):
            continue
        has_image = np.array([p is not None for p in v.image_paths], dtype=bool)
        coded = (np.asarray(v.labels) >= 0).any(axis=1)
        total += int((has_image & coded).sum())
    return total


def check_validation_part(videos: Sequence[Video], cfg) -> bool:
    """Whether the run validates: False for an explicit no-validation run (train.val_interval 0, which keeps the
    last epoch as best.ckpt); True when the validation part of `cfg.data.split` has a frame to score; else a
    UserError naming the split, the data root and what the part holds. Call before training starts (every rank
    loads the whole part, so every rank reaches the same answer)."""
    if cfg.train.val_interval == 0:
        return False
    frames = scorable_frames(videos)
    if frames:
        return True
    split = cfg.data.split or "official"
    if not videos:
        held = "no videos"
    else:
        listed = sum(len(v) for v in videos)
        missing = sum(int(v.missing_images) for v in videos)
        held = f"{len(videos)} video(s), {listed} frame(s) listed, none with an image and a coded AU label"
        if missing:
            held += f" ({missing} labelled row(s) without an image)"
    raise EmptyValidationPart(
        f"{cfg.data.root}: the validation part of data.split {split} has no frame to score ({held}); use another "
        "split or fix the data, or set train.val_interval=0 to train without validation (best.ckpt = the last epoch)"
    )


def shard_videos(videos: Sequence[Video], rank: int, world_size: int) -> List[Video]:
    """The whole videos rank `rank` of `world_size` scores: each video, longest first, goes to the rank with the
    fewest frames so far (the lowest rank on a tie), so the shards are disjoint, cover every video and hold about
    equal frame counts; a shard keeps the videos' order. A rank may get none (more ranks than videos)."""
    return [videos[i] for i in shard_indices(videos, rank, world_size)]


def shard_indices(videos: Sequence[Video], rank: int, world_size: int) -> List[int]:
    """The indices into `videos` of `shard_videos(videos, rank, world_size)`, in order."""
    if world_size <= 1:
        return list(range(len(videos)))
    load = [0] * world_size
    owner = [0] * len(videos)
    for i in sorted(range(len(videos)), key=lambda i: (-len(videos[i]), i)):
        target = min(range(world_size), key=lambda r: (load[r], r))
        owner[i] = target
        load[target] += len(videos[i])
    return [i for i, r in enumerate(owner) if r == rank]


def describe_subset(kept: int, total: int, max_frames: int) -> str:
    """Which validation frames a score covers, as saved beside it (metrics.json "val_subset") and logged."""
    if kept >= total:
        return f"all {total} validation frames"
    return f"the first {kept} of {total} validation frames (prefixes of each video, data.val_max_frames {max_frames})"


def create_validation(
    net,
    videos: Sequence[Video],
    cfg,
    logger: Optional[logging.Logger] = None,
    rank: int = 0,
    world_size: int = 1,
    combine: Optional[Callable[[np.ndarray], np.ndarray]] = None,
) -> Callable[[], Dict]:
    """A function that scores `net` on `videos` (cut to `data.val_max_frames`) with the `eval` settings.

    With `world_size` > 1 every rank must call it: this rank predicts and counts its shard (`shard_videos`), and
    `combine` (default: the sum over the ranks, `all_reduce_sum`) adds the counts of all ranks. It returns the
    `scores_from_counts` dict (the same on every rank), plus "frames" (frames with an image scored) and
    "frames_unscored" (those that got no prediction; 0 unless an image is unreadable), "subset" (which frames:
    all, or the first data.val_max_frames) and "videos"; for a network with the intensity head also "intensity"
    (`evaluator.score_intensity`: ICC, PCC, MAE per AU and their means, over the validation videos' coded
    intensity rows); logs them to `logger`; leaves `net` in training mode.
    """
    from mindface_au.au_sets import default_au_names
    from mindface_au.engine.evaluator import (
        count_predictions,
        intensity_names,
        intensity_rows,
        predict_video_outputs,
        score_intensity,
        scores_from_counts,
        video_intensity,
    )
    from mindface_au.modelfile.loader import AUProbabilities

    prob_net = AUProbabilities(net)
    total = sum(len(v) for v in videos)
    eval_videos, kept = truncate_videos(videos, cfg.data.val_max_frames)
    subset = describe_subset(kept, total, cfg.data.val_max_frames)
    mine_idx = shard_indices(eval_videos, rank, world_size)
    mine = [eval_videos[i] for i in mine_idx]
    au_names = default_au_names(cfg.data.au_names)
    head = intensity_names(net)
    # intensity: the rows of every validation video in order (labels known to every rank), this rank's filled in
    offsets = np.concatenate([[0], np.cumsum([len(v) for v in eval_videos])]).astype(np.int64)
    truth = np.concatenate([video_intensity(v, head) for v in eval_videos]) if head and eval_videos else None
    if combine is None and world_size > 1:
        from mindface_au.engine.distributed import all_reduce_sum

        combine = all_reduce_sum

    def validate() -> Dict:
        net.set_train(False)
        try:
            predictions, intensities = predict_video_outputs(prob_net, mine, cfg.data)
        finally:
            net.set_train(True)
        counts, _ = count_predictions(
            mine, predictions, cfg.eval.prob_k, cfg.eval.label_k, cfg.eval.threshold, len(au_names)
        )
        frames = sum(len(probs) for _, probs in predictions)
        unscored = sum(int(np.isnan(probs).any(axis=1).sum()) for _, probs in predictions)
        bits = np.zeros((0,), np.int64)
        if truth is not None:  # this rank's predicted intensities, as float32 bit patterns at their global rows
            rows = np.zeros((int(offsets[-1]), len(head)), np.float32)
            for i, (video, pair) in zip(mine_idx, zip(mine, intensities)):
                rows[offsets[i] : offsets[i + 1]] = intensity_rows([video], [pair], head)[1]
            bits = rows.view(np.int32).astype(np.int64).reshape(-1)
        packed = np.concatenate([counts.reshape(-1), bits, [frames, unscored]]).astype(np.int64)
        if combine is not None:
            packed = np.asarray(combine(packed)).astype(np.int64).reshape(packed.shape)
        n_counts = counts.size
        result = scores_from_counts(
            packed[:n_counts].reshape(counts.shape), cfg.eval.prob_k, cfg.eval.label_k, au_names
        )
        result.update(frames=int(packed[-2]), frames_unscored=int(packed[-1]), subset=subset, videos=len(eval_videos))
        if truth is not None:
            pred = packed[n_counts:-2].astype(np.int32).view(np.float32).reshape(truth.shape)
            result["intensity"] = score_intensity(truth, pred, head)
        if logger is not None:
            shard = f"; {world_size} ranks, this one scored {len(mine)} whole videos" if world_size > 1 else ""
            logger.info(
                f"validation: {result['frames']} frames of {len(eval_videos)} videos ({subset}), each predicted "
                f"once ({result['frames_unscored']} without a prediction); prob k {cfg.eval.prob_k}, "
                f"label k {cfg.eval.label_k}{shard}"
            )
        return result

    return validate
