"""Messages: what the machine did, as one line naming the file (see docs/errors.md).

`EnvironmentFailure` / `environment_message` / `writing`: disk full, permission denied, read-only file system...
as one line naming the file; the CLI exits 1 for these (2 for a `UserError`). `damaged_resume`: a file of
unfinished work that cannot be read back. `short_repr`: a value cut to fit one line.
"""

import contextlib
import errno
import os
from typing import Iterator, Optional

from mindface_au.errors import UserError, param, render

__all__ = [
    "ENVIRONMENT_ERRORS",
    "EnvironmentFailure",
    "damaged_resume",
    "environment_message",
    "reraise_environment",
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


class EnvironmentFailure(Exception):
    """The machine, not the user's input, stopped the command (disk full, no permission...): one line, exit 1.

    Like a `UserError`, its message may name parameters with `errors.param` markers; `str()` spells them."""

    def __str__(self) -> str:
        return render(super().__str__())


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
            f"{which}: damaged, cannot resume from it "
            f"({short_repr(str(exc), 100)}); delete it or drop {param('resume')}"
        ) from exc


def reraise_environment(exc: BaseException, path: str) -> None:
    """Raise an `EnvironmentFailure` naming `path` for an environment OSError `exc` (disk full...); else return."""
    message = environment_message(exc, path) if isinstance(exc, OSError) else None
    if message is not None:
        raise EnvironmentFailure(message) from exc
