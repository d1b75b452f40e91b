"""The face finder's state saved beside `detect`'s partial CSV, so that `--resume` continues a tracked run exactly.

Tracking makes a frame's faces depend on the frames before it (the keyframe schedule, the faces followed and lost,
the face ids, the cut detector's last grid). With each flush of `out.csv.partial`, which falls between two frames,
`out.csv.partial.state.json` records (written atomically, after the flush): the last frame whose rows are all in the
file, the file's length after them, and the finder's state before that frame. A resume truncates the partial file to
that length (dropping rows the interrupted run wrote after its last flush; a fresh partial file records its header's
length and a new finder), drops the last frame's rows as always
(see `csvfile.recover_partial`), and restores the state before that frame: the rows from there on are the ones an
uninterrupted run writes.
"""

import collections
import json
import os
import sys
from typing import Deque, Optional, Tuple

from mindface_au.inference.detect.csvfile import state_path  # the file's name (re-exported)
from mindface_au.inference.detect.tracking import FaceFinder, snapshot_json
from mindface_au.inference.faces import IoUTracker
from mindface_au.utils.io import atomic_write

__all__ = ["state_path", "StateLog", "rewind", "STATE_VERSION"]

STATE_VERSION = 1


class StateLog:
    """Finder snapshots before each frame whose rows are not all written yet (a batch's worth), and the save."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._states: Deque[Tuple[int, dict]] = collections.deque()

    def record(self, frame: int, finder: Optional[FaceFinder]) -> None:
        """Remember the finder's state before `frame` (called before its faces are found)."""
        if finder is not None:
            self._states.append((frame, finder.snapshot()))

    def save(self, frame: int, end: int) -> None:
        """Record that the partial file holds every row up to `frame`'s, in its first `end` bytes (flushed)."""
        while self._states and self._states[0][0] < frame:
            self._states.popleft()  # frames written before: never needed again
        if not self._states or self._states[0][0] != frame:
            return  # no finder (aligned input): the rows depend on their frame alone
        state = {"version": STATE_VERSION, "frame": frame, "end": end, "finder": snapshot_json(self._states[0][1])}
        with atomic_write(self.path) as handle:
            json.dump(state, handle)

    def start(self, end: int) -> None:
        """Record a fresh partial file: its header ends at byte `end`, no frame is written, the finder is new."""
        self._states.clear()
        with atomic_write(self.path) as handle:
            json.dump({"version": STATE_VERSION, "frame": 1, "end": end, "finder": None}, handle)

    def clear(self) -> None:
        """Remove the state file (a fresh partial file, or a finished run)."""
        if os.path.exists(self.path):
            os.remove(self.path)


def rewind(partial: str, path: str) -> Optional[dict]:
    """Truncate `partial` to the length the state file `path` records and return {"frame", "finder"}; None (with a
    note) when there is no usable state, and then tracking restarts with a keyframe where the resume starts."""
    note = "no tracker state saved"
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as handle:
                state = json.load(handle)
            frame, end, finder = int(state["frame"]), int(state["end"]), state["finder"]
            if state.get("version") != STATE_VERSION:
                raise ValueError(f"unknown version {state.get('version')!r}")
            if finder is not None:
                FaceFinder(None, True, IoUTracker()).restore(finder)  # a malformed state fails here, not mid-run
            if end > os.path.getsize(partial):
                raise ValueError(f"{partial} is shorter than the {end} bytes it records")
            with open(partial, "r+b") as data:
                data.truncate(end)
            return {"frame": frame, "finder": finder}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            note = f"{path}: not usable ({exc})"
    print(
        f"note: {note}; face tracking restarts with a keyframe, so boxes can differ from an uninterrupted run by a"
        " few pixels",
        file=sys.stderr,
    )
    return None
