"""Training: config -> datasets -> AUNet -> `mindspore.train.Model` with callbacks -> run directory.

The function reads as the list of steps: the device settings (engine/runtime.py: sink mode, jit level, AMP and
loss scaling), the run directory (engine/run_dir.py, its layout and writers), the datasets, the network (BatchNorm
per device, synchronised or frozen: engine/distributed.py) and loss, `create_scheduler` / `create_optimizer`
(engine/optim.py, the lr schedule), the callbacks (engine/callbacks.py) with per-epoch validation
(engine/validation.py), then `Model.train` (twice when resuming mid-epoch: the rest of that epoch, then the others).

With model.intensity the network also has the intensity head and both heads train together on the occurrence +
intensity loss; train.init_checkpoint starts from a model file's weights (an occurrence model's into a network
with the head: every weight but the head's) and train.intensity_only trains the head alone, every other parameter
and BatchNorm statistic frozen, so the occurrence outputs stay those of that file.
"""

import dataclasses
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mindface_au.config import Config, config_to_dict, load_config
from mindface_au.engine.run_dir import RUN_FILES, RunDirectory
from mindface_au.errors import UserError, param, render

__all__ = ["train", "TrainingDiverged", "RUN_FILES", "load_init_checkpoint", "freeze_all_but_intensity_head"]

INTENSITY_HEAD = "intensity_head."  # parameter-name prefix of AUNet's intensity head (models/intensity.py)
# model keys an init_checkpoint may differ in: the intensity head (its weights are left out or kept as built) and
# where the backbone first came from
_INIT_FREE_KEYS = ("intensity", "intensity_au_names", "backbone_checkpoint")


class TrainingDiverged(UserError):
    """The loss became NaN or Inf; the run stopped and kept its last good checkpoint."""


# Loggers whose INFO lines the train log shows: the trainer's own, and the checkpoint loader's (which backbone
# checkpoint layout `model.backbone_checkpoint` was recognised as).
TRAIN_LOGGERS = ("mindface_au.train", "mindface_au.models.checkpoint")


# The paper's Table 3 (official Aff-Wild2 validation, mean F1 %): row 2 trains IResNet100 from scratch, row 3 starts
# it from Glint360K; what a missing backbone file costs when trained without it.
TABLE3_SCRATCH_F1, TABLE3_GLINT360K_F1 = 51.78, 53.06


def check_backbone_checkpoint(model_cfg) -> None:
    """A model.backbone_checkpoint that does not exist is a one-line error naming both ways forward: convert
    insightface's Glint360K weights to that path, or train the backbone from scratch (and what Table 3 says that
    costs)."""
    path = model_cfg.backbone_checkpoint
    if not path or os.path.isfile(path):
        return
    arch = model_cfg.name[len("aunet_") :] if model_cfg.name.startswith("aunet_") else model_cfg.name
    cost = TABLE3_GLINT360K_F1 - TABLE3_SCRATCH_F1
    raise UserError(
        f"{path}: model.backbone_checkpoint not found; it is the face-recognition backbone the recipe starts from, "
        f"insightface's Glint360K {arch} (arcface_torch model zoo). Either download it and convert it to that path: "
        f"`mindface-au convert --src glint360k_{arch.replace('iresnet', 'r')}.pth --arch {arch} --out {path}` "
        "(docs/conversion.md), or train the backbone from scratch with "
        f"{param('overrides')} model.backbone_checkpoint= "
        f"(the paper's Table 3: {TABLE3_SCRATCH_F1:.2f} instead of {TABLE3_GLINT360K_F1:.2f} mean F1 on "
        f"Aff-Wild2's official validation, {cost:.2f} points less)"
    )


def _architecture(model_cfg) -> Dict:
    return {k: v for k, v in dataclasses.asdict(model_cfg).items() if k not in _INIT_FREE_KEYS}


def _describe_architecture(model_cfg) -> str:
    head = f"intensity head on {', '.join(model_cfg.intensity_au_names)}" if model_cfg.intensity else "no head"
    return f"{model_cfg.name} on {', '.join(model_cfg.au_names)}, {head}"


