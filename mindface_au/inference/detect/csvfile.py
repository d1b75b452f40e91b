"""The detect CSV on disk: the partial file and its resume, and reading a finished file back (by column name).

For `out.csv`, rows go to `out.csv.partial` as they are computed and `out.csv.partial.json` records the settings;
the partial file is renamed to `out.csv` only when the whole input is done, so `out.csv` is never half-written.
`out.csv.partial.state.json` (detect/tracker_state.py) holds the face tracker's state at the last flush.
After an interruption all three stay; resuming checks the settings match, cuts the partial file back to the last
flush, drops the rows of the last (possibly incomplete) frame and continues from that frame with the tracker
restored, so the rows equal an uninterrupted run's.
"""

import csv
import dataclasses
import hashlib
import json
import os
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from mindface_au.errors import UserError, param
from mindface_au.inference.detect.rows import RowSchema
from mindface_au.utils.guard import LOCK_SUFFIX

__all__ = [
    "WorkingFiles",
    "sidecar_path",
    "read_json",
    "state_path",
    "working_files",
    "read_detections",
    "iter_rows",
    "recover_partial",
    "check_resume",
    "input_identity",
    "csv_facts",
    "check_finished",
    "stale_partial",
    "IDENTITY_KEYS",
]

MIB = 1 << 20
# settings that say which inputs made the rows (not how): a change here means the input changed, not the user's
# choice of settings, so an earlier result is redone (with a note) rather than refused
IDENTITY_KEYS = ("input_file", "model_sha256")

# the names of detect's working files beside CSV `out`: written here only (see `WorkingFiles`)
SIDECAR_SUFFIX = ".json"  # out.json: the finished CSV's settings, model card and facts
PARTIAL_SUFFIX = ".partial"  # out.partial: the rows so far
PARTIAL_SETTINGS_SUFFIX = ".json"  # out.partial.json: the partial file's settings
STATE_SUFFIX = ".state.json"  # out.partial.state.json: the tracker state at the last flush (tracker_state.py)
SMOOTHED_SUFFIX = ".smoothed"  # out.partial.smoothed: the --prob-k smoothed rows, renamed to out when done


def sidecar_path(output: str) -> str:
    """The JSON file beside a detect CSV that records its run's settings and the model card."""
    return output + SIDECAR_SUFFIX


def state_path(partial: str) -> str:
    """The tracker state file beside a partial CSV."""
    return partial + STATE_SUFFIX


@dataclasses.dataclass(frozen=True)
class WorkingFiles:
    """The files detect keeps beside CSV `output`: the sidecar, the partial file, its settings, tracker state and
    smoothed copy, and the lock (`guard.OutputLock`'s name)."""

    output: str

    @property
    def sidecar(self) -> str:
        return sidecar_path(self.output)

    @property
    def partial(self) -> str:
        return self.output + PARTIAL_SUFFIX

    @property
    def settings(self) -> str:
        return self.partial + PARTIAL_SETTINGS_SUFFIX

    @property
    def state(self) -> str:
        return state_path(self.partial)

    @property
    def smoothed(self) -> str:
        return self.partial + SMOOTHED_SUFFIX

    @property
    def lock(self) -> str:
        return self.output + LOCK_SUFFIX

    def all(self) -> List[str]:
        return [self.sidecar, self.partial, self.settings, self.state, self.smoothed, self.lock]


def working_files(output: str) -> List[str]:
    """The files detect itself keeps beside CSV `output` (sidecar, partial file, its settings and tracker state,
    lock): no other output of the run may be given one of these names."""
    return WorkingFiles(output).all()


