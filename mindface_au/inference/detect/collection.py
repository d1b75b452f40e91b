"""A folder of videos -> one CSV per video, in worker processes, optionally one shard of the folder per machine.

- Videos are found recursively (`find_videos`); `a/b.mp4` under the input folder gives `a/b.csv` (and its sidecar
  `a/b.csv.json`) under the output folder (`a/b.mp4.csv` when two videos share a name up to the extension).
- Each video is written and resumed on its own, under its own lock (`OUT.csv.lock`). A finished CSV is kept and
  not redone ("done before") only when its content says so (`csvfile.check_finished`): its sidecar names the same
  settings (see `DetectOptions.settings`, plus `prob_k`), the same inputs (the video's size, modification time and the
  hash of its first and last MiB; the model file's sha256, computed once per run) and the CSV's length and sha256.
  The same tool's result whose input changed, whose CSV is damaged, or whose sidecar predates these checks is
  redone, with a note. Any other existing CSV (or sidecar) is refused before anything runs unless `overwrite` (the
  CLI's --overwrite), which redoes every video of the run. A partial CSV is continued when `resume` is set (else
  restarted). A video that cannot be read (or a broken link) is reported and failed; the others finish.
- `workers` processes each load the model once and take videos from a queue (largest first).
- `shard=(i, n)` takes a deterministic share of the videos: largest first, each to the shard with the fewest bytes
  so far (ties: lower shard), so shards are balanced by size and every machine computes the same split.
- A summary (per video: frames, faces, frames/s, seconds, status, error) is printed and written to
  `summary.json` (`summary-shard-I-of-N.json` for a shard) in the output folder. An existing summary of the same
  input folder and shard is this tool's own record and is replaced; any other file of that name needs `overwrite`.
  The summary file is locked for the run, so a second run of the same shard into the same folder is refused.
- Each shard summary records the whole video list and N; `merge_summaries(folder)` joins the shards' summaries into
  `summary.json` (after a multi-machine run), checking every video of the list is in exactly one shard.
- `--report` (an index page and one page per video beside its CSV) is an output like any other: an existing one
  is replaced only with `overwrite`.
"""

import heapq
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mindface_au.errors import UserError, current_parameter_names, param, use_parameter_names
from mindface_au.inference.detect.csvfile import WorkingFiles, check_finished, input_identity, read_json, sidecar_path
from mindface_au.inference.detect.model import detect_model, model_digest, model_threshold
from mindface_au.inference.detect.options import DetectOptions
from mindface_au.inference.detect.run import check_working_names, detect_one
from mindface_au.inference.detect.sources import find_videos
from mindface_au.utils import guard
from mindface_au.utils.cpus import available_cpus
from mindface_au.utils.io import atomic_write

__all__ = [
    "parse_shard",
    "msrun_shard",
    "shard_videos",
    "output_names",
    "detect_videos",
    "finished_before",
    "merge_summaries",
]

SUMMARY_NAME = "summary.json"
SHARD_SUMMARY = "summary-shard-{i}-of-{n}.json"


def parse_shard(shard) -> Optional[Tuple[int, int]]:
    """(i, n) from "I/N" (0 <= I < N), a tuple, or None."""
    if shard is None or shard == "":
        return None
    if isinstance(shard, str):
        try:
            i, n = (int(v) for v in shard.split("/"))
        except ValueError:
            raise UserError(f"{param('shard')}: got {shard!r}, expected I/N with 0 <= I < N (e.g. 0/4)") from None
    else:
        i, n = (int(v) for v in shard)
    if n < 1 or not 0 <= i < n:
        raise UserError(f"{param('shard')}: got {i}/{n}, expected I/N with 0 <= I < N (e.g. 0/4)")
    return i, n


def msrun_shard() -> Optional[Tuple[int, int]]:
    """This process's (rank, world size) under msrun (`mindface-au launch -- detect ...`), from the RANK_ID and
    MS_WORKER_NUM msrun exports; None in msrun's scheduler process, which has no videos to do.

    No MindSpore communication is set up: the shards need no exchange between ranks. msrun exports RANK_ID before a
    worker starts when it knows the ranks (one machine, or `--node_rank` on each of several machines)."""
    if os.environ.get("MS_ROLE") == "MS_SCHED":
        return None
    rank, world = os.environ.get("RANK_ID", ""), os.environ.get("MS_WORKER_NUM", "")
    if not (rank.isdigit() and world.isdigit()):
        raise UserError(
            f"{param('shard')} auto: takes this worker's shard from msrun (RANK_ID, MS_WORKER_NUM), which are not set; "
            "run `mindface-au launch --workers N -- detect ...` (with "
            "`--msrun-arg=--node_rank=K` on several machines), "
            f"or give {param('shard')} I/N"
        )
    return parse_shard(f"{rank}/{world}")


