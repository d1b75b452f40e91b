"""How many CPUs this process may run on, on every platform MindSpore ships wheels for."""

import os

__all__ = ["available_cpus"]


def available_cpus() -> int:
    """The CPUs this process may use: its affinity mask where the OS has one (Linux), else all CPUs (macOS,
    Windows, where `os.sched_getaffinity` does not exist); at least 1."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is not None:
        try:
            return max(len(getaffinity(0)), 1)
        except OSError:  # a restricted sandbox may refuse the call
            pass
    return os.cpu_count() or 1
