"""SynthAU dataset generation: one video (identity, intensities, pose, frames) and the whole Aff-Wild2-layout tree.

`synth_video` draws one person's video from its own seed sequence; `generate` plans the videos (names, splits,
two-person pairs, frame counts, per-video seeds), renders them (in worker processes for larger sets) and writes
images, annotation txt files, the test list, hidden test labels and `synthau.json` in a temporary folder that is
renamed when complete.
"""

import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from mindface_au.config import AU_NAMES
from mindface_au.data.affwild2 import ANNOTATION_DIR, IMAGE_DIR, SPLIT_DIRS, TEST_LIST, image_name
from mindface_au.data.au_txt import write_au_file
from mindface_au.data.synthau.face import light_map, render_face, sample_identity
from mindface_au.data.synthau.intensity import (
    LABEL_THRESHOLD,
    au_intensities,
    extra_intensities,
    labels_from_intensity,
)
from mindface_au.errors import UserError, param
from mindface_au.utils.guard import EnvironmentFailure, writing

TEST_LABEL_DIR = "synthau_test_labels"
SUMMARY_FILE = "synthau.json"
GENERATOR = "SynthAU 2"  # bumped whenever the drawing changes (2: AU23 visible at 64 px), so old data is not reused

__all__ = ["TEST_LABEL_DIR", "SUMMARY_FILE", "GENERATOR", "synth_video", "generate"]


def _smooth_walk(rng: np.random.Generator, num_frames: int, amplitude: float) -> np.ndarray:
    t = np.arange(num_frames)
    out = np.zeros(num_frames)
    for period in (rng.uniform(40, 90), rng.uniform(120, 300)):
        out += np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.3, 1.0)
    return out * amplitude / 2


def _spans(rng: np.random.Generator, num_frames: int, count: int, length: Tuple[int, int]) -> np.ndarray:
    mask = np.zeros(num_frames, dtype=bool)
    for _ in range(count):
        n = int(rng.integers(*length))
        start = int(rng.integers(0, max(1, num_frames - n)))
        mask[start : start + n] = True
    return mask


def synth_video(seed_seq: np.random.SeedSequence, num_frames: int, render: bool = True, extra: bool = False) -> Dict:
    """One person's video: identity, intensities (T,12), labels, -1 rows, missing images and frames.

    `extra`: also draw AU9, AU14, AU17 ("extra": (T, 3) intensities, "extra_labels") from their own random stream
    (seeded from `seed_seq` with one more spawn-key entry), so the rest of the video is the same as without them.
    """
    rng = np.random.default_rng(seed_seq)
    extra_i = None
    if extra:
        extra_seq = np.random.SeedSequence(seed_seq.entropy, spawn_key=(*seed_seq.spawn_key, 0xA17))
        extra_i = extra_intensities(np.random.default_rng(extra_seq), num_frames)
    cv2.setRNGSeed(int(seed_seq.generate_state(1)[0] & 0x7FFFFFFF))
    ident = sample_identity(rng)
    intensity = au_intensities(rng, num_frames)
    labels = labels_from_intensity(intensity)
    invalid = _spans(rng, num_frames, int(rng.integers(0, 3)), (5, 25))
    no_face = _spans(rng, num_frames, int(rng.integers(0, 4)), (1, 8))
    pose = np.stack([_smooth_walk(rng, num_frames, a) for a in (5.0, 2.0, 2.0, 0.05)], axis=1)
    pose[:, 3] += 1.0
    gaze = _smooth_walk(rng, num_frames, 1.5)
    brightness = 1.0 + _smooth_walk(rng, num_frames, 0.12)
    blink = np.zeros(num_frames)
    t = int(rng.integers(5, 60))
    while t < num_frames:
        blink[t : t + 3] = (0.5, 1.0, 0.6)[: len(blink[t : t + 3])]
        t += int(rng.integers(40, 140))
    frames, geometry = [], []
    if render:
        light = light_map(ident)
        for i in range(num_frames):
            if no_face[i]:
                frames.append(None)
                geometry.append(None)
                continue
            image, geo = render_face(
                ident,
                intensity[i],
                rng,
                tuple(pose[i]),
                blink[i],
                gaze[i],
                light,
                brightness[i],
                None if extra_i is None else extra_i[i],
            )
            frames.append(image)
            geometry.append(geo)
    return {
        "identity": ident,
        "intensity": intensity,
        "labels": labels,
        "invalid": invalid,
        "no_face": no_face,
        "frames": frames,
        "geometry": geometry,
        "extra": extra_i,
        "extra_labels": None if extra_i is None else labels_from_intensity(extra_i),
    }


