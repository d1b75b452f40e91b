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
import os
import sys
import tempfile
import time
from typing import Callable, Deque, Dict, Iterator, List, Optional, Sequence

import numpy as np

from mindface_au.data.transforms import preprocess_faces
from mindface_au.errors import UserError, param, render
from mindface_au.inference.detect.csvfile import (
    WorkingFiles,
    check_finished,
    check_resume,
    csv_facts,
    input_identity,
    read_json,
    recover_partial,
    stale_partial,
    working_files,
)
from mindface_au.inference.detect.model import (
    DetectModel,
    detect_model,
    model_au_names,
    model_card,
    model_digest,
    model_intensity_au_names,
    model_outputs,
    model_threshold,
)
from mindface_au.inference.detect.options import DetectOptions
from mindface_au.inference.detect.rows import DetectionRow, RowSchema
from mindface_au.inference.detect.smoothing import smooth_csv
from mindface_au.inference.detect.sources import Frame, FrameSource, open_source
from mindface_au.inference.detect.tracker_state import StateLog, rewind
from mindface_au.inference.detect.tracking import FaceFinder
from mindface_au.inference.faces import Face, IoUTracker, create_detector
from mindface_au.utils import guard
from mindface_au.utils.io import atomic_write, ensure_output_folder

__all__ = [
    "STAGES",
    "StageTimer",
    "iter_detections",
    "detect_one",
    "DetectJob",
    "DetectOptions",
    "check_working_names",
    "open_input",
]

FLUSH_SECONDS = 1.0  # the partial file is flushed (and the tracker state saved) at most this often
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


def iter_detections(
    path_or_source,
    predictor,
    options: Optional[DetectOptions] = None,
    *,
    start: int = 1,
    tracker: Optional[IoUTracker] = None,
    on_frame: Optional[Callable[[Frame], None]] = None,
    timer: Optional[StageTimer] = None,
    au_names: Optional[Sequence[str]] = None,
    intensity_au_names: Optional[Sequence[str]] = None,
    finder_out: Optional[list] = None,
    states: Optional[StateLog] = None,
    finder_state: Optional[dict] = None,
    **option_values,
) -> Iterator[DetectionRow]:
    """Rows (DetectionRow) for every processed frame and face of an input, in frame order, computed in batches.

    `predictor`: an InferenceModel (mindface_au.inference.loader) or a Predictor. `options` (a DetectOptions) or
    its fields as keywords (aligned, detector, all_faces, min_face_size, every, detect_size, track, keyframe_every,
    start_time, end_time) say how faces are found. The tracker counts processed frames (frame 1 + k * every is step
    k + 1), so its `max_age` is in processed frames. `track=False` runs the face detector on every frame; otherwise
    faces are followed between keyframes (see `tracking`). `au_names` and `intensity_au_names` (the intensity
    head's AUs; none without the head) default to the model's; rows carry `intensity` when there are such AUs.
    `finder_out`, if
    given, receives the FaceFinder (for its keyframe count). `states` records the finder's state before each frame;
    `finder_state` (a saved one) is where a resume starts.
    """
    opts, unknown = DetectOptions.split(option_values, options)
    if unknown:
        raise TypeError(f"iter_detections: unknown option(s) {', '.join(sorted(unknown))}")
    model = detect_model(predictor)
    source = path_or_source if isinstance(path_or_source, FrameSource) else open_source(path_or_source)
    aligned, every = opts.aligned, opts.every
    det = (
        None if aligned else create_detector(opts.detector, min_face_size=opts.min_face_size, max_side=opts.detect_size)
    )
    tracker = tracker or IoUTracker()
    finder = None
    if not aligned:
        finder = FaceFinder(det, opts.all_faces, tracker, track=opts.track, keyframe_every=opts.keyframe_every)
    if finder is not None and finder_state is not None:
        finder.restore(finder_state)
    if finder_out is not None:
        finder_out.append(finder)
    timer = timer if timer is not None else StageTimer()
    intensity_au_names = model_intensity_au_names(model) if intensity_au_names is None else intensity_au_names
    schema = RowSchema(
        au_names or model_au_names(model), with_file=source.kind == "images", intensity_au_names=intensity_au_names
    )
    spec = model.face_input
    size = spec.size
    pad = source.kind == "video" or (source.count or 0) > model.batch_size
    queue: Deque[DetectionRow] = collections.deque()
    crops: List[np.ndarray] = []

    def run_batch() -> None:
        if crops:
            t = time.perf_counter()
            x = preprocess_faces(crops, spec)
            t = timer.add("align", t)
            probs, intensity = model_outputs(model, x, pad=pad)
            timer.add("network", t)
            for row in queue:
                if row.slot is not None:
                    row.probs = probs[row.slot]
                    row.intensity = None if intensity is None else intensity[row.slot]
                    row.slot = None
            crops.clear()

    frames = source.frames(start, every, opts.start_time, opts.end_time)
    while True:
        t = time.perf_counter()
        frame = next(frames, None)
        timer.add("decode", t)
        if frame is None:
            break
        if states is not None:
            states.record(frame.index, finder)
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
        if len(crops) >= model.batch_size or len(queue) > MAX_QUEUE_ROWS:
            run_batch()
        while queue and queue[0].slot is None:
            yield queue.popleft()
        if on_frame is not None:
            on_frame(frame)
    run_batch()
    while queue:
        yield queue.popleft()


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
    data = read_json(path)
    return data if isinstance(data, dict) else None


