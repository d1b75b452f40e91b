"""Training: config -> datasets -> AUNet -> `mindspore.train.Model` with callbacks -> run directory.

Run directory (rank 0 writes it)::

    config.yaml            the resolved config
    train.log              progress and per-epoch validation
    metrics.json           per-epoch loss, lr, images/s, validation mean and per-AU F1; the best epoch
    checkpoints/epoch_NNN.ckpt   the last `train.keep_last` epochs (network only, ModelConfig embedded)
    checkpoints/best.ckpt        best validation mean F1
    checkpoints/resume.ckpt      network + optimiser state (moments, global step) for --resume

Schedule reading: `train.milestones` are 1-based epochs at which the lr is divided by 10, so the paper's
"4th, 6th and 8th epoch" ([4, 6, 8]) trains epochs 1-3 at lr, 4-5 at lr/10, 6-7 at lr/100, 8-15 at lr/1000.
The lr is a per-step list indexed by the optimiser's global step, which the resume state restores.
"""

import dataclasses
import json
import logging
import os
import sys
import time
from typing import Dict, List, Optional

import numpy as np

from mindface_au.config import Config, config_to_dict, load_config, save_config
from mindface_au.errors import UserError

__all__ = ["piecewise_lr", "build_optimizer", "train", "TrainingDiverged", "RUN_FILES"]

RUN_FILES = {
    "config": "config.yaml",
    "log": "train.log",
    "metrics": "metrics.json",
    "ckpt_dir": "checkpoints",
    "best": "checkpoints/best.ckpt",
    "resume": "checkpoints/resume.ckpt",
}


class TrainingDiverged(UserError):
    """The loss became NaN or Inf; the run stopped and kept its last good checkpoint."""


def piecewise_lr(base_lr: float, milestones: List[int], gamma: float, epochs: int, steps_per_epoch: int) -> List[float]:
    """Per-step lr: base_lr * gamma^(number of 1-based milestones reached), constant within an epoch."""
    lrs = []
    for epoch in range(1, epochs + 1):
        lr = base_lr * gamma ** sum(epoch >= m for m in milestones)
        lrs.extend([lr] * steps_per_epoch)
    return lrs


def build_optimizer(net, train_cfg, lrs: List[float], loss_scale: float = 1.0):
    """SGD with momentum (or AdamW) over the trainable parameters; no weight decay on BN, bias, PReLU.

    "sgd" is nn.Momentum: the same update as nn.SGD without dampening or Nesterov (and as PyTorch's SGD), without
    the parameter-sized `stat` buffer nn.SGD allocates (250 MB for IResNet100; docs/performance.md).
    """
    from mindspore import nn

    params = net.trainable_params()
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": train_cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    name = train_cfg.optimizer.lower()
    if name == "sgd":
        return nn.Momentum(groups, learning_rate=lrs, momentum=train_cfg.momentum, loss_scale=loss_scale)
    if name == "adamw":
        if loss_scale != 1.0:
            raise UserError("config key train.optimizer: adamw supports amp_level O0 only here; use sgd for O2/O3")
        return nn.AdamWeightDecay(groups, learning_rate=lrs)
    raise UserError(f"config key train.optimizer: got {train_cfg.optimizer!r}, expected sgd or adamw")


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


def _scalar(value) -> float:
    """An `extra` number read back from a checkpoint (saved as a 0-d Parameter)."""
    return float(np.asarray(value.asnumpy() if hasattr(value, "asnumpy") else value).reshape(-1)[0])


def _latest_epoch_checkpoint(ckpt_dir: str) -> Optional[str]:
    names = sorted(n for n in os.listdir(ckpt_dir) if n.startswith("epoch_") and n.endswith(".ckpt"))
    return os.path.join(ckpt_dir, names[-1]) if names else None


