"""One input (image, folder of images or video) -> one detect CSV, streamed; `iter_detections` is the loop.

Pipeline per frame: decode -> faces (MTCNN keyframes + tracking, MTCNN on every frame, Haar, or none with
aligned inputs) -> aligned crop -> batch on the fly -> network -> rows written in frame order. Memory stays flat
whatever the video length: only one batch of crops and the rows waiting for it are held. The model is any file
`load_inference_model` takes (.ckpt, .mindir, .onnx); `iter_detections` records the seconds spent in each stage
(decode, detect_faces, align, network, write).

`every=N` processes frames 1, 1+N, 1+2N, ... (the others are skipped without decoding): only processed frames
get rows, `frame` and `timestamp` keep the real index and time, and `max_gap` and the `prob_k` window count
processed frames. Face detection searches a copy downscaled to `detect_size` pixels on its longest side.
"""

import collections
import contextlib
import csv
import json
import math
import os
import sys
import tempfile
import time
from typing import Callable, Deque, Dict, Iterator, List, Optional, Sequence

import numpy as np

from mindface_au.data.transforms import preprocess_faces
from mindface_au.errors import UserError
from mindface_au.inference.detect.csvfile import (
    check_finished,
    check_resume,
    csv_facts,
    input_identity,
    recover_partial,
    sidecar_path,
    stale_partial,
    working_files,
)
from mindface_au.inference.detect.rows import DetectionRow, RowSchema
from mindface_au.inference.detect.smoothing import smooth_csv
from mindface_au.inference.detect.sources import Frame, FrameSource, open_source
from mindface_au.inference.detect.tracking import KEYFRAME_EVERY, FaceFinder
from mindface_au.inference.faces import DETECT_SIZE, Face, IoUTracker, create_detector
from mindface_au.utils import guard
from mindface_au.utils.io import atomic_write, ensure_output_folder

__all__ = [
    "STAGES",
    "StageTimer",
    "iter_detections",
    "detect_one",
    "model_au_names",
    "check_options",
    "run_settings",
    "model_file",
    "model_digest",
    "check_working_names",
    "open_input",
]

MAX_QUEUE_ROWS = 4096  # run a partial batch rather than hold more rows than this (sparse faces in long videos)
STAGES = ("decode", "detect_faces", "align", "network", "write")  # keys of the summary's "stage_seconds"
SIDECAR_VERSION = 2  # 2: settings name the inputs' identity, "output" what the CSV holds (1 is redone on re-runs)


class StageTimer:
    """Seconds spent per stage of a run (`STAGES`), summed over frames."""

    def __init__(self) -> None:
        self.seconds: Dict[str, float] = dict.fromkeys(STAGES, 0.0)

    def add(self, stage: str, since: float) -> float:
        """Add the time from `since` (a perf_counter value) to `stage`; returns now."""
        now = time.perf_counter()
        self.seconds[stage] += now - since
        return now

    def summary(self) -> Dict[str, float]:
        return {k: round(v, 4) for k, v in self.seconds.items()}


def model_au_names(model) -> List[str]:
    """The AU names of a loaded model (InferenceModel or Predictor), the ABAW set when it does not say."""
    from mindface_au.config import AU_NAMES

    names = getattr(model, "au_names", None) or getattr(getattr(model, "model", None), "au_names", None)
    return list(names) if names else list(AU_NAMES)


