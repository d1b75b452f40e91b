"""Shared test set-up (fixtures and hooks only): MindSpore on CPU in GRAPH mode, a temporary SynthAU set, one trained
tiny run. The CLI runner, the tiny model and the other shared makers live in helpers.py."""

import json
import os
from types import SimpleNamespace

import pytest

os.environ.setdefault("GLOG_v", "3")  # keep MindSpore's C++ logging quiet in test output

from helpers import run_cli, run_cli_in_process, tiny_config  # noqa: E402

from mindface_au.utils.device import init_context  # noqa: E402

init_context("CPU", "graph")


def pytest_collection_modifyitems(config, items):
    """A test on the trained tiny run is a system test (it waits for a `mindface-au train` run): marked slow, so the
    fast lane (`make test-fast`, -m "not slow") trains nothing."""
    for item in items:
        if "trained_tiny_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def cli():
    """helpers.run_cli: `python -m mindface_au ARGS` in a subprocess."""
    return run_cli


@pytest.fixture
def cli_in_process():
    """helpers.run_cli_in_process: the CLI's main in this process (error paths before any model is built)."""
    return run_cli_in_process


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