def load_resume_state(run_dir: str, train_network) -> Dict:
    """Load network + optimiser state from RUN_DIR/checkpoints/resume.ckpt; returns its extra fields."""
    import mindspore as ms

    from mindface_au.models.checkpoint import read_checkpoint

    path = os.path.join(run_dir, RUN_FILES["resume"])
    if not os.path.isfile(path):
        raise UserError(f"--resume {run_dir}: no {RUN_FILES['resume']} (the run did not finish an epoch)")
    data = read_checkpoint(path)
    params = {k: v for k, v in data.items() if isinstance(v, ms.Parameter)}
    # the lr list is rebuilt from the config (it may be extended by --set train.epochs=...); the rest is state
    own = {p.name for p in train_network.get_parameters() if not p.name.startswith("learning_rate")}
    missing = sorted(own - set(params))
    if missing:
        raise UserError(f"{path}: resume state does not fit the model (missing {', '.join(missing[:5])})")
    not_loaded, _ = ms.load_param_into_net(train_network, {k: params[k] for k in own}, strict_load=True)
    not_loaded = [n for n in not_loaded if not n.startswith("learning_rate")]
    if not_loaded:
        raise UserError(f"{path}: parameters not loaded: {', '.join(not_loaded[:5])}")
    best = data.get("best")
    return {"epoch": int(_scalar(data.get("epoch_num", 0))), "best": json.loads(best) if isinstance(best, str) else {}}


