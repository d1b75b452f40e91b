"""`mindface-au detect`: AU probabilities for an image, a folder of images or a video, streamed into a CSV.

Pipeline per frame: decode -> detect faces (MTCNN + ArcFace alignment, Haar crop, or none with --aligned) -> crop
-> batch on the fly -> network -> rows written in frame order. Memory stays flat whatever the video length: only
one batch of crops and the rows waiting for it are held. The model is any file `load_inference_model` takes
(.ckpt, .mindir, .onnx); `iter_detections` is the one streaming loop (`Predictor.predict_video` runs it too) and
records the seconds spent in each stage (decode, detect_faces, align, network, write).

`every=N` processes frames 1, 1+N, 1+2N, ... (the others are skipped without decoding): only processed frames
get rows, `frame` and `timestamp` keep the real index and time, and `max_gap` and the `prob_k` window count
processed frames. Face detection searches a copy downscaled to `detect_size` pixels on its longest side.

Output files (for `--output out.csv`):
- `out.csv.partial` receives the rows as they are computed and `out.csv.partial.json` records the settings; the
  partial file is renamed to `out.csv` only when the whole input is done, so `out.csv` is never half-written.
- After an interruption both stay; `--resume` checks the settings match, drops the rows of the last (possibly
  incomplete) frame and continues from that frame, with the face tracker restored from the rows.
- With `--prob-k K` a second streaming pass smooths each face track's probabilities with
  `mindface_au.postprocess.smooth_probs` (the evaluation's function) over a window of 2K+1 detections of that
  track, recomputes the 0/1 columns and writes `out.csv` atomically. A track restarts after a gap of more than
  `max_gap` frames without that face.

Columns: frame,timestamp,face_id,success,confidence,face_x,face_y,face_w,face_h, AU1_prob..AU26_prob, AU1..AU26
(plus a last column `file` for image inputs). `frame` is 1-based; `timestamp` is (frame - 1) / fps in seconds
(empty for images). A frame without a face keeps one row with success=0 and empty face and AU values.
`confidence` is the MTCNN score (empty for Haar and --aligned, which have none).
"""

import collections
import csv
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, Deque, Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from mindface_au.config import AU_NAMES
from mindface_au.data.transforms import preprocess_faces
from mindface_au.errors import UserError
from mindface_au.inference.faces import DETECT_SIZE, Face, IoUTracker, create_detector
from mindface_au.utils import guard
from mindface_au.utils.io import atomic_write, ensure_output_folder

__all__ = [
    "COLUMNS",
    "IMAGE_EXTENSIONS",
    "STAGES",
    "StageTimer",
    "DetectionRow",
    "FrameSource",
    "open_source",
    "iter_detections",
    "detect",
    "smooth_csv",
    "read_detections",
]

META_COLUMNS = ["frame", "timestamp", "face_id", "success", "confidence", "face_x", "face_y", "face_w", "face_h"]
PROB_COLUMNS = [f"{au}_prob" for au in AU_NAMES]
COLUMNS = META_COLUMNS + PROB_COLUMNS + list(AU_NAMES)
FILE_COLUMN = "file"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jp2")
MAX_QUEUE_ROWS = 4096  # run a partial batch rather than hold more rows than this (sparse faces in long videos)
STAGES = ("decode", "detect_faces", "align", "network", "write")  # keys of the summary's "stage_seconds"
_PROB_START = len(META_COLUMNS)
_LABEL_START = _PROB_START + len(AU_NAMES)


def prob_fields(probs, threshold: float) -> Tuple[List[str], List[str]]:
    """CSV fields of probabilities (6 decimals) and their 0/1 labels, thresholded as written, so that a file's
    labels always equal its own probability columns thresholded (a value within 5e-7 of the threshold would
    otherwise print as the threshold and carry the other label)."""
    texts = [f"{p:.6f}" for p in probs]
    return texts, [str(int(float(t) >= threshold)) for t in texts]


