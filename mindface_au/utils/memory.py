"""Resident memory of this process: the peak (for the bench, convert and the memory tests) and the current value."""

import resource
import sys
from typing import Optional

__all__ = ["peak_rss_mb", "current_rss_mb"]


def _status_mib(key: str) -> Optional[float]:
    """A `/proc/self/status` memory line (e.g. VmHWM) in MiB; None where there is no /proc (not Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB.

    Linux: VmHWM from /proc/self/status, which starts afresh at exec (getrusage's ru_maxrss would carry over the
    parent's peak into a subprocess). Elsewhere: ru_maxrss (KiB on Linux/BSD, bytes on macOS).
    """
    peak = _status_mib("VmHWM")
    if peak is not None:
        return peak
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0, 1)


def current_rss_mb() -> Optional[float]:
    """Resident memory of this process now, in MiB (VmRSS); None where /proc is missing."""
    return _status_mib("VmRSS")