def write_image(path: str, image: np.ndarray) -> None:
    """Write one SynthAU image (JPEG quality 92, or PNG by the name); OpenCV's silent failure (a full disk, no
    permission) becomes one line naming the file (EnvironmentFailure: the CLI exits 1, no traceback)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, 92] if path.lower().endswith((".jpg", ".jpeg")) else []
    try:
        written = cv2.imwrite(path, image, params)
    except cv2.error as exc:
        raise EnvironmentFailure(f"{path}: cannot write the image ({' '.join(str(exc).split())[:120]})") from exc
    if not written:
        raise EnvironmentFailure(f"{path}: cannot write the image (disk full or not writable)")


def _make_job(job: Dict) -> Dict:
    """Render and write one video (runs in a worker process); returns its label statistics."""
    cv2.setNumThreads(1)
    video = synth_video(np.random.SeedSequence(job["entropy"]), job["frames"])
    folder = os.path.join(job["root"], IMAGE_DIR, job["name"])
    os.makedirs(folder, exist_ok=True)
    for i, image in enumerate(video["frames"]):
        if image is not None:
            path = os.path.join(folder, image_name(i + 1))
            write_image(path, image)
    labels, invalid = video["labels"], video["invalid"]
    rows = len(labels) - job["unlabelled_tail"]  # images at the end without an annotation row
    if job["split"] == "test":
        invalid = np.zeros_like(invalid)
        path = os.path.join(job["root"], TEST_LABEL_DIR, job["name"] + ".txt")
    else:
        path = os.path.join(job["root"], ANNOTATION_DIR, SPLIT_DIRS[job["split"]], job["name"] + ".txt")
    write_au_file(path, np.where(invalid[:rows, None], -1, labels[:rows]))  # -1: unlabelled row
    usable = ~invalid[:rows] & ~video["no_face"][:rows]
    return {
        "name": job["name"],
        "split": job["split"],
        "frames": int(len(labels)),
        "positives": labels[:rows][usable].sum(axis=0).astype(int).tolist(),
        "usable": int(usable.sum()),
    }


def _plan(videos: int, frames: int, seed: int, test_videos: int) -> List[Dict]:
    """Video names, splits, frame counts and per-video seeds; two-person videos get _left/_right halves."""
    rng = np.random.default_rng([seed, 7919])
    groups: List[List[str]] = []
    k = 0
    while sum(len(g) for g in groups) < videos:
        room = videos - sum(len(g) for g in groups)
        if k % 6 == 4 and room >= 2:
            groups.append([f"synth_{k:03d}_left", f"synth_{k:03d}_right"])
        else:
            groups.append([f"synth_{k:03d}"])
        k += 1
    order = rng.permutation(len(groups))
    n_train = max(1, int(round(len(groups) * 2 / 3))) if len(groups) > 1 else 1
    jobs = []
    for rank, gi in enumerate(order):
        split = "train" if rank < n_train else "val"
        if len(groups) == 1:
            split = "train"
        count = max(10, int(round(frames * rng.uniform(0.75, 1.25))))
        tail = int(rng.integers(0, 4)) if rng.random() < 0.3 else 0
        for name in groups[gi]:
            jobs.append({"name": name, "split": split, "frames": count, "unlabelled_tail": tail})
    for t in range(test_videos):
        count = max(10, int(round(frames * rng.uniform(0.75, 1.25))))
        jobs.append({"name": f"synth_test_{t:03d}", "split": "test", "frames": count, "unlabelled_tail": 0})
    for job in jobs:
        digest = hashlib.sha256(job["name"].encode()).digest()
        job["entropy"] = [int(seed), int.from_bytes(digest[:8], "little")]  # per video: independent of order
    return sorted(jobs, key=lambda j: -j["frames"])


def generate(
    out_dir: str,
    videos: int = 24,
    frames: int = 300,
    seed: int = 0,
    test_videos: Optional[int] = None,
    workers: Optional[int] = None,
    overwrite: bool = False,
) -> Dict:
    """Write SynthAU to `out_dir` (see the module docstring); returns a summary dict (also in synthau.json).

    `videos` counts the labelled annotation files (train + val); `test_videos` defaults to videos // 6 (>= 1).
    An existing `out_dir` is replaced only with `overwrite` and only if it holds a previous SynthAU.
    """
    if videos < 2:
        raise UserError(f"{param('videos')}: got {videos}, expected at least 2 (train and val)")
    if frames < 10:
        raise UserError(f"{param('frames')}: got {frames}, expected at least 10")
    if seed < 0:
        raise UserError(f"seed: got {seed}, expected an integer >= 0")
    if test_videos is not None and test_videos < 0:
        raise UserError(f"test_videos: got {test_videos}, expected an integer >= 0")
    if workers is not None and workers < 1:
        raise UserError(f"workers: got {workers}, expected at least 1 (or none: the CPU count)")
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        if not overwrite:
            raise UserError(
                f"{out_dir}: already exists and is not empty; choose another "
                f"{param('out_dir')} or pass {param('overwrite')}"
            )
        if not os.path.isfile(os.path.join(out_dir, SUMMARY_FILE)):
            raise UserError(f"{out_dir}: not a SynthAU folder ({SUMMARY_FILE} missing); refusing to replace it")
    test_videos = max(1, videos // 6) if test_videos is None else int(test_videos)
    start = time.perf_counter()
    parent = os.path.dirname(out_dir)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{out_dir}: cannot create the parent folder ({exc.strerror})") from exc
    tmp = os.path.join(parent, f".{os.path.basename(out_dir)}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    with writing(out_dir):  # disk full / no permission: one line naming the folder, exit 1
        try:
            for sub in [os.path.join(ANNOTATION_DIR, d) for d in SPLIT_DIRS.values()] + [IMAGE_DIR, TEST_LABEL_DIR]:
                os.makedirs(os.path.join(tmp, sub), exist_ok=True)
            jobs = _plan(videos, frames, seed, test_videos)
            for job in jobs:
                job["root"] = tmp
            workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
            if workers > 1 and sum(j["frames"] for j in jobs) >= 1500:
                with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                    results = list(pool.map(_make_job, jobs))
            else:
                results = [_make_job(job) for job in jobs]
            summary = _summarise(results, videos, frames, seed, test_videos)
            summary["seconds"] = round(time.perf_counter() - start, 2)
            tests = sorted((r["name"], r["frames"]) for r in results if r["split"] == "test")
            with open(os.path.join(tmp, ANNOTATION_DIR, SPLIT_DIRS["test"], TEST_LIST), "w", encoding="utf-8") as f:
                f.write("".join(f"{name},{count}\n" for name, count in tests))
            with open(os.path.join(tmp, SUMMARY_FILE), "w", encoding="utf-8") as f:
                json.dump(summary, f, indent=1)
                f.write("\n")
            if os.path.exists(out_dir):
                shutil.rmtree(out_dir) if os.path.isdir(out_dir) else os.remove(out_dir)
            os.replace(tmp, out_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return summary


def _summarise(results: List[Dict], videos: int, frames: int, seed: int, test_videos: int) -> Dict:
    out: Dict = {
        "generator": GENERATOR,
        "seed": seed,
        "videos": videos,
        "frames": frames,
        "test_videos": test_videos,
        "label_threshold": LABEL_THRESHOLD,
        "splits": {},
    }
    for split in ("train", "val", "test"):
        part = [r for r in results if r["split"] == split]
        usable = sum(r["usable"] for r in part)
        pos = np.sum([r["positives"] for r in part], axis=0) if part else np.zeros(12)
        out["splits"][split] = {
            "videos": sorted(r["name"] for r in part),
            "frames": int(sum(r["frames"] for r in part)),
            "positive_rate": {au: round(float(p) / max(usable, 1), 4) for au, p in zip(AU_NAMES, pos)},
        }
    return out
