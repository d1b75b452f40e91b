"""Shared test set-up: MindSpore on CPU in GRAPH mode, tiny models, a temporary SynthAU set."""

import os
import subprocess
import sys

import numpy as np
import pytest

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


@pytest.fixture
def cli():
    return run_cli
