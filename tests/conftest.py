"""Shared test set-up: MindSpore on CPU in GRAPH mode, tiny models, a temporary SynthAU set."""

import os
import subprocess
import sys

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
