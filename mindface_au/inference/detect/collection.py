"""A folder of videos -> one CSV per video, in worker processes, optionally one shard of the folder per machine.

- Videos are found recursively (`find_videos`); `a/b.mp4` under the input folder gives `a/b.csv` (and its sidecar
  `a/b.csv.json`) under the output folder (`a/b.mp4.csv` when two videos share a name up to the extension).
- Each video is written and resumed on its own: a finished CSV is kept and not redone, a partial one is continued
  when `resume` is set (else restarted). A video that cannot be read is reported and skipped; the others finish.
- `workers` processes each load the model once and take videos from a queue (largest first).
- `shard=(i, n)` takes a deterministic share of the videos: largest first, each to the shard with the fewest bytes
  so far (ties: lower shard), so shards are balanced by size and every machine computes the same split.
- A summary (per video: frames, faces, frames/s, seconds, status, error) is printed and written to
  `summary.json` (`summary-shard-I-of-N.json` for a shard) in the output folder.
"""

import json
import os
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from mindface_au.errors import UserError
from mindface_au.inference.detect.csvfile import sidecar_path
from mindface_au.inference.detect.run import detect_one
from mindface_au.inference.detect.sources import find_videos
from mindface_au.utils.io import atomic_write

__all__ = ["parse_shard", "shard_videos", "output_names", "detect_videos"]


def parse_shard(shard) -> Optional[Tuple[int, int]]:
    """(i, n) from "I/N" (0 <= I < N), a tuple, or None."""
    if shard is None or shard == "":
        return None
    if isinstance(shard, str):
        try:
            i, n = (int(v) for v in shard.split("/"))
        except ValueError:
            raise UserError(f"--shard: got {shard!r}, expected I/N with 0 <= I < N (e.g. 0/4)") from None
    else:
        i, n = (int(v) for v in shard)
    if n < 1 or not 0 <= i < n:
        raise UserError(f"--shard: got {i}/{n}, expected I/N with 0 <= I < N (e.g. 0/4)")
    return i, n


def shard_videos(sizes: Dict[str, int], shard: Optional[Tuple[int, int]]) -> List[str]:
    """The videos (keys of `sizes`, bytes) of shard (i, n), largest first; all of them when `shard` is None."""
    order = sorted(sizes, key=lambda v: (-sizes[v], v))
    if shard is None:
        return order
    i, n = shard
    loads = [0] * n
    mine = []
    for video in order:
        k = min(range(n), key=lambda j: (loads[j], j))
        loads[k] += sizes[video]
        if k == i:
            mine.append(video)
    return mine


def output_names(videos: Sequence[str]) -> Dict[str, str]:
    """{relative video path: relative CSV path}: the stem plus .csv, the full name plus .csv where stems clash."""
    stems: Dict[str, int] = {}
    for video in videos:
        stem = os.path.splitext(video)[0]
        stems[stem] = stems.get(stem, 0) + 1
    return {v: (os.path.splitext(v)[0] if stems[os.path.splitext(v)[0]] == 1 else v) + ".csv" for v in videos}


_WORKER: dict = {}


def _load(model_options: dict):
    from mindface_au.inference.loader import load_inference_model

    return load_inference_model(**model_options)


def _init_worker(model_options: dict) -> None:
    import cv2

    os.environ.setdefault("GLOG_v", "3")
    cv2.setNumThreads(int(model_options.get("threads") or 1))  # the face detector's pool: the worker's share
    _WORKER["model"] = _load(model_options)


def _one(task: Tuple[str, str, str, dict]) -> dict:
    """Run one video; never raises (the error becomes the video's status)."""
    rel, video, out, options = task
    record = {"video": rel, "output": out, "frames": 0, "faces": 0, "fps": None, "seconds": 0.0}
    if os.path.isfile(out) and os.path.isfile(sidecar_path(out)):
        return dict(record, status="done before")
    try:
        summary = detect_one(video, out, predictor=_WORKER["model"], progress=False, **options)
    except KeyboardInterrupt:
        raise
    except UserError as exc:
        return dict(record, status="failed", error=str(exc))
    except Exception as exc:  # noqa: BLE001  one bad video must not stop the others
        return dict(record, status="failed", error=f"{type(exc).__name__}: {exc}")
    record.update({k: summary.get(k) for k in ("frames", "faces", "no_face", "keyframes", "fps", "seconds")})
    return dict(record, status="ok")


