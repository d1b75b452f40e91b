"""mindspore.dataset pipelines for training and evaluation.

Train: a random-access `FrameTable` over every labelled frame that reads each image's encoded bytes and draws its
augmentation parameters (horizontal flip, colour jitter) from a random generator keyed by (seed, epoch, frame);
an `EpochSampler` choosing the paper's per-epoch subset (see `mindface_au.data.sampling`) and this rank's shard
of it; MindSpore's C++ `vision.Decode` (outside the GIL, in `data.num_workers` threads); then `batch` with one
Python call per batch (`BatchImages`, in `data.num_workers` threads): resize to `data.image_size` when needed, flip
and colour jitter with each row's parameters, normalise with the model's mean/std and HWC -> CHW. This is mindcv's
layout (a reader of encoded bytes, decoding in the map stage). No Python function runs per row: MindSpore's
dispatch of a per-row Python map costs more CPU than the pixel work and holds the GIL, while the pixel work of
`BatchImages` is OpenCV and NumPy calls that release it, so more workers can use more cores (docs/clusters.md has
the rates). Per-row parameters are why that stage is Python and not MindSpore's AdjustBrightness/Contrast/
Saturation ops, which take their factor when built and round to uint8 after each step.

The images equal those of decoding with OpenCV and augmenting step by step (the reference tests/test_pipeline.py
compares with), but for the jitter's rounding: `vision.Decode` and OpenCV use the same libjpeg-turbo/libpng (bytes
`vision.Decode` would not read like OpenCV, such as other formats, truncated JPEG/PNG, EXIF orientation or CMYK, are
decoded by OpenCV in the reader and passed on as lossless BMP); resize (`resize_face`) and flip are the same
operations; the colour jitter (brightness, then contrast about the mean luma, then saturation about each pixel's
luma, in float, rounded half up) is computed as one affine map per image (`jitter_transform`, one `cv2.transform`),
which changes float rounding only: a pixel is at most 1 of 255 from the step-by-step value, on fewer than 0.01 % of
the values (tested). Every epoch has the same number of batches, as `Model.train` needs. Keying the augmentation by
epoch makes a resumed run see exactly the images an uninterrupted run sees. `process_workers` (`data.process_workers`)
runs the reader and the batch stage in processes (`python_multiprocessing`), the usual choice on Ascend hosts; the
table and `BatchImages` are picklable for that. There is one reader either way (a thread, or one process), and
`data.num_workers` decode and batch workers: the reader does little per image (about 0.2 ms), while several
reader processes on a 2-core host made the pipeline 2-3x slower (docs/clusters.md); every device's training process
has its own reader.

Eval: all frames with an image in video/frame order, no augmentation; columns image, label, video_index (index
into the list of videos given) and frame_index (0-based position in that video's `frame_ids`). Test frames
carry the label -1.

An unreadable image is logged once with its path and never stops an epoch: in training the next readable frame
of the table is served instead, in evaluation the frame is dropped. The number of skipped images is kept on the
table (`skipped_images(dataset)`); training prints it after each epoch (engine/callbacks.py,
`SkippedImagesCallback`). With process workers each worker counts its own (the warnings are still logged), so the
count in the training process stays 0.
"""

import dataclasses
import logging
import os
import time
from typing import List, Optional, Sequence

import cv2
import mindspore.dataset as ds
import mindspore.dataset.vision as vision
import numpy as np

from mindface_au.data.affwild2 import Video
from mindface_au.data.sampling import epoch_size, rare_mask, sample_epoch
from mindface_au.data.transforms import resize_face
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
    "pipeline_rates",
    "read_image",
    "read_encoded",
    "BatchImages",
]

_ENCODED_PLACEHOLDER = np.zeros(0, np.uint8)  # the "image" of an unreadable eval frame (filtered out before Decode)


def read_image(path: str, size: int) -> Optional[np.ndarray]:
    """RGB uint8 (size, size, 3) image, or None if the file cannot be read or decoded (resize: `resize_face`)."""
    if path is None:
        return None
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None or image.ndim != 3 or image.size == 0:
        return None
    return np.ascontiguousarray(resize_face(image, size)[:, :, ::-1])


