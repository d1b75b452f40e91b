"""Atomic output: write to a temporary name beside the target and rename, so no half-written file remains."""

import contextlib
import os
import tempfile
from typing import IO, Iterator

from mindface_au.errors import UserError
from mindface_au.utils.guard import writing


def ensure_output_folder(path: str) -> str:
    """Create the folder that will hold output file `path` and check it is writable; returns the folder."""
    if os.path.isdir(path):
        raise UserError(f"{path}: output is a folder; give a file name")
    parent = os.path.dirname(os.path.abspath(path))
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if parent and not os.path.isdir(parent):
        raise UserError(f"{path}: {parent} is a file, not a folder")
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
    """Yield a temporary path (same folder, same suffix) that replaces `path` only if the block succeeds.

    A failure of the environment while writing (disk full, permissions) is an `EnvironmentFailure` naming `path`;
    the temporary file, and the `.tmp` MindSpore writes beside a checkpoint's name, are removed either way.
    """
    path = os.path.abspath(path)
    folder = ensure_output_folder(path)
    base = os.path.basename(path)
    stem, suffix = os.path.splitext(base)
    with writing(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".tmp{suffix}", dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the final file the usual permissions
    try:
        with writing(path):
            yield tmp
            os.replace(tmp, path)
    finally:
        for leftover in (tmp, os.path.splitext(tmp)[0] + ".tmp"):  # ours, and MindSpore's save_checkpoint's
            if os.path.exists(leftover):
                os.remove(leftover)


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file for writing that is renamed onto `path` when the block succeeds."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as handle:
            yield handle