def detect_videos(
    input_dir: str,
    output_dir: str,
    model_options: dict,
    workers: int = 1,
    shard=None,
    report: Optional[str] = None,
    progress: bool = True,
    predictor=None,
    **options,
) -> dict:
    """Detect AUs in every video under `input_dir`; see the module docstring. `model_options` are
    `load_inference_model`'s arguments (ckpt path, device, threads, config, batch_size); or pass a ready `predictor`
    (one process only). `options` go to `detect_one`. Returns the summary (videos, failed, summary path)."""
    if workers < 1:
        raise UserError(f"--workers: got {workers}, expected a positive integer")
    shard = parse_shard(shard)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise UserError(f"{output_dir}: output must be a folder for a folder of videos")
    for key, flag in (("overlay", "--overlay"), ("plot", "--plot")):
        if options.pop(key, None):
            raise UserError(f"{flag}: takes one video as --input, not a folder (the report covers folders)")
    videos = find_videos(input_dir)
    if not videos:
        raise UserError(f"{input_dir}: folder has no image files and no video files (.mp4, .avi, .mov, ...) under it")
    sizes = {v: os.path.getsize(os.path.join(input_dir, v)) for v in videos}
    mine = shard_videos(sizes, shard)
    names = output_names(videos)
    os.makedirs(output_dir, exist_ok=True)
    tasks = [(v, os.path.join(input_dir, v), os.path.join(output_dir, names[v]), options) for v in mine]
    for _, _, out, _ in tasks:
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    label = f" (shard {shard[0]}/{shard[1]}: {len(mine)} of {len(videos)} videos)" if shard else ""
    print(f"detect: {len(mine)} video(s) from {input_dir}{label}, {workers} worker(s)", file=sys.stderr)
    t0 = time.time()
    records: List[dict] = []

    def done(record: dict) -> None:
        records.append(record)
        if progress or record["status"] == "failed":
            extra = f": {record.get('error')}" if record["status"] == "failed" else ""
            print(f"[{len(records)}/{len(tasks)}] {record['video']} {record['status']}{extra}", file=sys.stderr)

    if workers == 1 or len(tasks) <= 1:
        _WORKER["model"] = predictor if predictor is not None else _load(model_options)
        try:
            for task in tasks:
                done(_one(task))
        finally:
            _WORKER.clear()
    else:
        if predictor is not None:
            raise UserError("--workers: each worker loads the model itself; pass a model file, not a predictor")
        import multiprocessing

        per_worker = dict(model_options)
        if not per_worker.get("threads"):
            per_worker["threads"] = max(1, len(os.sched_getaffinity(0)) // workers)
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(min(workers, len(tasks)), initializer=_init_worker, initargs=(per_worker,)) as pool:
            for record in pool.imap_unordered(_one, tasks):
                done(record)
    order = {v: i for i, v in enumerate(mine)}
    records.sort(key=lambda r: order[r["video"]])
    failed = sum(r["status"] == "failed" for r in records)
    name = "summary.json" if shard is None else f"summary-shard-{shard[0]}-of-{shard[1]}.json"
    summary = {
        "input": input_dir,
        "output": output_dir,
        "shard": None if shard is None else f"{shard[0]}/{shard[1]}",
        "videos": records,
        "failed": failed,
        "seconds": round(time.time() - t0, 3),
        "summary": os.path.join(output_dir, name),
    }
    with atomic_write(summary["summary"]) as handle:
        json.dump(summary, handle, indent=1)
    _print_table(records)
    if report:
        from mindface_au.inference.detect.report import write_report

        csvs = [r["output"] for r in records if r["status"] != "failed"]
        write_report(csvs, report, threshold=options.get("threshold", 0.5), k=options.get("prob_k", 0), index=True)
        summary["report"] = report
    return summary


def _print_table(records: List[dict]) -> None:
    print(f"{'video':40s} {'frames':>7s} {'faces':>7s} {'frame/s':>8s}  status", file=sys.stderr)
    for r in records:
        fps = "" if r.get("fps") is None else f"{r['fps']:.1f}"
        print(f"{r['video'][-40:]:40s} {r['frames']:7d} {r['faces']:7d} {fps:>8s}  {r['status']}", file=sys.stderr)