def draw_augment(rng: np.random.Generator, hflip: bool, jitter: float, flip_prob: float = 0.5) -> np.ndarray:
    """The augmentation parameters [flip, brightness, contrast, saturation] drawn from `rng` (1 = no change)."""
    params = np.array([0.0, 1.0, 1.0, 1.0], np.float32)
    if hflip and rng.random() < flip_prob:
        params[0] = 1.0
    if jitter > 0:
        low, high = max(0.0, 1 - jitter), 1 + jitter
        params[1:] = rng.uniform(low, high, 3)
    return params


_GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # the luma weights of the colour jitter (they sum to 1)


def jitter_transform(image: np.ndarray, params: np.ndarray) -> np.ndarray:
    """The 3x4 affine map (RGB -> RGB) of the colour jitter of `image` with parameters from `draw_augment`.

    Brightness b, contrast c about the mean luma, saturation s about each pixel's luma, in that order, is one
    affine map per image because the luma weights w sum to 1: out = c b (s I + (1 - s) 1 w^T) x + (1 - c) b w.mean(x),
    where mean(x) is the per-channel mean of the image (of the flipped image: the same)."""
    brightness, contrast, saturation = (float(np.float32(v)) for v in params[1:4])
    red, green, blue = cv2.mean(image)[:3]
    wr, wg, wb = _GRAY_WEIGHTS
    scale, offset = contrast * brightness, (1 - contrast) * brightness * (wr * red + wg * green + wb * blue)
    keep, mix = scale * saturation, scale * (1 - saturation)
    return np.array(
        [[keep + mix * wr, mix * wg, mix * wb, offset],
         [mix * wr, keep + mix * wg, mix * wb, offset],
         [mix * wr, mix * wg, keep + mix * wb, offset]],
        np.float32,
    )  # fmt: skip


def apply_augment(image: np.ndarray, params: np.ndarray, jitter: bool) -> np.ndarray:
    """Flip and colour jitter of an RGB uint8 image with parameters from `draw_augment` (`jitter`: apply it).

    OpenCV calls (they release the GIL): `cv2.flip`, the mean, and the jitter as one float32 `cv2.transform`
    (`jitter_transform`), rounded half up and clipped to uint8. The step-by-step float32 computation (brightness,
    contrast, saturation, each over the whole image) gives the same pixels up to float rounding: at most 1 of 255
    apart, on pixels whose value lies within float error of a half (tests/test_pipeline.py)."""
    if params[0]:
        image = cv2.flip(image, 1)
    if jitter:
        transform = jitter_transform(image, params)
        transform[:, 3] += 0.5  # round half up, as clip(x + 0.5, 0, 255) then truncation
        out = cv2.transform(image.astype(np.float32), transform)
        np.minimum(out, 255.0, out=out)
        image = np.maximum(out, 0.0, out=out).astype(np.uint8)
    return np.ascontiguousarray(image)


def augment(image: np.ndarray, rng: np.random.Generator, hflip: bool, jitter: float, flip_prob: float = 0.5):
    """Horizontal flip and colour jitter (brightness, contrast, saturation in [1 - jitter, 1 + jitter]) of RGB uint8."""
    return apply_augment(image, draw_augment(rng, hflip, jitter, flip_prob), jitter > 0)


def _complete_for_decode(data: bytes) -> bool:
    """Whether MindSpore's `vision.Decode` reads `data` exactly as OpenCV's imread does: a JPEG with its end marker
    and no EXIF orientation or Adobe (CMYK) segment, a PNG with its IEND chunk, or a BMP of its declared size."""
    if data[:3] == b"\xff\xd8\xff":
        head = data[:65536]
        return data.rstrip(b"\x00")[-2:] == b"\xff\xd9" and b"Exif\x00\x00" not in head and b"Adobe" not in head
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" in data[-16:]
    if data[:2] == b"BM" and len(data) >= 6:
        return int.from_bytes(data[2:6], "little") == len(data)
    return False


def read_encoded(path: Optional[str]) -> Optional[np.ndarray]:
    """The bytes of image `path` as uint8 for `vision.Decode`, or None if it cannot be read or decoded.

    Bytes `vision.Decode` would not read like OpenCV (see `_complete_for_decode`) are decoded here with OpenCV and
    re-encoded as BMP (lossless), so the decoded pixels are `cv2.imread`'s either way.
    """
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    if _complete_for_decode(data):
        return np.frombuffer(data, np.uint8)
    image = cv2.imread(path, cv2.IMREAD_COLOR) if data else None  # imread, as before (imdecode refuses truncation)
    if image is None or image.ndim != 3 or image.size == 0:
        return None
    ok, encoded = cv2.imencode(".bmp", image)
    return encoded.reshape(-1) if ok else None


