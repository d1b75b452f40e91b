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


def _old_pipeline_item(paths, labels, size, seed, index, hflip, jitter):
    """The frame the pipeline served before decoding moved to vision.Decode (cv2.imread, resize, BGR -> RGB, flip
    and jitter drawn in that order from a generator keyed by (seed, epoch, frame)), normalised and CHW."""
    from mindface_au.data.transforms import resize_face

    epoch, frame = divmod(index, len(paths))
    current, image = frame, cv2.imread(paths[frame], cv2.IMREAD_COLOR)
    while image is None:
        current = (current + 1) % len(paths)
        image = cv2.imread(paths[current], cv2.IMREAD_COLOR)
    image = resize_face(image, size)[:, :, ::-1]
    rng = np.random.default_rng((seed, epoch, frame))
    if hflip and rng.random() < 0.5:
        image = image[:, ::-1]
    if jitter > 0:
        brightness, contrast, saturation = rng.uniform(1 - jitter, 1 + jitter, 3)
        out = image.astype(np.float32) * brightness
        gray = out @ np.array([0.299, 0.587, 0.114], np.float32)
        out = (out - gray.mean()) * contrast + gray.mean()
        gray = (out @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        out = (out - gray) * saturation + gray
        image = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    normalised = ((image.astype(np.float32) / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)
    return normalised, labels[current]


def _assert_within_one_level(images, reference, max_fraction=1e-3):
    """Normalised images equal to `reference` except pixels 1 of 255 apart (the jitter's rounding, see
    pipeline.apply_augment), on at most `max_fraction` of the values."""
    levels = np.rint(images * 127.5 + 127.5).astype(int)
    expected = np.rint(reference * 127.5 + 127.5).astype(int)
    np.testing.assert_allclose(images, (levels - 127.5) / 127.5, atol=1e-6)  # normalised whole levels
    difference = np.abs(levels - expected)
    assert difference.max() <= 1 and (difference > 0).mean() <= max_fraction, (difference.max(), difference.mean())


@pytest.mark.parametrize("process_workers", [False, True])
def test_decoding_in_the_map_stage_serves_the_same_images_and_labels(root, process_workers):
    """Threads or processes, 1 or 2 workers: every batch equals the OpenCV decode-and-augment of the same frames
    (flip and jitter on, a 64 px video resized to 112, a corrupt frame replaced by the next one), two epochs."""
    videos, _ = _paths(root)
    paths = [p for v in videos for p in v.image_paths]
    labels = np.concatenate([v.labels for v in videos]).astype(np.float32)
    for workers in (1, 2):
        cfg = _cfg(hflip=True, color_jitter=0.4, sample_rate=0.5, batch_size=4, num_workers=workers)
        dataset = create_train_dataset(videos, cfg, seed=3, process_workers=process_workers)
        sampler = dataset.epoch_sampler
        iterator = dataset.create_tuple_iterator(num_epochs=2, output_numpy=True)
        for epoch in range(2):
            images = np.concatenate([image for image, _ in iterator])
            order = sampler.indices(epoch)[: len(images)] + epoch * sampler.num_frames
            expected = [_old_pipeline_item(paths, labels, 112, 3, int(i), True, 0.4) for i in order]
            served = np.concatenate([lab for _, lab in dataset.create_tuple_iterator(num_epochs=1, output_numpy=True)])
            _assert_within_one_level(images, np.stack([e[0] for e in expected]))
            assert len(served) == len(images)
        first = create_train_dataset(videos, cfg, seed=3, process_workers=process_workers)
        got = np.concatenate([lab for _, lab in first.create_tuple_iterator(num_epochs=1, output_numpy=True)])
        order = first.epoch_sampler.indices(0)[: len(got)]
        np.testing.assert_array_equal(
            got, np.stack([_old_pipeline_item(paths, labels, 112, 3, int(i), False, 0)[1] for i in order])
        )


def test_frame_table_pickles_for_process_workers(root):
    import pickle

    videos, _ = _paths(root)
    cfg = _cfg(hflip=True, color_jitter=0.4)
    table = create_train_dataset(videos, cfg, seed=2).frame_table
    copy = pickle.loads(pickle.dumps(table))
    for index in (0, 4, 30, len(table) + 7):
        for mine, theirs in zip(table[index], copy[index]):
            np.testing.assert_array_equal(mine, theirs)


def test_read_encoded_passes_complete_files_and_decodes_the_rest_with_opencv(tmp_path):
    """JPEG/PNG/BMP bytes go to vision.Decode as they are; a truncated JPEG, an EXIF JPEG and a TIFF are decoded by
    OpenCV in the reader (lossless BMP): vision.Decode then gives OpenCV's pixels for all of them."""
    import mindspore.dataset.vision as vision

    from mindface_au.data.pipeline import read_encoded

    image = np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    files = {}
    for ext in ("jpg", "png", "bmp", "tiff"):
        files[ext] = str(tmp_path / f"a.{ext}")
        cv2.imwrite(files[ext], image)
    data = open(files["jpg"], "rb").read()
    files["truncated"] = str(tmp_path / "t.jpg")
    open(files["truncated"], "wb").write(data[: len(data) * 2 // 3])
    assert cv2.imread(files["truncated"]) is not None  # OpenCV reads a truncated JPEG (vision.Decode raises)
    files["exif"] = str(tmp_path / "e.jpg")  # an APP1 Exif segment (no orientation tag) right after SOI
    app1 = b"Exif\x00\x00" + b"II*\x00\x08\x00\x00\x00\x00\x00"
    open(files["exif"], "wb").write(data[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + data[2:])
    decode = vision.Decode()
    for name, path in files.items():
        encoded = read_encoded(path)
        assert encoded is not None and encoded.dtype == np.uint8, name
        passed = encoded.tobytes() == open(path, "rb").read()
        assert passed == (name in ("jpg", "png", "bmp")), name
        np.testing.assert_array_equal(decode(encoded), cv2.imread(path, cv2.IMREAD_COLOR)[:, :, ::-1], err_msg=name)
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg at all")
    assert read_encoded(str(tmp_path / "bad.jpg")) is None and read_encoded(str(tmp_path / "missing.jpg")) is None


def test_benchmark_has_a_row_per_worker_count(root):
    from benchmarks.measure import measure_pipeline
    from mindface_au.data.pipeline import pipeline_rates

    rates = pipeline_rates(root, _cfg(num_workers=2, color_jitter=0.4), num_batches=3)
    assert rates["workers"] == 2 and rates["process_workers"] is False
    assert rates["images_per_s"] > 0 and rates["images_per_cpu_s"] > 0
    result = measure_pipeline(root, batch=8, num_batches=2, threads=2)
    assert [row["workers"] for row in result["by_workers"]] == [1, 2]
    assert [row["workers"] for row in result["by_process_workers"]] == [1, 2]
    assert all(row["images_per_cpu_s"] is None and row["images_per_s"] > 0 for row in result["by_process_workers"])
    assert all(row["load_average"] >= 0 for row in result["by_workers"] + result["by_process_workers"])
    from benchmarks import report as bench_report

    machine = {"mindspore": "x", "torch": "y", "numpy": "z", "threads": 2, "cpus": 2, "processor": "p"}
    report = {"machine": machine, "matmul": {}, "models": [], "pipeline": {**result, "peak_rss_mb": 1}}
    table = bench_report.format_table(report)
    row = result["by_process_workers"][1]
    assert f"- 2 process worker(s): {row['images_per_s']} images/s, n/a images per CPU second (load average" in table
    assert result["images_per_s"] == result["by_workers"][-1]["images_per_s"]


def _nodes(dataset):
    """The nodes of a dataset's tree, from the output back to the source."""
    nodes = [dataset]
    while nodes[-1].children:
        nodes.append(nodes[-1].children[0])
    return nodes


def test_no_per_row_python_map_in_the_pipelines(root):
    """Every map runs C++ ops only (no Python call per row, which holds the GIL); the Python pixel work is one
    `BatchImages` call per batch, for training and evaluation."""
    from mindface_au.data.pipeline import BatchImages

    videos, _ = _paths(root)
    for dataset in (
        create_train_dataset(videos, _cfg(hflip=True, color_jitter=0.4)),
        create_eval_dataset(videos, _cfg()),
    ):
        nodes = _nodes(dataset)
        for node in nodes:
            for op in getattr(node, "operations", []):
                assert getattr(op, "implementation", None) is not None, f"{type(node).__name__} runs {op!r} per row"
        assert sum(isinstance(getattr(node, "per_batch_map", None), BatchImages) for node in nodes) == 1


def test_affine_jitter_matches_the_step_by_step_computation():
    """apply_augment (one cv2.transform per image) against brightness, contrast and saturation applied one after the
    other in float64: at most 1 of 255 apart, on under 0.01 % of the values (random images, sizes and parameters,
    flat images too)."""
    from mindface_au.data.pipeline import apply_augment, draw_augment

    rng = np.random.default_rng(0)
    weights = np.array([0.299, 0.587, 0.114])
    worst, differing, total = 0, 0, 0
    for i in range(60):
        height, width = rng.integers(4, 64, 2)
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        if i % 3 == 0:
            image = image // 64 * 64  # few distinct values: many exact ties
        params = draw_augment(np.random.default_rng(i), True, (0.2, 0.4, 0.9)[i % 3])
        out = image[:, ::-1].astype(np.float64) if params[0] else image.astype(np.float64)
        brightness, contrast, saturation = params[1:].astype(np.float64)
        out = out * brightness
        out = (out - (out @ weights).mean()) * contrast + (out @ weights).mean()
        gray = (out @ weights)[..., None]
        expected = np.clip((out - gray) * saturation + gray + 0.5, 0, 255).astype(np.uint8)
        difference = np.abs(apply_augment(image, params, True).astype(int) - expected)
        worst, differing, total = max(worst, difference.max()), differing + (difference > 0).sum(), total + image.size
    assert worst <= 1 and differing / total < 1e-4, (worst, differing / total)


def test_batch_normalisation_equals_mindspore_normalize():
    """BatchImages' NumPy normalisation and CHW give MindSpore's C++ Normalize + HWC2CHW values (ArcFace and an
    ImageNet-like mean/std), and its resize is resize_face's."""
    from mindface_au.data.pipeline import BatchImages, build_image_ops
    from mindface_au.data.transforms import make_face_input, resize_face

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for size in (32, 48, 20)]
    for spec in (None, make_face_input(32, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))):
        normalize, to_chw = build_image_ops(spec)
        expected = np.stack([to_chw(normalize(resize_face(image, 32))) for image in images])
        np.testing.assert_allclose(BatchImages(32, False, False, spec).images(images), expected, rtol=0, atol=1e-6)
