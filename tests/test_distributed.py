"""Data parallel, shown correct: shards (sampler, no launcher), then 2 CPU workers under msrun via `mindface-au launch`.

One msrun run trains one step with 2 ranks x batch 4; a single process trains one step with batch 8 on the same
frames (BatchNorm frozen, plain SGD): same parameters. A second msrun run resumes it for 2 more epochs: both ranks
resume at the same epoch, read disjoint shards and end with the same parameters, each rank validates its shard of
whole videos, and the validation F1 from the summed counts equals a single-process `eval` of the epoch checkpoint.
"""

import hashlib
import json
import os
import re
import socket
import sys

import numpy as np
import pytest
from helpers import run_cli, tiny_config  # noqa: I100 - tests/ is on sys.path under pytest

BATCH = 4  # per rank


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_distributed_flag_without_launcher_is_a_clear_error(cli, tmp_path):
    from mindface_au.data.synthau import generate

    generate(str(tmp_path / "data"), videos=4, frames=30, seed=0, workers=1)
    config = tiny_config(tmp_path / "data", tmp_path / "c.yaml")
    env = {k: "" for k in ("MS_WORKER_NUM", "RANK_TABLE_FILE", "RANK_SIZE")}
    proc = cli("train", "--config", config, "--out", tmp_path / "r", "--distributed", env=env)
    message = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and "msrun" in message and "mindface-au launch" in message


