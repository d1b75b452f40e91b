"""The run directory of one training run: where each file is, and the only code that writes them.

Layout (rank 0 writes it; other ranks get the same paths and write nothing)::

    config.yaml                  the resolved config
    train.log                    progress and per-epoch validation
    metrics.json                 per-epoch loss, lr, images/s, validation mean and per-AU F1; the best epoch
    checkpoints/epoch_NNN.ckpt   the last `keep_last` epochs (network only, ModelConfig embedded)
    checkpoints/best.ckpt        best validation mean F1
    checkpoints/resume.ckpt      network + optimiser state (moments, global step) for --resume, written after
                                 every epoch and, with train.save_every_steps N, every N global steps

Every file is written atomically (temporary file, then rename), so a killed run leaves whole files only.
"""

import errno
import json
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from mindface_au.errors import UserError, param

__all__ = ["RUN_FILES", "CHECKPOINT_KINDS", "RunDirectory", "ResumeState"]

RUN_FILES = {
    "config": "config.yaml",
    "log": "train.log",
    "metrics": "metrics.json",
    "ckpt_dir": "checkpoints",
    "best": "checkpoints/best.ckpt",
    "resume": "checkpoints/resume.ckpt",
}

# kind -> file name in checkpoints/ ("{epoch}" filled in); save_checkpoint writes one of these
CHECKPOINT_KINDS = {"epoch": "epoch_{epoch:03d}.ckpt", "best": "best.ckpt", "resume": "resume.ckpt"}
# hidden temporary files of an interrupted atomic save (utils/io.py: .NAME.XXXX.tmp.EXT) and MindSpore's own
# .tmp beside them (.NAME.XXXX.tmp.tmp)
STALE_PATTERNS = (".*.tmp.ckpt", ".*.tmp.tmp", ".*.tmp.json", ".*.tmp.yaml")
_EPOCH_FILE = re.compile(r"^epoch_(\d+)\.ckpt$")


def _scalar(value) -> float:
    """An `extra` number read back from a checkpoint (saved as a 0-d Parameter)."""
    return float(np.asarray(value.asnumpy() if hasattr(value, "asnumpy") else value).reshape(-1)[0])


@dataclass
class ResumeState:
    """What resume.ckpt holds: the epochs done, the best epoch so far, the train network's parameters, and for a
    step checkpoint (train.save_every_steps) the global step and the losses of the interrupted epoch so far."""

    path: str
    epoch: int
    best: Dict
    params: Dict = field(repr=False)
    global_step: Optional[int] = None  # the optimiser's step counter (None: not saved)
    epoch_losses: List[float] = field(default_factory=list)

    def step_in_epoch(self, steps_per_epoch: int) -> int:
        """Steps of the interrupted epoch already trained (0: the state is at an epoch end)."""
        if self.global_step is None:
            return 0
        done = self.global_step - self.epoch * steps_per_epoch
        if not 0 <= done < steps_per_epoch:
            raise UserError(
                f"{self.path}: global step {self.global_step} is not in epoch {self.epoch + 1} at "
                f"{steps_per_epoch} steps per epoch; keep data.batch_size, data.sample_rate and "
                "train.steps_per_epoch of the interrupted run"
            )
        return done

    def load_into(self, train_network) -> None:
        """Load network + optimiser state strictly; the lr list is not loaded (it is rebuilt from the config,
        which `--set train.epochs=...` may have extended)."""
        import mindspore as ms

        params = {k: v for k, v in self.params.items() if isinstance(v, ms.Parameter)}
        shapes = {p.name: tuple(p.shape) for p in train_network.get_parameters()}
        own = {name for name in shapes if not name.startswith("learning_rate")}
        missing = sorted(own - set(params))
        if missing:
            raise UserError(f"{self.path}: resume state does not fit the model (missing {', '.join(missing[:5])})")
        mismatched = [
            f"{n} {tuple(params[n].shape)} vs model {shapes[n]}"
            for n in sorted(own)
            if tuple(params[n].shape) != shapes[n]
        ]
        if mismatched:
            raise UserError(f"{self.path}: resume state does not fit the model ({'; '.join(mismatched[:3])})")
        from mindface_au.models.checkpoint import check_finite

        check_finite({k: params[k] for k in own}, self.path)
        not_loaded, _ = ms.load_param_into_net(train_network, {k: params[k] for k in own}, strict_load=True)
        not_loaded = [n for n in not_loaded if not n.startswith("learning_rate")]
        if not_loaded:
            raise UserError(f"{self.path}: parameters not loaded: {', '.join(not_loaded[:5])}")


