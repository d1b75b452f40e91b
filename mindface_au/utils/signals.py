"""Signals: SIGTERM handled like SIGINT, also while a module imports (see docs/errors.md).

`Interrupted` / `install_signal_handlers`: both raise `Interrupted` in the main thread (the CLI exits 130 / 143),
and a signal that arrives during an import is raised once the import has finished; `reclaim_signal_handlers`
takes them back after a MindSpore graph call.
"""

import contextlib
import signal

__all__ = [
    "Interrupted",
    "install_signal_handlers",
    "pending_signal",
    "reclaim_signal_handlers",
    "restore_signal_handlers",
]


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
