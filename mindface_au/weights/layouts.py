"""Which backbone checkpoint layouts are accepted, how each is recognised, and how its backbone is taken out.

One place for `convert` and `model.backbone_checkpoint`: `read_backbone_state(path)` returns the backbone's
parameters under MindSpore IResNet names (float32), the name each had in the file, and the layout's name.
Anything else fails with one line listing the file's top-level keys and the accepted layouts (`ACCEPTED`).
"""

import dataclasses
import os
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

from mindface_au.errors import UserError, listing
from mindface_au.weights.mapping import check_against_model, mindspore_to_torch_name, torch_to_mindspore
from mindface_au.weights.torch_reader import is_tensor, is_torch_file, read_torch_file

__all__ = [
    "ACCEPTED",
    "BackboneState",
    "select_state_dict",
    "read_torch_state_dict",
    "read_backbone_state",
    "mindspore_layout",
    "mindspore_backbone_state",
]

ARCFACE_TORCH = "arcface_torch training checkpoint (state_dict_backbone)"
MINDFACE = "MindFace recognition checkpoint (_backbone.* of Network(backbone, head))"
ACCEPTED = (
    "insightface state_dict .pth (optionally inside {'state_dict' or 'model': ...}, 'module.' prefixes), "
    "arcface_torch checkpoint_gpu_*.pt (state_dict_backbone), MindFace recognition .ckpt (_backbone.*), "
    "MindSpore IResNet .ckpt (e.g. from mindface-au convert)"
)
_WRAPPER_KEYS = ("state_dict", "model")
_MINDFACE_PREFIX = "_backbone."
_COUNTERS = ("global_step", "learning_rate", "epoch_num", "step_num")  # MindSpore training counters, not weights


@dataclasses.dataclass
class BackboneState:
    """A backbone read from a checkpoint: {MindSpore name: float32 array}, the file's name of each, the layout."""

    arrays: Dict[str, np.ndarray]
    origin: Dict[str, str]
    layout: str
    dropped: List[str]  # per-tensor entries skipped inside the backbone (num_batches_tracked)
    ignored: List[str]  # entries beside the backbone (optimiser, head, counters), never loaded
    torch_names: bool  # origin names are PyTorch names (messages translate MindSpore names back)

    def file_name(self, name: str) -> str:
        """The name MindSpore parameter `name` has (or would have) in the file, for messages."""
        if self.torch_names:
            return mindspore_to_torch_name(name)
        return _MINDFACE_PREFIX + name if self.layout == MINDFACE else name

    def check(self, expected: Dict[str, Tuple[int, ...]], source: str, target: str, hint: str = "") -> None:
        """Strict fit against {name: shape}: one line listing missing, unexpected and mis-shaped parameters."""
        check_against_model(self.arrays, self.origin, expected, source, target, hint=hint, file_name=self.file_name)


def summarise_names(names: List[str], limit: int = 8) -> str:
    """'epoch, fc.weight, moments.* (97)': names sharing a first component with others collapse to one entry."""
    groups: Dict[str, List[str]] = {}
    for name in names:
        groups.setdefault(name.split(".", 1)[0], []).append(name)
    entries = [items[0] if len(items) == 1 else f"{head}.* ({len(items)})" for head, items in groups.items()]
    return listing(entries, limit)


def _short(names) -> List[str]:
    return [name if len(name) <= 40 else name[:37] + "..." for name in map(str, names)]


def _unknown_layout(source: str, obj: Any, detail: str) -> UserError:
    if isinstance(obj, dict):
        found = "top-level keys " + listing(_short(obj), 10) if obj else "an empty dict"
    else:
        found = f"a {type(obj).__name__} at the top level"
    return UserError(f"{source}: unrecognised checkpoint layout ({found}{detail}); accepted: {ACCEPTED}")


