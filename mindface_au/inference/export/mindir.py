"""MindIR export: a fixed-batch graph (the loader pads and slices) with the metadata in its user_info, checked by
reading the written graph back and running it against the network."""

import os
import shutil

import numpy as np

from mindface_au.config import ModelConfig
from mindface_au.errors import UserError, param
from mindface_au.inference.export.checks import record_diffs
from mindface_au.inference.metadata import MODEL_INFO_KEY, encode_metadata, model_metadata
from mindface_au.utils.io import atomic_path, mindspore_safe_path

__all__ = ["write_mindir"]


def write_mindir(
    run_net,
    model_cfg: ModelConfig,
    out: str,
    batch_size: int,
    **meta,
) -> dict:
    """Write inference network `run_net` (loader.inference_network) to MindIR file `out` with batch `batch_size`;
    returns its metadata (`meta`: source, card, settings, as `model_metadata` takes them) plus
    `max_abs_diff_vs_mindspore` (the graph read back against `run_net`; with the intensity head also
    `max_abs_diff_intensity_vs_mindspore`, its second output)."""
    import mindspore as ms

    size = int(model_cfg.input_size)
    info = model_metadata(model_cfg, int(batch_size), **meta)
    dummy = ms.Tensor(np.zeros((batch_size, 3, size, size), np.float32))

    def add_info(proto) -> None:
        proto.user_info[MODEL_INFO_KEY] = encode_metadata(info)

    with atomic_path(out) as tmp, mindspore_safe_path(tmp) as written:  # MindSpore: no spaces, ASCII only
        ms.export(run_net, dummy, file_name=written, file_format="MINDIR", custom_func=add_info)
        if not os.path.isfile(written) or os.path.getsize(written) == 0:
            raise UserError(f"{param('out')} {out}: MindSpore wrote no MindIR file")
        # the file's own check: the graph read back gives the network's outputs (a NaN model fails here)
        check = np.random.default_rng(0).normal(0, 1, (batch_size, 3, size, size)).astype(np.float32)
        got = ms.nn.GraphCell(ms.load(written))(ms.Tensor(check))
        record_diffs(info, got, run_net(ms.Tensor(check)), out)  # both outputs with the intensity head
        if written != tmp:
            shutil.move(written, tmp)
    return info