def iter_detections(
    path_or_source,
    predictor,
    aligned: bool = False,
    detector: str = "mtcnn",
    all_faces: bool = False,
    start: int = 1,
    tracker: Optional[IoUTracker] = None,
    on_frame: Optional[Callable[[Frame], None]] = None,
    min_face_size: int = 20,
    every: int = 1,
    detect_size: int = DETECT_SIZE,
    timer: Optional[StageTimer] = None,
    track: bool = True,
    keyframe_every: int = KEYFRAME_EVERY,
    start_time: float = 0.0,
    end_time: Optional[float] = None,
    au_names: Optional[Sequence[str]] = None,
    finder_out: Optional[list] = None,
) -> Iterator[DetectionRow]:
    """Rows (DetectionRow) for every processed frame and face of an input, in frame order, computed in batches.

    `predictor`: an InferenceModel (mindface_au.inference.loader) or a Predictor. The tracker counts processed
    frames (frame 1 + k * every is step k + 1), so its `max_age` is in processed frames. `track=False` runs the
    face detector on every frame; otherwise faces are followed between keyframes (see `tracking`).
    `au_names` default to the model's. `finder_out`, if given, receives the FaceFinder (for its keyframe count).
    """
    source = path_or_source if isinstance(path_or_source, FrameSource) else open_source(path_or_source)
    det = None if aligned else create_detector(detector, min_face_size=min_face_size, max_side=detect_size)
    tracker = tracker or IoUTracker()
    finder = None if aligned else FaceFinder(det, all_faces, tracker, track=track, keyframe_every=keyframe_every)
    if finder_out is not None:
        finder_out.append(finder)
    timer = timer if timer is not None else StageTimer()
    schema = RowSchema(au_names or model_au_names(predictor), with_file=source.kind == "images")
    spec = predictor.face_input
    size = spec.size
    pad = source.kind == "video" or (source.count or 0) > predictor.batch_size
    queue: Deque[DetectionRow] = collections.deque()
    crops: List[np.ndarray] = []

    def run_batch() -> None:
        if crops:
            t = time.perf_counter()
            x = preprocess_faces(crops, spec)
            t = timer.add("align", t)
            probs = predictor.predict(x, pad=pad)
            timer.add("network", t)
            for row in queue:
                if row.slot is not None:
                    row.probs, row.slot = probs[row.slot], None
            crops.clear()

    frames = source.frames(start, every, start_time, end_time)
    while True:
        t = time.perf_counter()
        frame = next(frames, None)
        timer.add("decode", t)
        if frame is None:
            break
        faces, ids, frame_crops = [], [], []
        if frame.image is not None and aligned:
            h, w = frame.image.shape[:2]
            faces, ids, frame_crops = [Face((0.0, 0.0, float(w), float(h)))], [0], [frame.image]
        elif frame.image is not None:
            t = time.perf_counter()
            faces, ids = finder.find(frame.image, (frame.index - 1) // every + 1)
            t = timer.add("detect_faces", t)
            frame_crops = [det.crop(frame.image, f, size) for f in faces]
            timer.add("align", t)
        if not faces:
            queue.append(DetectionRow(frame.index, frame.timestamp, name=frame.name, schema=schema))
        for face, fid, crop in zip(faces, ids, frame_crops):
            row = DetectionRow(frame.index, frame.timestamp, fid, face, name=frame.name, slot=len(crops), schema=schema)
            queue.append(row)
            crops.append(crop)
        if len(crops) >= predictor.batch_size or len(queue) > MAX_QUEUE_ROWS:
            run_batch()
        while queue and queue[0].slot is None:
            yield queue.popleft()
        if on_frame is not None:
            on_frame(frame)
    run_batch()
    while queue:
        yield queue.popleft()


def check_options(
    prob_k: int = 0,
    threshold: float = 0.5,
    detector: str = "mtcnn",
    min_face_size: int = 20,
    max_gap: int = 30,
    every: int = 1,
    detect_size: int = DETECT_SIZE,
    keyframe_every: int = KEYFRAME_EVERY,
    start_time: float = 0.0,
    end_time: Optional[float] = None,
) -> None:
    """Refuse bad option values with one line naming the option."""
    if prob_k < 0:
        raise UserError(f"--prob-k: got {prob_k}, expected an integer >= 0")
    if not 0.0 <= threshold <= 1.0:
        raise UserError(f"--threshold: got {threshold}, expected 0 <= t <= 1")
    if detector not in ("mtcnn", "haar"):
        raise UserError(f"--detector: got {detector!r}, expected mtcnn or haar")
    if min_face_size < 12:
        raise UserError(f"--min-face-size: got {min_face_size}, expected at least 12 pixels")
    if max_gap < 0:
        raise UserError(f"--max-gap: got {max_gap}, expected an integer >= 0")
    if every < 1:
        raise UserError(f"--every: got {every}, expected a positive integer (1 = every frame)")
    if detect_size < 0 or 0 < detect_size < 32:
        raise UserError(f"--detect-size: got {detect_size}, expected 0 (full frame) or at least 32 pixels")
    if keyframe_every < 1:
        raise UserError(f"--keyframe-every: got {keyframe_every}, expected a positive integer")
    if not math.isfinite(start_time) or start_time < 0:
        raise UserError(f"--start: got {start_time}, expected a finite number of seconds >= 0")
    if end_time is not None and not math.isfinite(end_time):
        raise UserError(f"--end: got {end_time}, expected a finite number of seconds (omit --end for the end)")
    if end_time is not None and end_time < start_time:
        raise UserError(f"--end: got {end_time}, expected seconds >= --start ({start_time})")


def run_settings(
    input_path: str,
    model_path: str,
    aligned: bool = False,
    detector: str = "mtcnn",
    all_faces: bool = False,
    threshold: float = 0.5,
    min_face_size: int = 20,
    max_gap: int = 30,
    every: int = 1,
    detect_size: int = DETECT_SIZE,
    track: bool = True,
    keyframe_every: int = KEYFRAME_EVERY,
    start_time: float = 0.0,
    end_time: Optional[float] = None,
    input_file: Optional[dict] = None,
    model_sha256: Optional[str] = None,
    **_ignored,
) -> dict:
    """The settings that decide a CSV's rows: what must not change between an interrupted run and its resume, and
    what a finished CSV's sidecar must hold for a re-run to keep it (with `prob_k`). `input_file` (see
    `csvfile.input_identity`) and `model_sha256` identify the inputs behind the paths."""
    return _settings(
        input_path,
        model_path,
        aligned,
        detector,
        all_faces=bool(all_faces),
        threshold=float(threshold),
        min_face_size=int(min_face_size),
        max_gap=int(max_gap),
        every=int(every),
        detect_size=int(detect_size),
        track=bool(track) and detector == "mtcnn",
        keyframe_every=int(keyframe_every),
        start_time=float(start_time),
        end_time=None if end_time is None else float(end_time),
        input_file=input_file,
        model_sha256=model_sha256,
    )


def model_file(predictor) -> str:
    """The model file a loaded model (InferenceModel or Predictor) came from ("" when unknown)."""
    return getattr(getattr(predictor, "model", predictor), "path", "") or ""


def model_digest(model_path: str, predictor=None) -> Optional[str]:
    """The sha256 of the model file (computed once per run: a folder of videos passes it to every video), or the
    one a loaded model already knows; None when there is no file to hash."""
    known = getattr(getattr(predictor, "model", predictor), "sha256", None) if predictor is not None else None
    if known:
        return str(known)
    if model_path and os.path.isfile(model_path):
        from mindface_au.models.checkpoint import sha256_file

        return sha256_file(model_path)
    return None


def _utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def open_input(path: str, stack: contextlib.ExitStack) -> FrameSource:
    """`open_source(path)`, but a file whose name is not valid UTF-8 (which crashes OpenCV) is opened through a
    symbolic link with a plain name in a temporary folder that lives as long as `stack`; a folder holding such
    image names is refused in one line."""
    if _utf8(path) or os.path.isdir(path) or not os.path.exists(path):
        source = open_source(path)
        bad = [f for f in source.files if not _utf8(f)]
        if bad:
            raise UserError(f"{os.fsencode(bad[0])!r}: file name is not valid UTF-8 (OpenCV cannot open it); rename it")
        return source
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="mindface-au-input."))
    ext = os.path.splitext(path)[1]
    link = os.path.join(folder, "input" + (ext if _utf8(ext) else ""))
    os.symlink(os.path.abspath(path), link)
    source = open_source(link)
    source.path = path  # the settings and messages name the user's file; OpenCV reads the link
    return source


