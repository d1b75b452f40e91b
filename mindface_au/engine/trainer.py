"""Training: config -> datasets -> AUNet -> `mindspore.train.Model` with callbacks -> run directory.

The function reads as the list of steps: the run directory (engine/run_dir.py, its layout and writers), the
datasets, the network and loss, `create_scheduler` / `create_optimizer` (engine/optim.py, the lr schedule),
the callbacks (engine/callbacks.py) with per-epoch validation (engine/validation.py), then `Model.train`.
"""

import dataclasses
import logging
import os
import sys
import time
from typing import Dict, List, Optional

import numpy as np

from mindface_au.config import Config, config_to_dict, load_config
from mindface_au.engine.run_dir import RUN_FILES, RunDirectory
from mindface_au.errors import UserError

__all__ = ["train", "TrainingDiverged", "RUN_FILES"]

AMP_LEVELS = ("O0", "O1", "O2", "O3")


class TrainingDiverged(UserError):
    """The loss became NaN or Inf; the run stopped and kept its last good checkpoint."""


def _make_logger(log_path: Optional[str], rank: int) -> logging.Logger:
    logger = logging.getLogger("mindface_au.train")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    stream = logging.StreamHandler(sys.stdout)
    stream.setFormatter(logging.Formatter(f"[rank {rank}] %(message)s" if rank else "%(message)s"))
    logger.addHandler(stream)
    if log_path:
        handler = logging.FileHandler(log_path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    return logger


def _loss_scale(amp_level: str) -> float:
    """The fixed loss scale for `train.amp_level` (1 for O0: no scaling)."""
    amp = amp_level.upper()
    if amp not in AMP_LEVELS:
        raise UserError(f"config key train.amp_level: got {amp_level!r}, expected O0, O1, O2 or O3")
    return 1.0 if amp == "O0" else 1024.0


def train(
    cfg: Config,
    resume: Optional[str] = None,
    distributed: bool = False,
    device: Optional[str] = None,
    overrides: List[str] = (),
) -> Dict:
    """Train `cfg` (or continue the run in `resume` with its saved config plus `overrides`).

    Returns {"run_dir", "rank", "best": {"epoch", "mean_f1"}, "epochs": [per-epoch records], "best_ckpt",
    "config"}.
    """
    import mindspore as ms
    from mindspore import dataset as ds
    from mindspore.train import FixedLossScaleManager, Model

    from mindface_au.data import create_train_dataset, get_split
    from mindface_au.engine.callbacks import EpochValidator, ProgressLogger, SkippedImagesCallback
    from mindface_au.engine.distributed import init_distributed
    from mindface_au.engine.optim import create_optimizer, create_scheduler
    from mindface_au.engine.validation import create_validation
    from mindface_au.losses import create_loss
    from mindface_au.models import create_model_from_config
    from mindface_au.utils.device import init_context

    if resume:
        saved = RunDirectory(resume).config_path
        if not os.path.isfile(saved):
            raise UserError(f"--resume {resume}: not a run directory (no {RUN_FILES['config']})")
        cfg = load_config(saved, overrides)
        cfg.train.out_dir = resume
    target = init_context(device or cfg.train.device)
    rank, world_size = init_distributed() if distributed else (0, 1)
    run = RunDirectory(cfg.train.out_dir, rank, dataclasses.asdict(cfg.model), cfg.train.keep_last)
    loss_scale = _loss_scale(cfg.train.amp_level)
    amp = cfg.train.amp_level.upper()

    # resume.ckpt is read once, before anything is written: the epoch decides the dataset, the state is loaded
    # into the train network once it exists
    state = run.read_resume_state() if resume else None
    start_epoch = state.epoch if state else 0
    if state and start_epoch >= cfg.train.epochs:
        raise UserError(f"--resume {resume}: already trained {start_epoch} of {cfg.train.epochs} epochs")

    run.save_config(cfg)
    logger = _make_logger(run.log_path if run.writes else None, rank)
    logger.info(f"run {run.root}: device {target}, rank {rank}/{world_size}, split {cfg.data.split}")

    seed = cfg.train.seed
    ms.set_seed(seed)
    np.random.seed(seed)
    ds.config.set_seed(seed)

    train_videos, val_videos = get_split(cfg.data)
    net = create_model_from_config(cfg.model)
    loss_fn = create_loss(cfg.loss)

    dataset = create_train_dataset(
        train_videos, cfg.data, seed=seed, start_epoch=start_epoch, rank=rank, world_size=world_size
    )
    if cfg.train.steps_per_epoch > 0:
        dataset = dataset.take(cfg.train.steps_per_epoch)
    steps = dataset.get_dataset_size()
    if steps <= 0:
        raise UserError(
            f"{cfg.data.root}: the training split gives no full batch of {cfg.data.batch_size}; "
            "lower data.batch_size or raise data.sample_rate"
        )
    lrs = create_scheduler(cfg.train, steps)
    optimizer = create_optimizer(net, cfg.train, lrs, loss_scale)
    kwargs = {}
    if amp != "O0":
        kwargs["loss_scale_manager"] = FixedLossScaleManager(loss_scale, drop_overflow_update=False)
    model = Model(net, loss_fn=loss_fn, optimizer=optimizer, amp_level=amp, **kwargs)

    history: List[Dict] = []
    best = None
    if state:
        state.load_into(model.train_network)
        best = state.best or None
        history = run.read_history(start_epoch)
        state = None  # the parameters are in the network now; free the copy
        logger.info(f"resumed from epoch {start_epoch} (global step {int(optimizer.global_step.asnumpy()[0])})")

    evaluate_fn = create_validation(net, val_videos, cfg) if run.writes and val_videos else None
    progress = ProgressLogger(logger, lrs, steps, cfg.data.batch_size * world_size, start_step=start_epoch * steps)
    validator = EpochValidator(
        logger, progress, evaluate_fn, run, net, model.train_network, history, lrs, steps, best=best
    )
    logger.info(
        f"{len(train_videos)} train videos, {len(val_videos)} val videos, {steps} steps/epoch of "
        f"{cfg.data.batch_size} x {world_size}, epochs {start_epoch + 1}..{cfg.train.epochs}"
    )
    t0 = time.time()
    model.train(
        cfg.train.epochs,
        dataset,
        callbacks=[progress, validator, SkippedImagesCallback(dataset)],
        dataset_sink_mode=cfg.train.sink_mode,
        initial_epoch=start_epoch,
    )
    if progress.diverged is not None:
        d = progress.diverged
        kept = validator.last_good or run.latest_epoch_checkpoint() or "none (no epoch finished)"
        raise TrainingDiverged(
            f"training stopped: loss is {d['loss']} at epoch {d['epoch']} step {d['step']} "
            f"(lower train.lr or use amp_level O0); last good checkpoint: {kept}"
        )
    if run.writes:
        logger.info(
            f"done in {time.time() - t0:.1f} s; best epoch {validator.best['epoch']} "
            f"mean F1 {100 * validator.best['mean_f1']:.2f}"
        )
    else:
        logger.info(f"done in {time.time() - t0:.1f} s (rank 0 validates and writes the run directory)")
    for handler in list(logger.handlers):
        handler.flush()
    return {
        "run_dir": run.root,
        "rank": rank,
        "best": validator.best,
        "epochs": history,
        "best_ckpt": run.best_path,
        "config": config_to_dict(cfg),
    }