class BatchImages:
    """The batch stage after `vision.Decode`: each image resized to `size` (`resize_face`) and, with `augment`,
    flipped and jittered with its row's parameters (`apply_augment`), then the batch normalised with the model's
    mean/std and HWC -> CHW: (B, 3, size, size) float32.

    One Python call per batch (`batch(per_batch_map=...)`): a Python map per row costs more CPU in MindSpore's
    dispatch than the pixel work itself, and all the pixel work here is OpenCV and NumPy calls that release the GIL,
    so `data.num_workers` batch threads run in parallel. Called with the image and parameter columns (lists of
    arrays) and MindSpore's batch info. A class so process workers can pickle it.
    """

    def __init__(self, size: int, augment: bool, jitter: bool, spec=None) -> None:
        spec = _face_spec(spec)
        self.size, self.augment, self.jitter = int(size), bool(augment), bool(jitter)
        self.mean = np.asarray(spec.mean255, np.float32)
        self.std = np.asarray(spec.std255, np.float32)

    def __call__(self, images, params, batch_info):
        return (self.images(images, params),)

    def images(self, images, params=None) -> np.ndarray:
        """The network input of decoded RGB uint8 `images` with their augmentation `params` (None: none)."""
        batch = np.empty((len(images), self.size, self.size, 3), np.uint8)
        for i, image in enumerate(images):
            image = resize_face(image, self.size)
            batch[i] = apply_augment(image, params[i], self.jitter) if self.augment else image
        out = np.ascontiguousarray(batch.transpose(0, 3, 1, 2)).astype(np.float32)  # CHW in uint8: 5x faster
        out -= self.mean[:, None, None]
        out /= self.std[:, None, None]
        return out


class _EvalBatchImages(BatchImages):
    """`BatchImages` without augmentation, called with the image column only (evaluation)."""

    def __init__(self, size: int, spec=None) -> None:
        super().__init__(size, False, False, spec)

    def __call__(self, images, batch_info):
        return (self.images(images),)


class FrameTable:
    """Random-access table of frames (videos concatenated in order) yielding encoded images and labels.

    mode "train": (encoded image, label, augmentation parameters) and an unreadable image is replaced by the next
    readable frame; the index is `epoch * len(self) + frame` (see EpochSampler) and the parameters come from a
    generator keyed by (seed, epoch, frame), so augmentation is reproducible whatever the worker count or a resume;
    mode "eval": (encoded image, label, video_index, frame_index, ok) with ok = False for an unreadable image.
    The map stage decodes the image (`vision.Decode`), the batch stage applies the parameters (`BatchImages`).
    Labels have one column per AU of the videos (-1: not coded); `num_aus` is the width when no video is labelled.
    Picklable (process workers): it holds paths, arrays and counters only.
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
        # model.intensity: the label column is the occurrence labels then the K intensities (-1: not coded)
        extra = max((len(v.intensity_au_names) for v in videos if v.intensity is not None), default=0)
        width = width + extra if any(v.labels is not None for v in videos) else width
        for v_index, video in enumerate(videos):
            keep = [i for i, p in enumerate(video.image_paths) if p is not None]
            self.paths.extend(video.image_paths[i] for i in keep)
            if video.labels is None:
                labels.append(np.full((len(keep), width), -1, np.float32))
            else:
                rows = np.full((len(keep), width), -1, np.float32)
                rows[:, : video.labels.shape[1]] = np.asarray(video.labels, np.float32)[keep]
                if video.intensity is not None:
                    count = len(video.image_paths)
                    if len(video.intensity) != count:  # a cut video must cut its intensities too
                        raise ValueError(
                            f"video {video.name!r}: {len(video.intensity)} intensity rows for {count} frames"
                        )
                    rows[:, width - extra :] = np.asarray(video.intensity, np.float32)[keep]
                labels.append(rows)
            vid.append(np.full(len(keep), v_index, np.int32))
            pos.append(np.asarray(keep, np.int32))
        self.labels = np.concatenate(labels) if labels else np.zeros((0, width), np.float32)
        self.video_index = np.concatenate(vid) if vid else np.zeros(0, np.int32)
        self.frame_index = np.concatenate(pos) if pos else np.zeros(0, np.int32)
        self._bad: set = set()
        self.skipped = 0  # unreadable images met so far (every occurrence)

    def __len__(self) -> int:
        return len(self.paths)

    def _note_bad(self, index: int) -> None:
        """Count an unreadable image and log it the first time. Reader threads may interleave here: `skipped` and
        the set are only a report (a lost increment under a race miscounts it by one, never a pixel)."""
        path = self.paths[index]
        self.skipped += 1
        if path not in self._bad:
            self._bad.add(path)
            logger.warning("unreadable image skipped: %s", path)

    def _gray(self) -> np.ndarray:
        """The stand-in when no readable frame is found: mid-gray at the table's size, encoded as BMP."""
        return cv2.imencode(".bmp", np.full((self.image_size, self.image_size, 3), 127, np.uint8))[1].reshape(-1)

    def __getitem__(self, index: int):
        epoch, index = divmod(int(index), len(self.paths))
        encoded = read_encoded(self.paths[index])
        if self.mode == "eval":
            ok = encoded is not None
            if not ok:
                self._note_bad(index)
                encoded = _ENCODED_PLACEHOLDER
            return encoded, self.labels[index], self.video_index[index], self.frame_index[index], np.bool_(ok)
        tries, current = 0, index
        while encoded is None:
            self._note_bad(current)
            tries += 1
            current = (current + 1) % len(self.paths)
            if tries >= min(64, len(self.paths)):
                encoded = self._gray()
                break
            encoded = read_encoded(self.paths[current])
        rng = np.random.default_rng((self.seed, epoch, index))
        return encoded, self.labels[current], draw_augment(rng, self.hflip, self.jitter, self.flip_prob)


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