def check_working_names(outputs: Sequence[Optional[str]], owners: Sequence[str]) -> None:
    """Refuse an output named like one of detect's own working files of `owners` (sidecar, partial file, lock):
    detect would delete or overwrite it."""
    working = {os.path.abspath(w): w for owner in owners for w in working_files(owner)}
    for out in outputs:
        if out and os.path.abspath(out) in working:
            raise UserError(f"{out}: is the name of one of detect's own working files; choose another path")


def _read_sidecar(path: str) -> Optional[dict]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError, UnicodeError):
        return None
    return data if isinstance(data, dict) else None


def _settings(input_path: str, model_path: str, aligned: bool, detector: str, **options) -> dict:
    settings = {
        "input": os.path.abspath(input_path),
        "model": os.path.abspath(model_path),
        "aligned": bool(aligned),
        "detector": None if aligned else detector,
    }
    settings.update(options)
    if aligned:
        settings["detect_size"] = None
        settings["track"] = None
    return settings


def model_card(model, au_names: Sequence[str]) -> dict:
    """What is known about the model that made a CSV: its file, backend and AU set; `card` is the model's own
    description (training data, AU set) when the model file carries one, else None."""
    return {
        "file": os.path.basename(getattr(model, "path", "") or ""),
        "name": getattr(getattr(model, "model_config", None), "name", None),
        "backend": getattr(model, "backend", None),
        "au_names": list(au_names),
        "card": getattr(model, "card", None),
    }