def select_state_dict(
    obj: Any, source: str, is_tensor: Callable[[Any], bool] = is_tensor
) -> Tuple[Dict[str, Any], str, List[str]]:
    """(state_dict with 'module.' removed, layout name, ignored top-level keys) of a torch.save object.

    Works on this package's reader output and on `torch.load` output alike (`is_tensor` tells tensors apart).
    """
    top = obj
    ignored: List[str] = []
    if isinstance(obj, dict) and isinstance(obj.get("state_dict_backbone"), dict):
        layout = ARCFACE_TORCH
        ignored = sorted(str(k) for k in obj if k != "state_dict_backbone")
        obj = obj["state_dict_backbone"]
    else:
        layout = "insightface state_dict"
        wrappers = []
        while isinstance(obj, dict):
            inner = [k for k in _WRAPPER_KEYS if isinstance(obj.get(k), dict)]
            if not inner:
                break
            ignored += sorted(str(k) for k in obj if k != inner[0])
            wrappers.append(inner[0])
            obj = obj[inner[0]]
        if wrappers:
            layout += " inside " + "".join(f"{{{key!r}: " for key in wrappers) + "..." + "}" * len(wrappers)
    if not isinstance(obj, dict):
        raise _unknown_layout(source, top, f"; expected a state_dict (a dict of tensors), found {type(obj).__name__}")
    state: Dict[str, Any] = {}
    prefixed = 0
    for key, value in obj.items():
        if not isinstance(key, str):
            raise UserError(f"{source}: state_dict key {key!r} is not a string")
        name = key[len("module.") :] if key.startswith("module.") else key
        prefixed += name != key
        if name in state:
            raise UserError(f"{source}: state_dict names {name!r} twice (with and without 'module.')")
        state[name] = value
    not_tensors = sorted(k for k, v in state.items() if not is_tensor(v))
    if not_tensors:
        what = "entries" if obj is top else "state_dict entries"
        raise _unknown_layout(source, top, f"; {what} that are not tensors: {listing(_short(not_tensors))}")
    if not state:
        raise UserError(f"{source}: the state_dict is empty")
    if prefixed:
        layout += ", 'module.' prefixes removed"
    return state, layout, ignored


def _select_and_remember(source: str, found: Dict[str, Any]) -> Callable[[Any], Any]:
    def select(obj: Any) -> Any:
        state, found["layout"], found["ignored"] = select_state_dict(obj, source)
        return state

    return select


def _read_torch(path: str) -> Tuple[Dict[str, np.ndarray], str, List[str]]:
    found: Dict[str, Any] = {}
    state = read_torch_file(path, select=_select_and_remember(path, found))
    return state, found["layout"], found["ignored"]


def read_torch_state_dict(path: str) -> Dict[str, np.ndarray]:
    """The backbone state_dict saved at `path` as {name: numpy array}, in any accepted torch layout."""
    return _read_torch(path)[0]


def mindspore_layout(params: Dict[str, Any]) -> str:
    """The layout name of a MindSpore checkpoint ({name: Parameter}), without touching its tensors."""
    if any(name.startswith(_MINDFACE_PREFIX) for name in params):
        return MINDFACE
    from mindface_au.utils.ckpt_file import MODEL_CONFIG_KEY

    return "MindSpore checkpoint" + (" (mindface-au)" if MODEL_CONFIG_KEY in params else "")


def mindspore_backbone_state(params: Dict[str, Any], source: str) -> BackboneState:
    """The backbone in a MindSpore checkpoint ({name: Parameter}): MindFace `_backbone.*` or plain names."""
    names = [name for name, value in params.items() if hasattr(value, "asnumpy")]
    layout = mindspore_layout(params)
    if layout == MINDFACE:
        origin = {name[len(_MINDFACE_PREFIX) :]: name for name in names if name.startswith(_MINDFACE_PREFIX)}
    else:
        origin = {name: name for name in names if not name.startswith(_COUNTERS + ("moments.",))}
    kept = set(origin.values())
    ignored = [name for name in params if name not in kept]
    arrays = {}
    for target, name in origin.items():
        array = params[name].asnumpy()
        arrays[target] = array if array.dtype == np.float32 else array.astype(np.float32)  # AMP O2 saves float16
    return BackboneState(arrays, origin, layout, [], ignored, torch_names=False)


def read_backbone_state(path: str) -> BackboneState:
    """Read the backbone from a checkpoint in any accepted layout (torch.save files without PyTorch)."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: file not found")
    if is_torch_file(path):
        state, layout, ignored = _read_torch(path)
        converted, origin, dropped = torch_to_mindspore(state)
        return BackboneState(converted, origin, layout, dropped, ignored, torch_names=True)
    with open(path, "rb") as handle:
        head = handle.read(1)
    if head != b"\x0a" and not path.endswith(".ckpt"):  # a MindSpore .ckpt is a protobuf starting with field 1
        raise UserError(
            f"{path}: not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle) nor a MindSpore .ckpt"
        )
    from mindface_au.utils.ckpt_file import read_checkpoint

    return mindspore_backbone_state(read_checkpoint(path), path)