def detect_one(
    input_path: str,
    output: str,
    ckpt: Optional[str] = None,
    options: Optional[DetectOptions] = None,
    source: Optional[FrameSource] = None,
    **values,
) -> dict:
    """Detect AUs on an image, a folder of images or a video and write one CSV row per processed frame and face.

    `ckpt` is a .ckpt, .mindir or .onnx file (or pass a ready `predictor`: an InferenceModel or a Predictor).
    `options` (a DetectOptions) or its fields as keywords say how faces are found and rows written (the threshold
    defaults to the one the model file was validated with); the other keywords are `DetectJob`'s (config, device,
    batch_size, threads, predictor, resume, overwrite, progress, plot, overlay, report, au_names, model_sha256).
    Beside `output` a sidecar JSON (`csvfile.sidecar_path`) records the settings and the model card. Returns a
    summary dict: frames (processed), frames_read, rows, faces, no_face, keyframes, seconds, fps, backend, device,
    stage_seconds {decode, detect_faces, align, network, write}, output. `overlay` (an .mp4) and `report` (an .html)
    are written from the finished CSV. A folder of videos goes to `mindface_au.inference.detect.collection`.

    Nothing is written over an input (`input_path`, the model file, the images of a folder); an existing output
    (CSV, sidecar, plot, overlay, report) is replaced only with `overwrite`; `output` is locked for the run (a
    second writer is refused). With `resume`, the partial file of an earlier run (and the sidecar it may have
    left) is this run's own unfinished work, and a finished `output` is kept when its sidecar and content show it
    is this tool's result for the same inputs and settings, redone (with a note) when an input changed or the CSV is
    damaged (`csvfile.check_finished`). `model_sha256`: the model file's, when the caller computed it already.
    """
    opts, rest = DetectOptions.split(values, options)
    with contextlib.ExitStack() as stack:
        source = source or open_input(input_path, stack)
        return DetectJob(input_path, output, source, opts, ckpt=ckpt, **rest).run()