def load_init_checkpoint(net, model_cfg, path: str) -> str:
    """Load the weights of model file `path` (train.init_checkpoint, a .ckpt) into `net`, built from `model_cfg`;
    returns a line saying what was loaded.

    The file's architecture (its embedded model config) must equal `model_cfg` but for the intensity head: a file
    without the head loads into a network with it (every weight but the head's loads, strictly; the head keeps its
    initial weights), a file with the head into a network without it (the head's weights are left out). A file whose
    head covers other AUs, or any other difference, is refused with one line naming both."""
    from mindface_au.modelfile.reader import read_model_file
    from mindface_au.models.checkpoint import load_params_strict

    if not os.path.isfile(path):
        raise UserError(
            f"{path}: train.init_checkpoint not found; expected a .ckpt model file (e.g. a run's best.ckpt)"
        )
    # a file without an embedded model config (none is written so today) is taken as this network without the head
    mf = read_model_file(path, dataclasses.replace(model_cfg, intensity=False, intensity_au_names=[]))
    if mf.kind != "ckpt":
        raise UserError(f"{path}: train.init_checkpoint needs a .ckpt model file; an exported {mf.kind} has no weights")
    theirs, ours = mf.model_config, model_cfg
    differ = [k for k, v in _architecture(ours).items() if _architecture(theirs).get(k) != v]
    if theirs.intensity and ours.intensity and list(theirs.intensity_au_names) != list(ours.intensity_au_names):
        differ.append("intensity_au_names")
    if differ:
        key = differ[0]
        raise UserError(
            f"{path}: train.init_checkpoint is {_describe_architecture(theirs)}; the config builds "
            f"{_describe_architecture(ours)}: the architectures differ (model.{key} {getattr(theirs, key)!r} in the "
            f"file, {getattr(ours, key)!r} in the config)"
        )
    params = dict(mf.params)
    mf.params = None  # released once loaded
    note = "every weight"
    if theirs.intensity and not ours.intensity:
        params = {k: v for k, v in params.items() if not k.startswith(INTENSITY_HEAD)}
        note = "every weight but its intensity head's (the config has none)"
    elif ours.intensity and not theirs.intensity:
        for name, param in net.parameters_and_names():
            if name.startswith(INTENSITY_HEAD):
                params[name] = param  # kept as built: the file has no head
        note = "every weight but the intensity head's (the file has none; the head starts as built)"
    load_params_strict(net, params, path)
    return f"train.init_checkpoint {path}: loaded {note}"


def freeze_all_but_intensity_head(net) -> Tuple[int, int]:
    """train.intensity_only: every parameter outside `net.intensity_head` stops training (requires_grad off, so the
    optimiser never sees it) and every BatchNorm normalises with, and keeps, its running statistics: the
    occurrence outputs stay exactly those of the weights loaded. Returns (trainable parameters left, BatchNorms
    frozen)."""
    from mindface_au.engine.distributed import freeze_batchnorm

    if getattr(net, "intensity_head", None) is None:
        raise UserError("train.intensity_only: the network has no intensity head; set model.intensity true")
    for name, weight in net.parameters_and_names():
        weight.requires_grad = name.startswith(INTENSITY_HEAD)
    return len(net.trainable_params()), freeze_batchnorm(net)


def settings_warnings(cfg: Config) -> List[str]:
    """Settings of the config that do nothing in this run (said once at the start): lr milestones past the last
    epoch, a warm-up as long as the run."""
    out = []
    late = [m for m in cfg.train.milestones if m > cfg.train.epochs]
    if late:
        out.append(
            f"train.milestones {', '.join(map(str, late))} come after the last epoch (train.epochs "
            f"{cfg.train.epochs}): the learning rate never drops there; lower them "
            f"with {param('overrides')} train.milestones=[...]"
        )
    if cfg.train.warmup_epochs >= cfg.train.epochs:
        out.append(
            f"train.warmup_epochs {cfg.train.warmup_epochs:g} is not shorter than train.epochs {cfg.train.epochs}: "
            "the learning rate never reaches train.lr"
        )
    return out


