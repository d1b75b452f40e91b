"""mindspore.dataset pipelines for training and evaluation.

Train: a random-access `FrameTable` over every labelled frame (decode with OpenCV, BGR -> RGB, resize to
`data.image_size` when needed), an `EpochSampler` choosing the paper's per-epoch subset (see
`mindface_au.data.sampling`) and this rank's shard of it, the augmentation (horizontal flip, colour jitter) in
the table with a random generator keyed by (seed, epoch, frame), then C++ map ops (normalise (x/255 - 0.5)/0.5,
HWC -> CHW) and `batch(drop_remainder=True)`. Every epoch has the same number of batches, as `Model.train`
needs. Keying the augmentation by epoch makes a resumed run see exactly the images an uninterrupted run sees.

Eval: all frames with an image in video/frame order, no augmentation; columns image, label, video_index (index
into the list of videos given) and frame_index (0-based position in that video's `frame_ids`). Test frames
carry the label -1.

An unreadable image is logged once with its path and never stops an epoch: in training the next readable frame
of the table is served instead, in evaluation the frame is dropped. The number of skipped images is kept on the
table (`skipped_images(dataset)`); training prints it after each epoch (engine/callbacks.py,
`SkippedImagesCallback`).
"""

import dataclasses
import logging
import os
import threading
import time
from typing import List, Optional, Sequence

import cv2
import mindspore.dataset as ds
import mindspore.dataset.vision as vision
import numpy as np

from mindface_au.data.affwild2 import Video
from mindface_au.data.sampling import epoch_size, rare_mask, sample_epoch
from mindface_au.errors import UserError

logger = logging.getLogger(__name__)

__all__ = [
    "FrameTable",
    "EpochSampler",
    "create_train_dataset",
    "create_eval_dataset",
    "build_image_ops",
    "skipped_images",
    "benchmark_pipeline",
    "read_image",
]


def read_image(path: str, size: int) -> Optional[np.ndarray]:
    """RGB uint8 (size, size, 3) image, or None if the file cannot be read or decoded (resize: `resize_face`)."""
    from mindface_au.data.transforms import resize_face

    if path is None:
        return None
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None or image.ndim != 3 or image.size == 0:
        return None
    return np.ascontiguousarray(resize_face(image, size)[:, :, ::-1])


