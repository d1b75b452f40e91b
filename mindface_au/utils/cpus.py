"""How many CPUs this process may run on, on every platform MindSpore ships wheels for."""

import os
from typing import List

__all__ = ["available_cpus", "cpu_affinity"]


def cpu_affinity() -> List[int]:
    """The CPU numbers this process may run on, where the OS tells (Linux); [] on macOS and Windows, where
    `os.sched_getaffinity` does not exist, or where a restricted sandbox refuses the call."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is None:
        return []
    try:
        return sorted(getaffinity(0))
    except OSError:
        return []


def available_cpus() -> int:
    """The CPUs this process may use: its affinity mask where the OS has one (Linux), else all CPUs; at least 1."""
    return len(cpu_affinity()) or os.cpu_count() or 1
