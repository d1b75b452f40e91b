"""Evaluation: run a network over videos, post-process per video, score per-AU F1 (with the paper's k sweep).

Probabilities are predicted for the frames that have an image, spread onto every row of the video's frame list
from the nearest predicted frame, smoothed per video (never across videos), thresholded, and the labelled rows
scored. Predictions written by `predict` go through the same steps, so `score` on them reproduces `evaluate`.

A model with the intensity head (model.intensity) also predicts 0-5 intensities of its own AU list; they are spread
onto the frame list the same way (not smoothed) and scored on the coded rows of `Video.intensity` with
ICC(3,1), Pearson r and MAE per AU (`mindface_au.metrics.intensity_per_au`), beside the F1.
"""

import dataclasses
import sys
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from mindface_au.au_sets import default_au_names
from mindface_au.config import Config, DataConfig, ModelConfig
from mindface_au.errors import UserError, param
from mindface_au.metrics import (
    COUNT_ROWS,
    INTENSITY_METRICS,
    F1Accumulator,
    IntensityScores,
    f1_from_counts,
    format_intensity,
    intensity_dict,
    intensity_per_au,
    mean_of_coded,
    per_au_dict,
)
from mindface_au.modelfile.reader import ModelFile
from mindface_au.postprocess import fill_nearest, postprocess_video

__all__ = [
    "load_model",
    "split_videos",
    "predict_videos",
    "predict_video_outputs",
    "intensity_names",
    "video_intensity",
    "intensity_rows",
    "score_intensity",
    "format_intensity_dict",
    "training_mean_baseline",
    "frame_probs",
    "count_videos",
    "score_videos",
    "sweep",
    "format_sweep",
    "count_predictions",
    "scores_from_counts",
    "evaluate_probs",
    "evaluate",
]


def load_model(ckpt: str, model_cfg: Optional[ModelConfig] = None):
    """The training-form network of a checkpoint (not folded; for inspection or fine-tuning) and its ModelConfig.

    Read once by the model-file reader (`read_model_file`): the embedded config, strictly parsed, else
    `model_cfg`. For inference use `mindface_au.inference.loader.load_inference_model`.
    """
    from mindface_au.modelfile.reader import read_model_file

    mf = read_model_file(ckpt, model_cfg)
    return mf.build_network(), mf.model_config


def split_videos(cfg: Config) -> Tuple[List, List]:
    """(train, validation) videos of `cfg.data.split` (`data.get_split`), with the intensity labels of
    `cfg.model.intensity_au_names` (`Video.intensity`) when the model has the intensity head."""
    from mindface_au.data import get_split

    if getattr(cfg.model, "intensity", False):
        return get_split(cfg.data, list(cfg.model.intensity_au_names))
    return get_split(cfg.data)


def _image_only(video):
    """The frames of `video` that have an image (test videos list frames without a face too)."""
    keep = [i for i, p in enumerate(video.image_paths) if p is not None]
    if len(keep) == len(video.image_paths) and video.labels is not None:
        return video
    labels = video.labels[keep] if video.labels is not None else None
    intensity = np.asarray(video.intensity)[keep] if getattr(video, "intensity", None) is not None else None
    return dataclasses.replace(
        video,
        frame_ids=np.asarray(video.frame_ids)[keep],
        labels=labels,
        image_paths=[video.image_paths[i] for i in keep],
        intensity=intensity,
    )


def intensity_names(model) -> Tuple[str, ...]:
    """The AUs of a model's intensity head, () without one: an InferenceModel's `intensity_au_names`, or an
    AUNet's (bare or inside AUProbabilities)."""
    names = getattr(model, "intensity_au_names", None)
    if names is None:
        names = getattr(getattr(model, "net", None), "intensity_au_names", None)
    return tuple(names or ())


def predict_videos(model, videos: Sequence, data_cfg: DataConfig, batch_size: Optional[int] = None) -> List:
    """Probabilities for every frame with an image: per video a (frame_ids, probs) pair, frames in order.

    `model`: an InferenceModel (`load_inference_model`: .ckpt, .mindir or .onnx; images at its input size) or,
    during training, a probability Cell such as AUProbabilities(net) (images at data_cfg.image_size).
    """
    return predict_video_outputs(model, videos, data_cfg, batch_size)[0]


