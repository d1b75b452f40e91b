"""Output rules: the checks every writer makes before and while it writes (see docs/errors.md).

- `check_not_input`: an output is never one of the command's own inputs, compared by real path (symlinks, `./`)
  and by device + inode (hard links).
- `check_new_output`: an existing output is replaced only with `overwrite`.
- `check_outputs`: both rules for all the outputs of one command, and no two outputs the same.
- `OutputLock`: one writer per output, by an exclusively created lock file holding host and pid (works on network
  file systems); a lock whose process is gone on the same host is stale and taken over.
- `remove_stale_temporaries`: the hidden temporary files an interrupted writer leaves behind.
"""

import atexit
import contextlib
import fnmatch
import os
import socket
from typing import Iterable, List, Optional

from mindface_au.errors import UserError, param
from mindface_au.utils.messages import EnvironmentFailure, environment_message

__all__ = [
    "LOCK_SUFFIX",
    "OutputLock",
    "check_new_output",
    "check_not_input",
    "check_outputs",
    "remove_stale_temporaries",
    "same_file",
]

LOCK_SUFFIX = ".lock"


def same_file(a: str, b: str) -> bool:
    """Whether paths `a` and `b` name the same file or folder: by real path, or (both existing) device + inode."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def check_not_input(output: str, inputs: Iterable[Optional[str]], what: str = "output") -> None:
    """Refuse an `output` that is one of `inputs` (files or folders): writing it would destroy an input."""
    for source in inputs:
        if source and os.path.exists(source) and same_file(output, source):
            raise UserError(f"{output}: the {what} is an input of this command ({source}); choose another path")


def check_new_output(path: str, overwrite: bool = False, what: str = "output") -> None:
    """Refuse to replace an existing `path` unless `overwrite` (the CLI's --overwrite)."""
    if os.path.lexists(path) and not overwrite:
        kind = "folder" if os.path.isdir(path) else "file"
        raise UserError(f"{path}: the {what} {kind} already exists; choose another path or pass {param('overwrite')}")


def remove_stale_temporaries(folder: str, patterns: Iterable[str]) -> List[str]:
    """Delete the files of `folder` matching any of the glob `patterns` (leftovers of an interrupted writer)."""
    removed = []
    if not os.path.isdir(folder):
        return removed
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and any(fnmatch.fnmatch(name, p) for p in patterns):
            try:
                os.remove(path)
            except FileNotFoundError:
                continue
            removed.append(path)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputLock:
    """An exclusive lock on output `path`: `path.lock` created with O_CREAT|O_EXCL, holding "host pid".

    A second writer gets a UserError naming the first; a lock left by a process that is gone (same host), or by
    this very process (an earlier call that raised), is removed and taken. Use as a context manager; the lock file
    is removed on exit.
    """

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path) + LOCK_SUFFIX
        self.held = False

    def _owner(self) -> str:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                return handle.read(200).strip()
        except OSError:
            return ""

    def acquire(self) -> None:
        host = socket.gethostname()
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                parts = owner.split()
                mine_or_gone = len(parts) == 2 and parts[0] == host and parts[1].isdigit()
                if mine_or_gone and (int(parts[1]) == os.getpid() or not _pid_alive(int(parts[1]))):
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(self.path)  # stale: its process is gone
                    continue
                who = f"host {parts[0]} pid {parts[1]}" if len(parts) == 2 else "another run"
                raise UserError(
                    f"{self.path[: -len(LOCK_SUFFIX)]}: another run ({who}) is writing this output; wait for it "
                    f"to finish, or delete {self.path} if that run is gone"
                ) from None
            except OSError as exc:
                message = environment_message(exc, self.path)
                if message is None:
                    raise
                raise EnvironmentFailure(message) from exc
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(f"{host} {os.getpid()}\n")
            self.held = True
            atexit.register(self.release)  # an error that ends the process still frees the output
            return
        raise UserError(f"{self.path}: could not take the lock; delete it if no other run is writing")

    def release(self) -> None:
        if self.held:
            self.held = False
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)

    def __enter__(self) -> "OutputLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def check_outputs(
    outputs: Iterable[Optional[str]], inputs: Iterable[Optional[str]] = (), overwrite: bool = False
) -> None:
    """The rule for one command: no output is an input or another output; an existing one needs `overwrite`."""
    outputs = [o for o in outputs if o]
    inputs = [i for i in inputs if i]
    for i, out in enumerate(outputs):
        check_not_input(out, inputs)
        for other in outputs[:i]:
            if os.path.realpath(out) == os.path.realpath(other) or same_file(out, other):
                raise UserError(f"{out}: given for two outputs of this command; choose different paths")
        check_new_output(out, overwrite)
