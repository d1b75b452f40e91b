"""Data parallel under msrun on CPU via `mindface-au launch`: 2 workers train a tiny net; only rank 0 writes."""

import os
import socket
import subprocess
import sys

import pytest
from test_train import tiny_config  # noqa: I100 - tests/ is on sys.path under pytest


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
    assert proc.returncode == 2 and "msrun" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_msrun_two_cpu_workers(tmp_path):
    from mindface_au.data.synthau import generate
    from mindface_au.engine.evaluator import load_model

    generate(str(tmp_path / "data"), videos=6, frames=60, seed=3, workers=1)
    config = tiny_config(tmp_path / "data", tmp_path / "c.yaml", epochs=1, steps_per_epoch=3)
    # launch adds --distributed and puts this Python first on PATH (msrun starts the workers with `python`)
    cmd = [
        sys.executable, "-m", "mindface_au", "launch", "--workers", "2", f"--port={_free_port()}",
        f"--log-dir={tmp_path / 'logs'}", "--", "--config", config, "--out", str(tmp_path / "run"), "--device", "CPU",
    ]  # fmt: skip
    env = dict(os.environ, GLOG_v="3")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=str(tmp_path))
    logs = {n: open(tmp_path / "logs" / n).read() for n in os.listdir(tmp_path / "logs") if n.endswith(".log")}
    assert proc.returncode == 0, (
        proc.stdout[-1500:] + proc.stderr[-1500:] + str({k: v[-1500:] for k, v in logs.items()})
    )
    workers = [text for name, text in logs.items() if name.startswith("worker_")]
    assert len(workers) == 2
    assert all("done in" in text for text in workers), [t[-800:] for t in workers]
    assert sum("best epoch 1: val mean F1" in text for text in workers) == 1  # only rank 0 validates
    assert any("rank 0/2" in t for t in workers) and any("rank 1/2" in t for t in workers)
    ckpts = sorted(os.listdir(tmp_path / "run" / "checkpoints"))
    assert ckpts == ["best.ckpt", "epoch_001.ckpt", "resume.ckpt"]
    net, _ = load_model(str(tmp_path / "run" / "checkpoints" / "best.ckpt"))
    assert net is not None
