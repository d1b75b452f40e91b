"""Shared test set-up: MindSpore on CPU in GRAPH mode, tiny models, a temporary SynthAU set."""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

os.environ.setdefault("GLOG_v", "3")  # keep MindSpore's C++ logging quiet in test output

from mindface_au.utils.device import init_context  # noqa: E402

init_context("CPU", "graph")

TINY_WIDTHS = [8, 16, 16, 32]
TINY_LAYERS = [1, 1, 1, 1]
# ModelConfig values of a tiny full AU network (LRP + ARL + transformer fusion) for fast tests
TINY_AUNET = dict(
    name="aunet_iresnet18",
    widths=TINY_WIDTHS,
    layers=TINY_LAYERS,
    input_size=32,
    embedding_size=16,
    head_dim=16,
    fusion_heads=4,
    lrp_reduction=4,
    backbone_checkpoint="",
)


def randomise_params(net, seed=0):
    """Non-trivial BN statistics/affine and PReLU slopes, so a folding or mapping mistake shows."""
    import mindspore as ms

    rng = np.random.default_rng(seed)
    for param in net.get_parameters():
        name, shape = param.name, param.shape
        if name.endswith("moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(("moving_mean", "beta")):
            value = rng.normal(0.0, 0.3, shape)
        elif name.endswith("gamma") and param.requires_grad:
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(".w"):
            value = rng.uniform(0.0, 0.5, shape)
        else:
            continue
        param.set_data(ms.Tensor(value.astype(np.float32)))
    return net


def random_faces(batch=2, size=112, seed=1):
    """A float32 (batch, 3, size, size) input in [-1, 1]."""
    return np.random.default_rng(seed).uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)


def write_random_crops(folder, count, seed=0, size=40, suffix=""):
    """`count` random BGR images {i:05d}.png in a new `folder` (stand-ins for aligned crops); returns the folder."""
    import cv2

    os.makedirs(folder)
    rng = np.random.default_rng(seed)
    for i in range(count):
        cv2.imwrite(os.path.join(str(folder), f"{i:05d}.png"), rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    return folder


def run_cli(*args, check=False, timeout=900, env=None):
    """Run `python -m mindface_au ARGS` as a user would; returns the CompletedProcess."""
    full_env = dict(os.environ, GLOG_v="3", **(env or {}))
    proc = subprocess.run(
        [sys.executable, "-m", "mindface_au", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"CLI failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_cli_in_process(*args):
    """`mindface-au ARGS` in this process, for error paths where a subprocess adds nothing (the error is raised
    before any model or MindSpore context is set up): the same exit status and the same stdout/stderr text as
    `run_cli`, without a Python + MindSpore start-up per call."""
    import contextlib
    import io

    from mindface_au.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(arg) for arg in args])
        except SystemExit as exc:  # argparse's own errors (exit status 2) and --help (0)
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    return subprocess.CompletedProcess(["mindface-au", *map(str, args)], code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def cli_in_process():
    return run_cli_in_process


def tiny_config(root, path, **train):
    """A tiny full network (LRP + ARL + transformer FF) on a tiny SynthAU set, deterministic data; `train` keys
    override the train section. Writes the YAML to `path` and returns it."""
    cfg = {
        "model": {
            "name": "aunet_iresnet18",
            "widths": TINY_WIDTHS,
            "layers": TINY_LAYERS,
            "head_dim": 16,
            "fusion_heads": 2,
            "lrp_num": 2,
            "lrp_reduction": 4,
        },
        "data": {
            "root": str(root),
            "batch_size": 8,
            "eval_batch_size": 32,
            "sample_rate": 0.5,
            "rare_rate": 0.5,
            "num_workers": 1,
            "hflip": True,  # augmentation is keyed by (seed, epoch, frame), so resume is still exact
            "color_jitter": 0.3,
        },
        "train": {"epochs": 2, "lr": 0.05, "milestones": [2], "seed": 0, **train},
        "eval": {"prob_k": 2, "label_k": 1},
    }
    with open(path, "w") as handle:
        yaml.safe_dump(cfg, handle)
    return str(path)


@pytest.fixture(scope="session")
def tiny_synthau(tmp_path_factory):
    """A tiny SynthAU set (6 videos x 60 frames) shared by the whole session: read it, never write into it."""
    from mindface_au.data.synthau import generate

    root = tmp_path_factory.mktemp("synthau") / "data"
    generate(str(root), videos=6, frames=60, seed=1, workers=1)
    return root


@pytest.fixture(scope="session")
def trained_tiny_run(tiny_synthau, tmp_path_factory):
    """One 2-epoch `mindface-au train` run of the tiny network on `tiny_synthau`, shared by every test file that
    needs a trained run (train, eval/predict/score, ...). Read-only: copy the folder (shutil.copytree) before
    resuming or changing it.

    Fields: data (the SynthAU root), config (its YAML), run (the run folder), best_ckpt, metrics (metrics.json),
    proc (the CompletedProcess of the CLI run). Step checkpoints every 5 steps (for the mid-epoch resume test);
    the relu-form PReLU makes training bit-reproducible on CPU.
    """
    base = tmp_path_factory.mktemp("trained_tiny_run")
    config = tiny_config(tiny_synthau, base / "tiny.yaml", save_every_steps=5, prelu_form="relu")
    run = base / "run"
    proc = run_cli("train", "--config", config, "--out", run, "--device", "CPU")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    with open(run / "metrics.json", encoding="utf-8") as handle:
        metrics = json.load(handle)
    return SimpleNamespace(
        data=tiny_synthau, config=config, run=run, best_ckpt=str(run / "checkpoints" / "best.ckpt"), metrics=metrics,
        proc=proc,
    )  # fmt: skip
