"""What every export format checks: the output path for the format, the source file, and the exported graph's
outputs against MindSpore's."""

import os

import numpy as np

from mindface_au.errors import UserError, param

__all__ = ["FORMATS", "EXTENSIONS", "check_out", "check_source", "checked_diff", "as_outputs", "record_diffs"]

FORMATS = ("MINDIR", "ONNX", "CKPT")
EXTENSIONS = {"MINDIR": ".mindir", "ONNX": ".onnx"}  # CKPT: `out` is a folder, the file name is derived


def checked_diff(got: np.ndarray, reference: np.ndarray, out: str) -> float:
    """The largest difference between the exported file's outputs and MindSpore's; not a number is an error."""
    diff = float(np.abs(np.asarray(got, np.float64) - np.asarray(reference, np.float64)).max())
    if not np.isfinite(diff):
        raise UserError(f"{out}: the export check gives {diff} (the model outputs NaN/Inf); file not written")
    return diff


def as_outputs(out) -> list:
    """A graph's outputs as a list of numpy arrays: one tensor (probabilities or embedding), or a tuple of them
    (probabilities, intensity: a model with the intensity head)."""
    outs = out if isinstance(out, (tuple, list)) else [out]
    return [o.asnumpy() if hasattr(o, "asnumpy") else np.asarray(o) for o in outs]


def record_diffs(info: dict, got, reference, out: str, key: str = "max_abs_diff_vs_mindspore") -> None:
    """Store in `info` the largest difference of each output of the exported file against MindSpore's: `key` for
    the first (probabilities or embedding), `key` with "_intensity" inserted after "max_abs_diff" for the
    intensity head's; a different number of outputs is an error (nothing is written)."""
    got, reference = as_outputs(got), as_outputs(reference)
    if len(got) != len(reference):
        raise UserError(
            f"{out}: the exported graph has {len(got)} outputs, the network {len(reference)}; file not written"
        )
    info[key] = checked_diff(got[0], reference[0], out)
    if len(got) > 1:
        info[key.replace("max_abs_diff", "max_abs_diff_intensity")] = checked_diff(got[1], reference[1], out)


def check_out(out: str, fmt: str) -> None:
    """Refuse an output path that does not suit format `fmt`: a file name with its extension, or a folder (CKPT)."""
    if fmt == "CKPT":
        if os.path.exists(out) and not os.path.isdir(out):
            raise UserError(
                f"{param('out')} {out}: is a file; {param('fmt')} CKPT writes into a folder (the file name is derived)"
            )
        if out.lower().endswith((".ckpt", ".yaml")):
            raise UserError(
                f"{param('out')} {out}: {param('fmt')} CKPT takes a folder (the file name is derived), not a file name"
            )
        return
    ext = EXTENSIONS[fmt]
    if not out.lower().endswith(ext):
        raise UserError(f"{param('out')} {out}: expected a file name ending in {ext} for {param('fmt')} {fmt}")
    if os.path.isdir(out):
        raise UserError(f"{param('out')} {out}: is a folder; give a {ext} file name")


def check_source(ckpt: str) -> None:
    """Refuse a source that is not a training checkpoint (an exported file, another type)."""
    kinds = {".mindir": "MindIR", ".onnx": "ONNX"}
    ext = os.path.splitext(ckpt)[1].lower()
    if ext in kinds:
        raise UserError(f"{ckpt}: already an exported {kinds[ext]} file; export needs a training checkpoint (.ckpt)")
    if ext != ".ckpt":
        raise UserError(f"{ckpt}: export needs a training checkpoint (.ckpt)")