def train(
    cfg: Config,
    resume: Optional[str] = None,
    distributed: bool = False,
    device: Optional[str] = None,
    overrides: List[str] = (),
) -> Dict:
    """Train `cfg` (or continue the run in `resume` with its saved config plus `overrides`).

    Returns {"run_dir", "best": {"epoch", "mean_f1"}, "epochs": [per-epoch records], "best_ckpt"}.
    """
    import mindspore as ms
    from mindspore import dataset as ds
    from mindspore.train import FixedLossScaleManager, Model

    from mindface_au.data import create_train_dataset, get_split, truncate_videos
    from mindface_au.data.pipeline import SkippedImagesCallback
    from mindface_au.engine.callbacks import EpochValidator, ProgressLogger
    from mindface_au.engine.distributed import init_distributed
    from mindface_au.engine.evaluator import ProbNet, evaluate_probs, predict_videos
    from mindface_au.losses import create_loss
    from mindface_au.models import create_model_from_config
    from mindface_au.models.checkpoint import save_checkpoint_atomic
    from mindface_au.utils.device import init_context

    if resume:
        saved = os.path.join(resume, RUN_FILES["config"])
        if not os.path.isfile(saved):
            raise UserError(f"--resume {resume}: not a run directory (no {RUN_FILES['config']})")
        cfg = load_config(saved, overrides)
        cfg.train.out_dir = resume
    target = init_context(device or cfg.train.device)
    rank, world_size = init_distributed() if distributed else (0, 1)
    main = rank == 0
    run_dir = cfg.train.out_dir
    if main:
        os.makedirs(os.path.join(run_dir, RUN_FILES["ckpt_dir"]), exist_ok=True)
        save_config(cfg, os.path.join(run_dir, RUN_FILES["config"]))
    logger = _make_logger(os.path.join(run_dir, RUN_FILES["log"]) if main else None, rank)
    logger.info(f"run {run_dir}: device {target}, rank {rank}/{world_size}, split {cfg.data.split}")

    seed = cfg.train.seed
    ms.set_seed(seed)
    np.random.seed(seed)
    ds.config.set_seed(seed)

    train_videos, val_videos = get_split(cfg.data)
    net = create_model_from_config(cfg.model)
    loss_fn = create_loss(cfg.loss)

    amp = cfg.train.amp_level.upper()
    if amp not in ("O0", "O1", "O2", "O3"):
        raise UserError(f"config key train.amp_level: got {cfg.train.amp_level!r}, expected O0, O1, O2 or O3")
    loss_scale = 1.0 if amp == "O0" else 1024.0

    # The dataset is built for the remaining epochs; the resume epoch is known only after the state is read,
    # so read its epoch number first (cheap) and build everything else once.
    start_epoch, best = 0, None
    if resume:
        from mindface_au.models.checkpoint import read_checkpoint

        state_path = os.path.join(resume, RUN_FILES["resume"])
        if not os.path.isfile(state_path):
            raise UserError(f"--resume {resume}: no {RUN_FILES['resume']} (the run did not finish an epoch)")
        start_epoch = int(_scalar(read_checkpoint(state_path).get("epoch_num", 0)))
        if start_epoch >= cfg.train.epochs:
            raise UserError(f"--resume {resume}: already trained {start_epoch} of {cfg.train.epochs} epochs")

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
    lrs = piecewise_lr(cfg.train.lr, cfg.train.milestones, cfg.train.lr_gamma, cfg.train.epochs, steps)
    optimizer = build_optimizer(net, cfg.train, lrs, loss_scale)
    kwargs = {}
    if amp != "O0":
        kwargs["loss_scale_manager"] = FixedLossScaleManager(loss_scale, drop_overflow_update=False)
    model = Model(net, loss_fn=loss_fn, optimizer=optimizer, amp_level=amp, **kwargs)

    if resume:
        state = load_resume_state(resume, model.train_network)
        best = state["best"] or None
        logger.info(f"resumed from epoch {start_epoch} (global step {int(optimizer.global_step.asnumpy()[0])})")

    history: List[Dict] = []
    metrics_path = os.path.join(run_dir, RUN_FILES["metrics"])
    if resume and os.path.isfile(metrics_path):
        with open(metrics_path, encoding="utf-8") as handle:
            history = [r for r in json.load(handle).get("epochs", []) if r["epoch"] <= start_epoch]

    evaluate_fn = None
    if main and val_videos:
        eval_net = ProbNet(net)
        eval_videos, _ = truncate_videos(val_videos, cfg.data.val_max_frames)

        def run_validation() -> Dict:
            net.set_train(False)
            try:
                predictions = predict_videos(eval_net, eval_videos, cfg.data)
            finally:
                net.set_train(True)
            result = evaluate_probs(eval_videos, predictions, cfg.eval.prob_k, cfg.eval.label_k, cfg.eval.threshold)
            result.pop("full_probs")
            return result

        evaluate_fn = run_validation

    model_config = dataclasses.asdict(cfg.model)
    ckpt_dir = os.path.join(run_dir, RUN_FILES["ckpt_dir"])

    def save_fn(kind: str, epoch: int) -> str:
        path = os.path.join(ckpt_dir, f"epoch_{epoch:03d}.ckpt")
        if kind == "path":
            return path
        if kind == "epoch":
            save_checkpoint_atomic(net, path, model_config=model_config, extra={"epoch_num": epoch})
        elif kind == "best":
            path = os.path.join(run_dir, RUN_FILES["best"])
            save_checkpoint_atomic(net, path, model_config=model_config, extra={"epoch_num": epoch})
        elif kind == "resume":
            path = os.path.join(run_dir, RUN_FILES["resume"])
            extra = {"epoch_num": epoch, "best": json.dumps(validator.best)}
            save_checkpoint_atomic(model.train_network, path, model_config=model_config, extra=extra)
        return path

    images_per_step = cfg.data.batch_size * world_size
    progress = ProgressLogger(logger, lrs, steps, images_per_step, start_step=start_epoch * steps)
    validator = EpochValidator(
        logger,
        progress,
        evaluate_fn,
        save_fn if main else None,
        metrics_path if main else None,
        history,
        lrs,
        steps,
        keep_last=max(1, cfg.train.keep_last),
        best=best,
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
        kept = validator.last_good or _latest_epoch_checkpoint(ckpt_dir) or "none (no epoch finished)"
        raise TrainingDiverged(
            f"training stopped: loss is {d['loss']} at epoch {d['epoch']} step {d['step']} "
            f"(lower train.lr or use amp_level O0); last good checkpoint: {kept}"
        )
    if main:
        logger.info(
            f"done in {time.time() - t0:.1f} s; best epoch {validator.best['epoch']} "
            f"mean F1 {100 * validator.best['mean_f1']:.2f}"
        )
    else:
        logger.info(f"done in {time.time() - t0:.1f} s (rank 0 validates and writes the run directory)")
    for handler in list(logger.handlers):
        handler.flush()
    return {
        "run_dir": run_dir,
        "rank": rank,
        "best": validator.best,
        "epochs": history,
        "best_ckpt": os.path.join(run_dir, RUN_FILES["best"]),
        "config": config_to_dict(cfg),
    }