def detect_one(
    input_path: str,
    output: str,
    ckpt: Optional[str] = None,
    config=None,
    device: str = "auto",
    batch_size: int = 32,
    aligned: bool = False,
    detector: str = "mtcnn",
    all_faces: bool = False,
    prob_k: int = 0,
    threshold: float = 0.5,
    resume: bool = False,
    plot: Optional[str] = None,
    progress: bool = True,
    min_face_size: int = 20,
    max_gap: int = 30,
    predictor=None,
    every: int = 1,
    detect_size: int = DETECT_SIZE,
    threads: int = 0,
    track: bool = True,
    keyframe_every: int = KEYFRAME_EVERY,
    start_time: float = 0.0,
    end_time: Optional[float] = None,
    overlay: Optional[str] = None,
    report: Optional[str] = None,
    au_names: Optional[Sequence[str]] = None,
    source: Optional[FrameSource] = None,
    overwrite: bool = False,
    model_sha256: Optional[str] = None,
) -> dict:
    """Detect AUs on an image, a folder of images or a video and write one CSV row per processed frame and face.

    `ckpt` is a .ckpt, .mindir or .onnx file (or pass a ready `predictor`: an InferenceModel or a Predictor).
    Beside `output` a sidecar JSON (`output + ".json"`) records the settings and the model card. Returns a summary
    dict: frames (processed), frames_read, rows, faces, no_face, keyframes, seconds, fps, backend, device,
    stage_seconds {decode, detect_faces, align, network, write}, output. `overlay` (an .mp4) and `report` (an .html)
    are written from the finished CSV. A folder of videos goes to `mindface_au.inference.detect.collection`.

    Nothing is written over an input (`input_path`, the model file, the images of a folder); an existing output
    (CSV, sidecar, plot, overlay, report) is replaced only with `overwrite`; `output` is locked for the run (a
    second writer is refused). With `resume`, the partial file of an earlier run (and the sidecar it may have
    left) is this run's own unfinished work, and a finished `output` is kept when its sidecar and content show it
    is this tool's result for the same inputs and settings, redone (with a note) when an input changed or the CSV is
    damaged (`csvfile.check_finished`). `model_sha256`: the model file's, when the caller computed it already.
    """
    check_options(
        prob_k, threshold, detector, min_face_size, max_gap, every, detect_size, keyframe_every, start_time, end_time
    )
    with contextlib.ExitStack() as stack:
        source = source or open_input(input_path, stack)
        return _detect_one(**{k: v for k, v in locals().items() if k != "stack"})


