"""mindspore.dataset pipelines: shapes, dtypes, normalisation, flip, sampling per epoch, sharding, bad images."""

import logging
import os

import cv2
import numpy as np
import pytest
from test_affwild2 import write_video

from mindface_au.config import DataConfig
from mindface_au.data import load_split
from mindface_au.data.pipeline import (
    benchmark_pipeline,
    create_eval_dataset,
    create_train_dataset,
    skipped_images,
)
from mindface_au.errors import UserError

BITS = 2 ** np.arange(12)


def _code(label):
    return int(np.round(label).astype(int) @ BITS)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Two train videos of distinct asymmetric images (label = binary frame code), one 64x64, one corrupt."""
    root = str(tmp_path_factory.mktemp("pipe"))
    rng = np.random.default_rng(0)
    code = 1
    for name, n, size in (("v1", 24, 112), ("v2", 20, 64)):
        rows = []
        for _ in range(n):
            rows.append([(code >> b) & 1 for b in range(12)])
            code += 1
        write_video(root, "train", name, rows, [])
        for f in range(1, n + 1):
            img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            img[:, : size // 4] = 0  # strongly asymmetric, so a flip is unmistakable
            cv2.imwrite(os.path.join(root, "cropped_aligned", name, f"{f:05d}.png".replace(".png", ".jpg")), img)
    with open(os.path.join(root, "cropped_aligned", "v1", "00005.jpg"), "wb") as handle:
        handle.write(b"not a jpeg at all")
    write_video(root, "val", "v1", rows[:1], [])  # val split needed by some helpers only
    return root


def _expected(path, size=112):
    img = cv2.imread(path)
    if img.shape[0] != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
    rgb = img[:, :, ::-1].astype(np.float32)
    return ((rgb / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)


def _cfg(**kw):
    base = dict(
        image_size=112, batch_size=8, sample_rate=1.0, rare_rate=1.0, rare_aus=[], color_jitter=0.0, num_workers=2
    )
    base.update(kw)
    return DataConfig(**base)


def _paths(root):
    videos = load_split(root, "train")
    return videos, {_code(lab): p for v in videos for lab, p in zip(v.labels, v.image_paths)}


def test_train_batches_flip_and_corrupt_image(root, caplog):
    videos, by_code = _paths(root)
    corrupt = _code(videos[0].labels[4])
    dataset = create_train_dataset(videos, _cfg(hflip=True))
    assert dataset.get_dataset_size() == 44 // 8
    flips = plain = 0
    seen = []
    with caplog.at_level(logging.WARNING):
        for image, label in dataset.create_tuple_iterator(num_epochs=1, output_numpy=True):
            assert image.shape == (8, 3, 112, 112) and image.dtype == np.float32
            assert label.shape == (8, 12) and label.dtype == np.float32
            assert image.min() >= -1.0 and image.max() <= 1.0
            for img, lab in zip(image, label):
                code = _code(lab)
                seen.append(code)
                expected = _expected(by_code[code])
                if np.allclose(img, expected, atol=1e-5):
                    plain += 1
                else:
                    np.testing.assert_allclose(img, expected[:, :, ::-1], atol=1e-5)
                    flips += 1
    assert flips > 0 and plain > 0
    assert corrupt not in seen  # the unreadable frame was replaced, never served
    assert skipped_images(dataset) >= 1
    assert any("00005.jpg" in r.getMessage() and "unreadable" in r.getMessage() for r in caplog.records)


def test_same_batch_count_every_epoch_and_fresh_frames(root):
    videos, _ = _paths(root)
    dataset = create_train_dataset(videos, _cfg(sample_rate=0.5, batch_size=4), seed=1)
    per_epoch = dataset.get_dataset_size()
    iterator = dataset.create_tuple_iterator(num_epochs=3, output_numpy=True)
    epochs = []
    for _ in range(3):
        codes = [_code(lab) for _, labels in iterator for lab in labels]
        epochs.append(set(codes))
        assert len(codes) == per_epoch * 4
    assert epochs[0] != epochs[1] or epochs[1] != epochs[2]


def test_epochs_follow_seed_and_start_epoch(root):
    """The frames of the first epoch served are exactly sample_epoch(seed, start_epoch), in that order."""
    from mindface_au.data.sampling import sample_epoch

    videos, _ = _paths(root)
    codes = [_code(lab) for v in videos for lab in v.labels]
    masks = [np.zeros(len(v), bool) for v in videos]
    cfg = _cfg(sample_rate=0.5, batch_size=2, hflip=False, num_workers=1)
    dataset = create_train_dataset(videos, cfg, seed=7, start_epoch=2)
    served = [
        _code(lab) for _, labels in dataset.create_tuple_iterator(num_epochs=1, output_numpy=True) for lab in labels
    ]
    expected = [codes[i] for i in sample_epoch(masks, 0.5, 1.0, seed=7, epoch=2)]
    keep = [i for i, c in enumerate(expected) if c != 5]  # frame 5 is corrupt and served as frame 6
    assert [served[i] for i in keep] == [expected[i] for i in keep]


def test_shards_are_disjoint(root):
    videos, _ = _paths(root)
    shards = []
    for rank in range(2):
        dataset = create_train_dataset(videos, _cfg(batch_size=2, hflip=False), seed=3, rank=rank, world_size=2)
        shards.append(
            [
                _code(lab)
                for _, labels in dataset.create_tuple_iterator(num_epochs=1, output_numpy=True)
                for lab in labels
            ]
        )
    assert len(shards[0]) == len(shards[1]) > 0
    # disjoint, except the frame served in place of the corrupt frame 5; together they cover the epoch
    assert set(shards[0]) & set(shards[1]) <= {6}
    assert set(shards[0]) | set(shards[1]) == set(range(1, 45)) - {5}
    with pytest.raises(UserError, match="rank 2"):
        create_train_dataset(videos, _cfg(), rank=2, world_size=2)
    with pytest.raises(UserError, match="data.batch_size"):
        create_train_dataset(videos, _cfg(batch_size=64, sample_rate=0.1))


def test_eval_order_values_and_skip(root):
    videos, _ = _paths(root)
    dataset = create_eval_dataset(videos, _cfg(), batch_size=5)
    rows = []
    for batch in dataset.create_dict_iterator(num_epochs=1, output_numpy=True):
        assert set(batch) == {"image", "label", "video_index", "frame_index"}
        for img, lab, vi, fi in zip(batch["image"], batch["label"], batch["video_index"], batch["frame_index"]):
            video = videos[int(vi)]
            np.testing.assert_array_equal(lab, video.labels[int(fi)])
            np.testing.assert_allclose(img, _expected(video.image_paths[int(fi)]), atol=1e-5)
            rows.append((int(vi), int(fi)))
    expected = [(v, f) for v, video in enumerate(videos) for f in range(len(video)) if not (v == 0 and f == 4)]
    assert rows == expected  # video/frame order, the corrupt frame dropped
    assert skipped_images(dataset) == 1


def test_test_split_frames_without_images(tmp_path):
    from mindface_au.data.affwild2 import Video

    img = tmp_path / "a.jpg"
    cv2.imwrite(str(img), np.full((112, 112, 3), 200, np.uint8))
    video = Video("t", np.arange(1, 4), None, [None, str(img), None], 3)
    batch = next(create_eval_dataset([video], _cfg()).create_dict_iterator(num_epochs=1, output_numpy=True))
    assert batch["frame_index"].tolist() == [1] and (batch["label"] == -1).all()


def test_benchmark_pipeline(root):
    rate = benchmark_pipeline(root, _cfg(batch_size=8, color_jitter=0.4), num_batches=3)
    assert np.isfinite(rate) and rate > 0


def test_augmentation_is_keyed_by_epoch_so_resume_sees_the_same_images(root):
    """Epoch 1 of a run started at epoch 0 equals epoch 1 of a run resumed at epoch 1; epochs differ."""
    videos, _ = _paths(root)
    cfg = _cfg(hflip=True, color_jitter=0.4, sample_rate=0.5, batch_size=4)

    def epochs(start_epoch, count):
        dataset = create_train_dataset(videos, cfg, seed=5, start_epoch=start_epoch)
        iterator = dataset.create_tuple_iterator(num_epochs=count, output_numpy=True)
        return [np.concatenate([image for image, _ in iterator]) for _ in range(count)]

    first, second = epochs(0, 2)
    (resumed,) = epochs(1, 1)
    np.testing.assert_array_equal(second, resumed)
    assert first.shape == second.shape and not np.array_equal(first, second)


def test_augment_flips_and_jitters_like_numpy():
    from mindface_au.data.pipeline import augment

    image = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    flipped = augment(image, np.random.default_rng(0), hflip=True, jitter=0.0, flip_prob=1.0)
    np.testing.assert_array_equal(flipped, image[:, ::-1])
    brightness, contrast, saturation = np.random.default_rng(0).uniform(0.5, 1.5, 3)
    out = image.astype(np.float64) * brightness
    weights = np.array([0.299, 0.587, 0.114])
    out = (out - (out @ weights).mean()) * contrast + (out @ weights).mean()
    gray = (out @ weights)[..., None]
    expected = np.clip((out - gray) * saturation + gray + 0.5, 0, 255).astype(np.uint8)
    got = augment(image, np.random.default_rng(0), hflip=False, jitter=0.5)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
