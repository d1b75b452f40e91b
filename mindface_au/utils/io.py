"""Atomic output: write to a temporary name beside the target and rename, so no half-written file remains."""

import contextlib
import os
import tempfile
from typing import IO, Iterator

from mindface_au.errors import UserError


def ensure_output_folder(path: str) -> str:
    """Create the folder that will hold output file `path` and check it is writable; returns the folder."""
    if os.path.isdir(path):
        raise UserError(f"{path}: output is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{path}: cannot create the output folder ({exc.strerror})") from exc
    if not os.access(folder, os.W_OK):
        raise UserError(f"{path}: output folder is not writable")
    return folder


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path (same folder, same suffix) that replaces `path` only if the block succeeds."""
    path = os.path.abspath(path)
    folder = ensure_output_folder(path)
    base = os.path.basename(path)
    stem, suffix = os.path.splitext(base)
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".tmp{suffix}", dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the final file the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file for writing that is renamed onto `path` when the block succeeds."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as handle:
            yield handle
