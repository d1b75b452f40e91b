"""ABAW AU txt files, the one format of annotations and challenge predictions: header, reader, writer.

A file is the header line ``AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26`` followed by one
comma-separated row of 12 values per frame (row j labels frame j, 1-based). That is the ABAW set; a model with
another AU set writes its own names in the header (`au_names`), one column each. Annotation rows hold -1, 0 or 1
(-1: unlabelled); prediction rows hold 0 or 1. The Aff-Wild2 reader, the SynthAU generator, `predict` and
`score` all read and write through this module.
"""

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from mindface_au.au_sets import ABAW_AUS, default_au_names
from mindface_au.errors import UserError
from mindface_au.utils.io import atomic_write

__all__ = ["HEADER", "ANNOTATION_VALUES", "PREDICTION_VALUES", "read_au_file", "write_au_file"]

HEADER = ",".join(ABAW_AUS)
ANNOTATION_VALUES = (-1, 0, 1)
PREDICTION_VALUES = (0, 1)

_TOKENS = {"-1": -1, "0": 0, "1": 1}


def _values_text(allowed: Sequence[int]) -> str:
    return ", ".join(str(v) for v in allowed)


def _parse_row(
    line: str, path: str, line_no: int, what: str, allowed: Sequence[int], width: int = len(ABAW_AUS)
) -> Tuple[int, ...]:
    values = line.split(",")
    if len(values) != width:
        raise UserError(
            f"{path}:{line_no}: {what} row {line.strip()[:60]!r}: expected {width} comma-separated values, "
            f"got {len(values)}"
        )
    row = []
    for value in values:
        parsed = _TOKENS.get(value.strip())
        if parsed is None or parsed not in allowed:
            raise UserError(f"{path}:{line_no}: {what} value {value.strip()!r} is not one of {_values_text(allowed)}")
        row.append(parsed)
    return tuple(row)


def read_au_file(
    path: str,
    what: str = "annotation",
    allowed: Sequence[int] = ANNOTATION_VALUES,
    au_names: Optional[Sequence[str]] = None,
) -> np.ndarray:
    """Read one AU txt into an int8 (num_rows, C) array; `what` ("annotation", "prediction") names it in errors.

    The header must name `au_names` in order (default: the 12 challenge AUs; spaces ignored). A UTF-8 BOM, CRLF
    line ends and trailing blank lines are accepted; a blank line between rows, a row of the wrong width or a value
    outside `allowed` is a UserError naming the file and the 1-based line.
    """
    names = default_au_names(au_names)
    header = ",".join(names)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise UserError(f"{path}: cannot read {what} file ({exc.strerror})") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: {what} file is not UTF-8 text") from exc
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise UserError(f"{path}:1: empty {what} file, expected the header {header}")
    if lines[0].strip().replace(" ", "") != header:
        raise UserError(f"{path}:1: {what} header {lines[0].strip()[:80]!r} does not match the expected {header}")
    cache: Dict[str, Tuple[int, ...]] = {}  # real files repeat few distinct rows: parse each once
    rows = np.empty((len(lines) - 1, len(names)), dtype=np.int8)
    for i, line in enumerate(lines[1:]):
        row = cache.get(line)
        if row is None:
            if not line.strip():
                raise UserError(f"{path}:{i + 2}: blank line inside the {what} file")
            row = cache[line] = _parse_row(line, path, i + 2, what, allowed, len(names))
        rows[i] = row
    return rows


def write_au_file(
    path: str, labels: np.ndarray, allowed: Sequence[int] = ANNOTATION_VALUES, au_names: Optional[Sequence[str]] = None
) -> None:
    """Write a (T, C) array of values in `allowed` as an AU txt (header `au_names`, default the ABAW 12; T rows,
    LF line ends), atomically."""
    names = default_au_names(au_names)
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[1] != len(names):
        raise ValueError(f"{path}: expected a (T, {len(names)}) label array, got {labels.shape}")
    bad = ~np.isin(labels, allowed)
    if bad.any():
        raise ValueError(f"{path}: label value {labels[bad][0]} is not one of {_values_text(allowed)}")
    rows = "\n".join(",".join(str(int(v)) for v in row) for row in labels.astype(np.int64))
    with atomic_write(path, encoding="utf-8", newline="\n") as handle:
        handle.write(",".join(names) + "\n" + rows + ("\n" if len(labels) else ""))
