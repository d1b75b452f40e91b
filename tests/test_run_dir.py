"""engine/run_dir.py: the layout, checkpoints with their epoch and ModelConfig, keep_last pruning, atomic writes,
rank != 0 writing nothing, and the resume state read once and loaded strictly."""

import dataclasses
import json
import os

import mindspore as ms
import numpy as np
import pytest
import yaml
from mindspore import nn

from mindface_au.config import Config, ModelConfig, load_config
from mindface_au.engine.run_dir import RUN_FILES, RunDirectory
from mindface_au.errors import UserError
from mindface_au.models.checkpoint import read_checkpoint, read_model_config

MODEL_CONFIG = dataclasses.asdict(ModelConfig())


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, n), root) for d, _, names in os.walk(root) for n in names)


def _train_network(out=2):
    net = nn.Dense(3, out)
    opt = nn.Momentum(net.trainable_params(), learning_rate=[0.1, 0.01], momentum=0.9)
    return net, nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), opt)


def test_paths_follow_the_documented_layout(tmp_path):
    run = RunDirectory(str(tmp_path / "r"))
    root = str(tmp_path / "r")
    assert run.config_path == os.path.join(root, "config.yaml")
    assert run.log_path == os.path.join(root, "train.log")
    assert run.metrics_path == os.path.join(root, "metrics.json")
    assert run.ckpt_dir == os.path.join(root, "checkpoints")
    assert run.best_path == os.path.join(root, "checkpoints", "best.ckpt")
    assert run.resume_path == os.path.join(root, "checkpoints", "resume.ckpt")
    assert {k: run.path(k) for k in RUN_FILES} == {k: os.path.join(root, v) for k, v in RUN_FILES.items()}
    assert run.checkpoint_path("epoch", 7) == os.path.join(root, "checkpoints", "epoch_007.ckpt")
    assert run.checkpoint_path("best", 7) == run.best_path and run.checkpoint_path("resume") == run.resume_path
    with pytest.raises(ValueError, match="'last'"):
        run.checkpoint_path("last", 1)
    assert not os.path.exists(root)  # paths only; nothing is created until something is saved


def test_config_metrics_and_checkpoints(tmp_path):
    run = RunDirectory(str(tmp_path / "r"), model_config=MODEL_CONFIG)
    cfg = Config()
    cfg.train.out_dir = run.root
    run.save_config(cfg)
    assert load_config(run.config_path).train.out_dir == run.root
    net, _ = _train_network()
    path = run.save_checkpoint(net, "epoch", 3, extra={"note": "x"})
    assert path == run.checkpoint_path("epoch", 3)
    saved = read_checkpoint(path)
    assert int(saved["epoch_num"].asnumpy()) == 3 and saved["note"] == "x"
    np.testing.assert_array_equal(saved["weight"].asnumpy(), net.weight.asnumpy())
    assert read_model_config(path) == MODEL_CONFIG
    history = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4}, {"epoch": 3, "loss": 0.3}]
    run.write_metrics(history, {"epoch": 2, "mean_f1": 0.6})
    assert json.load(open(run.metrics_path)) == {"epochs": history, "best": {"epoch": 2, "mean_f1": 0.6}}
    assert run.read_history(2) == history[:2]
    assert RunDirectory(str(tmp_path / "nothing")).read_history(5) == []
    assert _files(run.root) == ["checkpoints/epoch_003.ckpt", "config.yaml", "metrics.json"]


def test_keep_last_prunes_older_epochs_only(tmp_path):
    run = RunDirectory(str(tmp_path), keep_last=2)
    net = nn.Dense(2, 1)
    for epoch in range(1, 6):
        run.save_checkpoint(net, "epoch", epoch)
        run.save_checkpoint(net, "best", epoch)
        run.prune(epoch)
    assert sorted(os.listdir(run.ckpt_dir)) == ["best.ckpt", "epoch_004.ckpt", "epoch_005.ckpt"]
    assert run.latest_epoch_checkpoint() == run.checkpoint_path("epoch", 5)
    # epochs are compared as numbers, not as names (epoch_1000 sorts before epoch_999 by name)
    run.save_checkpoint(net, "epoch", 999)
    run.save_checkpoint(net, "epoch", 1000)
    assert run.latest_epoch_checkpoint().endswith("epoch_1000.ckpt")
    assert run.prune(1000) == [run.checkpoint_path("epoch", e) for e in (4, 5)]
    assert [e for e, _ in run.epoch_checkpoints()] == [999, 1000]
    assert RunDirectory(str(tmp_path), keep_last=0).keep_last == 1  # the epoch just saved is always kept


