"""Model-zoo table: parameters and compute of every registered model, for docs/model-zoo.md and `mindface-au models`.

Compute is counted from the Cells themselves: one forward pass of a 1-image batch in PyNative mode with forward
hooks on every nn.Conv2d and nn.Dense, adding their multiply-accumulates (MACs). Batched matmuls inside
`construct` (attention scores, the graph's adjacency product) and element-wise ops are not counted; they are a
fraction of a per cent of the backbone. GFLOPs = 2 x GMACs (insightface's "GFLOPs" column is GMACs).
"""

import os
from typing import Dict, List, Optional, Sequence

import numpy as np

__all__ = ["count_params", "count_macs", "model_stats", "model_table", "format_model_table", "weights_status"]

# Where the docs and the packaged recipes keep weights (e.g. model.backbone_checkpoint: checkpoints/glint360k_r100.ckpt)
WEIGHTS_DIR = "checkpoints"


def count_params(net) -> int:
    """Learnable parameters (BatchNorm running statistics excluded, frozen weights included)."""
    return int(
        sum(
            int(np.prod(p.shape))
            for name, p in net.parameters_and_names()
            if not name.endswith(("moving_mean", "moving_variance"))
        )
    )


def count_macs(net, input_size: int = 112) -> int:
    """Conv2d + Dense multiply-accumulates of one forward pass on a (1, 3, S, S) input."""
    import mindspore as ms
    from mindspore import nn

    total = [0]

    def conv_hook(cell, inputs, output):
        kh, kw = cell.kernel_size
        total[0] += int(np.prod(output.shape)) * (cell.in_channels // cell.group) * kh * kw

    def dense_hook(cell, inputs, output):
        total[0] += int(np.prod(output.shape)) * cell.in_channels

    previous = ms.get_context("mode")
    handles = []
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        for _, cell in net.cells_and_names():
            if isinstance(cell, nn.Conv2d):
                handles.append(cell.register_forward_hook(conv_hook))
            elif isinstance(cell, nn.Dense):
                handles.append(cell.register_forward_hook(dense_hook))
        net.set_train(False)
        net(ms.Tensor(np.zeros((1, 3, input_size, input_size), np.float32)))
    finally:
        for handle in handles:
            handle.remove()
        ms.set_context(mode=previous)
    return total[0]


def model_stats(name: str, input_size: int = 112, **kwargs) -> Dict:
    """{name, params_m, gmacs, gflops} of registered model `name` (built with `kwargs`, e.g. tiny widths)."""
    from mindface_au.models import create_model

    net = create_model(name, input_size=input_size, **kwargs)
    macs = count_macs(net, input_size)
    return {
        "name": name,
        "params_m": round(count_params(net) / 1e6, 3),
        "gmacs": round(macs / 1e9, 3),
        "gflops": round(2 * macs / 1e9, 3),
    }


def weights_status(name: str, checkpoint: Optional[str], weights_dir: str = WEIGHTS_DIR) -> str:
    """Whether the weights file `checkpoint` of model `name` is in `weights_dir`, and if not how to make it: no
    weights ship with the package (a converted Glint360K backbone for `iresnet*`, a trained model for `aunet_*`)."""
    if not checkpoint:
        return "-"
    path = os.path.join(weights_dir, checkpoint)
    if os.path.isfile(path):
        return f"found: {path}"
    if name.startswith("iresnet"):
        return f"not shipped: mindface-au convert --src GLINT360K.pth --arch {name} --out {path}"
    return "not shipped: train one (mindface-au train)"


def model_table(
    names: Optional[Sequence[str]] = None,
    input_size: int = 112,
    f1: Optional[Dict[str, Dict[str, float]]] = None,
    weights_dir: str = WEIGHTS_DIR,
) -> List[Dict]:
    """One row per model (default: every registered model): name, params (M), GMACs, GFLOPs at `input_size`,
    the checkpoint file name from its default config, whether that file is in `weights_dir` or how to make it
    (`weights_status`), and F1 columns from `f1` ({name: {column: value}}, e.g.
    {"aunet_iresnet100": {"synthau_f1": 71.2, "affwild2_f1": None}})."""
    from mindface_au.models import get_default_cfg, list_models

    rows = []
    for name in names if names is not None else list_models():
        row = model_stats(name, input_size)
        row["checkpoint"] = get_default_cfg(name).get("checkpoint")
        row["weights"] = weights_status(name, row["checkpoint"], weights_dir)
        row.update((f1 or {}).get(name, {}))
        rows.append(row)
    return rows


def format_model_table(rows: Sequence[Dict]) -> str:
    """Markdown table of `model_table` rows (None shows as a dash)."""
    if not rows:
        return ""
    columns = list(rows[0].keys())
    for row in rows[1:]:
        columns += [c for c in row if c not in columns]

    def cell(value) -> str:
        return "-" if value is None else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