@dataclass
class Frame:
    """One decoded input frame: 1-based index, timestamp in seconds (None for images), BGR image or None."""

    index: int
    timestamp: Optional[float]
    image: Optional[np.ndarray]
    name: Optional[str] = None


@dataclass
class DetectionRow:
    """One output row: a face in a frame (face given) or a frame without a face (face None)."""

    frame: int
    timestamp: Optional[float]
    face_id: Optional[int] = None
    face: Optional[Face] = None
    probs: Optional[np.ndarray] = None
    name: Optional[str] = None
    slot: Optional[int] = None  # index into the pending batch while waiting for the network

    def fields(self, threshold: float, with_file: bool) -> List[str]:
        """The CSV fields of this row."""
        ts = "" if self.timestamp is None else f"{self.timestamp:.3f}"
        if self.face is None:
            out = [str(self.frame), ts, "", "0", "", "", "", "", ""] + [""] * (2 * len(AU_NAMES))
        else:
            conf = "" if self.face.confidence is None else f"{self.face.confidence:.4f}"
            box = [str(int(round(v))) for v in self.face.box]
            probs, labels = prob_fields(self.probs, threshold)
            out = [str(self.frame), ts, str(self.face_id), "1", conf] + box + probs + labels
        return out + ([self.name or ""] if with_file else [])

    def as_dict(self, threshold: float = 0.5) -> dict:
        """The row as {column: value} with numbers (None where the CSV is empty)."""
        row = {
            "frame": self.frame,
            "timestamp": self.timestamp,
            "face_id": self.face_id,
            "success": int(bool(self.face)),
        }
        face = self.face
        row["confidence"] = face.confidence if face is not None else None
        for key, i in zip(("face_x", "face_y", "face_w", "face_h"), range(4)):
            row[key] = float(face.box[i]) if face is not None else None
        for i, au in enumerate(AU_NAMES):
            row[f"{au}_prob"] = float(self.probs[i]) if face is not None else None
        for i, au in enumerate(AU_NAMES):
            row[au] = int(self.probs[i] >= threshold) if face is not None else None
        if self.name is not None:
            row[FILE_COLUMN] = self.name
        return row


# ------------------------------------------------------------------------------------------------ sources
class FrameSource:
    """Frames of a video (streamed with cv2.VideoCapture) or of a list of image files (decoded one at a time)."""

    def __init__(self, path: str, kind: str, files: Sequence[str] = (), skipped: Sequence[str] = ()) -> None:
        self.path = path
        self.kind = kind  # "video" or "images"
        self.files = list(files)
        self.skipped = list(skipped)  # non-image files of a folder
        self.unreadable: List[str] = []  # images that failed to decode
        self.fps = 0.0
        self.count: Optional[int] = len(self.files) if kind == "images" else None
        self.decoded = 0  # frames delivered (processed)
        self.seen = 0  # frames read or skipped from the start of the input (the highest 1-based index reached)
        self._cap = None
        self._first = None
        if kind == "video":
            self._open_video()

    def _open_video(self) -> None:
        # FFmpeg's own log lines would break the one-line error contract; set OPENCV_FFMPEG_LOGLEVEL to see them
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        cap = cv2.VideoCapture(self.path)
        if not cap.isOpened():
            raise UserError(f"{self.path}: cannot open as a video (unreadable or unsupported format)")
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise UserError(f"{self.path}: video has no decodable frames")
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else 0.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.count = count if count > 0 else None
        self._cap, self._first = cap, first

    def frames(self, start: int = 1, every: int = 1) -> Iterator[Frame]:
        """Frames 1, 1 + every, 1 + 2 * every, ... from 1-based index `start` on; the others are not decoded."""
        if self.kind == "images":
            for i, file in enumerate(self.files[start - 1 :], start=start):
                self.seen = i
                if (i - 1) % every:
                    continue
                image = cv2.imread(file, cv2.IMREAD_COLOR)
                name = os.path.basename(file)
                if image is None or image.size == 0:
                    self.unreadable.append(name)
                    image = None
                self.decoded += 1
                yield Frame(i, None, image, name)
            return
        cap, image, index = self._cap, self._first, 1
        self._first = None
        if cap is None:
            raise RuntimeError("a video FrameSource can be iterated once")
        self._cap = None
        try:
            while True:
                self.seen = index
                if index >= start and (index - 1) % every == 0:
                    self.decoded += 1
                    yield Frame(index, (index - 1) / self.fps if self.fps else None, image)
                index += 1
                if index < start or (index - 1) % every:
                    image = None
                    if not cap.grab():  # advance without decoding
                        break
                else:
                    ok, image = cap.read()
                    if not ok or image is None:
                        break
        finally:
            cap.release()


