"""Training callbacks for `mindspore.train.Model`: progress, compile time and NaN guard, per-epoch validation +
checkpoints, step checkpoints (train.save_every_steps), each rank's shard, skipped-image counts."""

import json
import logging
import math
import sys
import time
from typing import Callable, Dict, List, Optional

import numpy as np
from mindspore.train import Callback

from mindface_au.data.pipeline import skipped_images
from mindface_au.engine.evaluator import format_intensity_dict
from mindface_au.engine.run_dir import RunDirectory
from mindface_au.metrics import INTENSITY_METRICS, format_f1
from mindface_au.utils.guard import reclaim_signal_handlers

__all__ = [
    "ProgressLogger",
    "EpochValidator",
    "describe_best",
    "StepCheckpoint",
    "ShardLogger",
    "SkippedImagesCallback",
]


def _loss_value(outputs) -> float:
    """The loss from a train step's outputs (a tensor, or (loss, overflow, scale) with loss scaling)."""
    if isinstance(outputs, (tuple, list)):
        outputs = outputs[0]
    return float(np.asarray(outputs.asnumpy() if hasattr(outputs, "asnumpy") else outputs).reshape(-1)[0])


class ProgressLogger(Callback):
    """Loss, lr and images/s: a tqdm bar on a terminal, else a log line every `log_every` steps.

    Also the NaN/Inf guard: a non-finite loss records where it happened and stops training at once, and the graph
    compile time: the first step's wall time (step begin to step end, data loading excluded) minus the median of
    the other steps of that epoch, logged after the first epoch. Steps are counted from MindSpore's step counter,
    so with sink mode (one step callback per sink) the global step stays right. `start_step` and `epoch_losses`
    continue a run resumed at that global step.
    """

    def __init__(
        self,
        logger: logging.Logger,
        lrs: List[float],
        steps_per_epoch: int,
        images_per_step: int,
        log_every: int = 0,
        bar: Optional[bool] = None,
        start_step: int = 0,
        epoch_losses: Optional[List[float]] = None,
    ) -> None:
        super().__init__()
        self.logger = logger
        self.lrs = lrs
        self.steps_per_epoch = steps_per_epoch
        self.images_per_step = images_per_step
        self.log_every = log_every or max(1, steps_per_epoch // 5)
        self.bar = sys.stderr.isatty() if bar is None else bar
        self.diverged: Optional[Dict] = None
        self.epoch_losses: List[float] = []
        self._resumed_losses = list(epoch_losses or [])
        self._pbar = None
        self.global_step = start_step
        self._seen = None
        self.step_times: List[float] = []
        self.first_step_s: Optional[float] = None
        self.compile_s: Optional[float] = None

    def on_train_begin(self, run_context) -> None:
        self._seen = getattr(run_context.original_args(), "cur_step_num", None)

    def on_train_epoch_begin(self, run_context) -> None:
        self.epoch_losses, self._resumed_losses = self._resumed_losses, []
        self._epoch_steps = 0  # steps run in this epoch by this process (a resumed epoch's earlier ones excluded)
        self._t0 = time.time()
        if self.bar:
            from tqdm import tqdm

            epoch = run_context.original_args().cur_epoch_num
            self._pbar = tqdm(total=self.steps_per_epoch, desc=f"epoch {epoch}", leave=False, file=sys.stderr)

    def on_train_step_begin(self, run_context) -> None:
        self._step_t0 = time.perf_counter()

    def on_train_step_end(self, run_context) -> None:
        reclaim_signal_handlers()  # MindSpore re-arms its own SIGINT handler at every graph run (utils/guard.py)
        params = run_context.original_args()
        elapsed = time.perf_counter() - getattr(self, "_step_t0", time.perf_counter())
        if self.first_step_s is None:
            self.first_step_s = elapsed
            self.logger.info(f"first step {elapsed:.2f} s (graph compile + one step)")
        else:
            self.step_times.append(elapsed)
        loss = _loss_value(params.net_outputs)
        seen = getattr(params, "cur_step_num", None)
        done = max(1, seen - self._seen) if None not in (seen, self._seen) else 1  # a sink reports many at once
        self.global_step += done
        self._seen = seen
        step = self.global_step  # 1-based over the whole run, resumed runs included
        epoch = params.cur_epoch_num
        in_epoch = step - (epoch - 1) * self.steps_per_epoch
        if not math.isfinite(loss):
            self.diverged = {"epoch": epoch, "step": in_epoch, "loss": loss}
            self.logger.error(f"epoch {epoch} step {in_epoch}: loss is {loss}; stopping the run")
            run_context.request_stop()
            return
        self.epoch_losses.append(loss)
        self._epoch_steps += done
        lr = self.lrs[min(step - 1, len(self.lrs) - 1)]
        speed = self.images_per_step * self._epoch_steps / max(time.time() - self._t0, 1e-9)
        if self._pbar is not None:
            self._pbar.update(1)
            self._pbar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", img_s=f"{speed:.1f}")
        elif in_epoch % self.log_every == 0 or in_epoch == self.steps_per_epoch:
            self.logger.info(
                f"epoch {epoch} step {in_epoch}/{self.steps_per_epoch} loss {loss:.4f} lr {lr:.2e} {speed:.1f} img/s"
            )

    def on_train_epoch_end(self, run_context) -> None:
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
        if self.compile_s is None and self.first_step_s is not None and self.step_times:
            median = float(np.median(self.step_times))
            self.compile_s = max(0.0, self.first_step_s - median)
            self.logger.info(
                f"graph compile {self.compile_s:.2f} s (first step {self.first_step_s:.2f} s minus the median step "
                f"{median:.3f} s)"
            )

    def epoch_summary(self) -> Dict:
        elapsed = max(time.time() - self._t0, 1e-9)
        return {
            "loss": float(np.mean(self.epoch_losses)) if self.epoch_losses else float("nan"),
            "images_per_s": self.images_per_step * self._epoch_steps / elapsed,
            "train_time_s": elapsed,
        }


# train.best_metric -> the validation record's score that picks best.ckpt, and its key in `best`
BEST_KEYS = {"f1": ("val_mean_f1", "mean_f1"), "icc": ("val_mean_icc", "mean_icc")}

LAST_EPOCH = "the last epoch (no validation: train.val_interval 0)"  # `best["metric"]` of a run without validation


def describe_best(best: Dict) -> str:
    """The best epoch as the end of a run reports it: epoch, score and the metric that picked it (e.g. "best epoch 3:
    val mean F1 70.21 (raw, over all 3000 validation frames)"), or that no epoch was picked."""
    if not best.get("epoch"):
        return "no best epoch (no epoch finished with a score)"
    f1 = best.get("mean_f1")
    score = "n/a" if f1 is None else f"{100 * f1:.2f}"
    metric = best.get("metric")
    if metric == LAST_EPOCH:
        return f"best epoch {best['epoch']}: the last epoch (no validation)"
    if "mean_icc" in best:  # picked by train.best_metric icc
        icc = "n/a" if best["mean_icc"] is None else f"{best['mean_icc']:.3f}"
        return f"best epoch {best['epoch']}: val mean ICC {icc}, mean F1 {score}" + (f" ({metric})" if metric else "")
    return f"best epoch {best['epoch']}: val mean F1 {score}" + (f" ({metric})" if metric else "")


def _intensity_text(intensity: Dict) -> str:
    """ "val mean ICC 0.512, PCC 0.601, MAE 0.310" (n/a: no AU has a value; "over n of K AUs" when fewer)."""
    total = len(intensity["au_names"])
    parts = []
    for metric, title in (("icc", "ICC"), ("pcc", "PCC"), ("mae", "MAE")):
        mean, aus = intensity[f"mean_{metric}"], intensity["mean_aus"][metric]
        text = "n/a" if mean is None else f"{mean:.3f}" + (f" over {aus} of {total} AUs" if aus < total else "")
        parts.append(f"{title} {text}")
    return "val mean " + ", ".join(parts)


def _mean_text(mean: Optional[float], aus: Optional[int], total: int) -> str:
    if mean is None:
        return "n/a"
    return f"{100 * mean:.2f}" + (f" over {aus} of {total} AUs" if aus is not None and aus < total else "")


class EpochValidator(Callback):
    """After each epoch: validation F1 (every rank scores its shard), metrics.json, last-N and best-F1 checkpoints,
    resume state.

    `val_interval` N validates after every N-th epoch and after `last_epoch`; the best checkpoint is the validated
    epoch with the highest raw validation mean F1 (over the AUs with coded frames; an epoch without validation, or
    whose validation scored no AU, never replaces it), or with `best_metric` "icc" (train.best_metric) the highest
    validation mean ICC(3,1) of the intensity head (over the AUs that have one). A network with the intensity head
    also logs and records the validation ICC, PCC and MAE per AU and their means ("val_intensity", "val_mean_icc",
    "val_mean_pcc", "val_mean_mae"; None where there is no value). Without `evaluate_fn` (a run without validation,
    train.val_interval 0) the last epoch is the best checkpoint, as said once at the first epoch.

    `evaluate_fn()` returns the `scores_from_counts` dict with "frames" and "subset" (engine/validation.py; on
    every rank in a data-parallel run, which sums the counts); `run_dir` writes the files (nothing on ranks other
    than 0); `net` is saved as the epoch and best checkpoints, `train_network` (network + optimiser) as the resume
    state. Nothing is written for an epoch in which the loss went non-finite, so the last good checkpoint stays.
    Each record says which frames its validation covered ("val_subset") and `best` which metric picked it
    ("metric").
    """

    def __init__(
        self,
        logger: logging.Logger,
        progress: ProgressLogger,
        evaluate_fn: Optional[Callable[[], Dict]],
        run_dir: RunDirectory,
        net,
        train_network,
        history: List[Dict],
        lrs: List[float],
        steps_per_epoch: int,
        best: Optional[Dict] = None,
        val_interval: int = 1,
        last_epoch: int = 0,
        best_metric: str = "f1",
    ) -> None:
        super().__init__()
        if best_metric not in BEST_KEYS:
            raise ValueError(f"best_metric must be one of {', '.join(BEST_KEYS)}, got {best_metric!r}")
        self.best_metric = best_metric
        self.logger = logger
        self.progress = progress
        self.evaluate_fn = evaluate_fn
        self.run_dir = run_dir
        self.net = net
        self.train_network = train_network
        self.history = history
        self.lrs = lrs
        self.steps_per_epoch = steps_per_epoch
        self.best = dict(best or {"epoch": 0, "mean_f1": None})
        self.last_good: Optional[str] = None
        self.val_interval, self.last_epoch = max(1, int(val_interval)), int(last_epoch)
        self._said_no_validation = False

    def validates(self, epoch: int) -> bool:
        """Whether epoch `epoch` (1-based) is validated: every `val_interval`-th epoch and the last one."""
        return self.evaluate_fn is not None and (epoch % self.val_interval == 0 or epoch == self.last_epoch)

    def _improves(self, score: Optional[float]) -> bool:
        if score is None:
            return False
        best = self.best.get(BEST_KEYS[self.best_metric][1])
        return not self.best.get("epoch") or best is None or score > best

    def on_train_epoch_end(self, run_context) -> None:
        if self.progress.diverged is not None:
            return
        params = run_context.original_args()
        epoch = params.cur_epoch_num
        record = {
            "epoch": epoch,
            "lr": self.lrs[min(epoch * self.steps_per_epoch, len(self.lrs)) - 1],
            "steps": self.steps_per_epoch,
        }
        record.update(self.progress.epoch_summary())
        if self.validates(epoch):
            t0 = time.time()
            result = self.evaluate_fn()
            record.update(
                val_mean_f1=result["mean_f1"],
                val_per_au=result["per_au"],
                val_mean_f1_smoothed=result["mean_f1_smoothed"],
                val_time_s=time.time() - t0,
            )
            for key in ("frames", "subset", "mean_aus", "coded_frames"):
                if key in result:
                    record[f"val_{key}"] = result[key]
            table = format_f1(list(result["per_au"].values()), list(result["per_au"]), label="val")
            if "intensity" in result:
                intensity = result["intensity"]
                record.update({f"val_mean_{m}": intensity[f"mean_{m}"] for m in INTENSITY_METRICS})
                record["val_intensity"] = intensity
                table += "\n" + format_intensity_dict(intensity, label="val intensity")
            self.logger.info(f"epoch {epoch} validation ({result.get('subset', 'validation frames')})\n" + table)
        if "val_mean_f1" in record:
            total = len(record["val_per_au"])
            aus = record.get("val_mean_aus")
            val_text = (
                f", val mean F1 {_mean_text(record['val_mean_f1'], aus, total)} (smoothed "
                f"{_mean_text(record['val_mean_f1_smoothed'], aus, total)})"
                + (f", {_intensity_text(record['val_intensity'])}" if "val_intensity" in record else "")
                + (f" over {record['val_subset']}" if "val_subset" in record else "")
            )
        elif self.evaluate_fn is not None:
            val_text = f", not validated (train.val_interval {self.val_interval})"
        else:
            val_text = ""
        self.logger.info(f"epoch {epoch}: loss {record['loss']:.4f}, {record['images_per_s']:.1f} img/s{val_text}")
        if self.evaluate_fn is None and not self._said_no_validation:
            self.logger.info("no validation (train.val_interval 0): best.ckpt is the last epoch")
            self._said_no_validation = True
        self.history.append(record)
        if not self.run_dir.writes:
            return
        run = self.run_dir
        f1 = record.get("val_mean_f1")
        self.last_good = run.save_checkpoint(
            self.net, "epoch", epoch, val_mean_f1=f1, val_subset=record.get("val_subset")
        )
        if self.evaluate_fn is None:  # no validation: every epoch replaces the best, the last one stays
            self.best = {"epoch": epoch, "mean_f1": None, "metric": LAST_EPOCH}
            run.save_checkpoint(self.net, "best", epoch)
        elif "val_mean_f1" in record and self._improves(record.get(BEST_KEYS[self.best_metric][0])):
            # epochs left out by val_interval never become best
            if self.best_metric == "icc":
                icc = record["val_mean_icc"]
                metric = "val_mean_icc, ICC(3,1) of the intensity head"
                self.best = {"epoch": epoch, "mean_f1": f1, "mean_icc": icc}
                said = f"val mean ICC {icc:.3f}"
            else:
                metric = "raw val_mean_f1, prob k 0 label k 0"
                self.best = {"epoch": epoch, "mean_f1": f1}
                said = f"val mean F1 {100 * f1:.2f}"
            if "val_subset" in record:
                metric += f", over {record['val_subset']}"
            self.best["metric"] = metric
            run.save_checkpoint(
                self.net, "best", epoch, val_mean_f1=f1, val_subset=record.get("val_subset"),
                val_mean_icc=record.get("val_mean_icc"),
            )  # fmt: skip
            self.logger.info(f"epoch {epoch}: new best checkpoint ({said}, {metric})")
        run.prune(epoch)
        run.write_metrics(self.history, self.best)
        # last: a resumed run re-reads metrics.json up to this epoch
        run.save_checkpoint(self.train_network, "resume", epoch, extra={"best": json.dumps(self.best)})


class StepCheckpoint(Callback):
    """train.save_every_steps: every `every` global steps rank 0 rewrites checkpoints/resume.ckpt (network +
    optimiser, with the epochs done, the best so far and this epoch's losses), except at an epoch end, where
    EpochValidator writes it after validation. `--resume` then continues the interrupted epoch at the next step.
    """

    def __init__(self, logger, progress: ProgressLogger, validator: "EpochValidator", every: int) -> None:
        super().__init__()
        self.logger, self.progress, self.validator, self.every = logger, progress, validator, int(every)

    def on_train_step_end(self, run_context) -> None:
        step, per_epoch = self.progress.global_step, self.progress.steps_per_epoch
        if self.progress.diverged is not None or step % self.every or step % per_epoch == 0:
            return
        epochs_done = step // per_epoch
        path = self.validator.run_dir.save_checkpoint(
            self.validator.train_network,
            "resume",
            epochs_done,
            extra={"best": json.dumps(self.validator.best), "epoch_losses": json.dumps(self.progress.epoch_losses)},
        )
        if path:
            self.logger.info(f"step {step} (epoch {epochs_done + 1} step {step - epochs_done * per_epoch}): {path}")


class ShardLogger(Callback):
    """Each rank logs, per epoch, how many frames its shard holds and a digest of their indices (the data-parallel
    test recomputes the shards from the sampler and checks they are disjoint)."""

    def __init__(self, logger, sampler, rank: int) -> None:
        super().__init__()
        self.logger, self.sampler, self.rank = logger, sampler, rank

    def on_train_epoch_begin(self, run_context) -> None:
        import hashlib

        epoch = run_context.original_args().cur_epoch_num
        indices = np.asarray(self.sampler.indices(epoch - 1), np.int64)
        digest = hashlib.sha256(indices.tobytes()).hexdigest()[:16]
        self.logger.info(f"epoch {epoch}: rank {self.rank} shard {len(indices)} frames, indices sha256 {digest}")


class SkippedImagesCallback(Callback):
    """Prints how many unreadable images the training dataset skipped during each epoch (paths are in warnings)."""

    def __init__(self, dataset) -> None:
        super().__init__()
        self.dataset = dataset
        self._last = 0

    def on_train_epoch_end(self, run_context) -> None:
        total = skipped_images(self.dataset)
        if total > self._last:
            epoch = run_context.original_args().cur_epoch_num
            print(
                f"epoch {epoch}: {total - self._last} unreadable images skipped (see warnings for paths)",
                file=sys.stderr,
                flush=True,
            )
        self._last = total