def _make_logger(log_path: Optional[str], rank: int) -> logging.Logger:
    """The run's logger (stderr, and train.log on rank 0); the other TRAIN_LOGGERS write to the same handlers.

    Progress and logs go to stderr and the log file; stdout holds the command's result (docs/training.md)."""
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter(f"[rank {rank}] %(message)s" if rank else "%(message)s"))
    handlers = [stream]
    if log_path:
        handler = logging.FileHandler(log_path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handlers.append(handler)
    for name in TRAIN_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        for old in [h for h in logger.handlers if getattr(h, "_mindface_train", False)]:
            logger.removeHandler(old)
            old.close()
        for handler in handlers:
            handler._mindface_train = True  # noqa: SLF001 - our own marker on a logging handler we attach
            logger.addHandler(handler)
    return logging.getLogger(TRAIN_LOGGERS[0])


@dataclass
class _Setup:
    """What the checks before a run produced: everything the run needs, built before its directory is written."""

    cfg: Config
    resume: Optional[str]
    run: RunDirectory
    runtime: object  # engine/runtime.py's Runtime
    rank: int
    world_size: int
    train_videos: list
    val_videos: list
    validating: bool
    net: object = None
    loss_fn: object = None
    notes: List[str] = field(default_factory=list)  # logged once the log exists
    state: object = None  # the ResumeState of resume.ckpt (None: a new run)
    start_epoch: int = 0
    dataset: object = None
    steps: int = 0
    skip: int = 0  # steps of the interrupted epoch already trained (a step checkpoint)
    phases: List[Tuple] = field(default_factory=list)  # (last epoch, dataset, first epoch) per Model.train call


def _resumed_config(resume: str, overrides: List[str]) -> Config:
    """The saved config of the run in `resume` with `overrides` applied; its out_dir is that run."""
    saved = RunDirectory(resume).config_path
    if not os.path.isfile(saved):
        raise UserError(f"{param('resume')} {resume}: not a run directory (no {RUN_FILES['config']})")
    cfg = load_config(saved, overrides)
    cfg.train.out_dir = resume
    return cfg


def _check_run(cfg: Config, resume: Optional[str], distributed: bool, device: Optional[str], overwrite: bool) -> _Setup:
    """Every check that can fail before training, in order, without touching the run directory (so a failed
    command can be run again as it is); builds the network and the datasets on the way."""
    from mindface_au.engine.distributed import check_resume_workers, init_distributed
    from mindface_au.engine.evaluator import split_videos
    from mindface_au.engine.runtime import resolve_runtime
    from mindface_au.engine.validation import check_validation_part
    from mindface_au.model_card import make_card
    from mindface_au.utils.device import init_context

    # First those that need no device: the files the config names and the data.
    check_backbone_checkpoint(cfg.model)
    train_videos, val_videos = split_videos(cfg)  # with intensity labels for a model with the head
    validating = check_validation_part(val_videos, cfg)  # an empty validation part stops here (engine/validation.py)
    target = init_context(device or cfg.train.device)
    rank, world_size = init_distributed() if distributed else (0, 1)
    runtime = resolve_runtime(cfg.train, target, world_size, cfg.data.batch_size)
    run = RunDirectory(cfg.train.out_dir, rank, dataclasses.asdict(cfg.model), cfg.train.keep_last)
    run.card = make_card(cfg)  # what the model was trained on, in every checkpoint (model_card.py)
    setup = _Setup(cfg, resume, run, runtime, rank, world_size, train_videos, val_videos, validating)

    # Then the run directory's state, the resume state, the network (loading its backbone checkpoint) and the batch
    # size against the frames of an epoch.
    run.check_target(resume=bool(resume), overwrite=overwrite)
    # resume.ckpt is read once: the epoch decides the dataset, the state is loaded into the train network once it
    # exists. Every rank reads it (a shared run directory on several machines).
    setup.state = run.read_resume_state() if resume else None
    setup.start_epoch = setup.state.epoch if setup.state else 0
    if setup.state and setup.start_epoch >= cfg.train.epochs:
        raise UserError(f"{param('resume')} {resume}: already trained {setup.start_epoch} of {cfg.train.epochs} epochs")
    if resume:
        check_resume_workers(run.root, world_size)  # the worker count the run last ran with
    _build_network(setup)
    _plan_phases(setup)
    return setup


def _build_network(setup: _Setup) -> None:
    """Seed everything, then build the network (BatchNorm per device, synchronised or frozen; the PReLU form) and
    the loss; what was chosen goes to `setup.notes`."""
    import mindspore as ms
    from mindspore import dataset as ds

    from mindface_au.engine.distributed import freeze_batchnorm, sync_batchnorm
    from mindface_au.engine.runtime import apply_jit_level, describe_memory
    from mindface_au.losses import create_loss
    from mindface_au.models import create_model_from_config
    from mindface_au.models.iresnet import set_prelu_form

    cfg, runtime, world_size = setup.cfg, setup.runtime, setup.world_size
    # One seed for MindSpore, numpy and the data pipeline, set before any Cell is built: every rank initialises
    # the same parameters (the run logs their digest below on every rank).
    seed = cfg.train.seed
    ms.set_seed(seed)
    np.random.seed(seed)
    ds.config.set_seed(seed)

    net = create_model_from_config(cfg.model)
    notes = setup.notes
    if cfg.train.init_checkpoint:
        notes.append(load_init_checkpoint(net, cfg.model, cfg.train.init_checkpoint))
    apply_jit_level(runtime.jit_level, net)  # JitConfig on the network, before its first graph is compiled
    if cfg.train.intensity_only:
        trainable, frozen = freeze_all_but_intensity_head(net)
        notes.append(
            f"train.intensity_only: only the intensity head trains ({trainable} parameter tensors); every other weight "
            f"and BatchNorm ({frozen} layers, running statistics kept) is frozen"
        )
    elif cfg.train.sync_bn:
        notes.append(
            f"BatchNorm: synchronised over {world_size} devices (nn.SyncBatchNorm, {sync_batchnorm(net)} layers)"
        )
    elif cfg.train.freeze_bn:
        notes.append(f"BatchNorm: frozen ({freeze_batchnorm(net)} layers use and keep their running statistics)")
    else:
        notes.append(f"BatchNorm: per device (statistics of each rank's batch of {cfg.data.batch_size})")
    if cfg.train.prelu_form != "native":
        notes.append(f"PReLU: {cfg.train.prelu_form} form in {set_prelu_form(net, cfg.train.prelu_form)} layers")
    notes.append(describe_memory(net, cfg, runtime))  # activation estimate against the device memory, before compiling
    setup.net = net
    setup.loss_fn = create_loss(cfg.loss, cfg.model, intensity_only=cfg.train.intensity_only)


def _plan_phases(setup: _Setup) -> None:
    """The training datasets and the Model.train calls: one, or when resuming from a step checkpoint first the rest
    of the interrupted epoch on its own dataset, then the other epochs (a dataset yields the same count every
    epoch). Fails when an epoch has no full batch."""
    from mindface_au.data import create_train_dataset
    from mindface_au.models import face_input

    cfg, state, start_epoch = setup.cfg, setup.state, setup.start_epoch
    face = face_input(cfg.model)  # the model's mean/std normalise the images

    def make_dataset(first_epoch: int, skip_steps: int = 0):
        return create_train_dataset(
            setup.train_videos, cfg.data, seed=cfg.train.seed, start_epoch=first_epoch, rank=setup.rank,
            world_size=setup.world_size, max_steps=cfg.train.steps_per_epoch, skip_steps=skip_steps, face=face,
        )  # fmt: skip

    dataset = make_dataset(start_epoch)
    steps = dataset.get_dataset_size()
    if steps <= 0:
        raise UserError(
            f"{cfg.data.root}: the training split gives no full batch of {cfg.data.batch_size}; "
            "lower data.batch_size or raise data.sample_rate"
        )
    skip = state.step_in_epoch(steps) if state else 0
    phases = [(cfg.train.epochs, dataset, start_epoch)]
    if skip:
        if setup.runtime.sink_mode:
            raise UserError(
                f"{param('resume')} {setup.resume}: the state is a step "
                f"checkpoint (epoch {start_epoch + 1} step {skip}); "
                f"resume it with {param('overrides')} train.sink_mode=false"
            )
        phases = [(start_epoch + 1, make_dataset(start_epoch, skip), start_epoch)]
        if start_epoch + 1 < cfg.train.epochs:
            phases.append((cfg.train.epochs, make_dataset(start_epoch + 1), start_epoch + 1))
    setup.dataset, setup.steps, setup.skip, setup.phases = dataset, steps, skip, phases


def _open_run(setup: _Setup, overwrite: bool) -> logging.Logger:
    """Write the run directory (nothing failed before this) and its config, open the log and log what the run is."""
    cfg, run, runtime = setup.cfg, setup.run, setup.runtime
    stale = run.prepare(resume=bool(setup.resume), overwrite=overwrite)  # no finished run replaced, no stale temps
    run.save_config(cfg)
    logger = _make_logger(run.log_path if run.writes else None, setup.rank)
    logger.info(f"run {run.root}: rank {setup.rank}/{setup.world_size}, split {cfg.data.split}")
    if stale:
        logger.info(f"removed {len(stale)} file(s) of an earlier run or interrupted save: {', '.join(stale[:4])}")
    logger.info(runtime.describe())
    if cfg.train.sink_mode == "true" and not runtime.sink_mode:
        logger.info("train.sink_mode true: Model.train does not sink on CPU, so this run does not")
    for note in setup.notes:
        logger.info(note)
    for warning in settings_warnings(cfg):
        logger.warning(render(f"warning: {warning}"))
    counts = setup.dataset.epoch_sampler.accounting(cfg.data.batch_size)
    logger.info(
        f"epoch sample {counts['sampled']} frames: {setup.world_size} ranks x {setup.steps} steps x "
        f"{cfg.data.batch_size} = {counts['trained']} trained, {counts['dropped']} dropped per epoch (equal split "
        f"across ranks, drop_remainder{', train.steps_per_epoch' if cfg.train.steps_per_epoch else ''})"
    )
    return logger


def _create_model(setup: _Setup):
    """(Model, lr list, optimizer): the schedule, the optimiser and the loss scaling of the runtime settings."""
    from mindspore.train import Model

    from mindface_au.engine.optim import create_optimizer, create_scheduler
    from mindface_au.engine.runtime import amp_rewrite_folder

    runtime = setup.runtime
    lrs = create_scheduler(setup.cfg.train, setup.steps)
    optimizer = create_optimizer(setup.net, setup.cfg.train, lrs, runtime.optimizer_loss_scale)
    scale_manager = runtime.loss_scale_manager()
    kwargs = {"loss_scale_manager": scale_manager} if scale_manager is not None else {}
    with amp_rewrite_folder(runtime.amp_level):  # O1 writes generated modules: not into the user's folder
        model = Model(setup.net, loss_fn=setup.loss_fn, optimizer=optimizer, amp_level=runtime.amp_level, **kwargs)
    return model, lrs, optimizer


def _restore(setup: _Setup, model, optimizer, logger: logging.Logger) -> Tuple[List[Dict], Optional[Dict], int, List]:
    """Load the resume state into the train network: (history, best, start global step, losses of the interrupted
    epoch so far); for a new run ([], None, 0, [])."""
    from mindface_au.engine.distributed import parameter_digest

    state, start_epoch, steps, skip = setup.state, setup.start_epoch, setup.steps, setup.skip
    history: List[Dict] = []
    best = None
    epoch_losses: List[float] = []
    start_step = start_epoch * steps
    if state:
        state.load_into(model.train_network)
        best = state.best or None
        history = setup.run.read_history(start_epoch)
        start_step, epoch_losses = start_epoch * steps + skip, state.epoch_losses if skip else []
        setup.state = None  # the parameters are in the network now; free the copy
        where = f"epoch {start_epoch}" + (f" + {skip} steps of epoch {start_epoch + 1}" if skip else "")
        logger.info(f"resumed from {where} (global step {int(optimizer.global_step.asnumpy()[0])})")
    logger.info(f"parameters sha256 {parameter_digest(setup.net)} at global step {start_step}")
    return history, best, start_step, epoch_losses


def _wire_callbacks(setup: _Setup, model, lrs, logger: logging.Logger, restored) -> Tuple:
    """(progress, validator, built-in callbacks): progress and loss logging, per-epoch validation and checkpoints,
    step checkpoints, the shard log. Every rank validates its shard of whole videos and the counts are summed over
    the ranks (engine/validation.py)."""
    from mindface_au.engine.callbacks import EpochValidator, ProgressLogger, ShardLogger, StepCheckpoint
    from mindface_au.engine.validation import create_validation

    cfg, net, steps, world_size = setup.cfg, setup.net, setup.steps, setup.world_size
    history, best, start_step, epoch_losses = restored
    evaluate_fn = (
        create_validation(net, setup.val_videos, cfg, logger, setup.rank, world_size) if setup.validating else None
    )
    progress = ProgressLogger(
        logger, lrs, steps, setup.runtime.global_batch, start_step=start_step, epoch_losses=epoch_losses
    )
    validator = EpochValidator(
        logger, progress, evaluate_fn, setup.run, net, model.train_network, history, lrs, steps, best=best,
        val_interval=cfg.train.val_interval, last_epoch=cfg.train.epochs, best_metric=cfg.train.best_metric,
    )  # fmt: skip
    logger.info(
        f"{len(setup.train_videos)} train videos, {len(setup.val_videos)} val videos, {steps} steps/epoch of "
        f"{cfg.data.batch_size} x {world_size}, epochs {setup.start_epoch + 1}..{cfg.train.epochs}"
    )
    built_in = [progress, validator, ShardLogger(logger, setup.dataset.epoch_sampler, setup.rank)]
    if cfg.train.save_every_steps:  # after progress (the step count), before anything user-supplied
        built_in.insert(1, StepCheckpoint(logger, progress, validator, cfg.train.save_every_steps))
    return progress, validator, built_in


def _run_phases(setup: _Setup, model, built_in: List, callbacks: Sequence, progress, validator) -> None:
    """Model.train once per phase; a diverged loss stops the run with TrainingDiverged naming the last good
    checkpoint."""
    from mindface_au.engine.callbacks import SkippedImagesCallback

    for last_epoch, data, first_epoch in setup.phases:
        model.train(
            last_epoch,
            data,
            callbacks=[*built_in, SkippedImagesCallback(data), *callbacks],
            dataset_sink_mode=setup.runtime.sink_mode,
            initial_epoch=first_epoch,
        )
        if progress.diverged is not None:
            break
    if progress.diverged is not None:
        d = progress.diverged
        kept = validator.last_good or setup.run.latest_epoch_checkpoint() or "none (no epoch finished)"
        raise TrainingDiverged(
            f"training stopped: loss is {d['loss']} at epoch {d['epoch']} step {d['step']} "
            f"(lower train.lr or use amp_level O0); last good checkpoint: {kept}"
        )


def train(
    cfg: Config,
    resume: Optional[str] = None,
    distributed: bool = False,
    device: Optional[str] = None,
    overrides: List[str] = (),
    callbacks: Sequence = (),
    overwrite: bool = False,
    on_start: Optional[Callable[[Config], None]] = None,
) -> Dict:
    """Train `cfg` (or continue the run in `resume` with its saved config plus `overrides`).

    `on_start(cfg)`: called once every check passed, before the run directory is written (the CLI echoes the
    resolved config there, so a command that fails a check prints its one-line error only).

    `callbacks`: extra mindspore Callbacks, run after the built-in ones (progress, checkpoints, validation).
    `overwrite`: replace the run in train.out_dir if there is one (else that is an error; see docs/errors.md).

    Returns {"run_dir", "rank", "best": {"epoch", "mean_f1"}, "epochs": [per-epoch records], "best_ckpt",
    "config"}.
    """
    from mindface_au.engine.callbacks import describe_best
    from mindface_au.engine.distributed import parameter_digest

    if resume:
        cfg = _resumed_config(resume, overrides)
    setup = _check_run(cfg, resume, distributed, device, overwrite)
    # Nothing failed: from here on the run directory is written.
    if on_start is not None:
        on_start(setup.cfg)
    logger = _open_run(setup, overwrite)
    model, lrs, optimizer = _create_model(setup)
    restored = _restore(setup, model, optimizer, logger)
    progress, validator, built_in = _wire_callbacks(setup, model, lrs, logger, restored)
    run, net = setup.run, setup.net
    t0 = time.time()
    _run_phases(setup, model, built_in, callbacks, progress, validator)
    if run.writes:
        logger.info(f"done in {time.time() - t0:.1f} s; {describe_best(validator.best)}")
    else:
        logger.info(f"done in {time.time() - t0:.1f} s (rank 0 writes the run directory)")
    logger.info(f"parameters sha256 {parameter_digest(net)} at global step {progress.global_step}")
    for handler in list(logger.handlers):
        handler.flush()
    return {
        "run_dir": run.root,
        "rank": setup.rank,
        "best": validator.best,
        "epochs": restored[0],
        "best_ckpt": run.best_path,
        "config": config_to_dict(setup.cfg),
        "global_step": progress.global_step,
        "params_sha256": parameter_digest(net),
        "compile_s": progress.compile_s,
    }
