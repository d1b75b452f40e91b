"""Nothing lost: the one mechanism every writer uses before and while it writes (see docs/errors.md).

- `check_not_input`: an output is never one of the command's own inputs, compared by real path (symlinks, `./`)
  and by device + inode (hard links).
- `check_new_output`: an existing output is replaced only with `overwrite` (the CLI's `--overwrite`).
- `OutputLock`: one writer per output, by an exclusively created lock file holding host and pid (works on network
  file systems); a lock whose process is gone on the same host is stale and taken over.
- `EnvironmentFailure` / `environment_message`: disk full, permission denied, read-only file system... as one
  line naming the file; the CLI exits 1 for these (2 for a `UserError`).
- `Interrupted` / `install_signal_handlers`: SIGTERM handled like SIGINT (the CLI exits 130 / 143), also while
  a module imports (the signal is raised once the import has finished).
- `remove_stale_temporaries`: the hidden temporary files an interrupted writer leaves behind.
"""

import atexit
import contextlib
import errno
import fnmatch
import os
import signal
import socket
from typing import Iterable, Iterator, List, Optional

from mindface_au.errors import UserError

__all__ = [
    "EnvironmentFailure",
    "Interrupted",
    "OutputLock",
    "check_new_output",
    "check_outputs",
    "damaged_resume",
    "check_not_input",
    "environment_message",
    "install_signal_handlers",
    "pending_signal",
    "reclaim_signal_handlers",
    "remove_stale_temporaries",
    "reraise_environment",
    "restore_signal_handlers",
    "same_file",
    "short_repr",
    "writing",
]

# errno -> the words of the one-line error
ENVIRONMENT_ERRORS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.EISDIR: "is a folder",
    errno.ENOTDIR: "a parent is not a folder",
    errno.EFBIG: "file too large",
    errno.EIO: "input/output error",
}
LOCK_SUFFIX = ".lock"


class EnvironmentFailure(Exception):
    """The machine, not the user's input, stopped the command (disk full, no permission...): one line, exit 1."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; `signum` says which (the CLI exits 128 + signum)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


_INSTALLED = False  # install_signal_handlers ran (the CLI): reclaim_signal_handlers may re-install


_PENDING = 0  # the signal received (0: none); raised again at the next graph call should code swallow it


RETRY_S = 0.05  # how often a signal that arrived during an import checks whether the import has finished


def _importing(frame) -> bool:
    """Whether Python code runs under an import (the frames of importlib's bootstrap are on the stack)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _raise_interrupted(signum, frame) -> None:
    """Raise `Interrupted`, but not inside an import: an exception raised while a module such as MindSpore
    initialises leaves it half-imported (an ImportError traceback, or "Fatal Python error" from its exit hooks).
    There the signal is kept and raised as soon as the import has finished (polled with SIGALRM)."""
    global _PENDING
    _PENDING = int(signum)
    if _importing(frame):
        signal.signal(signal.SIGALRM, _raise_pending)
        signal.setitimer(signal.ITIMER_REAL, RETRY_S)
        return
    raise Interrupted(signum)


def _raise_pending(_signum, frame) -> None:
    if not (_INSTALLED and _PENDING):
        return
    if _importing(frame):
        signal.setitimer(signal.ITIMER_REAL, RETRY_S)
        return
    raise Interrupted(_PENDING)


def install_signal_handlers() -> dict:
    """SIGINT and SIGTERM both raise `Interrupted` in the main thread, so `finally` blocks keep partial output.

    MindSpore's data pipeline sends SIGTERM to the main process when its workers die (as they do on Ctrl-C), and
    msrun forwards SIGTERM to its workers: handling SIGTERM is what makes both end with the interrupted message.
    Call again after MindSpore ran a graph to take the handlers back should anything have replaced them.
    """
    global _INSTALLED, _PENDING
    _INSTALLED, _PENDING = True, 0
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, _raise_interrupted)
        except ValueError:  # not the main thread
            break
    return previous