def _face_spec(spec=None):
    """`spec`, or the ArcFace normalisation every registered model uses when None (`transforms.ARCFACE_MEAN`,
    `ARCFACE_STD`, which the models register), so the numbers have one source."""
    from mindface_au.data.transforms import ARCFACE_MEAN, ARCFACE_STD, make_face_input

    return spec if spec is not None else make_face_input(1, ARCFACE_MEAN, ARCFACE_STD)


def build_image_ops(spec=None) -> list:
    """C++ map ops on the HWC uint8 RGB image: normalise with the model's mean/std and HWC -> CHW (the per-image
    form of `BatchImages`' normalisation, for pipelines of other callers).

    `spec`: a `mindface_au.data.transforms.FaceInput` (the caller passes its model's: `mindface_au.models.face_input`);
    None takes the ArcFace normalisation every registered model uses (see `_face_spec`).
    """
    spec = _face_spec(spec)
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
    process_workers: Optional[bool] = None,
    face=None,
):
    """Training batches ("image" float32 (B,3,S,S), "label" float32 (B,C), -1 = not coded; (B, C + K) when the
    videos carry K intensities (model.intensity): C occurrence labels then the intensities 0-5, -1 = not coded);
    same batch count every epoch.

    `max_steps` caps the batches per epoch (`train.steps_per_epoch`); `skip_steps` leaves out the first batches
    of every epoch (the rest of an interrupted epoch, for resuming mid-epoch). `dataset.epoch_sampler` is the
    EpochSampler (its `accounting` counts the frames trained and dropped). `process_workers`: the reader and the
    batch stage (`BatchImages`) run in processes instead of threads (see the module docstring); None =
    data.process_workers. `face`: the
    model's FaceInput (its mean/std normalise the images; None: the default model's).
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
    process_workers = _process_workers(data_cfg, process_workers)
    dataset = _reader(source, ["image", "label", "augment"], process_workers, sampler=sampler)
    dataset = dataset.map([vision.Decode()], input_columns=["image"], num_parallel_workers=workers)
    dataset = dataset.batch(
        data_cfg.batch_size, drop_remainder=True, num_parallel_workers=workers, python_multiprocessing=process_workers,
        per_batch_map=BatchImages(source.image_size, True, source.jitter > 0, face),
        input_columns=["image", "augment"], output_columns=["image"],
    )  # fmt: skip
    dataset = dataset.project(["image", "label"])
    dataset.frame_table = source
    dataset.epoch_sampler = sampler
    return dataset


def _process_workers(data_cfg, process_workers: Optional[bool]) -> bool:
    """The explicit argument, else data.process_workers (False for configs from before the key)."""
    return bool(getattr(data_cfg, "process_workers", False) if process_workers is None else process_workers)


def _reader(source: FrameTable, columns: List[str], process_workers: bool, **kwargs):
    """The GeneratorDataset over `source`: one reader, a thread or (process_workers) a process. It reads bytes, the
    map stages decode; several GeneratorDataset threads contend for the GIL (5x slower), several reader processes
    on a 2-core host were 2-3x slower than one (docs/clusters.md)."""
    return ds.GeneratorDataset(
        source, columns, num_parallel_workers=1, python_multiprocessing=bool(process_workers), **kwargs
    )


def create_eval_dataset(
    videos: Sequence[Video],
    data_cfg,
    batch_size: Optional[int] = None,
    num_aus: int = 0,
    process_workers: Optional[bool] = None,
    face=None,
):
    """Evaluation batches of every frame with an image, in video/frame order (see the module docstring);
    `num_aus` is the label width of unlabelled (test) videos, default len(data_cfg.au_names) or 12; `face` the
    model's FaceInput (None: the default model's normalisation)."""
    num_aus = num_aus or len(getattr(data_cfg, "au_names", None) or ()) or 12
    source = FrameTable(videos, data_cfg.image_size, "eval", num_aus=num_aus)
    if not len(source):
        raise UserError("no frames with images to evaluate")
    workers = _workers(data_cfg)
    process_workers = _process_workers(data_cfg, process_workers)
    columns = ["image", "label", "video_index", "frame_index", "ok"]
    dataset = _reader(source, columns, process_workers, shuffle=False)
    dataset = dataset.filter(predicate=lambda ok: bool(ok), input_columns=["ok"])
    dataset = dataset.project(columns[:4])
    dataset = dataset.map([vision.Decode()], input_columns=["image"], num_parallel_workers=workers)
    dataset = dataset.batch(
        batch_size or data_cfg.eval_batch_size, drop_remainder=False, num_parallel_workers=workers,
        python_multiprocessing=process_workers, per_batch_map=_EvalBatchImages(source.image_size, face),
        input_columns=["image"], output_columns=["image"],
    )  # fmt: skip
    dataset = dataset.project(columns[:4])
    dataset.frame_table = source
    return dataset


def skipped_images(dataset) -> int:
    """Unreadable images met so far by a dataset made here (0 for other datasets)."""
    source = getattr(dataset, "frame_table", None)
    return int(source.skipped) if source is not None else 0


def benchmark_pipeline(root: str, data_cfg, num_batches: int = 10, process_workers: bool = False) -> float:
    """Images/s of the training pipeline alone (decode, augment, batch) on the train split of `root`, with
    `data_cfg.num_workers` workers (threads, or processes with `process_workers`); see `pipeline_rates`."""
    return pipeline_rates(root, data_cfg, num_batches, process_workers)["images_per_s"]


def pipeline_rates(root: str, data_cfg, num_batches: int = 10, process_workers: bool = False) -> dict:
    """{"workers", "process_workers", "images_per_s", "images_per_cpu_s"} of the training pipeline on `root`.

    images_per_cpu_s: images per second of CPU time this process spent (every thread; None with process workers,
    whose CPU time is not this process's), the per-core rate that does not depend on other load on the machine.
    Samples every frame (sample_rate 1) so that epoch boundaries do not distort the rate of a small dataset.
    """
    import resource

    from mindface_au.data.affwild2 import load_split

    cfg = dataclasses.replace(data_cfg, sample_rate=1.0, rare_rate=1.0)
    if getattr(data_cfg, "format", "affwild2") != "affwild2":
        from mindface_au.data.folds import get_split

        videos = get_split(dataclasses.replace(cfg, root=root))[0]
    else:
        videos = load_split(root, "train")
    dataset = create_train_dataset(videos, cfg, process_workers=process_workers)
    per_epoch = dataset.get_dataset_size()
    epochs = -(-(num_batches + 1) // per_epoch)
    iterator = dataset.create_tuple_iterator(num_epochs=epochs, output_numpy=True)

    def cpu_seconds() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    done, start, cpu_start = -1, 0.0, 0.0
    for _ in range(epochs):
        for _batch in iterator:
            done += 1
            if done == 0:
                start, cpu_start = time.perf_counter(), cpu_seconds()  # the first batch includes start-up
            if done >= num_batches:
                break
        if done >= num_batches:
            break
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
    images = done * data_cfg.batch_size
    return {
        "workers": _workers(data_cfg),
        "process_workers": bool(process_workers),
        "images_per_s": images / max(elapsed, 1e-9),
        "images_per_cpu_s": None if process_workers else images / max(cpu, 1e-9),
    }
