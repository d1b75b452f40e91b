"""The detect CSV on disk: the partial file and its resume, and reading a finished file back (by column name).

For `out.csv`, rows go to `out.csv.partial` as they are computed and `out.csv.partial.json` records the settings;
the partial file is renamed to `out.csv` only when the whole input is done, so `out.csv` is never half-written.
After an interruption both stay; resuming checks the settings match, drops the rows of the last (possibly
incomplete) frame and continues from that frame, with the face ids restored from the rows.
"""

import csv
import json
import os
from typing import Dict, Iterator, List, Tuple

from mindface_au.errors import UserError
from mindface_au.inference.detect.rows import RowSchema

__all__ = ["sidecar_path", "read_detections", "iter_rows", "recover_partial", "check_resume", "SETTING_NAMES"]

# how each setting is called where users set it (for "other settings" messages)
SETTING_NAMES = {
    "input": "--input",
    "model": "--model",
    "aligned": "--aligned",
    "detector": "--detector",
    "all_faces": "--all-faces",
    "threshold": "--threshold",
    "min_face_size": "--min-face-size",
    "max_gap": "--max-gap",
    "every": "--every",
    "detect_size": "--detect-size",
    "track": "--no-track",
    "keyframe_every": "--keyframe-every",
    "start_time": "--start",
    "end_time": "--end",
}


def sidecar_path(output: str) -> str:
    """The JSON file beside a detect CSV that records its run's settings and the model card."""
    return output + ".json"


def read_detections(csv_path: str) -> Tuple[List[str], Iterator[List[str]]]:
    """(header, iterator over field lists) of a detect CSV."""
    handle = open(csv_path, newline="", encoding="utf-8")
    reader = csv.reader(handle)
    header = next(reader, [])

    def rows():
        try:
            yield from reader
        finally:
            handle.close()

    return header, rows()


def iter_rows(csv_path: str) -> Iterator[dict]:
    """The rows of a detect CSV as {column: value} dicts (the same values `DetectionRow.as_dict` gives)."""
    header, rows = read_detections(csv_path)
    schema = RowSchema.from_header(header, csv_path)
    for fields in rows:
        yield schema.parse(fields)


def recover_partial(partial: str, header: List[str]) -> Tuple[int, Dict[int, Tuple[tuple, int]], int]:
    """Scan a partial CSV and truncate it before the rows of its last frame (which may be incomplete).

    Returns (frame to restart from, {face id: (last box, last frame)} over the kept rows, next face id): exactly
    the tracker state an uninterrupted run had at that frame.
    """
    with open(partial, "r+", newline="", encoding="utf-8") as handle:
        if handle.readline().rstrip("\r\n").split(",") != header:
            raise UserError(f"{partial}: partial file has other columns; delete it or run without resuming")
        last_frame, last_offset = 0, handle.tell()
        committed: Dict[int, Tuple[tuple, int]] = {}  # rows of the frames before the last one
        pending: Dict[int, Tuple[tuple, int]] = {}  # rows of the last frame seen so far
        offset = handle.tell()
        while True:
            line = handle.readline()
            fields = line.rstrip("\r\n").split(",")
            if not line.endswith("\n") or len(fields) != len(header) or not fields[0].isdigit():
                break  # end of file, or an interrupted write: the rows from last_offset on are redone
            frame = int(fields[0])
            if frame != last_frame:
                committed.update(pending)
                pending = {}
                last_frame, last_offset = frame, offset
            if fields[3] == "1" and fields[2].isdigit():
                pending[int(fields[2])] = (tuple(float(v) for v in fields[5:9]), frame)
            offset = handle.tell()
        handle.seek(last_offset)
        handle.truncate()
    next_id = max(committed) + 1 if committed else 0
    return max(1, last_frame), committed, next_id


def check_resume(meta_path: str, partial: str, settings: dict) -> None:
    """Refuse to continue a partial file written with other settings, naming the first ones that differ."""
    saved = None
    if os.path.isfile(meta_path):
        with open(meta_path, encoding="utf-8") as handle:
            saved = json.load(handle)  # unreadable: the caller's guard.damaged_resume says what to do
    if saved == settings:
        return
    if not isinstance(saved, dict):
        raise UserError(
            f"{partial}: was written with other settings ({meta_path} is missing); delete it or drop --resume"
        )
    keys = [k for k in settings if saved.get(k) != settings[k]] + [k for k in saved if k not in settings]
    detail = "; ".join(f"{SETTING_NAMES.get(k, k)} {saved.get(k)!r} then, {settings.get(k)!r} now" for k in keys[:3])
    raise UserError(f"{partial}: was written with other settings ({detail}); delete it or drop --resume")
