"""PyTorch -> MindSpore parameter names for IResNet, and the two-way key/shape check against the MindSpore net.

Rules (reference.md section 2): a BatchNorm is recognised by its `running_var` sibling; its weight/bias become
gamma/beta and running_mean/running_var become moving_mean/moving_variance; num_batches_tracked is dropped;
a PReLU weight becomes `w`; conv and linear weights keep name and layout.
"""

import re
from typing import Callable, Dict, List, Tuple

import numpy as np

from mindface_au.config import IRESNET_LAYERS as IRESNET_ARCHS
from mindface_au.errors import UserError, fit_problems

__all__ = [
    "IRESNET_ARCHS",
    "torch_to_mindspore",
    "mindspore_to_torch_name",
    "check_against_model",
    "guess_iresnet_layers",
]

_BN_RENAMES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
_BN_BACK = {v: k for k, v in _BN_RENAMES.items()}


def _split(name: str) -> Tuple[str, str]:
    module, _, leaf = name.rpartition(".")
    return module, leaf


def _join(module: str, leaf: str) -> str:
    return f"{module}.{leaf}" if module else leaf


def torch_to_mindspore(state: Dict[str, np.ndarray]) -> Tuple[Dict[str, np.ndarray], Dict[str, str], List[str]]:
    """Rename a torch state_dict; returns ({ms_name: float32 array}, {ms_name: torch_name}, dropped names)."""
    converted: Dict[str, np.ndarray] = {}
    origin: Dict[str, str] = {}
    dropped: List[str] = []
    for name, value in state.items():
        module, leaf = _split(name)
        if leaf == "num_batches_tracked":
            dropped.append(name)
            continue
        if _join(module, "running_var") in state and leaf in _BN_RENAMES:
            target = _join(module, _BN_RENAMES[leaf])
        elif leaf == "weight" and module.rpartition(".")[2].startswith("prelu"):
            target = _join(module, "w")
        else:
            target = name
        array = np.asarray(value)
        if array.dtype != np.float32:
            array = array.astype(np.float32)
        converted[target] = array
        origin[target] = name
    return converted, origin, dropped


def mindspore_to_torch_name(name: str) -> str:
    """The torch name a MindSpore IResNet parameter comes from (for messages about missing parameters)."""
    module, leaf = _split(name)
    if leaf in _BN_BACK:
        return _join(module, _BN_BACK[leaf])
    if leaf == "w":
        return _join(module, "weight")
    return name


def guess_iresnet_layers(torch_names) -> Tuple[int, ...]:
    """Blocks per stage found in torch names like layer3.12.conv1.weight (0 for an absent stage)."""
    counts = [0, 0, 0, 0]
    for name in torch_names:
        match = re.match(r"layer([1-4])\.(\d+)\.", name)
        if match:
            stage, block = int(match.group(1)) - 1, int(match.group(2))
            counts[stage] = max(counts[stage], block + 1)
    return tuple(counts)


def check_against_model(
    converted: Dict[str, np.ndarray],
    origin: Dict[str, str],
    expected: Dict[str, Tuple[int, ...]],
    source: str,
    target: str,
    hint: str = "",
    file_name: Callable[[str], str] = mindspore_to_torch_name,
) -> None:
    """Fail with one line listing missing, unexpected and mis-shaped parameters (in the file's names).

    `file_name` gives the name a missing MindSpore parameter would have had in the file.
    """
    missing = sorted(file_name(n) for n in expected if n not in converted)
    unexpected = sorted(origin[n] for n in converted if n not in expected)
    mismatched = [
        f"{origin[n]} {tuple(converted[n].shape)} vs {tuple(expected[n])}"
        for n in sorted(converted)
        if n in expected and tuple(converted[n].shape) != tuple(expected[n])
    ]
    problems = fit_problems(missing, unexpected, mismatched, limit=6, mismatch_limit=4)
    if problems:
        raise UserError(f"{source}: does not fit {target} ({problems}){hint}")