def test_launch_passes_bind_core_to_msrun(cli):
    proc = cli("launch", "--workers", "8", "--dry-run", "--msrun-arg=--bind_core=True", "--", "--device", "Ascend")
    assert proc.returncode == 0, proc.stderr
    cmd = proc.stdout.strip().splitlines()[-1].split()
    assert cmd.index("--bind_core=True") < cmd.index("train") and "--distributed" in cmd


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_are_disjoint_and_cover_the_epoch_sample(world):
    from mindface_au.data.pipeline import EpochSampler
    from mindface_au.data.sampling import sample_epoch

    rng = np.random.default_rng(world)
    masks = [rng.random(n) < 0.2 for n in (57, 80, 33)]
    batch = 5
    for epoch in range(3):
        shards = [EpochSampler(masks, 0.3, 0.5, seed=7, rank=r, world_size=world).indices(epoch) for r in range(world)]
        sample = sample_epoch(masks, 0.3, 0.5, 7, epoch)
        flat = np.concatenate(shards)
        assert len(set(flat.tolist())) == len(flat)  # disjoint
        assert set(flat.tolist()) <= set(sample.tolist())
        assert len({len(s) for s in shards}) == 1  # equal split
        counts = EpochSampler(masks, 0.3, 0.5, seed=7, world_size=world).accounting(batch)
        trained = world * (len(shards[0]) // batch) * batch
        assert counts == {
            "sampled": len(sample),
            "steps": len(shards[0]) // batch,
            "trained": trained,
            "dropped": len(sample) - trained,
        }
        assert len(sample) - len(flat) < world and counts["dropped"] <= world * batch
    # a cap (train.steps_per_epoch) and the rest of an interrupted epoch (skip) cut the same shard
    capped = EpochSampler(masks, 0.3, 0.5, seed=7, rank=1, world_size=2, max_per_rank=2 * batch)
    assert len(capped) == 2 * batch and capped.accounting(batch)["trained"] == 2 * 2 * batch
    full = EpochSampler(masks, 0.3, 0.5, seed=7, start_epoch=2, rank=1, world_size=2)
    rest = EpochSampler(masks, 0.3, 0.5, seed=7, start_epoch=2, rank=1, world_size=2, skip=batch)
    first, again = list(iter(full)), list(iter(rest))
    assert again == first[batch:] and len(rest) == len(full) - batch


def _launch(tmp_path, logs, *train_args):
    proc = run_cli(
        "launch", "--workers", "2", f"--port={_free_port()}", f"--log-dir={tmp_path / logs}", "--", *train_args,
        "--device", "CPU", cwd=tmp_path,
    )  # fmt: skip
    found = {n: open(tmp_path / logs / n).read() for n in os.listdir(tmp_path / logs) if n.endswith(".log")}
    assert proc.returncode == 0, (
        proc.stdout[-1500:] + proc.stderr[-1500:] + str({k: v[-1500:] for k, v in found.items()})
    )
    workers = [found[f"worker_{r}.log"] for r in range(2)]
    return workers


def _digests(text):
    """{global step: parameter digest} logged by one rank."""
    return {int(s): d for d, s in re.findall(r"parameters sha256 ([0-9a-f]{16}) at global step (\d+)", text)}


def _trainable(path):
    from mindface_au.engine.evaluator import load_model

    net, _ = load_model(str(path))
    return {p.name: p.asnumpy() for p in net.trainable_params()}


@pytest.mark.slow
def test_data_parallel_equals_one_big_batch_resumes_and_validates_like_eval(tmp_path, cli):
    from mindface_au.config import load_config
    from mindface_au.data import create_train_dataset, get_split
    from mindface_au.data.synthau import generate
    from mindface_au.engine.evaluator import evaluate
    from mindface_au.models.checkpoint import read_checkpoint

    generate(str(tmp_path / "data"), videos=6, frames=60, seed=3, workers=1)
    # BatchNorm frozen and momentum 0 (plain SGD): the step is a function of the batch's mean gradient only
    settings = dict(epochs=1, steps_per_epoch=1, freeze_bn=True, momentum=0.0, jit_level="O0")
    config = tiny_config(tmp_path / "data", tmp_path / "c.yaml", **settings)
    with open(config) as handle:
        text = handle.read().replace("batch_size: 8", f"batch_size: {BATCH}")
    with open(config, "w") as handle:
        handle.write(text)
    run = tmp_path / "run"
    workers = _launch(tmp_path, "logs1", "--config", config, "--out", run)

    # what the first launch test checked: both ranks finish, only rank 0 writes
    assert all("done in" in text for text in workers), [t[-800:] for t in workers]
    assert sum("best epoch 1: val mean F1" in text for text in workers) == 1
    assert "rank 0/2" in workers[0] and "rank 1/2" in workers[1]
    assert sorted(os.listdir(run / "checkpoints")) == ["best.ckpt", "epoch_001.ckpt", "resume.ckpt"]
    best = _trainable(run / "checkpoints" / "best.ckpt")  # the network rebuilt from the file, its weights loaded
    saved = read_checkpoint(str(run / "checkpoints" / "epoch_001.ckpt"))
    assert best and all(np.array_equal(value, saved[name].asnumpy()) for name, value in best.items())
    for text in workers:  # the start-of-run settings
        assert "device CPU, mode GRAPH, sink mode off, jit level O0, AMP O0, loss scale none" in text
        assert f"global batch {2 * BATCH} ({BATCH} per device x 2)" in text
        assert "BatchNorm: frozen" in text and "graph compile" in text
    # identical initial parameters on both ranks (same seed before any Cell is built)
    d0, d1 = _digests(workers[0]), _digests(workers[1])
    assert d0[0] == d1[0] and d0[1] == d1[1] and d0[0] != d0[1]

    # one process, batch 2B, the same frames in its first batch (rank r reads sample[r::2])
    single = tmp_path / "single"
    proc = cli("train", "--config", config, "--out", single, "--device", "CPU", "--set", f"data.batch_size={2 * BATCH}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert _digests(proc.stderr)[0] == d0[0]
    a, b = _trainable(run / "checkpoints" / "epoch_001.ckpt"), _trainable(single / "checkpoints" / "epoch_001.ckpt")
    assert set(a) == set(b)
    worst = max(float(np.abs(a[n] - b[n]).max() / max(np.abs(b[n]).max(), 1e-12)) for n in a)
    assert worst <= 1e-5, worst
    print(f"2 ranks x {BATCH} vs 1 x {2 * BATCH}: max |difference| / parameter scale = {worst:.2e}")

    # resume the distributed run for two more epochs: same epoch on both ranks, same parameters at the end
    workers = _launch(tmp_path, "logs2", "--resume", run, "--set", "train.epochs=3")
    for text in workers:
        assert "resumed from epoch 1 (global step 1)" in text
    d0, d1 = _digests(workers[0]), _digests(workers[1])
    assert d0 == d1 and sorted(d0) == [1, 3], (d0, d1)

    # each epoch: the two logged shards are the sampler's, disjoint, and the log counts the dropped frames
    cfg = load_config(config)
    train_videos = get_split(cfg.data)[0]
    shards = {}
    for rank in range(2):
        dataset = create_train_dataset(train_videos, cfg.data, seed=0, rank=rank, world_size=2, max_steps=1)
        sampler = dataset.epoch_sampler
        counts = sampler.accounting(BATCH)
        assert f"{counts['trained']} trained, {counts['dropped']} dropped per epoch" in workers[rank]
        for epoch in (2, 3):
            indices = np.asarray(sampler.indices(epoch - 1), np.int64)
            digest = hashlib.sha256(indices.tobytes()).hexdigest()[:16]
            assert f"epoch {epoch}: rank {rank} shard {len(indices)} frames, indices sha256 {digest}" in workers[rank]
            shards[rank, epoch] = set(indices.tolist())
    assert all(not (shards[0, e] & shards[1, e]) for e in (2, 3))

    # every rank scored a shard of whole videos and the counts were summed: the logged F1 is a single-process eval
    # of the same checkpoint
    val_videos = get_split(cfg.data)[1]
    scored = [re.findall(r"2 ranks, this one scored (\d+) whole videos", text) for text in workers]
    assert all(len(found) == 2 for found in scored), scored  # epochs 2 and 3, on each rank
    assert [int(a) + int(b) for a, b in zip(*scored)] == [len(val_videos)] * 2
    assert all(int(n) > 0 for found in scored for n in found)  # as many videos as ranks or more: both have work
    last = json.load(open(run / "metrics.json"))["epochs"][-1]
    assert last["epoch"] == 3
    # the function `mindface-au eval` calls, in this (single) process: one process start less for the suite
    result = evaluate(load_config(config, ["data.val_max_frames=0"]), str(run / "checkpoints" / "epoch_003.ckpt"))
    assert last["val_frames"] == result["frames"]
    assert last["val_mean_f1"] == pytest.approx(result["mean_f1"], abs=1e-12)
    assert last["val_mean_f1_smoothed"] == pytest.approx(result["mean_f1_smoothed"], abs=1e-12)
    assert read_checkpoint(str(run / "checkpoints" / "resume.ckpt"))["global_step"].asnumpy()[0] == 3


def test_resume_with_another_worker_count_is_a_one_line_error(tmp_path):
    """The shards, steps per epoch and learning-rate schedule count steps of the run's worker count, which its
    train.log records at every start ("rank 0/N"): a resume with another count is refused; the last start counts;
    a run directory without a log is not checked."""
    from mindface_au.engine.distributed import check_resume_workers
    from mindface_au.errors import UserError

    run = tmp_path / "run"
    run.mkdir()
    check_resume_workers(str(run), 3)  # no train.log: nothing to compare with
    (run / "train.log").write_text(
        f"run {run}: rank 0/1, split official\nepoch 1: loss 1.0\nrun {run}: rank 0/2, split official\n"
    )
    check_resume_workers(str(run), 2)
    with pytest.raises(UserError) as info:
        check_resume_workers(str(run), 1)
    expected = (
        f"{{}} {run}: the run was trained with 2 worker(s), this run has 1; resume it with 2 (the epoch's "
        "shards, steps per epoch and learning-rate schedule count steps of 2 ranks)"
    )
    assert str(info.value) == expected.format("resume")  # a Python caller sees the parameter
    from mindface_au.cli.flags import FLAG_NAMES
    from mindface_au.errors import parameter_names

    with parameter_names(FLAG_NAMES):  # what the CLI prints
        assert str(info.value) == expected.format("--resume")


def test_launch_gives_workers_the_collective_timeouts_unless_set():
    """The workers get HCCL's timeouts from engine.distributed (validation must not hit the default exec timeout);
    a value the user exported wins, and this interpreter leads PATH (msrun starts `python` from there)."""
    from mindface_au.cli.launch import worker_env
    from mindface_au.engine.distributed import COLLECTIVE_TIMEOUTS

    env = worker_env({"PATH": "/usr/bin"})
    assert {key: env[key] for key in COLLECTIVE_TIMEOUTS} == COLLECTIVE_TIMEOUTS
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)
    mine = worker_env({"PATH": "/usr/bin", "HCCL_EXEC_TIMEOUT": "300"})
    assert (
        mine["HCCL_EXEC_TIMEOUT"] == "300"
        and mine["HCCL_CONNECT_TIMEOUT"] == COLLECTIVE_TIMEOUTS["HCCL_CONNECT_TIMEOUT"]
    )


def test_launch_refuses_more_local_workers_than_devices_before_msrun(monkeypatch):
    """On a GPU machine with one device, `launch --workers 2` is one line naming the count; --device CPU is not
    limited (the detect and CPU data-parallel launches)."""
    import mindface_au.utils.device as device
    from mindface_au.cli.launch import msrun_command
    from mindface_au.errors import UserError

    monkeypatch.setattr(device, "detect_device", lambda *a, **k: "GPU")
    monkeypatch.setattr(device, "device_count", lambda target: 1)
    with pytest.raises(UserError, match=r"2 local workers for 1 GPU device\(s\)"):
        msrun_command(2, ["train", "--config", "x.yaml"])
    assert "--worker_num=2" in msrun_command(2, ["train", "--config", "x.yaml", "--device", "CPU"])