class DetectJob:
    """One input -> one CSV (see `detect_one`). `run` calls the stages in order: prepare (model file, threshold,
    input identity), done_before (a finished CSV kept), check_outputs, then under the output's lock load_model,
    start (a fresh partial file, or resume one), stream (rows into the partial file), write (sidecar, CSV) and
    finish (plot, overlay, report)."""

    def __init__(
        self,
        input_path: str,
        output: str,
        source: FrameSource,
        options: DetectOptions,
        ckpt: Optional[str] = None,
        config=None,
        device: str = "auto",
        batch_size: int = 32,
        threads: int = 0,
        predictor=None,
        resume: bool = False,
        overwrite: bool = False,
        progress: bool = True,
        plot: Optional[str] = None,
        overlay: Optional[str] = None,
        report: Optional[str] = None,
        au_names: Optional[Sequence[str]] = None,
        model_sha256: Optional[str] = None,
    ) -> None:
        self.input_path, self.output, self.source, self.options = input_path, output, source, options
        self.ckpt, self.config, self.device, self.batch_size, self.threads = ckpt, config, device, batch_size, threads
        self.model: Optional[DetectModel] = detect_model(predictor) if predictor is not None else None
        self.resume, self.overwrite, self.progress = resume, overwrite, progress
        self.plot, self.overlay, self.report = plot, overlay, report
        self.au_names = list(au_names) if au_names else None
        self.intensity_au_names: List[str] = []  # the model's intensity AUs (set by `load_model`)
        self.digest = model_sha256
        self.files = WorkingFiles(output)
        self.model_file = None  # the ModelFile read in `prepare` (when no loaded model was given)
        self.redo = False  # a finished CSV of this tool's that is no longer right: replaced without --overwrite
        self.first = 1  # the first frame this run processes (later than 1 when resuming)

    def run(self) -> dict:
        """All the stages (see the class docstring); returns the summary."""
        self.prepare()
        kept = self.done_before()
        if kept is not None:
            return kept
        self.check_outputs()
        lock = guard.OutputLock(self.output)  # one writer per output
        lock.acquire()
        try:
            self.load_model()
            self.start()
            try:
                summary = self.stream()
            except BaseException as exc:
                lock.release()
                print(
                    render(
                        f"partial results kept in {self.files.partial}; run again with {param('resume')} to continue"
                    ),
                    file=sys.stderr,
                )
                guard.reraise_environment(exc, self.files.partial)  # disk full: one line naming the file
                raise
            self.write(summary)
            self.finish(summary)
            return summary
        finally:
            lock.release()  # also after an error: the output is free again

    # ------------------------------------------------------------------------------------------------ stages
    def prepare(self) -> None:
        """The output's folder, the names no output may take, the model file read (its sha256 and threshold: the
        options are resolved against it here) and the input's identity."""
        ensure_output_folder(self.output)
        self.inputs = [self.input_path, self.ckpt, self.model.path if self.model else None, *self.source.files]
        check_working_names([self.plot, self.overlay, self.report], [self.output])
        if self.threads > 0:  # the face detector's OpenCV DNN pool too, not only the network's
            import cv2

            cv2.setNumThreads(int(self.threads))
        if self.model is not None:
            file = self.model.file
        else:
            if not self.ckpt:
                raise UserError("ckpt: a model file (.ckpt, .mindir or .onnx) is required")
            from mindface_au.inference.model_file import read_model_file

            file = self.model_file = read_model_file(self.ckpt, self.config, self.device, self.threads)
        self.options = self.options.resolve(model_threshold(file))
        self.model_path = self.model.path if self.model is not None else file.path
        self.digest = self.digest or (file.sha256 if file is not None else model_digest(self.model_path, self.model))
        source = self.source
        path = self.input_path if source.kind == "video" else source.path
        self.identity = input_identity(path, source.kind, source.files)
        self.resuming = self.resume and os.path.isfile(self.files.partial)

    def settings(self) -> dict:
        """This run's settings (`DetectOptions.settings`), as its partial file and sidecar record them."""
        return self.options.settings(self.source.path, self.model_path, self.identity, self.digest)

    def done_before(self) -> Optional[dict]:
        """With `resume`, an existing `output` that is this tool's finished result for the same inputs and settings
        is kept: its summary; one to redo is noted (`self.redo`). None: run."""
        output = self.output
        if not (self.resume and not self.resuming and os.path.lexists(output) and not self.overwrite):
            return None
        verdict, why = check_finished(output, self.settings(), self.options.prob_k)
        if verdict == "done":
            kept = (_read_sidecar(self.files.sidecar) or {}).get("result") or {}
            print(f"{output}: done before (same inputs, settings and content), kept", file=sys.stderr)
            return dict(kept, output=output, status="done before")
        if verdict == "redo":
            print(f"{output}: redone: {why}", file=sys.stderr)
            self.redo = True
        return None

    def check_outputs(self) -> None:
        """Refuse an output that is an input, two outputs in one file, an existing output without `overwrite`
        (except this tool's own result being redone, or the sidecar an interrupted run left)."""
        side = self.files.sidecar
        own_sidecar = self.resuming and os.path.exists(side) and not os.path.exists(self.output)
        outputs = [self.output, self.plot, self.overlay, self.report] + ([] if own_sidecar else [side])
        guard.check_outputs(outputs, self.inputs, overwrite=True)  # never an input, never two outputs in one file
        for out in outputs:
            if out and not (self.redo and out in (self.output, side)):
                guard.check_new_output(out, self.overwrite)
        if own_sidecar:
            guard.check_not_input(side, self.inputs)
        if self.overlay:
            from mindface_au.inference.detect.overlay import check_overlay

            check_overlay(self.overlay, self.source.kind, self.input_path)
            ensure_output_folder(self.overlay)
        if self.report:
            ensure_output_folder(self.report)

    def load_model(self) -> None:
        """Load the model (unless given), say which on stderr, refuse one whose face crops cannot be made here."""
        if self.model is None:
            from mindface_au.inference.loader import load_inference_model

            self.model = load_inference_model(
                self.model_file, device=self.device, threads=self.threads, config=self.config,
                batch_size=self.batch_size,
            )  # fmt: skip
        model = self.model
        self.au_names = self.au_names or model_au_names(model)
        self.intensity_au_names = model_intensity_au_names(model)
        print(f"detect: {model.describe()}", file=sys.stderr)
        print(model.card_text(), file=sys.stderr)  # what it was trained on (a SynthAU model: not validated)
        problem = model.crop_problem(self.options.aligned)
        if problem:  # a model trained on other face crops than this tool can make
            raise UserError(problem)
        schema = RowSchema(self.au_names, self.source.kind == "images", intensity_au_names=self.intensity_au_names)
        self.header = schema.columns

    def start(self) -> None:
        """A fresh partial file (header, settings, tracker state), or the interrupted run's continued (`resume`):
        checked against this run's settings, cut back to its last saved tracker state."""
        files, settings = self.files, self.settings()
        partial, meta_path = files.partial, files.settings
        stale = stale_partial(meta_path, settings) if self.resuming else None
        if stale:  # the same settings, but not the same inputs: the partial rows are not this input's
            print(f"{partial}: started over, not resumed: {stale}", file=sys.stderr)
            self.resuming = False
        self.tracker = IoUTracker(max_age=self.options.max_gap)
        self.states, self.saved = StateLog(files.state), None
        if self.resuming:
            self._resume_partial(settings)
            return
        if self.resume and not stale:
            print(
                render(f"{param('resume')}: no partial file {partial}; starting from the first frame"), file=sys.stderr
            )
        elif os.path.isfile(partial) and not stale:
            print(
                render(
                    "replacing the partial results of an earlier run in "
                    f"{partial} (use {param('resume')} to continue it)"
                ),
                file=sys.stderr,
            )
        with guard.writing(partial), open(partial, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, lineterminator="\n").writerow(self.header)
        with atomic_write(meta_path) as handle:
            json.dump(settings, handle)
        if not self.options.aligned:
            self.states.start(os.path.getsize(partial))

    def _resume_partial(self, settings: dict) -> None:
        partial, every = self.files.partial, self.options.every
        with guard.damaged_resume(partial, self.files.settings):  # a partial file that cannot be read back: one line
            check_resume(self.files.settings, partial, settings)
            self.saved = None if self.options.aligned else rewind(partial, self.states.path)  # the last saved state
            start, tracks, next_id = recover_partial(partial, self.header)
        start = start - (start - 1) % every  # a processed frame (the partial file only has those)
        self.tracker.seed({k: (box, (f - 1) // every + 1) for k, (box, f) in tracks.items()}, next_id)
        if self.saved is not None and self.saved["frame"] != start:  # cannot happen unless the file was edited
            print(f"note: {self.states.path} is for frame {self.saved['frame']}, not {start}: tracking restarts",
                  file=sys.stderr)  # fmt: skip
            self.saved = None
        self.first = start
        print(f"resuming {partial} from frame {start}", file=sys.stderr)

    def stream(self) -> dict:
        """Append the rows of every frame from `self.first` on to the partial file, flushing (and saving the
        tracker state) between frames at most every FLUSH_SECONDS; returns the run's counts so far."""
        from tqdm import tqdm

        source, every = self.source, self.options.every
        total = None if source.count is None else -(-source.count // every)
        bar = tqdm(total=total, initial=(self.first - 1) // every, unit="frame", desc="detect", file=sys.stderr,
                   disable=not self.progress, dynamic_ncols=True)  # fmt: skip
        stats = {"rows": 0, "faces": 0, "no_face": 0}
        self.timer, self.finders = StageTimer(), []
        self.t0, self.cpu0 = time.time(), time.process_time()
        last_flush, threshold = self.t0, self.options.threshold
        try:
            with open(self.files.partial, "a", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                rows = iter_detections(
                    source, self.model, self.options, start=self.first, tracker=self.tracker,
                    on_frame=lambda f: bar.update(1), timer=self.timer, au_names=self.au_names,
                    intensity_au_names=self.intensity_au_names, finder_out=self.finders, states=self.states,
                    finder_state=self.saved and self.saved["finder"],
                )  # fmt: skip
                last_frame = None
                for row in rows:
                    t = time.perf_counter()
                    if row.frame != last_frame:  # between two frames: flush, and save the tracker state there
                        now = time.time()
                        if now - last_flush > FLUSH_SECONDS and last_frame is not None:
                            handle.flush()
                            self.states.save(last_frame, os.fstat(handle.fileno()).st_size)
                            last_flush = now
                        last_frame = row.frame
                    writer.writerow(row.fields(threshold))
                    stats["rows"] += 1
                    stats["faces" if row.face is not None else "no_face"] += 1
                    self.timer.add("write", t)
        finally:
            bar.close()
        return stats

    def _notes(self) -> List[str]:
        """Say on stderr what the input held that was not processed; returns the notes the summary keeps."""
        source, opts = self.source, self.options
        if source.skipped:
            print(f"skipped {len(source.skipped)} non-image file(s): {', '.join(source.skipped[:5])}", file=sys.stderr)
        if source.unreadable:
            print(f"{len(source.unreadable)} image(s) could not be decoded (rows with success=0): "
                  f"{', '.join(source.unreadable[:5])}", file=sys.stderr)  # fmt: skip
        if source.kind == "video" and source.count and source.seen != source.count and opts.end_time is None:
            print(f"note: read {source.seen} frames, the container announces {source.count}", file=sys.stderr)
        notes = []
        if source.kind == "video" and source.decoded == 0 and opts.start_time > 0 and self.first == 1:
            length = f"{source.seen} frames" + (f", {source.seen / source.fps:.2f} s" if source.fps else "")
            notes.append(f"--start {opts.start_time}: past the end of the video ({length}); no frame was processed")
            print(f"note: {notes[-1]}", file=sys.stderr)
        return notes

    def write(self, summary: dict) -> None:
        """Complete `summary` (from `stream`) from the finished rows, write the sidecar, then rename the partial
        (or smoothed) file to the CSV and remove the working files."""
        source, opts, model, files = self.source, self.options, self.model, self.files
        notes = self._notes()
        t = time.perf_counter()
        seconds = time.time() - self.t0
        summary.update(frames_read=source.seen, every=opts.every, seconds=round(seconds, 3))
        summary["cpu_seconds"] = round(time.process_time() - self.cpu0, 3)  # the fair speed measure on a busy machine
        summary["keyframes"] = self.finders[0].keyframes if self.finders and self.finders[0] is not None else 0
        summary.update(output=self.output, backend=model.backend, device=model.device)
        if notes:
            summary["notes"] = notes
        final = files.partial
        if opts.prob_k > 0:  # smoothed into a working file; one rename (after the sidecar) makes the CSV
            final = files.smoothed
            smooth_csv(files.partial, final, opts.prob_k, opts.threshold, opts.max_gap, opts.every)
        # the counts and checks come from the finished file itself, so a resumed run counts the whole CSV
        facts = csv_facts(final)
        summary.update({k: facts[k] for k in ("rows", "frames", "faces", "no_face")})
        sidecar = {
            "version": SIDECAR_VERSION,
            "kind": source.kind,
            "fps": source.fps or None,
            "width": source.width or None,
            "height": source.height or None,
            "settings": dict(self.settings(), prob_k=int(opts.prob_k), batch_size=model.batch_size),
            "model_card": model_card(model, self.au_names),
            "output": {k: facts[k] for k in ("rows", "bytes", "sha256")},
            "result": {k: summary[k] for k in ("frames", "rows", "faces", "no_face", "keyframes", "seconds")},
        }
        with atomic_write(files.sidecar) as handle:
            json.dump(sidecar, handle, indent=1)
        with guard.writing(self.output):
            os.replace(final, self.output)
        if os.path.exists(files.partial):
            os.remove(files.partial)
        self.timer.add("write", t)
        if os.path.exists(files.settings):
            os.remove(files.settings)
        self.states.clear()
        summary["stage_seconds"] = self.timer.summary()
        summary["fps"] = round(source.decoded / seconds, 2) if seconds > 0 else None

    def finish(self, summary: dict) -> None:
        """The outputs made from the finished CSV: plot, overlay, report."""
        if self.plot:
            from mindface_au.inference.detect.plot import plot_detections

            plot_detections(self.output, self.plot, video=self.source.kind == "video", fps=self.source.fps)
            summary["plot"] = self.plot
        if self.overlay:
            from mindface_au.inference.detect.overlay import write_overlay

            write_overlay(self.input_path, self.output, self.overlay)
            summary["overlay"] = self.overlay
        if self.report:
            from mindface_au.inference.detect.report import write_report

            write_report([self.output], self.report, threshold=self.options.threshold, k=self.options.prob_k)
            summary["report"] = self.report