class RunDirectory:
    """Paths and writers of a run directory. Only rank 0 writes (`writes`); on other ranks every save is a no-op.

    `model_config` (a ModelConfig as dict) is embedded in every checkpoint so that a checkpoint alone rebuilds its
    network; `keep_last` is how many epoch checkpoints `prune` keeps.
    """

    def __init__(self, root: str, rank: int = 0, model_config: Optional[dict] = None, keep_last: int = 2) -> None:
        self.root = str(root)
        self.rank = int(rank)
        self.model_config = model_config
        self.keep_last = max(1, int(keep_last))
        self.card: Optional[dict] = None  # the model card (model_card.py), set by the trainer

    @property
    def writes(self) -> bool:
        return self.rank == 0

    def path(self, key: str) -> str:
        """The path of a RUN_FILES entry ("config", "log", "metrics", "ckpt_dir", "best", "resume")."""
        return os.path.join(self.root, RUN_FILES[key])

    # the RUN_FILES entries as paths (read-only)
    config_path = property(lambda self: self.path("config"))
    log_path = property(lambda self: self.path("log"))
    metrics_path = property(lambda self: self.path("metrics"))
    ckpt_dir = property(lambda self: self.path("ckpt_dir"))
    best_path = property(lambda self: self.path("best"))
    resume_path = property(lambda self: self.path("resume"))

    def checkpoint_path(self, kind: str, epoch: int = 0) -> str:
        """checkpoints/epoch_NNN.ckpt, best.ckpt or resume.ckpt."""
        if kind not in CHECKPOINT_KINDS:
            raise ValueError(f"checkpoint kind {kind!r}: expected one of {', '.join(CHECKPOINT_KINDS)}")
        return os.path.join(self.ckpt_dir, CHECKPOINT_KINDS[kind].format(epoch=epoch))

    # ---- writing (rank 0 only) ----

    def check_target(self, resume: bool = False, overwrite: bool = False) -> None:
        """Refuse, writing nothing, what `prepare` would refuse: a file in place of the folder, another run there
        without `overwrite`. Called before the other checks, so a failed command leaves the folder as it was."""
        if not self.writes:
            return
        from mindface_au.utils.guard import check_new_output

        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise UserError(f"{self.root}: the run directory is an existing file; choose another path")
        found = [p for p in (self.config_path, self.metrics_path, self.log_path, self.ckpt_dir) if os.path.exists(p)]
        if found and not resume:
            check_new_output(self.root, overwrite, "run directory")  # raises unless overwrite

    def prepare(self, resume: bool = False, overwrite: bool = False) -> List[str]:
        """Make the run directory ready to write (before anything is written); the stale files removed.

        A folder holding another run is refused unless `overwrite` (then that run's files are removed, so none of
        its epoch checkpoints can become the "latest"); `resume` continues the run there. Either way the hidden
        temporary files an interrupted save left behind (ours, `.best.*.tmp.ckpt`, and MindSpore's `.tmp`) go.
        """
        if not self.writes:
            return []
        from mindface_au.utils.guard import remove_stale_temporaries, writing

        self.check_target(resume, overwrite)
        found = [p for p in (self.config_path, self.metrics_path, self.log_path, self.ckpt_dir) if os.path.exists(p)]
        removed: List[str] = []
        if found and not resume:
            with writing(self.root):
                for _, path in self.epoch_checkpoints():
                    os.remove(path)
                    removed.append(path)
                for path in (self.best_path, self.resume_path, self.metrics_path, self.log_path, self.config_path):
                    if os.path.isfile(path):
                        os.remove(path)
                        removed.append(path)
        with writing(self.root):
            os.makedirs(self.ckpt_dir, exist_ok=True)
            if not os.access(self.root, os.W_OK) or not os.access(self.ckpt_dir, os.W_OK):
                raise PermissionError(errno.EACCES, "permission denied", self.root)
            for folder in (self.root, self.ckpt_dir):
                removed += remove_stale_temporaries(folder, STALE_PATTERNS)
        return removed

    def save_config(self, cfg) -> None:
        """Create the directory and write the resolved config."""
        if not self.writes:
            return
        from mindface_au.config import save_config

        os.makedirs(self.ckpt_dir, exist_ok=True)
        save_config(cfg, self.config_path)

    def write_metrics(self, history: List[Dict], best: Dict) -> None:
        """metrics.json: {"epochs": history, "best": best}, replaced whole."""
        if not self.writes:
            return
        from mindface_au.utils.io import atomic_write

        with atomic_write(self.metrics_path) as handle:
            json.dump({"epochs": history, "best": best}, handle, indent=2)

    def save_checkpoint(
        self,
        net,
        kind: str,
        epoch: int,
        extra: Optional[dict] = None,
        val_mean_f1: Optional[float] = None,
        val_subset: Optional[str] = None,
        val_mean_icc: Optional[float] = None,
    ) -> Optional[str]:
        """Write `net` as the `kind` checkpoint of `epoch` (with `epoch_num`, `extra` and the model card, its
        validation mean F1 `val_mean_f1` over the frames `val_subset` describes, and for a model with the intensity
        head its validation mean ICC `val_mean_icc`); its path, None if not written here (rank != 0)."""
        path = self.checkpoint_path(kind, epoch)
        if not self.writes:
            return None
        from mindface_au.models.checkpoint import save_checkpoint_atomic

        card = None if self.card is None else dict(self.card, val_mean_f1=val_mean_f1, val_subset=val_subset)
        if card is not None and (self.model_config or {}).get("intensity"):
            card["val_mean_icc"] = None if val_mean_icc is None else round(float(val_mean_icc), 6)
        extra = {"epoch_num": epoch, **(extra or {})}
        save_checkpoint_atomic(net, path, model_config=self.model_config, extra=extra, card=card)
        return path

    def prune(self, epoch: int) -> List[str]:
        """Remove epoch checkpoints older than the last `keep_last` up to `epoch`; the paths removed."""
        if not self.writes:
            return []
        removed = []
        for old, path in self.epoch_checkpoints():
            if old <= epoch - self.keep_last:
                os.remove(path)
                removed.append(path)
        return removed

    # ---- reading ----

    def epoch_checkpoints(self) -> List[Tuple[int, str]]:
        """(epoch, path) of every checkpoints/epoch_NNN.ckpt, by epoch."""
        if not os.path.isdir(self.ckpt_dir):
            return []
        found = [(_EPOCH_FILE.match(n), n) for n in os.listdir(self.ckpt_dir)]
        return sorted((int(m.group(1)), os.path.join(self.ckpt_dir, n)) for m, n in found if m)

    def latest_epoch_checkpoint(self) -> Optional[str]:
        found = self.epoch_checkpoints()
        return found[-1][1] if found else None

    def read_history(self, up_to_epoch: int) -> List[Dict]:
        """The per-epoch records of metrics.json up to `up_to_epoch` (what a resumed run continues); [] if none."""
        if not os.path.isfile(self.metrics_path):
            return []
        with open(self.metrics_path, encoding="utf-8") as handle:
            return [r for r in json.load(handle).get("epochs", []) if r["epoch"] <= up_to_epoch]

    def read_resume_state(self) -> ResumeState:
        """Read checkpoints/resume.ckpt (once: the epoch, the best so far and the parameters come from one read)."""
        from mindface_au.models.checkpoint import read_checkpoint

        if not os.path.isfile(self.resume_path):
            raise UserError(
                f"{param('resume')} {self.root}: no {RUN_FILES['resume']} (the run did not finish an epoch)"
            )
        data = read_checkpoint(self.resume_path)
        best, losses = data.get("best"), data.get("epoch_losses")
        return ResumeState(
            path=self.resume_path,
            epoch=int(_scalar(data.get("epoch_num", 0))),
            best=json.loads(best) if isinstance(best, str) else {},
            params=data,
            global_step=int(_scalar(data["global_step"])) if "global_step" in data else None,
            epoch_losses=json.loads(losses) if isinstance(losses, str) else [],
        )