def input_identity(path: str, kind: str, files: Sequence[str] = ()) -> dict:
    """What identifies an input without reading all of it: a video's size, modification time and the sha256 of its
    first and last MiB; for images, their count and a sha256 over each file's name, size and modification time."""
    if kind == "video":
        stat = os.stat(path)
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            digest.update(handle.read(MIB))
            if stat.st_size > MIB:
                handle.seek(max(MIB, stat.st_size - MIB))
                digest.update(handle.read(MIB))
        return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ends_sha256": digest.hexdigest()}
    digest = hashlib.sha256()
    for file in files:
        stat = os.stat(file)
        name = os.fsencode(os.path.basename(file))
        digest.update(name + f"\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return {"images": len(files), "list_sha256": digest.hexdigest()}


def csv_facts(path: str) -> dict:
    """What a finished CSV holds, read back from the file: rows, frames, faces, rows without a face, its length in
    bytes and its sha256 (the sidecar records them; a re-run compares the file against them)."""
    digest = hashlib.sha256()
    rows = faces = size = 0
    frames = set()
    with open(path, "rb") as handle:
        header = handle.readline()
        digest.update(header)
        size += len(header)
        for line in handle:
            digest.update(line)
            size += len(line)
            fields = line.split(b",", 4)
            rows += 1
            if len(fields) > 3:
                frames.add(fields[0])
                faces += fields[3] == b"1"
    return {
        "rows": rows,
        "frames": len(frames),
        "faces": faces,
        "no_face": rows - faces,
        "bytes": size,
        "sha256": digest.hexdigest(),
    }


def read_json(path: str):
    """The JSON in `path`, or None where it is missing, unreadable or not JSON (a sidecar or summary to redo)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError, UnicodeError):
        return None


def _changed(key: str, then, now) -> str:
    if key == "model_sha256":
        return f"the model file changed since (sha256 {str(then)[:12]}... then, {str(now)[:12]}... now)"
    then, now = then if isinstance(then, dict) else {}, now if isinstance(now, dict) else {}
    parts = [f"{k} {then.get(k)!r} then, {now.get(k)!r} now" for k in now if then.get(k) != now.get(k)]
    return "the input changed since (" + "; ".join(p[:120] for p in parts[:2]) + ")"


def check_finished(out: str, settings: dict, prob_k: int) -> Tuple[str, str]:
    """Whether CSV `out` is this tool's finished result for `settings` (with `IDENTITY_KEYS`) and `prob_k`, judged
    by its sidecar and its content. Returns (verdict, why):

    - "done": the sidecar names the same settings and inputs, and the CSV is the file that run wrote (same length
      and sha256): keep it;
    - "redo": this tool's result for the same settings, but an input changed (video, model file), the CSV is
      damaged (truncated, emptied, edited), or the sidecar comes from a version of detect that did not record how to
      check it: do it again (`why` is the note to print);
    - "other": not this tool's result for these settings (another setting, no readable sidecar): an output that
      only `--overwrite` may replace.
    """
    side = read_json(sidecar_path(out))
    if not isinstance(side, dict) or not isinstance(side.get("settings"), dict):
        return "other", f"no readable sidecar {os.path.basename(sidecar_path(out))} beside it"
    theirs = dict(side["settings"])
    want = dict(settings, prob_k=int(prob_k))
    theirs.pop("batch_size", None)
    for key in sorted(set(want) | set(theirs)):
        if key not in IDENTITY_KEYS and theirs.get(key) != want.get(key):
            return "other", f"written with {key}={theirs.get(key)!r}, this run has {want.get(key)!r}"
    recorded = side.get("output")
    if any(key not in theirs for key in IDENTITY_KEYS) or not isinstance(recorded, dict):
        return "redo", "its sidecar is from an earlier version of detect that did not record its inputs and rows"
    for key in IDENTITY_KEYS:
        if theirs.get(key) != want.get(key):
            return "redo", _changed(key, theirs.get(key), want.get(key))
    try:
        size = os.path.getsize(out)
    except OSError:
        size = -1
    if size != recorded.get("bytes"):
        return "redo", f"the CSV is damaged ({size} bytes, its run wrote {recorded.get('bytes')})"
    facts = csv_facts(out)
    if facts["sha256"] != recorded.get("sha256"):
        return "redo", "the CSV is damaged (its content is not what its run wrote: sha256 differs)"
    return "done", ""


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
            f"{partial}: was written with other settings ({meta_path} is missing); delete it or drop {param('resume')}"
        )
    keys = [k for k in settings if saved.get(k) != settings[k]] + [k for k in saved if k not in settings]
    detail = "; ".join(f"{param(k)} {saved.get(k)!r} then, {settings.get(k)!r} now" for k in keys[:3])
    raise UserError(f"{partial}: was written with other settings ({detail}); delete it or drop {param('resume')}")


def stale_partial(meta_path: str, settings: dict) -> Optional[str]:
    """Why a partial file cannot be continued although its settings are this run's: an input changed since it was
    written (or its settings file predates the input checks). None when it can be continued, or when its settings
    differ (which `check_resume` refuses, naming them)."""
    saved = read_json(meta_path)
    if not isinstance(saved, dict):
        return None
    if any(saved.get(k) != settings.get(k) for k in settings if k not in IDENTITY_KEYS):
        return None
    if any(key not in saved for key in IDENTITY_KEYS):
        return "its settings file is from an earlier version of detect that did not record its inputs"
    for key in IDENTITY_KEYS:
        if saved.get(key) != settings.get(key):
            return _changed(key, saved.get(key), settings.get(key))
    return None
