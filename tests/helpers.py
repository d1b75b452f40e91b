"""What tests share besides fixtures: the one CLI runner and the one tiny model.

Import with `from helpers import ...` (pytest puts tests/ on sys.path: rootdir conftest, "prepend" import mode).
conftest.py holds the fixtures built on these (cli, cli_in_process, tiny_synthau, trained_tiny_run).

CLI, as a user runs it:
    run_cli(*args, check=False, timeout=900, env=None, cwd=None)  `python -m mindface_au ARGS` in a subprocess
    popen_cli(*args, env=None, **popen_kwargs)                     the same command, not waited for (signals, kills)
    cli_command(*args), cli_env(env=None)                          its argv and environment, for other launchers
    run_cli_without(module, *args, timeout=900)                    run_cli where `import MODULE` fails (torch, ...)
    run_cli_in_process(*args)                                      `main(ARGS)` in this process, same result shape,
                                                                   for errors raised before any model is built
The tiny model (8-32 channels, one block per stage, 32 px input, full LRP + ARL + transformer fusion):
    TINY_WIDTHS, TINY_LAYERS, TINY_AUNET                           its ModelConfig values
    tiny_model_config(**overrides) -> ModelConfig, tiny_aunet(**overrides) -> the network
    tiny_overrides(**overrides) -> ["model.KEY=VALUE", ...]        for load_config
    tiny_set_args(**overrides) -> ["--set", "model.KEY=VALUE", ...] for the CLI
    load_tiny_config(config=None, overrides=()) -> Config          a config (packaged name/path) with the tiny model
    tiny_config(root, path, **train)                               a training YAML: the tiny model on a SynthAU set
Inputs and weights: randomise_params(net, seed), random_faces(batch, size, seed), write_random_crops(folder, count).
"""

import contextlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import yaml

TINY_WIDTHS = [8, 16, 16, 32]
TINY_LAYERS = [1, 1, 1, 1]
# ModelConfig values of THE tiny full AU network (LRP + ARL + transformer fusion) for fast tests
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


# ------------------------------------------------------------------------------------------------------ the CLI
def cli_command(*args) -> list:
    """argv of `python -m mindface_au ARGS` with this interpreter."""
    return [sys.executable, "-m", "mindface_au", *map(str, args)]


def cli_env(env: dict = None) -> dict:
    """The environment the CLI runs in: this one, MindSpore's C++ logging quiet, plus `env`."""
    return dict(os.environ, GLOG_v="3", **(env or {}))


def run_cli(*args, check: bool = False, timeout: float = 900, env: dict = None, cwd=None):
    """Run `python -m mindface_au ARGS` as a user would (in `cwd`, with `env` added to this environment); returns
    the CompletedProcess (returncode, stdout, stderr). check=True fails the test on a non-zero exit."""
    proc = subprocess.run(
        cli_command(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(env),
        cwd=None if cwd is None else str(cwd),
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"CLI failed ({proc.returncode}): {args}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def popen_cli(*args, env: dict = None, **popen_kwargs) -> subprocess.Popen:
    """Start `python -m mindface_au ARGS` without waiting (to signal or kill it); `popen_kwargs` go to Popen."""
    return subprocess.Popen(cli_command(*args), env=cli_env(env), **popen_kwargs)


def run_cli_without(module: str, *args, timeout: float = 900):
    """run_cli in a process where `import MODULE` fails, as on a machine without that optional dependency."""
    code = f"import sys; sys.modules[{module!r}] = None; from mindface_au.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=cli_env()
    )


def run_cli_in_process(*args):
    """`mindface-au ARGS` in this process, for error paths where a subprocess adds nothing (the error is raised
    before any model or MindSpore context is set up): the same exit status and the same stdout/stderr text as
    `run_cli`, without a Python + MindSpore start-up per call."""
    from mindface_au.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(arg) for arg in args])
        except SystemExit as exc:  # argparse's own errors (exit status 2) and --help (0)
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    return subprocess.CompletedProcess(["mindface-au", *map(str, args)], code, out.getvalue(), err.getvalue())


# ------------------------------------------------------------------------------------------- the tiny model
def tiny_model_config(**overrides):
    """ModelConfig of the tiny network, `overrides` replacing its values."""
    from mindface_au.config import ModelConfig

    return ModelConfig(**{**TINY_AUNET, **overrides})


def tiny_aunet(**overrides):
    """The tiny network itself (untrained), built as the trainer builds it."""
    from mindface_au.models import create_model_from_config

    return create_model_from_config(tiny_model_config(**overrides))


def tiny_overrides(**overrides) -> list:
    """The tiny network as load_config overrides: ["model.KEY=VALUE", ...] (values in YAML/JSON form); an override
    None leaves that key out (the config's own value stays, e.g. backbone_checkpoint=None)."""
    items = {**TINY_AUNET, **overrides}.items()
    return [f"model.{key}={json.dumps(value)}" for key, value in items if value is not None]


def tiny_set_args(**overrides) -> list:
    """The tiny network as CLI options: ["--set", "model.KEY=VALUE", ...]."""
    return [arg for item in tiny_overrides(**overrides) for arg in ("--set", item)]


def load_tiny_config(config=None, overrides=()):
    """A loaded Config (packaged name, path or None for the defaults) with the tiny network, plus `overrides`."""
    from mindface_au.config import load_config

    return load_config(config, [*tiny_overrides(), "data.image_size=0", *overrides])


def tiny_config(root, path, **train) -> str:
    """A training config of the tiny network on the SynthAU set at `root` (deterministic data, augmentation on);
    `train` keys override the train section. Writes the YAML to `path` and returns it."""
    cfg = {
        "model": dict(TINY_AUNET),
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


# ------------------------------------------------------------------------------------------ inputs and weights
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
