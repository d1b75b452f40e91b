"""Data-parallel set-up under `msrun` (CPU, GPU or Ascend): one process per device, averaged gradients."""

import os
from typing import Tuple

from mindface_au.errors import UserError

_state = {"rank": 0, "world_size": 1}


def init_distributed() -> Tuple[int, int]:
    """Join the process group started by msrun and switch to DATA_PARALLEL with gradient averaging.

    Call after `init_context` and before any Cell is built. Returns (rank, world_size).
    """
    import mindspore as ms
    from mindspore.communication import get_group_size, get_rank, init

    if not any(os.environ.get(k) for k in ("MS_WORKER_NUM", "RANK_TABLE_FILE", "RANK_SIZE")):
        raise UserError(
            "--distributed needs a launcher: run it as `msrun --worker_num=N --local_worker_num=N "
            "--master_port=PORT --log_dir=DIR --join=True tools/train.py --distributed ...`"
        )
    init()
    rank, world_size = get_rank(), get_group_size()
    ms.set_auto_parallel_context(
        parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True, device_num=world_size
    )
    _state.update(rank=rank, world_size=world_size)
    return rank, world_size


def rank_and_size() -> Tuple[int, int]:
    """(rank, world_size) of this process; (0, 1) when not distributed."""
    return _state["rank"], _state["world_size"]


def is_main_process() -> bool:
    """Only rank 0 writes checkpoints, logs and metrics."""
    return _state["rank"] == 0
