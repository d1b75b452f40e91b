"""engine/validation.py: the validation videos cut to data.val_max_frames as contiguous prefixes."""

import numpy as np
import pytest

from mindface_au.data.affwild2 import Video
from mindface_au.engine.validation import truncate_videos


def test_truncate_videos_keeps_contiguous_prefixes():
    videos = [
        Video(n, np.arange(1, k + 1), np.zeros((k, 12), np.int8), [f"{n}{i}" for i in range(k)], k)
        for n, k in (("a", 100), ("b", 300))
    ]
    same, total = truncate_videos(videos, 0)
    assert total == 400 and same[1] is videos[1]
    short, total = truncate_videos(videos, 40)
    assert [len(v) for v in short] == [10, 30] and total == 40
    assert short[1].frame_ids.tolist() == list(range(1, 31)) and short[1].image_paths[-1] == "b29"
    assert short[0].num_frames == 100


def _videos(tmp_path, lengths, seed=0, uncoded_au=None):
    """Videos of 16 px random images with random 0/1 labels (some -1); AU `uncoded_au` is never coded."""
    import cv2

    rng = np.random.default_rng(seed)
    videos = []
    for n, k in enumerate(lengths):
        paths = []
        for i in range(k):
            path = str(tmp_path / f"v{n}_{i}.png")
            cv2.imwrite(path, rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
            paths.append(path)
        labels = (rng.random((k, 12)) < 0.4).astype(np.int8)
        labels[rng.random((k, 12)) < 0.1] = -1
        if uncoded_au is not None:
            labels[:, uncoded_au] = -1
        videos.append(Video(f"v{n}", np.arange(1, k + 1), labels, paths, k))
    return videos


def _cfg(**eval_keys):
    from mindface_au.config import Config

    cfg = Config()
    cfg.data.image_size, cfg.data.eval_batch_size, cfg.data.num_workers = 16, 4, 1
    cfg.eval.prob_k, cfg.eval.label_k = eval_keys.get("prob_k", 2), eval_keys.get("label_k", 1)
    return cfg


def _tiny_net():
    from mindspore import nn

    from mindface_au.inference.loader import AUProbabilities  # noqa: F401 - the wrapper validation puts around it

    net = nn.SequentialCell([nn.Flatten(), nn.Dense(3 * 16 * 16, 12)])
    return net


def test_shards_are_whole_disjoint_videos_balanced_by_frames():
    from mindface_au.engine.validation import shard_videos

    videos = [Video(f"v{i}", np.arange(1, k + 1), None, [None] * k, k) for i, k in enumerate((50, 10, 30, 30, 5))]
    for world in (1, 2, 3, 7):
        shards = [shard_videos(videos, r, world) for r in range(world)]
        names = [v.name for s in shards for v in s]
        assert sorted(names) == sorted(v.name for v in videos)  # every video once, whole
        assert all([v.name for v in s] == sorted(v.name for v in s) for s in shards)  # the videos' own order
    assert [sum(len(v) for v in s) for s in (shard_videos(videos, r, 2) for r in range(2))] == [65, 60]
    assert [len(shard_videos(videos, r, 7)) for r in range(7)] == [1, 1, 1, 1, 1, 0, 0]


@pytest.mark.parametrize("world", [2, 4])
def test_sharded_validation_sums_counts_to_the_single_process_score(tmp_path, world):
    """Issue 29 item 4: a fake `world`-rank split on CPU (no msrun). Each rank scores its shard of whole videos;
    the sum of the ranks' packed counts gives every rank the single-process result, to the last digit; with 4
    ranks and 3 videos one rank scores nothing and adds zeros. An AU without coded frames stays None."""
    from mindface_au.engine.validation import create_validation

    videos = _videos(tmp_path, (9, 6, 4), uncoded_au=3)
    cfg = _cfg()
    net = _tiny_net()
    single = create_validation(net, videos, cfg)()
    assert single["per_au"]["AU6"] is None and single["coded_frames"]["AU6"] == 0 and single["mean_aus"] == 11
    assert single["frames"] == 19 and single["subset"] == "all 19 validation frames"

    packed = {}

    def capture(rank):
        def combine(values):
            packed[rank] = np.array(values)
            return values

        return combine

    for rank in range(world):
        create_validation(net, videos, cfg, rank=rank, world_size=world, combine=capture(rank))()
    if world == 4:
        assert not packed[3][:-2].any() and packed[3][-2:].tolist() == [0, 0]  # no video: zero counts
    total = sum(packed.values())
    for rank in range(world):
        result = create_validation(net, videos, cfg, rank=rank, world_size=world, combine=lambda _: total)()
        assert result == single


def test_validation_result_matches_sklearn_on_the_coded_aus(tmp_path):
    """The counted F1 (raw, no smoothing) against sklearn on each AU's coded frames of the network's predictions."""
    from sklearn.metrics import f1_score

    from mindface_au.engine.evaluator import predict_videos
    from mindface_au.engine.validation import create_validation
    from mindface_au.inference.loader import AUProbabilities

    videos = _videos(tmp_path, (7, 5), seed=2, uncoded_au=0)
    cfg = _cfg(prob_k=0, label_k=0)
    net = _tiny_net()
    result = create_validation(net, videos, cfg)()
    probs = np.concatenate([p for _, p in predict_videos(AUProbabilities(net), videos, cfg.data)])
    truth = np.concatenate([v.labels for v in videos])
    for i, name in enumerate(result["per_au"]):
        keep = truth[:, i] >= 0
        if not keep.any():
            assert result["per_au"][name] is None
            continue
        expected = f1_score(truth[keep, i], (probs[keep, i] > cfg.eval.threshold).astype(int), zero_division=0)
        assert result["per_au"][name] == pytest.approx(expected, abs=1e-12)


def test_an_empty_validation_part_is_refused_and_val_interval_0_means_no_validation():
    from mindface_au.engine.validation import EmptyValidationPart, check_validation_part
    from mindface_au.errors import UserError

    cfg = _cfg()
    cfg.data.root, cfg.data.split = "data/x", "fold2"
    uncoded = Video("a", np.arange(1, 4), -np.ones((3, 12), np.int8), ["a.jpg"] * 3, 3)
    empty = Video("b", np.arange(1, 1), np.zeros((0, 12), np.int8), [], 5, missing_images=5)
    for videos, held in (
        ([], "no videos"),
        ([uncoded, empty], "2 video(s), 3 frame(s) listed, none with an image and a coded AU label (5 labelled "
         "row(s) without an image)"),
    ):  # fmt: skip
        with pytest.raises(EmptyValidationPart) as info:
            check_validation_part(videos, cfg)
        assert isinstance(info.value, UserError)
        assert str(info.value) == (
            f"data/x: the validation part of data.split fold2 has no frame to score ({held}); use another split or "
            "fix the data, or set train.val_interval=0 to train without validation (best.ckpt = the last epoch)"
        )
    coded = Video("c", np.arange(1, 3), np.array([[-1] * 11 + [0], [-1] * 12], np.int8), ["c.jpg"] * 2, 2)
    assert check_validation_part([uncoded, coded], cfg) is True
    cfg.train.val_interval = 0
    assert check_validation_part([], cfg) is False


def test_train_with_an_empty_validation_part_stops_at_start(cli, tmp_path):
    """Issue 26 item 4: every validation label uncoded: one line, exit 2, before any epoch (today: "validation: 0
    frames", F1 0.00 and "new best checkpoint (mean F1 0.00)")."""
    from helpers import tiny_config  # noqa: I100 - tests/ is on sys.path under pytest

    from mindface_au.data.synthau import generate

    generate(str(tmp_path / "data"), videos=4, frames=12, seed=0, workers=1)
    val_dir = tmp_path / "data" / "AU_Detection_Challenge" / "Validation_Set"
    for path in val_dir.iterdir():
        lines = path.read_text().splitlines()
        path.write_text("\n".join([lines[0]] + [",".join(["-1"] * 12)] * (len(lines) - 1)) + "\n")
    config = tiny_config(tmp_path / "data", tmp_path / "c.yaml", epochs=1)
    proc = cli("train", "--config", config, "--out", tmp_path / "run", "--device", "CPU")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stdout[-1500:] + proc.stderr[-1500:]
    assert "the validation part of data.split official has no frame to score" in lines[0]
    assert "epoch 1" not in proc.stdout and not (tmp_path / "run" / "checkpoints" / "best.ckpt").exists()
