"""Atomic output: write to a temporary name beside the target and rename, so no half-written file remains."""

import contextlib
import dataclasses
import os
import re
import shutil
import tempfile
from typing import IO, Iterator

from mindface_au.errors import UserError
from mindface_au.utils.guard import EnvironmentFailure, writing


def ensure_output_folder(path: str) -> str:
    """Create the folder that will hold output file `path` and check it is writable; returns the folder."""
    if os.path.isdir(path):
        raise EnvironmentFailure(f"{path}: output is a folder; give a file name")  # exit 1 (docs/errors.md)
    parent = os.path.dirname(os.path.abspath(path))
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if parent and not os.path.isdir(parent):
        raise EnvironmentFailure(f"{path}: {parent} is a file, not a folder")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{path}: cannot create the output folder ({exc.strerror})") from exc
    if not os.access(folder, os.W_OK):
        raise UserError(f"{path}: output folder is not writable")
    return folder


def share(path: str) -> None:
    """Give `path` the permissions a new file gets (0666 less the umask): mkstemp makes files 0600 and MindSpore
    leaves checkpoints owner-read-only."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


@dataclasses.dataclass
class PendingFile:
    """A file being written at `tmp`, renamed onto `path` when its `atomic_file` block succeeds.

    `path` may be set inside the block to another name in the same folder: a name known only once the file is
    written (a release file's name carries the sha256 of its bytes).
    """

    tmp: str
    path: str


@contextlib.contextmanager
def atomic_file(path: str) -> Iterator[PendingFile]:
    """Yield a PendingFile: a temporary name (same folder, same suffix as `path`) that replaces its `path` only if
    the block succeeds.

    A failure of the environment while writing (disk full, permissions) is an `EnvironmentFailure` naming `path`
    as first given; the temporary file, and the `.tmp` MindSpore writes beside a checkpoint's name, are removed
    either way.
    """
    path = os.path.abspath(path)
    folder = ensure_output_folder(path)
    base = os.path.basename(path)
    stem, suffix = os.path.splitext(base)
    with writing(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".tmp{suffix}", dir=folder)
    os.close(fd)
    share(tmp)  # give the final file the usual permissions
    pending = PendingFile(tmp, path)
    try:
        with writing(path):
            yield pending
            final = os.path.abspath(pending.path)
            if os.path.dirname(final) != folder:  # a rename stays on one file system
                raise ValueError(f"atomic_file: {final} is not in the folder of {path}")
            os.replace(tmp, final)
    finally:
        for leftover in (tmp, os.path.splitext(tmp)[0] + ".tmp"):  # ours, and MindSpore's save_checkpoint's
            if os.path.exists(leftover):
                os.remove(leftover)


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path (same folder, same suffix) that replaces `path` only if the block succeeds
    (atomic_file with a fixed name)."""
    with atomic_file(path) as pending:
        yield pending.tmp


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file for writing that is renamed onto `path` when the block succeeds."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as handle:
            yield handle


# MindSpore reads and writes MindIR files only at paths made of these characters (no space, nothing non-ASCII)
MINDSPORE_PATH = re.compile(r"^[0-9a-zA-Z@_\-.:/\\]+$")


@contextlib.contextmanager
def mindspore_safe_path(path: str, copy_in: bool = False) -> Iterator[str]:
    """A path MindSpore accepts standing in for `path` (same suffix): `path` itself when it qualifies, else a
    file in a fresh temporary folder that, with `copy_in`, starts as a copy of `path` (for reading). The caller
    moves a written file from the yielded path to its place; the temporary folder is removed afterwards."""
    if MINDSPORE_PATH.match(os.path.abspath(path)):
        yield path
        return
    work = tempfile.mkdtemp(prefix="mindface_au_")
    if not MINDSPORE_PATH.match(work):
        shutil.rmtree(work, ignore_errors=True)
        raise UserError(
            f"{path}: MindSpore accepts only the characters 0-9 a-z A-Z @ _ - . : / \\ in MindIR paths, and the "
            f"temporary folder {work} has others too; use another path or set TMPDIR"
        )
    try:
        stand_in = os.path.join(work, "model" + os.path.splitext(path)[1])
        if copy_in:
            shutil.copyfile(path, stand_in)
        yield stand_in
    finally:
        shutil.rmtree(work, ignore_errors=True)