def _detect_one(
    input_path, output, ckpt, config, device, batch_size, aligned, detector, all_faces, prob_k, threshold, resume,
    plot, progress, min_face_size, max_gap, predictor, every, detect_size, threads, track, keyframe_every,
    start_time, end_time, overlay, report, au_names, source, overwrite, model_sha256,
) -> dict:  # fmt: skip
    """`detect_one` with its input open (see there)."""
    ensure_output_folder(output)
    partial, meta_path, side = output + ".partial", output + ".partial.json", sidecar_path(output)
    known_model = model_file(predictor) if predictor is not None else None
    inputs = [input_path, ckpt, known_model, *source.files]
    check_working_names([plot, overlay, report], [output])
    digest = model_sha256 or model_digest(known_model or ckpt or "", predictor)
    options = dict(all_faces=all_faces, threshold=threshold, min_face_size=min_face_size, max_gap=max_gap)
    options.update(every=every, detect_size=detect_size, track=track, keyframe_every=keyframe_every)
    options.update(start_time=start_time, end_time=end_time, model_sha256=digest)
    identity = input_identity(input_path if source.kind == "video" else source.path, source.kind, source.files)
    resuming = resume and os.path.isfile(partial)
    redo = False
    if resume and not resuming and os.path.lexists(output) and not overwrite:
        wanted = run_settings(source.path, known_model or ckpt or "", aligned, detector, input_file=identity, **options)
        verdict, why = check_finished(output, wanted, prob_k)
        if verdict == "done":
            kept = (_read_sidecar(side) or {}).get("result") or {}
            print(f"{output}: done before (same inputs, settings and content), kept", file=sys.stderr)
            return dict(kept, output=output, status="done before")
        if verdict == "redo":
            print(f"{output}: redone: {why}", file=sys.stderr)
            redo = True
    own_sidecar = resuming and os.path.exists(side) and not os.path.exists(output)  # left by the interrupted run
    outputs = [output, plot, overlay, report] + ([] if own_sidecar else [side])
    guard.check_outputs(outputs, inputs, overwrite=True)  # never an input, never two outputs in one file
    for out in outputs:  # an existing output needs --overwrite, except this tool's own result being redone
        if out and not (redo and out in (output, side)):
            guard.check_new_output(out, overwrite)
    if own_sidecar:
        guard.check_not_input(side, inputs)
    if overlay:
        from mindface_au.inference.detect.overlay import check_overlay

        check_overlay(overlay, source.kind, input_path)
        ensure_output_folder(overlay)
    if report:
        ensure_output_folder(report)
    lock = guard.OutputLock(output)  # one writer per output
    lock.acquire()
    try:
        if threads > 0:  # the face detector's OpenCV DNN pool too, not only the network's
            import cv2

            cv2.setNumThreads(int(threads))
        if predictor is None:
            if not ckpt:
                raise UserError("ckpt: a model file (.ckpt, .mindir or .onnx) is required")
            from mindface_au.inference.loader import load_inference_model

            predictor = load_inference_model(ckpt, device=device, threads=threads, config=config, batch_size=batch_size)
        model = getattr(predictor, "model", predictor)  # a Predictor wraps an InferenceModel
        model_path = getattr(model, "path", ckpt or "")
        au_names = list(au_names or model_au_names(model))
        print(f"detect: {model.describe()}", file=sys.stderr)
        if hasattr(model, "card_text"):  # what the model was trained on (a SynthAU model says it is not validated)
            print(model.card_text(), file=sys.stderr)
        problem = model.crop_problem(aligned) if hasattr(model, "crop_problem") else None
        if problem:  # a model trained on other face crops than this tool can make
            raise UserError(problem)
        header = RowSchema(au_names, with_file=source.kind == "images").columns
        settings = run_settings(source.path, model_path, aligned, detector, input_file=identity, **options)
        stale = stale_partial(meta_path, settings) if resuming else None
        if stale:  # the same settings, but not the same inputs: the partial rows are not this input's
            print(f"{partial}: started over, not resumed: {stale}", file=sys.stderr)
            resuming = False
        tracker = IoUTracker(max_age=max_gap)
        start = 1
        if resuming:
            with guard.damaged_resume(partial, meta_path):  # a partial file that cannot be read back: one line
                check_resume(meta_path, partial, settings)
                start, tracks, next_id = recover_partial(partial, header)
            start = start - (start - 1) % every  # a processed frame (the partial file only has those)
            tracker.seed({k: (box, (f - 1) // every + 1) for k, (box, f) in tracks.items()}, next_id)
            print(f"resuming {partial} from frame {start}", file=sys.stderr)
        else:
            if resume and not stale:
                print(f"--resume: no partial file {partial}; starting from the first frame", file=sys.stderr)
            elif os.path.isfile(partial) and not stale:
                print(
                    f"replacing the partial results of an earlier run in {partial} (use --resume to continue it)",
                    file=sys.stderr,
                )
            with guard.writing(partial), open(partial, "w", newline="", encoding="utf-8") as handle:
                csv.writer(handle, lineterminator="\n").writerow(header)
            with atomic_write(meta_path) as handle:
                json.dump(settings, handle)

        from tqdm import tqdm

        total = None if source.count is None else -(-source.count // every)
        bar = tqdm(
            total=total,
            initial=(start - 1) // every,
            unit="frame",
            desc="detect",
            file=sys.stderr,
            disable=not progress,
            dynamic_ncols=True,
        )
        stats = {"rows": 0, "faces": 0, "no_face": 0}
        timer = StageTimer()
        finders: list = []
        t0, cpu0 = time.time(), time.process_time()
        last_flush = t0
        try:
            with open(partial, "a", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                rows = iter_detections(
                    source,
                    model,
                    aligned,
                    detector,
                    all_faces,
                    start,
                    tracker,
                    lambda f: bar.update(1),
                    min_face_size,
                    every=every,
                    detect_size=detect_size,
                    timer=timer,
                    track=track,
                    keyframe_every=keyframe_every,
                    start_time=start_time,
                    end_time=end_time,
                    au_names=au_names,
                    finder_out=finders,
                )
                for row in rows:
                    t = time.perf_counter()
                    writer.writerow(row.fields(threshold))
                    stats["rows"] += 1
                    stats["faces" if row.face is not None else "no_face"] += 1
                    now = time.time()
                    if now - last_flush > 1.0:
                        handle.flush()
                        last_flush = now
                    timer.add("write", t)
        except BaseException as exc:
            lock.release()
            bar.close()
            print(f"partial results kept in {partial}; run again with --resume to continue", file=sys.stderr)
            guard.reraise_environment(exc, partial)  # disk full: one line naming the file
            raise
        bar.close()
        if source.skipped:
            print(f"skipped {len(source.skipped)} non-image file(s): {', '.join(source.skipped[:5])}", file=sys.stderr)
        if source.unreadable:
            print(
                f"{len(source.unreadable)} image(s) could not be decoded (rows with success=0): "
                f"{', '.join(source.unreadable[:5])}",
                file=sys.stderr,
            )
        if source.kind == "video" and source.count and source.seen != source.count and end_time is None:
            print(f"note: read {source.seen} frames, the container announces {source.count}", file=sys.stderr)
        notes = []
        if source.kind == "video" and source.decoded == 0 and start_time > 0 and start == 1:
            length = f"{source.seen} frames" + (f", {source.seen / source.fps:.2f} s" if source.fps else "")
            notes.append(f"--start {start_time}: past the end of the video ({length}); no frame was processed")
            print(f"note: {notes[-1]}", file=sys.stderr)
        t = time.perf_counter()
        seconds = time.time() - t0
        summary = dict(stats, frames_read=source.seen, every=every, seconds=round(seconds, 3))
        summary["cpu_seconds"] = round(time.process_time() - cpu0, 3)  # the fair speed measure on a busy machine
        summary["keyframes"] = finders[0].keyframes if finders and finders[0] is not None else 0
        summary.update(output=output, backend=model.backend, device=model.device)
        if notes:
            summary["notes"] = notes
        final = partial
        if prob_k > 0:  # smoothed into a working file; one rename (after the sidecar) makes the CSV
            final = partial + ".smoothed"
            smooth_csv(partial, final, prob_k, threshold, max_gap, every)
        # the counts and checks come from the finished file itself, so a resumed run counts the whole CSV
        facts = csv_facts(final)
        summary.update({k: facts[k] for k in ("rows", "frames", "faces", "no_face")})
        sidecar = {
            "version": SIDECAR_VERSION,
            "kind": source.kind,
            "fps": source.fps or None,
            "width": source.width or None,
            "height": source.height or None,
            "settings": dict(settings, prob_k=int(prob_k), batch_size=getattr(model, "batch_size", batch_size)),
            "model_card": model_card(model, au_names),
            "output": {k: facts[k] for k in ("rows", "bytes", "sha256")},
            "result": {k: summary[k] for k in ("frames", "rows", "faces", "no_face", "keyframes", "seconds")},
        }
        with atomic_write(sidecar_path(output)) as handle:
            json.dump(sidecar, handle, indent=1)
        with guard.writing(output):
            os.replace(final, output)
        if os.path.exists(partial):
            os.remove(partial)
        timer.add("write", t)
        if os.path.exists(meta_path):
            os.remove(meta_path)
        summary["stage_seconds"] = timer.summary()
        summary["fps"] = round(source.decoded / seconds, 2) if seconds > 0 else None
        if plot:
            from mindface_au.inference.detect.plot import plot_detections

            plot_detections(output, plot, video=source.kind == "video", fps=source.fps)
            summary["plot"] = plot
        if overlay:
            from mindface_au.inference.detect.overlay import write_overlay

            write_overlay(input_path, output, overlay)
            summary["overlay"] = overlay
        if report:
            from mindface_au.inference.detect.report import write_report

            write_report([output], report, threshold=threshold, k=prob_k)
            summary["report"] = report
        return summary
    finally:
        lock.release()  # also after an error: the output is free again