def shard_videos(sizes: Dict[str, int], shard: Optional[Tuple[int, int]]) -> List[str]:
    """The videos (keys of `sizes`, bytes) of shard (i, n), largest first; all of them when `shard` is None."""
    order = sorted(sizes, key=lambda v: (-sizes[v], v))
    if shard is None:
        return order
    i, n = shard
    used: List[Tuple[int, int]] = []  # heap of (load, shard) of the shards given a video so far
    fresh = 0  # the lowest shard not given one (load 0): shards past it need no memory, whatever N is
    mine = []
    for video in order:
        if fresh < n and (not used or (0, fresh) < used[0]):
            k, load = fresh, 0
            fresh += 1
        else:
            load, k = heapq.heappop(used)
        heapq.heappush(used, (load + sizes[video], k))
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


def _init_worker(model_options: dict, names: Optional[Dict[str, str]] = None) -> None:
    import cv2

    use_parameter_names(names or {})  # messages spell parameters as the parent does (its CLI flags)
    os.environ.setdefault("GLOG_v", "3")
    cv2.setNumThreads(int(model_options.get("threads") or 1))  # the face detector's pool: the worker's share
    _WORKER["model"] = _load(model_options)


def finished_before(out: str, settings: dict, prob_k: int) -> Tuple[bool, str]:
    """(True, "") when `out` is this tool's finished CSV for `settings` and `prob_k` (its sidecar and content say
    so, see `csvfile.check_finished`), else (False, why not)."""
    verdict, why = check_finished(out, settings, prob_k)
    return verdict == "done", why


def _record(rel: str, out: str) -> dict:
    return {"video": rel, "output": out, "frames": 0, "faces": 0, "fps": None, "seconds": 0.0}


def _done_record(rel: str, out: str) -> dict:
    """The record of a CSV kept from an earlier run, with the numbers its sidecar holds."""
    result = (read_json(sidecar_path(out)) or {}).get("result") or {}
    record = _record(rel, out)
    record.update({k: result[k] for k in ("frames", "faces", "no_face", "keyframes", "seconds") if k in result})
    return dict(record, status="done before")


def _one(task: Tuple[str, str, str, DetectOptions, dict]) -> dict:
    """Run one video; never raises (the error becomes the video's status)."""
    rel, video, out, options, more = task
    record = _record(rel, out)
    try:
        summary = detect_one(video, out, options=options, predictor=_WORKER["model"], progress=False, **more)
    except KeyboardInterrupt:
        raise
    except UserError as exc:
        return dict(record, status="failed", error=str(exc))
    except Exception as exc:  # noqa: BLE001  one bad video must not stop the others
        return dict(record, status="failed", error=f"{type(exc).__name__}: {exc}")
    record.update({k: summary.get(k) for k in ("frames", "faces", "no_face", "keyframes", "fps", "seconds")})
    if summary.get("notes"):
        record["notes"] = summary["notes"]
    return dict(record, status="ok")