def open_source(path: str) -> FrameSource:
    """A FrameSource for an image file, a folder of images (sorted; other files skipped) or a video file."""
    if not os.path.exists(path):
        raise UserError(f"{path}: input not found")
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if os.path.isfile(os.path.join(path, n)))
        images = [n for n in names if n.lower().endswith(IMAGE_EXTENSIONS)]
        skipped = [n for n in names if n not in set(images)]
        if not images:
            raise UserError(f"{path}: folder has no image files ({', '.join(IMAGE_EXTENSIONS)})")
        return FrameSource(path, "images", [os.path.join(path, n) for n in images], skipped)
    if path.lower().endswith(IMAGE_EXTENSIONS):
        if cv2.imread(path, cv2.IMREAD_COLOR) is None:
            raise UserError(f"{path}: cannot decode the image")
        return FrameSource(path, "images", [path])
    return FrameSource(path, "video")


# ------------------------------------------------------------------------------------------------ detection
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


def _frame_faces(
    frame: Frame, detector, aligned: bool, all_faces: bool, tracker: IoUTracker, size: int, step: int, timer
) -> Tuple[List[Face], List[int], List[np.ndarray]]:
    """Faces, face ids and network-size crops for one frame; `step` is the frame's processed-frame number."""
    image = frame.image
    if image is None:
        return [], [], []
    if aligned:
        h, w = image.shape[:2]
        return [Face((0.0, 0.0, float(w), float(h)))], [0], [image]
    t = time.perf_counter()
    faces = detector.detect(image)
    t = timer.add("detect_faces", t)
    if not faces:
        if all_faces:
            tracker.update([], step)
        return [], [], []
    if all_faces:
        faces = sorted(faces, key=lambda f: (f.box[0], f.box[1]))
        ids = tracker.update([f.box for f in faces], step)
    else:
        faces, ids = [max(faces, key=lambda f: f.area)], [0]
    crops = [detector.crop(image, f, size) for f in faces]
    timer.add("align", t)
    return faces, ids, crops


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
) -> Iterator[DetectionRow]:
    """Rows (DetectionRow) for every processed frame and face of an input, in frame order, computed in batches.

    `predictor`: an InferenceModel (mindface_au.inference.loader) or a Predictor. The tracker counts processed
    frames (frame 1 + k * every is step k + 1), so its `max_age` is in processed frames.
    """
    source = path_or_source if isinstance(path_or_source, FrameSource) else open_source(path_or_source)
    det = None if aligned else create_detector(detector, min_face_size=min_face_size, max_side=detect_size)
    tracker = tracker or IoUTracker()
    timer = timer if timer is not None else StageTimer()
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

    frames = source.frames(start, every)
    while True:
        t = time.perf_counter()
        frame = next(frames, None)
        timer.add("decode", t)
        if frame is None:
            break
        step = (frame.index - 1) // every + 1
        faces, ids, frame_crops = _frame_faces(frame, det, aligned, all_faces, tracker, size, step, timer)
        if not faces:
            queue.append(DetectionRow(frame.index, frame.timestamp, name=frame.name))
        for face, fid, crop in zip(faces, ids, frame_crops):
            queue.append(DetectionRow(frame.index, frame.timestamp, fid, face, name=frame.name, slot=len(crops)))
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