def predict_video_outputs(
    model, videos: Sequence, data_cfg: DataConfig, batch_size: Optional[int] = None
) -> Tuple[List, Optional[List]]:
    """(probabilities, intensities): `predict_videos`' (frame_ids, probs) pairs, and for a model with the
    intensity head the (frame_ids, intensities (T, K)) pairs of the same frames (None without the head)."""
    import mindspore as ms

    from mindface_au.data import create_eval_dataset

    names = intensity_names(model)
    if hasattr(model, "face_input"):  # an InferenceModel: its own input size, padding inside `predict`
        data_cfg = dataclasses.replace(data_cfg, image_size=model.input_size)
        remap = _normalisation_remap(model.face_input)

        def run(images: np.ndarray) -> Tuple[np.ndarray, Optional[np.ndarray]]:
            if names:
                return model.predict_outputs(remap(images), pad=True)
            return model.predict(remap(images), pad=True), None

    else:

        def run(images: np.ndarray) -> Tuple[np.ndarray, Optional[np.ndarray]]:
            count = images.shape[0]
            if count < batch:  # pad to one fixed shape: a GRAPH-mode network compiles once
                images = np.concatenate([images, np.zeros((batch - count,) + images.shape[1:], images.dtype)])
            out = model(ms.Tensor(images))
            if isinstance(out, (tuple, list)):  # AUProbabilities of a network with the intensity head
                return out[0].asnumpy()[:count], out[1].asnumpy()[:count]
            return out.asnumpy()[:count], None

    subsets = [_image_only(v) for v in videos]
    width = _num_aus(model, data_cfg)
    outputs = [np.full((len(v.frame_ids), width), np.nan, np.float32) for v in subsets]
    levels = [np.full((len(v.frame_ids), len(names)), np.nan, np.float32) for v in subsets]
    nonempty = [i for i, v in enumerate(subsets) if len(v.frame_ids)]
    if nonempty:
        batch = int(batch_size or data_cfg.eval_batch_size)
        dataset = create_eval_dataset([subsets[i] for i in nonempty], data_cfg, batch_size=batch, num_aus=width)
        for row in dataset.create_dict_iterator(num_epochs=1, output_numpy=True):
            probs, values = run(row["image"])
            for j, (vi, fi) in enumerate(zip(row["video_index"].reshape(-1), row["frame_index"].reshape(-1))):
                outputs[nonempty[int(vi)]][int(fi)] = probs[j]
                if names:
                    levels[nonempty[int(vi)]][int(fi)] = values[j]
    ids = [np.asarray(v.frame_ids) for v in subsets]
    intensities = [(i, out) for i, out in zip(ids, levels)] if names else None
    return [(i, out) for i, out in zip(ids, outputs)], intensities


def _normalisation_remap(spec):
    """The data pipeline normalises with the packaged mean/std; a model file that stores others gets its own:
    x_file = (x_default * std_default + mean_default - mean_file) / std_file (identity when they agree)."""
    from mindface_au.models.registry import default_face_input

    default = default_face_input(spec.size)
    if (default.mean, default.std) == (spec.mean, spec.std):
        return lambda images: images
    scale = (np.asarray(default.std, np.float32) / np.asarray(spec.std, np.float32)).reshape(1, 3, 1, 1)
    shift = ((np.asarray(default.mean) - np.asarray(spec.mean)) / np.asarray(spec.std)).astype(np.float32)
    return lambda images: (images * scale + shift.reshape(1, 3, 1, 1)).astype(np.float32)


def _num_aus(model, data_cfg) -> int:
    """Outputs of `model`: its AU set (an InferenceModel, an AUNet, or AUProbabilities around one), else the data's."""
    names = getattr(model, "au_names", None) or getattr(getattr(model, "net", None), "au_names", None)
    return len(default_au_names(names or getattr(data_cfg, "au_names", None)))