def reclaim_signal_handlers() -> None:
    """After a MindSpore graph call: take SIGINT back. Measured with MindSpore 2.10: every graph run installs
    MindSpore's own SIGINT handler (ccsrc/utils/signal_util.cc), which turns SIGINT into a SIGTERM of the process;
    a Ctrl-C during a graph call therefore still arrives as SIGTERM (exit 143, same message, same partial output).
    An interruption that some library code caught and swallowed is raised again here. Does nothing unless
    `install_signal_handlers` ran (the CLI)."""
    if _INSTALLED:
        pending = _PENDING
        install_signal_handlers()
        if pending:
            raise Interrupted(pending)


def pending_signal() -> int:
    """The SIGINT or SIGTERM received since `install_signal_handlers` (0: none). A library that turned the
    interruption into its own error (MindSpore reading a checkpoint reports a failed read) is then still an
    interruption, not a bad file."""
    return _PENDING if _INSTALLED else 0


def restore_signal_handlers(previous: dict) -> None:
    """Put back the handlers `install_signal_handlers` replaced."""
    global _INSTALLED, _PENDING
    _INSTALLED, _PENDING = False, 0
    with contextlib.suppress(ValueError):  # a retry of a signal deferred during an import: no longer wanted
        signal.setitimer(signal.ITIMER_REAL, 0)
    for sig, handler in previous.items():
        if handler is not None:
            signal.signal(sig, handler)


def short_repr(value, limit: int = 80) -> str:
    """repr(value) cut to `limit` characters, so an error line stays one short line whatever the value."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def environment_message(exc: BaseException, path: Optional[str] = None) -> Optional[str]:
    """'PATH: cannot write (disk full)' for an OSError of an environment kind, else None."""
    if isinstance(exc, UnicodeError):
        where = path or "input"
        return f"{where}: not UTF-8 text ({short_repr(str(exc), 120)})"
    if not isinstance(exc, OSError) or exc.errno not in ENVIRONMENT_ERRORS:
        return None
    where = path or exc.filename or "output"
    return f"{where}: cannot write ({ENVIRONMENT_ERRORS[exc.errno]})"


def _disk_full(folder: str) -> bool:
    """Whether the file system of `folder` has (nearly) no space left: MindSpore reports a failed write as
    RuntimeError, not OSError(ENOSPC)."""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < (1 << 20)


@contextlib.contextmanager
def writing(path: str) -> Iterator[None]:
    """Turn an environment failure while writing `path` into an `EnvironmentFailure` naming it."""
    try:
        yield
    except (UserError, KeyboardInterrupt, EnvironmentFailure):
        raise
    except OSError as exc:
        message = environment_message(exc, path)
        if message is None:
            raise
        raise EnvironmentFailure(message) from exc
    except RuntimeError as exc:
        if _disk_full(os.path.dirname(os.path.abspath(path)) or "."):
            raise EnvironmentFailure(f"{path}: cannot write (disk full)") from exc
        raise


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
        raise UserError(f"{path}: the {what} {kind} already exists; choose another path or pass --overwrite")


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


@contextlib.contextmanager
def damaged_resume(*paths: str) -> Iterator[None]:
    """A file of unfinished work that cannot be read back is a one-line UserError saying what to do."""
    try:
        yield
    except UserError:
        raise
    except (ValueError, UnicodeError, KeyError, IndexError, TypeError) as exc:
        which = " / ".join(paths)
        raise UserError(
            f"{which}: damaged, cannot resume from it ({short_repr(str(exc), 100)}); delete it or drop --resume"
        ) from exc


def reraise_environment(exc: BaseException, path: str) -> None:
    """Raise an `EnvironmentFailure` naming `path` for an environment OSError `exc` (disk full...); else return."""
    message = environment_message(exc, path) if isinstance(exc, OSError) else None
    if message is not None:
        raise EnvironmentFailure(message) from exc