def test_writes_are_atomic(tmp_path):
    run = RunDirectory(str(tmp_path))
    run.write_metrics([{"epoch": 1}], {"epoch": 1, "mean_f1": 0.1})
    before = open(run.metrics_path).read()
    with pytest.raises(TypeError):
        run.write_metrics([{"epoch": 2, "bad": object()}], {"epoch": 2, "mean_f1": 0.2})
    assert open(run.metrics_path).read() == before  # the old file stays whole
    assert os.listdir(tmp_path) == ["metrics.json"]  # and no temporary file is left


def test_rank_other_than_zero_writes_nothing(tmp_path):
    main = RunDirectory(str(tmp_path / "r"), rank=0)
    net = nn.Dense(2, 1)
    main.save_checkpoint(net, "epoch", 1)
    before = _files(main.root)
    other = RunDirectory(str(tmp_path / "r"), rank=1, keep_last=1)
    assert not other.writes and main.writes
    other.save_config(Config())
    other.write_metrics([{"epoch": 2}], {"epoch": 2, "mean_f1": 0.0})
    assert other.save_checkpoint(net, "epoch", 2) is None
    assert other.save_checkpoint(net, "resume", 2) is None
    assert other.prune(5) == []
    assert _files(main.root) == before == ["checkpoints/epoch_001.ckpt"]
    assert other.checkpoint_path("epoch", 2) == main.checkpoint_path("epoch", 2)  # same paths on every rank
    fresh = RunDirectory(str(tmp_path / "other"), rank=3)
    fresh.save_config(Config())
    assert not os.path.exists(fresh.root)


def test_resume_state_is_read_once_and_loaded_strictly(tmp_path, monkeypatch):
    run = RunDirectory(str(tmp_path), model_config=MODEL_CONFIG)
    with pytest.raises(UserError, match=r"^resume .*: no checkpoints/resume.ckpt \(the run did not finish an epoch\)"):
        run.read_resume_state()
    net, train_net = _train_network()
    train_net(ms.Tensor(np.ones((4, 3), np.float32)), ms.Tensor(np.zeros((4, 2), np.float32)))  # one step: moments
    best = {"epoch": 1, "mean_f1": 0.25}
    run.save_checkpoint(train_net, "resume", 1, extra={"best": json.dumps(best)})

    import mindface_au.models.checkpoint as checkpoint

    reads = []
    original = checkpoint.read_checkpoint
    monkeypatch.setattr(checkpoint, "read_checkpoint", lambda path: reads.append(path) or original(path))
    state = run.read_resume_state()
    assert state.epoch == 1 and state.best == best and state.path == run.resume_path
    fresh_net, fresh_train = _train_network()
    state.load_into(fresh_train)
    assert reads == [run.resume_path]  # one read gives the epoch, the best and the parameters
    np.testing.assert_array_equal(fresh_net.weight.asnumpy(), net.weight.asnumpy())
    assert int(fresh_train.optimizer.global_step.asnumpy()[0]) == 1
    moments = {p.name: p.asnumpy() for p in train_net.optimizer.moments}
    assert any(np.abs(m).max() > 0 for m in moments.values())
    for p in fresh_train.optimizer.moments:
        np.testing.assert_array_equal(p.asnumpy(), moments[p.name])

    _, other = _train_network(out=5)
    with pytest.raises(UserError, match=r"does not fit the model \(bias \(2,\) vs model \(5,\); "):
        state.load_into(other)
    _, bigger = _train_network()
    bigger.extra = ms.Parameter(ms.Tensor(np.zeros(2, np.float32)), name="extra")
    with pytest.raises(UserError, match=r"resume state does not fit the model \(missing extra\)"):
        state.load_into(bigger)


def test_saved_config_is_yaml(tmp_path):
    run = RunDirectory(str(tmp_path))
    run.save_config(Config())
    assert yaml.safe_load(open(run.config_path))["train"]["keep_last"] == Config().train.keep_last
    assert os.path.isdir(run.ckpt_dir)