def _model_facts(predictor, model_options: dict, workers: int) -> Tuple[str, float, Optional[str], Any]:
    """(model path, the threshold it was validated with, its sha256, the ModelFile a one-process run loads it from
    or None): the model file is read once here, for every video."""
    if predictor is not None:
        model = detect_model(predictor)
        # the sha256 a single-video run records too (the file's, when a model built in memory names one)
        return model.path, model_threshold(model.file), model_digest(model.path, model), None
    from mindface_au.inference.model_file import read_model_file

    given = {k: model_options[k] for k in ("config", "device", "threads") if k in model_options}
    if workers != 1:  # only its settings are read here: the workers each open it on the device
        given["device"] = "CPU"
    mf = read_model_file(model_options.get("path") or "", **given)
    return mf.path, model_threshold(mf), mf.sha256, mf if workers == 1 else None


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
    (one process only). `options` go to `detect_one` (a DetectOptions, or its fields, and resume, overwrite, ...);
    the threshold is resolved against the model file once here. Returns the summary (videos, failed, summary
    path)."""
    if workers < 1:
        raise UserError(f"{param('workers')}: got {workers}, expected a positive integer")
    shard = parse_shard(shard)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise guard.EnvironmentFailure(
            f"{output_dir}: is a file, not a folder (a folder of videos needs an {param('output')} folder)"
        )
    opts, options = DetectOptions.split(options, options.pop("options", None))
    for key, flag in (("overlay", "--overlay"), ("plot", "--plot")):
        if options.pop(key, None):
            raise UserError(
                f"{flag}: takes one video as {param('input_path')}, not a folder (the report covers folders)"
            )
    videos = find_videos(input_dir)
    if not videos:
        raise UserError(f"{input_dir}: folder has no image files and no video files (.mp4, .avi, .mov, ...) under it")
    sizes, unreadable = {}, {}
    for v in videos:
        try:
            sizes[v] = os.path.getsize(os.path.join(input_dir, v))
        except OSError as exc:  # a broken symbolic link, a file gone since the listing: that video fails
            sizes[v] = 0
            what = "a broken symbolic link" if os.path.islink(os.path.join(input_dir, v)) else exc.strerror
            unreadable[v] = f"{os.path.join(input_dir, v)}: cannot read ({what})"
    mine = shard_videos(sizes, shard)
    names = output_names(videos)
    overwrite = bool(options.get("overwrite"))
    model_path, threshold, sha256, mf = _model_facts(predictor, model_options, workers)
    inputs = [input_dir, model_path]
    name = SUMMARY_NAME if shard is None else SHARD_SUMMARY.format(i=shard[0], n=shard[1])
    summary_path = os.path.join(output_dir, name)
    guard.check_not_input(summary_path, inputs)
    outs = [os.path.join(output_dir, names[v]) for v in videos]
    check_working_names([summary_path, report], outs + [summary_path])
    opts = opts.resolve(threshold)
    options["model_sha256"] = options.get("model_sha256") or sha256  # once per run
    old = read_json(summary_path)
    own_summary = (
        isinstance(old, dict)
        and isinstance(old.get("input"), str)
        and os.path.realpath(old["input"]) == os.path.realpath(input_dir)
        and old.get("shard") == (None if shard is None else f"{shard[0]}/{shard[1]}")
    )
    if not own_summary:
        guard.check_new_output(summary_path, overwrite)
    tasks, kept, conflicts, failed = [], [], [], []
    for v in mine:
        video, out = os.path.join(input_dir, v), os.path.join(output_dir, names[v])
        if v in unreadable:
            failed.append(dict(_record(v, out), status="failed", error=unreadable[v]))
            continue
        guard.check_not_input(out, [video, model_path])
        if os.path.lexists(out) and not overwrite:
            settings = opts.settings(video, model_path, input_identity(video, "video"), options["model_sha256"])
            verdict, why = check_finished(out, settings, opts.prob_k)
            if verdict == "done":
                kept.append(_done_record(v, out))
                continue
            if verdict == "redo":  # this tool's own result, no longer right: done again
                print(f"{out}: redone: {why}", file=sys.stderr)
                tasks.append((v, video, out, opts, dict(options, overwrite=True)))
                continue
            conflicts.append(f"{out}: exists, not this tool's result for these settings ({why})")
        elif os.path.lexists(sidecar_path(out)) and not overwrite:
            if not (options.get("resume") and os.path.isfile(WorkingFiles(out).partial)):
                conflicts.append(f"{sidecar_path(out)}: exists without its CSV")
        tasks.append((v, video, out, opts, options))
    if conflicts:
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        raise UserError(f"{conflicts[0]}{more}; pass {param('overwrite')} to replace, or choose another output folder")
    if report:
        pages = [os.path.splitext(os.path.join(output_dir, names[v]))[0] + ".html" for v in mine]
        guard.check_outputs([report] + pages, inputs + [os.path.join(input_dir, v) for v in mine], overwrite)
        check_working_names(pages, outs + [summary_path])
    os.makedirs(output_dir, exist_ok=True)
    for _, _, out, _, _ in tasks:
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    lock = guard.OutputLock(summary_path)  # one run per shard and output folder; each CSV has its own lock too
    lock.acquire()
    try:
        return _run_tasks(
            tasks, kept + failed, mine, videos, input_dir, output_dir, summary_path, shard, workers, predictor,
            model_options if mf is None else dict(model_options, path=mf), progress, report, opts,
        )  # fmt: skip
    finally:
        lock.release()


def _run_tasks(
    tasks, kept, mine, videos, input_dir, output_dir, summary_path, shard, workers, predictor, model_options,
    progress, report, options: DetectOptions,
) -> dict:  # fmt: skip
    """Run the videos of `tasks` (the output checks done, the summary locked) and write the summary."""
    label = f" (shard {shard[0]}/{shard[1]}: {len(mine)} of {len(videos)} videos)" if shard else ""
    print(f"detect: {len(mine)} video(s) from {input_dir}{label}, {workers} worker(s)", file=sys.stderr)
    t0 = time.time()
    records: List[dict] = list(kept)
    for record in kept:
        if record["status"] == "failed":
            print(f"{record['video']} failed: {record['error']}", file=sys.stderr)
        elif progress:
            print(f"{record['video']}: done before (same inputs, settings and content), kept", file=sys.stderr)

    def done(record: dict) -> None:
        records.append(record)
        if progress or record["status"] == "failed":
            extra = f": {record.get('error')}" if record["status"] == "failed" else ""
            n = len(records) - len(kept)
            print(f"[{n}/{len(tasks)}] {record['video']} {record['status']}{extra}", file=sys.stderr)

    if not tasks:
        pass  # every video was done before: nothing to load
    elif workers == 1 or len(tasks) <= 1:
        _WORKER["model"] = predictor if predictor is not None else _load(model_options)
        try:
            for task in tasks:
                done(_one(task))
        finally:
            _WORKER.clear()
    else:
        if predictor is not None:
            raise UserError(
                f"{param('workers')}: each worker loads the model itself; pass a model file, not a predictor"
            )
        import multiprocessing

        per_worker = dict(model_options)
        if not per_worker.get("threads"):
            per_worker["threads"] = max(1, available_cpus() // workers)
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(
            min(workers, len(tasks)), initializer=_init_worker, initargs=(per_worker, current_parameter_names())
        ) as pool:
            for record in pool.imap_unordered(_one, tasks):
                done(record)
    order = {v: i for i, v in enumerate(mine)}
    records.sort(key=lambda r: order[r["video"]])
    failed = sum(r["status"] == "failed" for r in records)
    summary = {
        "input": input_dir,
        "output": output_dir,
        "shard": None if shard is None else f"{shard[0]}/{shard[1]}",
        "shards": 1 if shard is None else shard[1],
        "all_videos": list(videos),  # the whole folder's list: the merge checks every one is in exactly one shard
        "videos": records,
        "failed": failed,
        "seconds": round(time.time() - t0, 3),
        "summary": summary_path,
    }
    with atomic_write(summary["summary"]) as handle:
        json.dump(summary, handle, indent=1)
    _print_table(records)
    if report:
        from mindface_au.inference.detect.report import write_report

        write_report(
            [r["output"] for r in records if r["status"] != "failed"],
            report,
            threshold=options.threshold,
            k=options.prob_k,
            index=True,
            records=records,
            root=output_dir,
        )
        summary["report"] = report
    return summary


def _print_table(records: List[dict]) -> None:
    print(f"{'video':40s} {'frames':>7s} {'faces':>7s} {'frame/s':>8s}  status", file=sys.stderr)
    for r in records:
        fps = "" if r.get("fps") is None else f"{r['fps']:.1f}"
        print(f"{r['video'][-40:]:40s} {r['frames']:7d} {r['faces']:7d} {fps:>8s}  {r['status']}", file=sys.stderr)


def _check_accounted(output_dir: str, n: int, shards: Dict[int, dict]) -> None:
    """Refuse shard summaries that do not account for every video of the folder exactly once (naming the videos
    missing or found twice), or that are not this version's (without the folder's video list and N)."""
    lists = []
    for i in range(n):
        data = shards[i]
        if not isinstance(data.get("all_videos"), list) or data.get("shards") != n:
            raise UserError(
                f"{data['summary']}: records no video list and shard count (written by an earlier version of "
                "detect, or not for this run); run that shard again"
            )
        lists.append(sorted(map(str, data["all_videos"])))
    if any(other != lists[0] for other in lists[1:]):
        raise UserError(f"{output_dir}: the shard summaries list different videos (the folder changed between "
                        "shards?); run every shard again on the same folder")  # fmt: skip
    seen: Dict[str, int] = {}
    for i in range(n):
        for record in shards[i]["videos"]:
            video = str(record.get("video") if isinstance(record, dict) else record)
            seen[video] = seen.get(video, 0) + 1
    missing = [v for v in lists[0] if v not in seen]
    twice = sorted(v for v, count in seen.items() if count > 1)
    extra = sorted(v for v in seen if v not in set(lists[0]))
    problems = []
    for words, names in (("in no shard", missing), ("in more than one shard", twice), ("not in the list", extra)):
        if names:
            shown = ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")
            problems.append(f"{len(names)} video(s) {words}: {shown}")
    if problems:
        raise UserError(f"{output_dir}: the shards do not account for every video once; " + "; ".join(problems))


def merge_summaries(output_dir: str, overwrite: bool = False) -> dict:
    """Join the shard summaries (`summary-shard-I-of-N.json`) of `output_dir` into its `summary.json`, after every
    shard of a multi-machine or `launch` run finished. All N shards of one input folder must be there (a missing
    shard is named), and every video of the folder's list (which each shard records, with N) must be in exactly one
    shard: a video in no shard's results, or in two, is named and refused. The merged file lists every video,
    `failed` counts the videos whose status is failed and `seconds` is the slowest shard's. An existing
    `summary.json` of another input folder needs `overwrite`."""
    import glob
    import re

    if not os.path.isdir(output_dir):
        raise UserError(f"{output_dir}: not a folder (expected a detect output folder holding shard summaries)")
    found: Dict[int, Dict[int, dict]] = {}
    for path in sorted(glob.glob(os.path.join(glob.escape(output_dir), "summary-shard-*-of-*.json"))):
        match = re.fullmatch(r"summary-shard-(\d+)-of-(\d+)\.json", os.path.basename(path))
        data = read_json(path)
        if match is None:
            continue
        if not isinstance(data, dict) or not isinstance(data.get("videos"), list):
            raise UserError(f"{path}: not a detect shard summary (damaged?); run that shard again")
        found.setdefault(int(match.group(2)), {})[int(match.group(1))] = dict(data, summary=path)
    if not found:
        raise UserError(f"{output_dir}: no shard summaries (summary-shard-I-of-N.json) to merge")
    if len(found) > 1:
        raise UserError(f"{output_dir}: shard summaries of different shard counts {sorted(found)}; keep one run's")
    ((n, shards),) = found.items()
    missing = [i for i in range(n) if i not in shards]
    if missing:
        names = ", ".join(SHARD_SUMMARY.format(i=i, n=n) for i in missing)
        raise UserError(f"{output_dir}: shard(s) not finished, no {names}; run them (or wait) and merge again")
    inputs = {os.path.realpath(s.get("input") or "") for s in shards.values()}
    if len(inputs) != 1:
        raise UserError(f"{output_dir}: the shard summaries are of different input folders; keep one run's")
    input_dir = shards[0].get("input")
    _check_accounted(output_dir, n, shards)
    target = os.path.join(output_dir, SUMMARY_NAME)
    old = read_json(target)
    own = isinstance(old, dict) and os.path.realpath(str(old.get("input"))) == inputs.pop()
    if not own:
        guard.check_new_output(target, overwrite)
    videos = [v for i in range(n) for v in shards[i]["videos"]]
    summary = {
        "input": input_dir,
        "output": output_dir,
        "shard": None,
        "shards": n,
        "shard_summaries": [shards[i]["summary"] for i in range(n)],
        "all_videos": list(shards[0]["all_videos"]),
        "videos": videos,
        "failed": sum(v.get("status") == "failed" for v in videos),
        "seconds": max(float(shards[i].get("seconds") or 0.0) for i in range(n)),
        "summary": target,
    }
    with guard.OutputLock(target), atomic_write(target) as handle:
        json.dump(summary, handle, indent=1)
    _print_table(videos)
    return summary