def frame_probs(video, frame_ids: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Spread predicted rows onto all `num_frames` rows of the video, each from its nearest predicted frame."""
    done = ~np.isnan(probs).any(axis=1)
    known = np.zeros(int(video.num_frames), dtype=bool)
    positions = np.asarray(frame_ids)[done] - 1
    known[positions] = True
    order = np.argsort(positions)
    return fill_nearest(probs[done][order], known).astype(np.float32)


def video_labels(video, full_probs: np.ndarray, prob_k: int, label_k: int, threshold: float) -> np.ndarray:
    """0/1 labels for every row of the frame list after the paper's post-processing."""
    return postprocess_video(full_probs, prob_k, label_k, threshold)


def count_videos(
    videos: Sequence,
    full_probs: Sequence[np.ndarray],
    prob_k: int = 0,
    label_k: int = 0,
    threshold: float = 0.5,
    num_aus: Optional[int] = None,
) -> np.ndarray:
    """(4, C) counts (metrics.COUNT_ROWS: TP, FP, FN, coded frames) over the labelled frames of all videos after
    post-processing each video's full frame list. Counts of disjoint sets of whole videos add up to the counts of
    their union (the sharded validation sums them over ranks). `num_aus` (C) is needed only for no videos."""
    if num_aus is None:
        num_aus = full_probs[0].shape[1] if len(full_probs) else len(default_au_names(None))
    acc = F1Accumulator(num_aus)
    for video, probs in zip(videos, full_probs):
        labels = video_labels(video, probs, prob_k, label_k, threshold)
        acc.update(video.labels, labels[np.asarray(video.frame_ids) - 1])
    return acc.counts


def score_videos(
    videos: Sequence, full_probs: Sequence[np.ndarray], prob_k: int = 0, label_k: int = 0, threshold: float = 0.5
) -> np.ndarray:
    """Per-AU F1 over the labelled frames of all videos after post-processing (NaN: an AU with no coded frame)."""
    return f1_from_counts(count_videos(videos, full_probs, prob_k, label_k, threshold))


def sweep(
    videos: Sequence, full_probs: Sequence[np.ndarray], threshold: float = 0.5, fixed_prob_k: int = 8, ks=range(1, 11)
) -> Dict[str, List[Tuple[int, Optional[float]]]]:
    """The paper's Table 2: mean F1 (over the AUs with coded frames; None if none has) for probability k, label
    k, and fixed probability k with label k."""
    table = {"prob": [], "label": [], "prob_label": []}

    def mean(prob_k: int, label_k: int) -> Optional[float]:
        return mean_of_coded(score_videos(videos, full_probs, prob_k, label_k, threshold))[0]

    for k in ks:
        table["prob"].append((k, mean(k, 0)))
        table["label"].append((k, mean(0, k)))
        table["prob_label"].append((k, mean(fixed_prob_k, k)))
    return table


def format_sweep(table: Dict[str, List[Tuple[int, Optional[float]]]], fixed_prob_k: int = 8) -> str:
    """Table 2 layout: 'k/F1' for probability smoothing, label smoothing, and 'pk/k/F1' for both (n/a: no AU has a
    coded frame)."""

    def pct(value: Optional[float]) -> str:
        return "n/a" if value is None else f"{100 * value:.3f}"

    lines = [f"{'Probability k/F1':<20s}{'Label k/F1':<20s}{'Probability/Label k/k/F1':<26s}"]
    for (kp, fp), (kl, fl), (kb, fb) in zip(table["prob"], table["label"], table["prob_label"]):
        lines.append(f"{f'{kp}/{pct(fp)}':<20s}{f'{kl}/{pct(fl)}':<20s}{fixed_prob_k}/{kb}/{pct(fb)}")
    return "\n".join(lines)


def count_predictions(
    videos: Sequence,
    predictions: Sequence,
    prob_k: int = 0,
    label_k: int = 0,
    threshold: float = 0.5,
    num_aus: Optional[int] = None,
) -> Tuple[np.ndarray, List[np.ndarray]]:
    """(2, 4, C) counts, raw then post-processed (`count_videos`), of `predict_videos` output, and the full
    per-video probabilities they were counted from."""
    full = [frame_probs(v, ids, p) for v, (ids, p) in zip(videos, predictions)]
    raw = count_videos(videos, full, 0, 0, threshold, num_aus)
    smoothed = count_videos(videos, full, prob_k, label_k, threshold, num_aus)
    return np.stack([raw, smoothed]), full


def video_intensity(video, names: Sequence[str]) -> np.ndarray:
    """float32 (T, K) intensity labels of `video`'s rows for the AUs `names` (a head's order), -1 where not coded:
    its `intensity` columns matched by `intensity_au_names` (taken as `names` when it has none); an AU the data
    does not label, or a video without intensity labels, is all -1."""
    out = np.full((len(video.frame_ids), len(names)), -1.0, np.float32)
    values = getattr(video, "intensity", None)
    if values is None:
        return out
    values = np.asarray(values, np.float32)
    have = tuple(getattr(video, "intensity_au_names", ()) or ()) or tuple(names)
    if values.shape != (len(video.frame_ids), len(have)):
        raise UserError(
            f"video {video.name}: intensity labels of shape {values.shape}, expected ({len(video.frame_ids)}, "
            f"{len(have)}) for {', '.join(have)}"
        )
    for k, name in enumerate(names):
        if name in have:
            out[:, k] = values[:, have.index(name)]
    return out


def intensity_rows(videos: Sequence, intensities: Sequence, names: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """(labels, predictions), each float32 (N, K) over the labelled rows of all `videos` in order: predicted
    intensities (`predict_video_outputs`) spread onto each video's frame list from the nearest predicted frame
    (`frame_probs`, as the probabilities; no smoothing), beside `video_intensity`."""
    truth, pred = [], []
    for video, (ids, values) in zip(videos, intensities):
        full = frame_probs(video, ids, values)
        pred.append(full[np.asarray(video.frame_ids) - 1])
        truth.append(video_intensity(video, names))
    k = len(names)
    if not truth:
        return np.zeros((0, k), np.float32), np.zeros((0, k), np.float32)
    return np.concatenate(truth).astype(np.float32), np.concatenate(pred).astype(np.float32)


def score_intensity(truth: np.ndarray, pred: np.ndarray, names: Sequence[str]) -> Dict:
    """The intensity score dict (`metrics.intensity_dict`: per-AU "icc", "pcc", "mae", their means, "mean_aus",
    "coded_frames"; None where there is no value) plus "au_names"."""
    result = intensity_dict(intensity_per_au(truth, pred), list(names))
    result["au_names"] = list(names)
    return result


def training_mean_baseline(train_videos: Sequence, val_videos: Sequence, names: Sequence[str]) -> Dict:
    """The trivial intensity baseline: every validation row predicted as the mean of the AU's coded training labels
    (0 for an AU with none), scored like a model (`score_intensity`) plus "train_mean" per AU. Its ICC(3,1) is 0 and
    its PCC n/a (the predictions do not vary); its MAE is what a model has to beat."""
    names = list(names)
    if train_videos:
        train = np.concatenate([video_intensity(v, names) for v in train_videos]).astype(np.float64)
    else:
        train = np.zeros((0, len(names)))
    means = []
    for k in range(len(names)):
        coded = train[:, k][train[:, k] >= 0]
        means.append(float(coded.mean()) if coded.size else 0.0)
    truth = (
        np.concatenate([video_intensity(v, names) for v in val_videos])
        if val_videos
        else np.zeros((0, len(names)), np.float32)
    )
    pred = np.broadcast_to(np.asarray(means, np.float32), truth.shape)
    result = score_intensity(truth, pred, names)
    result["train_mean"] = dict(zip(names, means))
    return result


def format_intensity_dict(result: Dict, label: str = "intensity") -> str:
    """`metrics.format_intensity`'s table (ICC, PCC, MAE per AU and the mean; n/a: no value) of a
    `score_intensity` dict, e.g. as read back from metrics.json."""
    names = list(result["au_names"])
    arrays = {
        m: np.array([np.nan if result[m][n] is None else result[m][n] for n in names], np.float64)
        for m in INTENSITY_METRICS
    }
    coded = np.array([result.get("coded_frames", {}).get(n, 0) for n in names], np.int64)
    return format_intensity(IntensityScores(coded=coded, **arrays), names, label=label)


def scores_from_counts(counts: np.ndarray, prob_k: int, label_k: int, au_names: Sequence[str]) -> Dict:
    """The score dict of (2, 4, C) raw and post-processed counts: mean and per-AU F1 (None: an AU with no coded
    frame, left out of the means), "coded_frames" per AU and "mean_aus", how many AUs the means cover."""
    raw, smoothed = f1_from_counts(counts[0]), f1_from_counts(counts[1])
    coded = counts[0][COUNT_ROWS.index("coded")]
    return {
        "mean_f1": mean_of_coded(raw)[0],
        "per_au": per_au_dict(raw, au_names),
        "mean_f1_smoothed": mean_of_coded(smoothed)[0],
        "per_au_smoothed": per_au_dict(smoothed, au_names),
        "coded_frames": {name: int(n) for name, n in zip(au_names, coded)},
        "mean_aus": mean_of_coded(raw)[1],
        "prob_k": prob_k,
        "label_k": label_k,
    }


def evaluate_probs(
    videos: Sequence,
    predictions: Sequence,
    prob_k: int = 0,
    label_k: int = 0,
    threshold: float = 0.5,
    au_names: Optional[Sequence[str]] = None,
) -> Dict:
    """Raw and post-processed scores from `predict_videos` output (`scores_from_counts`, plus "full_probs");
    per-AU dicts keyed by `au_names` (None: ABAW)."""
    au_names = default_au_names(au_names)
    counts, full = count_predictions(videos, predictions, prob_k, label_k, threshold, len(au_names))
    result = scores_from_counts(counts, prob_k, label_k, au_names)
    result["full_probs"] = full
    return result


def evaluate(
    cfg: Config,
    ckpt: Union[str, ModelFile],
    prob_k: Optional[int] = None,
    label_k: Optional[int] = None,
    do_sweep: bool = False,
    split: str = "val",
    device: str = "auto",
    shared_aus: bool = False,
    show_card: bool = False,
) -> Dict:
    """Evaluate model file `ckpt` (.ckpt, .mindir or .onnx, or what `read_model_file` read from one) on the
    validation videos of `cfg.data.split` (or a named split). `cfg.model` is used only for a checkpoint without an
    embedded model config.

    The model file decides its input size and normalisation, and its evaluation settings (prob_k, label_k,
    threshold) unless `prob_k` / `label_k` or the config's given values (`cfg.given_keys`: --config/--set)
    override them (model_file.apply_model_file); with `show_card` the model card and any such note go to stderr.

    The model's AU set (model.au_names of the file) must equal the data's (data.au_names); with `shared_aus` the
    AUs both have are scored instead (in the data's order; "shared_aus", "model_au_names" and "data_au_names" in
    the result). `show_card` prints the model card to stderr once the model is loaded.

    Returns {"mean_f1", "per_au", "mean_f1_smoothed", "per_au_smoothed", "prob_k", "label_k", "videos",
    "frames", "au_names"} plus "sweep" (Table 2) when asked, and "intensity" (`score_intensity`: ICC, PCC, MAE
    per AU of the head and their means) for a model with the intensity head.
    """
    from mindface_au.data import load_split
    from mindface_au.modelfile.loader import load_inference_model
    from mindface_au.modelfile.reader import apply_model_file, read_model_file

    mf = read_model_file(ckpt, cfg.model, device) if isinstance(ckpt, str) else ckpt
    cfg, notes = apply_model_file(mf, cfg, prob_k, label_k, aus=False)  # the AU sets are compared below
    prob_k, label_k = cfg.eval.prob_k, cfg.eval.label_k
    if split == "val":
        videos = split_videos(cfg)[1]
    elif cfg.data.format != "affwild2":
        raise UserError(f"split {split!r}: {cfg.data.format} data is evaluated on the test part of data.split (val)")
    else:
        videos = load_split(cfg.data.root, split)
    if not videos or any(v.labels is None for v in videos):
        raise UserError(f"split {split!r} of {cfg.data.root} has no labelled videos to evaluate")
    model = load_inference_model(mf, device=device, batch_size=cfg.data.eval_batch_size)
    if show_card:
        print("\n".join([model.card_text(), *notes]), file=sys.stderr, flush=True)
    data_names = default_au_names(cfg.data.au_names)
    model_names = tuple(getattr(model, "au_names", None) or data_names)
    scored = tuple(au for au in data_names if au in model_names)
    if model_names != data_names and (not shared_aus or not scored):
        hint = f"; {param('shared_aus')} scores the AUs both have" if scored else "; they share no AU"
        raise UserError(
            f"{mf.path}: the model predicts {', '.join(model_names)}; data.format {cfg.data.format} labels "
            f"{', '.join(data_names)}: the AU sets differ{hint}"
        )
    predictions, intensities = predict_video_outputs(model, videos, cfg.data)
    if intensities is not None:
        head = intensity_names(model)
        intensity = score_intensity(*intensity_rows(videos, intensities, head), head)
    if model_names != data_names:
        data_idx = [data_names.index(au) for au in scored]
        model_idx = [model_names.index(au) for au in scored]
        videos = [dataclasses.replace(v, labels=np.asarray(v.labels)[:, data_idx]) for v in videos]
        predictions = [(ids, p[:, model_idx]) for ids, p in predictions]
    result = evaluate_probs(videos, predictions, prob_k, label_k, cfg.eval.threshold, scored)
    result["au_names"] = list(scored)
    if scored != data_names or scored != model_names:
        result["shared_aus"] = list(scored)
        result["model_au_names"] = list(model_names)
        result["data_au_names"] = list(data_names)
    if do_sweep:
        result["sweep"] = sweep(videos, result["full_probs"], cfg.eval.threshold, fixed_prob_k=prob_k or 8)
    result["videos"] = len(videos)
    result["frames"] = int(sum(len(v.frame_ids) for v in videos))
    if intensities is not None:
        result["intensity"] = intensity
    result.pop("full_probs")
    return result