# ------------------------------------------------------------------------------------------------ CSV files
def _header(with_file: bool) -> List[str]:
    return COLUMNS + ([FILE_COLUMN] if with_file else [])


def _recover_partial(partial: str, header: List[str]) -> Tuple[int, Dict[int, Tuple[tuple, int]], int]:
    """Scan a partial CSV and truncate it before the rows of its last frame (which may be incomplete).

    Returns (frame to restart from, {face id: (last box, last frame)} over the kept rows, next face id): exactly
    the tracker state an uninterrupted run had at that frame.
    """
    with open(partial, "r+", newline="", encoding="utf-8") as handle:
        if handle.readline().rstrip("\r\n").split(",") != header:
            raise UserError(f"{partial}: partial file has other columns; delete it or run without --resume")
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


class _Track:
    """Smoothing state of one face track segment: the last 2k+1 probability rows and the rows awaiting output."""

    def __init__(self) -> None:
        self.buf: Deque[Tuple[List[str], np.ndarray]] = collections.deque()
        self.base = 0  # segment index of buf[0]
        self.count = 0  # rows in the segment so far
        self.next = 0  # first segment index not yet smoothed
        self.last_frame = 0


def smooth_csv(src: str, dst: str, k: int, threshold: float = 0.5, max_gap: int = 30, every: int = 1) -> int:
    """Stream `src` (a detect CSV) into `dst` with probabilities smoothed per face track over 2k+1 detections.

    A track restarts after more than `max_gap` processed frames without its face (`every`: the processing step).

    Uses `mindface_au.postprocess.smooth_probs` on each row's window (identical to smoothing the whole track:
    the window is clipped at the track's ends). Returns the number of rows written. `dst` is written atomically.
    """
    from mindface_au.postprocess import smooth_probs

    header, rows = read_detections(src)
    n_au = len(AU_NAMES)
    out_queue: Deque[List] = collections.deque()  # [fields, waiting]
    tracks: Dict[str, _Track] = {}
    written = 0

    def resolve(track: _Track, final: bool) -> None:
        while track.next < track.count and (final or track.next + k < track.count):
            i = track.next
            lo, hi = max(0, i - k), min(track.count, i + k + 1)
            window = np.stack([track.buf[j - track.base][1] for j in range(lo, hi)])
            smoothed = smooth_probs(window, k)[i - lo]
            entry = track.buf[i - track.base][0]
            fields = entry[0]
            texts, labels = prob_fields(smoothed, threshold)
            fields[_PROB_START:_LABEL_START], fields[_LABEL_START : _LABEL_START + n_au] = texts, labels
            entry[1] = False
            track.next += 1
            while track.base < track.next - k:
                track.buf.popleft()
                track.base += 1

    with atomic_write(dst, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        current_frame = None
        for fields in rows:
            frame = int(fields[0])
            if frame != current_frame:
                current_frame = frame
                for fid in [f for f, t in tracks.items() if frame - t.last_frame > max_gap * every]:
                    resolve(tracks.pop(fid), final=True)
            entry = [fields, False]
            if fields[3] == "1":
                fid = fields[2]
                track = tracks.get(fid)
                if track is None:
                    track = tracks[fid] = _Track()
                entry[1] = True
                probs = np.asarray([float(v) for v in fields[_PROB_START:_LABEL_START]], dtype=np.float64)
                track.buf.append((entry, probs))
                track.count += 1
                track.last_frame = frame
                out_queue.append(entry)
                resolve(track, final=False)
            else:
                out_queue.append(entry)
            while out_queue and not out_queue[0][1]:
                writer.writerow(out_queue.popleft()[0])
                written += 1
        for track in tracks.values():
            resolve(track, final=True)
        while out_queue:
            writer.writerow(out_queue.popleft()[0])
            written += 1
    return written


# ------------------------------------------------------------------------------------------------ detect
def _settings(source: FrameSource, model_path: str, aligned: bool, detector: str, **options) -> dict:
    """What must not change between an interrupted run and its --resume."""
    settings = {
        "input": os.path.abspath(source.path),
        "model": os.path.abspath(model_path),
        "aligned": bool(aligned),
        "detector": None if aligned else detector,
    }
    settings.update(options)
    if aligned:
        settings["detect_size"] = None
    return settings


_FLAGS = {
    "input": "--input",
    "model": "--ckpt",
    "aligned": "--aligned",
    "detector": "--detector",
    "all_faces": "--all-faces",
    "threshold": "--threshold",
    "min_face_size": "--min-face-size",
    "max_gap": "--max-gap",
    "every": "--every",
    "detect_size": "--detect-size",
}


def _check_resume(meta_path: str, partial: str, settings: dict) -> None:
    """Refuse to continue a partial file written with other settings, naming the first ones that differ."""
    saved = None
    if os.path.isfile(meta_path):
        with open(meta_path, encoding="utf-8") as handle:
            saved = json.load(handle)
    if saved == settings:
        return
    if not isinstance(saved, dict):
        raise UserError(
            f"{partial}: was written with other settings ({meta_path} is missing); delete it or drop --resume"
        )
    keys = [k for k in settings if saved.get(k) != settings[k]] + [k for k in saved if k not in settings]
    detail = "; ".join(f"{_FLAGS.get(k, k)} {saved.get(k)!r} then, {settings.get(k)!r} now" for k in keys[:3])
    raise UserError(f"{partial}: was written with other settings ({detail}); delete it or drop --resume")


def detect(
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
    overwrite: bool = False,
) -> dict:
    """Detect AUs on an image, a folder of images or a video and write one CSV row per processed frame and face.

    `ckpt` is a .ckpt, .mindir or .onnx file (or pass a ready `predictor`: an InferenceModel or a Predictor).
    Returns a summary dict: frames (processed), frames_read, rows, faces, no_face, seconds, fps, backend, device,
    stage_seconds {decode, detect_faces, align, network, write}, output. See the module docstring for files,
    resume, smoothing and `every`.
    """
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
    source = open_source(input_path)
    ensure_output_folder(output)
    guard.check_outputs([output, plot], [input_path, ckpt, *source.files], overwrite)  # issue 20: no input lost
    lock = guard.OutputLock(output)  # issue 20: one writer per output
    lock.acquire()
    if predictor is None:
        if not ckpt:
            raise UserError("--ckpt: a .ckpt, .mindir or .onnx model file is required")
        from mindface_au.inference.loader import load_inference_model

        predictor = load_inference_model(ckpt, device=device, threads=threads, config=config, batch_size=batch_size)
    model = getattr(predictor, "model", predictor)  # a Predictor wraps an InferenceModel
    model_path = getattr(model, "path", ckpt or "")
    print(f"detect: {model.describe()}", file=sys.stderr)
    with_file = source.kind == "images"
    header = _header(with_file)
    partial, meta_path = output + ".partial", output + ".partial.json"
    settings = _settings(
        source,
        model_path,
        aligned,
        detector,
        all_faces=bool(all_faces),
        threshold=float(threshold),
        min_face_size=int(min_face_size),
        max_gap=int(max_gap),
        every=int(every),
        detect_size=int(detect_size),
    )
    tracker = IoUTracker(max_age=max_gap)
    start = 1
    if resume and os.path.isfile(partial):
        with guard.damaged_resume(partial, meta_path):  # issue 20: damaged partial files
            _check_resume(meta_path, partial, settings)
            start, tracks, next_id = _recover_partial(partial, header)
        start = start - (start - 1) % every  # a processed frame (the partial file only has those)
        tracker.seed({k: (box, (f - 1) // every + 1) for k, (box, f) in tracks.items()}, next_id)
        print(f"resuming {partial} from frame {start}", file=sys.stderr)
    else:
        if resume:
            print(f"--resume: no partial file {partial}; starting from the first frame", file=sys.stderr)
        elif os.path.isfile(partial):
            print(
                f"replacing the partial results of an earlier run in {partial} (use --resume to continue it)",
                file=sys.stderr,
            )
        with open(partial, "w", newline="", encoding="utf-8") as handle:
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
    t0 = time.time()
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
            )
            for row in rows:
                t = time.perf_counter()
                writer.writerow(row.fields(threshold, with_file))
                stats["rows"] += 1
                stats["faces" if row.face is not None else "no_face"] += 1
                now = time.time()
                if now - last_flush > 1.0:
                    handle.flush()
                    last_flush = now
                timer.add("write", t)
    except BaseException as exc:
        lock.release()  # issue 20
        bar.close()
        print(f"partial results kept in {partial}; run again with --resume to continue", file=sys.stderr)
        guard.reraise_environment(exc, partial)  # issue 20: disk full names the file
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
    if source.kind == "video" and source.count and source.seen != source.count:
        print(f"note: read {source.seen} frames, the container announces {source.count}", file=sys.stderr)
    t = time.perf_counter()
    if prob_k > 0:
        smooth_csv(partial, output, prob_k, threshold, max_gap, every)
        os.remove(partial)
    else:
        os.replace(partial, output)
    timer.add("write", t)
    if os.path.exists(meta_path):
        os.remove(meta_path)
    lock.release()  # issue 20
    frames = (start - 1) // every + source.decoded
    seconds = time.time() - t0
    summary = dict(stats, frames=frames, frames_read=source.seen, every=every, seconds=round(seconds, 3))
    summary.update(output=output, backend=model.backend, device=model.device, stage_seconds=timer.summary())
    summary["fps"] = round(source.decoded / seconds, 2) if seconds > 0 else None
    if plot:
        plot_detections(output, plot, video=source.kind == "video", fps=source.fps)
        summary["plot"] = plot
    return summary


def plot_detections(csv_path: str, out_png: str, video: bool = True, fps: float = 0.0, max_points: int = 10000):
    """AU time line of a detect CSV (the face track with most detections), or per-image bars for images."""
    from mindface_au.plots import plot_au_timeline, plot_image_bars

    header, rows = read_detections(csv_path)
    if not video:
        probs, names = [], []
        for fields in rows:
            if fields[3] == "1" and fields[2] in ("0", ""):
                probs.append([float(v) for v in fields[_PROB_START:_LABEL_START]])
                names.append(fields[-1] if header[-1] == FILE_COLUMN else fields[0])
            if len(probs) >= 20:
                print("--plot: showing the first 20 images", file=sys.stderr)
                break
        if not probs:
            raise UserError(f"--plot: no face was found in any image of {csv_path}; nothing to plot")
        plot_image_bars(np.asarray(probs), names, out_png, title=os.path.basename(csv_path))
        return
    counts: Dict[str, int] = collections.Counter()
    frames = 0
    for fields in rows:
        frames = max(frames, int(fields[0]))
        if fields[3] == "1":
            counts[fields[2]] += 1
    face = counts.most_common(1)[0][0] if counts else "0"
    step = max(1, -(-frames // max_points))
    probs = np.full(((frames + step - 1) // step, len(AU_NAMES)), np.nan)
    _, rows = read_detections(csv_path)
    for fields in rows:
        frame = int(fields[0])
        if fields[3] == "1" and fields[2] == face and (frame - 1) % step == 0:
            probs[(frame - 1) // step] = [float(v) for v in fields[_PROB_START:_LABEL_START]]
    idx = np.arange(probs.shape[0]) * step
    times = idx / fps if fps else None
    plot_au_timeline(probs, out_png, times=times, title=f"{os.path.basename(csv_path)} face {face}")
