"""Per-epoch sampling (paper 3.4.1), 4-fold splits by video and `mindface-au folds`."""

import json
import os

import numpy as np
import pytest
from test_affwild2 import write_video

from mindface_au.config import AU_NAMES, DataConfig
from mindface_au.data.affwild2 import pair_key
from mindface_au.data.folds import compute_folds, get_split, read_folds
from mindface_au.data.sampling import epoch_size, rare_mask, sample_epoch, uniform_positions
from mindface_au.errors import UserError


def _masks(seed=0, videos=20, frames=600, rare=0.08):
    rng = np.random.default_rng(seed)
    return [rng.random(int(frames * rng.uniform(0.5, 1.5))) < rare for _ in range(videos)]


def test_uniform_positions_is_a_stride():
    for count, offset in ((100, 0.0), (95, 0.37), (7, 0.99), (10, 0.5)):
        pos = uniform_positions(count, 0.1, offset)
        expected = [j for j in range(int(np.floor(offset * 10)), count, 10)]
        assert pos.tolist() == expected
    assert uniform_positions(12, 0.2, 0.0).tolist() == [0, 5, 10]
    assert uniform_positions(5, 1.0, 0.3).tolist() == [0, 1, 2, 3, 4]


def test_rare_mask_matches_labels():
    labels = np.zeros((5, 12), np.int8)
    labels[1, AU_NAMES.index("AU26")] = 1
    labels[3, AU_NAMES.index("AU2")] = 1
    labels[4, AU_NAMES.index("AU25")] = 1  # common AU
    assert rare_mask(labels, ["AU2", "AU15", "AU23", "AU24", "AU26"]).tolist() == [0, 1, 0, 1, 0]
    assert rare_mask(labels, []).tolist() == [0] * 5
    with pytest.raises(UserError, match="AU99"):
        rare_mask(labels, ["AU99"])


def test_sampling_rates_and_rare_oversampling():
    masks = _masks()
    flat_rare = np.concatenate(masks)
    n_common, n_rare = int((~flat_rare).sum()), int(flat_rare.sum())
    sizes = set()
    for epoch in range(6):
        picked = sample_epoch(masks, 0.1, 0.2, seed=3, epoch=epoch)
        sizes.add(len(picked))
        assert len(np.unique(picked)) == len(picked)
        common_rate = (~flat_rare[picked]).sum() / n_common
        rare_rate = flat_rare[picked].sum() / n_rare
        assert abs(common_rate - 0.1) <= 0.01 and abs(rare_rate - 0.2) <= 0.02
        assert flat_rare[picked].mean() > 1.5 * flat_rare.mean()  # rare frames oversampled
    assert sizes == {epoch_size(masks, 0.1, 0.2)}  # the same number of frames every epoch
    expected = (~flat_rare).sum() * 0.1 + flat_rare.sum() * 0.2
    assert abs(epoch_size(masks, 0.1, 0.2) - expected) <= 1


def test_sampling_is_uniform_within_a_video():
    mask = [np.zeros(1000, bool)]
    picked = np.sort(sample_epoch(mask, 0.1, 0.2, seed=0, epoch=0))
    assert len(picked) == 100 and set(np.diff(picked)) == {10}


def test_sampling_deterministic_and_fresh_each_epoch():
    masks = _masks(1)
    a0 = sample_epoch(masks, 0.1, 0.2, seed=5, epoch=0)
    np.testing.assert_array_equal(a0, sample_epoch(masks, 0.1, 0.2, seed=5, epoch=0))
    a1 = sample_epoch(masks, 0.1, 0.2, seed=5, epoch=1)
    b0 = sample_epoch(masks, 0.1, 0.2, seed=6, epoch=0)
    assert len(np.intersect1d(a0, a1)) < 0.5 * len(a0)
    assert len(np.intersect1d(a0, b0)) < 0.5 * len(a0)
    with pytest.raises(UserError, match="data.sample_rate"):
        sample_epoch(masks, 0.0, 0.2, seed=0, epoch=0)


def test_compute_folds_pairs_balance_determinism():
    rng = np.random.default_rng(2)
    counts = {f"vid{i:02d}": int(rng.integers(100, 3000)) for i in range(17)}
    counts.update({"two_left": 2500, "two_right": 2400, "three_left": 800, "three_right": 900})
    folds = compute_folds(counts)
    assert len(folds) == 4
    names = [n for f in folds for n in f]
    assert sorted(names) == sorted(counts) and len(set(names)) == len(names)  # disjoint and covering
    where = {n: i for i, f in enumerate(folds) for n in f}
    assert where["two_left"] == where["two_right"] and where["three_left"] == where["three_right"]
    totals = [sum(counts[n] for n in f) for f in folds]
    groups = {}
    for name, count in counts.items():
        groups[pair_key(name)] = groups.get(pair_key(name), 0) + count
    assert max(totals) - min(totals) <= max(groups.values())  # greedy largest-first bound
    assert folds == compute_folds(dict(reversed(list(counts.items()))))  # independent of input order


@pytest.fixture
def cv_root(tmp_path):
    root = str(tmp_path / "data")
    rng = np.random.default_rng(4)
    names = ["p_left", "p_right", "q", "r", "s", "t", "u", "w"]
    for i, name in enumerate(names):
        split = "train" if i < 5 else "val"
        n = int(rng.integers(3, 9))
        write_video(root, split, name, rng.integers(0, 2, (n, 12)).tolist(), list(range(1, n + 1)))
    return root


def test_folds_cli_and_get_split(cv_root, cli, tmp_path):
    out = str(tmp_path / "folds.json")
    proc = cli("folds", "--root", cv_root, "--out", out)
    assert proc.returncode == 0, proc.stderr
    folds = read_folds(out)
    with open(out) as handle:
        data = json.load(handle)
    assert data["num_folds"] == 4 and len(folds) == 4
    assert sorted(n for f in folds for n in f) == ["p_left", "p_right", "q", "r", "s", "t", "u", "w"]
    for k in range(1, 5):
        cfg = DataConfig(root=cv_root, split=f"fold{k}", folds_file=out)
        train, val = get_split(cfg)
        assert sorted(v.name for v in val) == sorted(folds[k - 1])
        assert {v.name for v in train} == {n for i, f in enumerate(folds) if i != k - 1 for n in f}
        computed = get_split(DataConfig(root=cv_root, split=f"fold{k}"))
        assert [v.name for v in computed[1]] == [v.name for v in val]
    train, val = get_split(DataConfig(root=cv_root, split="official"))
    assert [v.name for v in val] == ["t", "u", "w"] and len(train) == 5


def test_folds_errors(cv_root, cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"folds": [["p_left", "p_right", "ghost"], ["q"], ["r", "s"], ["t", "u", "w"]]}))
    with pytest.raises(UserError, match="ghost"):
        get_split(DataConfig(root=cv_root, split="fold1", folds_file=str(bad)))
    bad.write_text("[1, 2")
    with pytest.raises(UserError, match="bad.json"):
        read_folds(str(bad))
    out = tmp_path / "sub" / "folds.json"
    proc = cli("folds", "--root", str(tmp_path / "missing"), "--out", str(out))
    assert proc.returncode == 2 and "missing" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()
    assert not os.path.exists(out.parent) or not os.listdir(out.parent)