def augment(image: np.ndarray, rng: np.random.Generator, hflip: bool, jitter: float, flip_prob: float = 0.5):
    """Horizontal flip and colour jitter (brightness, contrast, saturation in [1 - jitter, 1 + jitter]) of RGB uint8."""
    if hflip and rng.random() < flip_prob:
        image = image[:, ::-1]
    if jitter > 0:
        low, high = max(0.0, 1 - jitter), 1 + jitter
        brightness, contrast, saturation = rng.uniform(low, high, 3)
        out = image.astype(np.float32) * brightness
        gray = out @ np.array([0.299, 0.587, 0.114], np.float32)
        out = (out - gray.mean()) * contrast + gray.mean()
        gray = (out @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        out = (out - gray) * saturation + gray
        image = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


class FrameTable:
    """Random-access table of frames (videos concatenated in order) yielding decoded images and labels.

    mode "train": (image, label) and an unreadable image is replaced by the next readable frame; the index is
    `epoch * len(self) + frame` (see EpochSampler) and the frame is augmented with a generator keyed by
    (seed, epoch, frame), so augmentation is reproducible whatever the worker count or a resume;
    mode "eval": (image, label, video_index, frame_index, ok) with ok = False for an unreadable image.
    Labels have one column per AU of the videos (-1: not coded); `num_aus` is the width when no video is labelled.
    """

    def __init__(
        self,
        videos: Sequence[Video],
        image_size: int,
        mode: str = "train",
        hflip: bool = False,
        jitter: float = 0.0,
        seed: int = 0,
        flip_prob: float = 0.5,
        num_aus: int = 12,
    ) -> None:
        if int(image_size) <= 0:  # a DataConfig built by hand keeps image_size=0 until load_config resolves it
            raise ValueError(f"image_size must be positive, got {image_size}; set data.image_size or load the config")
        self.image_size = int(image_size)
        self.mode = mode
        self.hflip, self.jitter, self.seed, self.flip_prob = bool(hflip), float(jitter), int(seed), float(flip_prob)
        self.paths: List[Optional[str]] = []
        labels, vid, pos = [], [], []
        width = next((v.labels.shape[1] for v in videos if v.labels is not None and v.labels.ndim == 2), num_aus)
        for v_index, video in enumerate(videos):
            keep = [i for i, p in enumerate(video.image_paths) if p is not None]
            self.paths.extend(video.image_paths[i] for i in keep)
            if video.labels is None:
                labels.append(np.full((len(keep), width), -1, np.float32))
            else:
                labels.append(np.asarray(video.labels, np.float32)[keep])
            vid.append(np.full(len(keep), v_index, np.int32))
            pos.append(np.asarray(keep, np.int32))
        self.labels = np.concatenate(labels) if labels else np.zeros((0, width), np.float32)
        self.video_index = np.concatenate(vid) if vid else np.zeros(0, np.int32)
        self.frame_index = np.concatenate(pos) if pos else np.zeros(0, np.int32)
        self._lock = threading.Lock()
        self._bad: set = set()
        self.skipped = 0  # unreadable images met so far (every occurrence)

    def __len__(self) -> int:
        return len(self.paths)

    def _note_bad(self, index: int) -> None:
        path = self.paths[index]
        with self._lock:
            self.skipped += 1
            first = path not in self._bad
            self._bad.add(path)
        if first:
            logger.warning("unreadable image skipped: %s", path)

    def __getitem__(self, index: int):
        epoch, index = divmod(int(index), len(self.paths))
        image = read_image(self.paths[index], self.image_size)
        if self.mode == "eval":
            ok = image is not None
            if not ok:
                self._note_bad(index)
                image = np.zeros((self.image_size, self.image_size, 3), np.uint8)
            return image, self.labels[index], self.video_index[index], self.frame_index[index], np.bool_(ok)
        tries, current = 0, index
        while image is None:
            self._note_bad(current)
            tries += 1
            current = (current + 1) % len(self.paths)
            if tries >= min(64, len(self.paths)):
                image = np.full((self.image_size, self.image_size, 3), 127, np.uint8)
                break
            image = read_image(self.paths[current], self.image_size)
        rng = np.random.default_rng((self.seed, epoch, index))
        return augment(image, rng, self.hflip, self.jitter, self.flip_prob), self.labels[current]


class EpochSampler(ds.Sampler):
    """Per-epoch frame subset (see mindface_au.data.sampling), shuffled, this rank's equal share of it.

    The dataset calls `__iter__` once per epoch (the pipeline may call it for the next epoch while the current
    one is still being consumed); the epoch counter advances each time, starting at `start_epoch` (resume).
    It yields `epoch * num_frames + frame` so the source can key its augmentation by epoch.

    Sharding: rank r of R takes every R-th frame of the epoch's shuffled sample starting at r, cut to the same
    length `per_rank` on every rank (`max_per_rank` caps it, for `train.steps_per_epoch`), so shards are disjoint
    and the frames left out are at most R - 1 (equal split) plus what `batch(drop_remainder=True)` drops (< batch
    per rank); `accounting` counts them. `skip` leaves out the first `skip` indices of each epoch: a dataset for
    the rest of an interrupted epoch (a run resumed from a step checkpoint trains the batches an uninterrupted run
    trains next; the dataset checks that every epoch yields `len(sampler)` indices, so this is its own dataset).
    """

    def __init__(
        self,
        rare_masks,
        sample_rate,
        rare_rate,
        seed=0,
        start_epoch=0,
        rank=0,
        world_size=1,
        max_per_rank=0,
        skip=0,
    ) -> None:
        self.rare_masks = list(rare_masks)
        self.num_frames = int(sum(len(m) for m in self.rare_masks))
        self.sample_rate, self.rare_rate = float(sample_rate), float(rare_rate)
        self.seed, self.epoch = int(seed), int(start_epoch)
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch_size = epoch_size(self.rare_masks, self.sample_rate, self.rare_rate)
        self.per_rank = self.epoch_size // self.world_size
        if max_per_rank > 0:
            self.per_rank = min(self.per_rank, int(max_per_rank))
        self.skip = min(int(skip), self.per_rank)
        super().__init__(num_samples=self.per_rank - self.skip)

    def indices(self, epoch: int) -> np.ndarray:
        """Flat frame indices this rank reads in `epoch`."""
        picked = sample_epoch(self.rare_masks, self.sample_rate, self.rare_rate, self.seed, epoch)
        return picked[self.rank :: self.world_size][: self.per_rank]

    def accounting(self, batch_size: int) -> dict:
        """Frames of one epoch: sampled, trained (ranks x steps x batch) and dropped (equal split, drop_remainder,
        steps cap)."""
        steps = self.per_rank // int(batch_size)
        used = self.world_size * steps * int(batch_size)
        return {"sampled": self.epoch_size, "steps": steps, "trained": used, "dropped": self.epoch_size - used}

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        return iter((self.indices(epoch)[self.skip :] + epoch * self.num_frames).tolist())

    def __len__(self) -> int:
        return self.per_rank - self.skip


def _workers(data_cfg) -> int:
    return max(1, min(int(data_cfg.num_workers), os.cpu_count() or 1))


def build_image_ops(spec=None) -> list:
    """Map ops on the HWC uint8 RGB image: normalise with the model's mean/std and HWC -> CHW.

    `spec`: a `mindface_au.data.transforms.FaceInput`; None takes the default model's normalisation (every
    registered model shares it), so the numbers have one source.
    """
    from mindface_au.data.transforms import default_face_input

    spec = spec if spec is not None else default_face_input(1)
    return [vision.Normalize(mean=list(spec.mean255), std=list(spec.std255), is_hwc=True), vision.HWC2CHW()]


def create_train_dataset(
    videos: Sequence[Video],
    data_cfg,
    seed: int = 0,
    start_epoch: int = 0,
    rank: int = 0,
    world_size: int = 1,
    flip_prob: float = 0.5,
    max_steps: int = 0,
    skip_steps: int = 0,
):
    """Training batches ("image" float32 (B,3,S,S), "label" float32 (B,C), -1 = not coded); same batch count every
    epoch.

    `max_steps` caps the batches per epoch (`train.steps_per_epoch`); `skip_steps` leaves out the first batches
    of every epoch (the rest of an interrupted epoch, for resuming mid-epoch). `dataset.epoch_sampler` is the
    EpochSampler (its `accounting` counts the frames trained and dropped).
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise UserError(f"data parallel rank {rank} of world size {world_size}: expected 0 <= rank < world size")
    videos = [v for v in videos if len(v)]
    if not videos:
        raise UserError("no labelled frames with images to train on")
    if any(v.labels is None for v in videos):
        raise UserError(f"video {next(v.name for v in videos if v.labels is None)!r} has no labels; cannot train")
    source = FrameTable(
        videos, data_cfg.image_size, "train", data_cfg.hflip, data_cfg.color_jitter, seed, flip_prob=flip_prob
    )
    names = getattr(data_cfg, "au_names", None) or None
    masks = [rare_mask(v.labels, data_cfg.rare_aus, names) for v in videos]
    batch = int(data_cfg.batch_size)
    sampler = EpochSampler(
        masks,
        data_cfg.sample_rate,
        data_cfg.rare_rate,
        seed,
        start_epoch,
        rank,
        world_size,
        max_per_rank=max_steps * batch,
        skip=skip_steps * batch,
    )
    assert sampler.num_frames == len(source), "sampler and source must index the same frame table"
    if len(sampler) < data_cfg.batch_size:
        raise UserError(
            f"config key data.batch_size: {data_cfg.batch_size} is larger than the {len(sampler)} frames sampled "
            f"per epoch{' per rank' if world_size > 1 else ''}; lower it or raise data.sample_rate"
        )
    workers = _workers(data_cfg)
    dataset = ds.GeneratorDataset(
        source, ["image", "label"], sampler=sampler, num_parallel_workers=workers, python_multiprocessing=False
    )
    dataset = dataset.map(build_image_ops(), input_columns=["image"], num_parallel_workers=workers)
    dataset = dataset.batch(data_cfg.batch_size, drop_remainder=True)
    dataset.frame_table = source
    dataset.epoch_sampler = sampler
    return dataset


def create_eval_dataset(videos: Sequence[Video], data_cfg, batch_size: Optional[int] = None, num_aus: int = 0):
    """Evaluation batches of every frame with an image, in video/frame order (see the module docstring);
    `num_aus` is the label width of unlabelled (test) videos, default len(data_cfg.au_names) or 12."""
    num_aus = num_aus or len(getattr(data_cfg, "au_names", None) or ()) or 12
    source = FrameTable(videos, data_cfg.image_size, "eval", num_aus=num_aus)
    if not len(source):
        raise UserError("no frames with images to evaluate")
    workers = _workers(data_cfg)
    columns = ["image", "label", "video_index", "frame_index", "ok"]
    dataset = ds.GeneratorDataset(
        source, columns, shuffle=False, num_parallel_workers=workers, python_multiprocessing=False
    )
    dataset = dataset.filter(predicate=lambda ok: bool(ok), input_columns=["ok"])
    dataset = dataset.project(columns[:4])
    dataset = dataset.map(build_image_ops(), input_columns=["image"], num_parallel_workers=workers)
    dataset = dataset.batch(batch_size or data_cfg.eval_batch_size, drop_remainder=False)
    dataset.frame_table = source
    return dataset


def skipped_images(dataset) -> int:
    """Unreadable images met so far by a dataset made here (0 for other datasets)."""
    source = getattr(dataset, "frame_table", None)
    return int(source.skipped) if source is not None else 0


def benchmark_pipeline(root: str, data_cfg, num_batches: int = 10) -> float:
    """Images/s of the training pipeline alone (decode, augment, batch) on the train split of `root`.

    Samples every frame (sample_rate 1) so that epoch boundaries do not distort the rate of a small dataset.
    """
    from mindface_au.data.affwild2 import load_split

    cfg = dataclasses.replace(data_cfg, sample_rate=1.0, rare_rate=1.0)
    if getattr(data_cfg, "format", "affwild2") != "affwild2":
        from mindface_au.data.folds import get_split

        videos = get_split(dataclasses.replace(cfg, root=root))[0]
    else:
        videos = load_split(root, "train")
    dataset = create_train_dataset(videos, cfg)
    per_epoch = dataset.get_dataset_size()
    epochs = -(-(num_batches + 1) // per_epoch)
    iterator = dataset.create_tuple_iterator(num_epochs=epochs, output_numpy=True)
    done, start = -1, 0.0
    for _ in range(epochs):
        for _batch in iterator:
            done += 1
            if done == 0:
                start = time.perf_counter()  # the first batch includes start-up; not timed
            if done >= num_batches:
                break
        if done >= num_batches:
            break
    elapsed = time.perf_counter() - start
    return done * data_cfg.batch_size / max(elapsed, 1e-9)
