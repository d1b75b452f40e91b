"""SynthAU in the BP4D, DISFA and list-file layouts (`write_synthau(..., format=...)`), with their awkward parts.

Each layout holds that data set's AU set and subject names taken from each of its three subject parts (so the
3-fold protocols run end to end), every subject a SynthAU person drawn with AU9, AU14 and AU17 as well:

- ``bp4d``: `AUCoding/AU_OCC/{S}_{T}.csv` (header 0 = frame number, then AU numbers incl. AU5, which is outside
  the set and must be ignored), frame numbers starting anywhere with gaps, spans of 9 ("not coded") in some
  AUs, and frames without an image; crops `{S}/{T}/{frame}.jpg`. Intensity files of AU6, AU10, AU12, AU14, AU17
  in the reader's layout (`bp4d.intensity_path`: `AUCoding/AU_INT/AU06/{S}_{T}_AU06.csv`, lines frame,intensity)
  with a span of 9 (not coded) in one AU of each subject-task.
- ``disfa``: `ActionUnit_Labels/{SN}/{SN}_au{N}.txt` for DISFA's 12 labelled AUs (intensity 0-5; AU5 and AU20
  all 0: SynthAU never moves them), images `{SN}/{t}.png` by 0-based line index, some missing.
- ``list``: ME-GraphAU list files for the 3 BP4D-set folds (`SynthAU_{train,test}_{img_path,label}_fold{k}.txt`,
  9 where not coded) with images under `img/`; every listed path has an image. Intensity lists beside them
  (`SynthAU_{train,test}_intensity_fold{k}.txt`: the image path, then the 12 BP4D AUs' intensities in that order,
  9 where the occurrence label is 9), the default model.intensity_au_names of this list data.

Intensities map to the FACS 0-5 scale as min(5, floor(a / 0.15)) (`facs_intensity`), so intensity >= 2 is the same
event as the SynthAU label (a >= 0.3). The tree is written in a temporary folder and renamed when complete.
"""

import hashlib
import json
import os
import shutil
from typing import Dict, List, Optional

import numpy as np

from mindface_au.au_sets import ABAW_AUS, BP4D_AUS, BP4D_INTENSITY_AUS, DISFA_AUS, DISFA_INTENSITY_AUS, au_number
from mindface_au.data import bp4d, disfa, listfiles
from mindface_au.data.synthau.dataset import GENERATOR, SUMMARY_FILE, _spans, generate, synth_video, write_image
from mindface_au.data.synthau.face import EXTRA_AUS
from mindface_au.errors import UserError

FORMATS = ("affwild2", "bp4d", "disfa", "list")
DISFA_FILE_AUS = DISFA_INTENSITY_AUS  # label files DISFA ships
LIST_PREFIX = "SynthAU"
INTENSITY_STEP = 0.15  # SynthAU intensity a in [0, 1] -> FACS min(5, floor(a / INTENSITY_STEP))
INTENSITY_AUS = {"bp4d": BP4D_INTENSITY_AUS, "disfa": DISFA_INTENSITY_AUS, "list": BP4D_AUS}  # written per layout

__all__ = ["FORMATS", "INTENSITY_AUS", "write_synthau", "facs_intensity"]


def facs_intensity(values: np.ndarray) -> np.ndarray:
    """SynthAU intensities in [0, 1] as FACS 0-5 integers: min(5, floor(a / 0.15)); >= 2 exactly when a >= 0.3."""
    return np.minimum(5, np.floor(np.asarray(values) / INTENSITY_STEP + 1e-9)).astype(np.int64)


def _columns(video: Dict, names) -> np.ndarray:
    """(T, len(names)) intensities of `names` from a video's ABAW 12 and extra AUs (0 for AUs SynthAU lacks)."""
    out = np.zeros((len(video["intensity"]), len(names)))
    for j, name in enumerate(names):
        if name in ABAW_AUS:
            out[:, j] = video["intensity"][:, ABAW_AUS.index(name)]
        elif name in EXTRA_AUS:
            out[:, j] = video["extra"][:, EXTRA_AUS.index(name)]
    return out


def _drop_one_image(video: Dict, rng: np.random.Generator) -> None:
    """Every sequence has at least one frame without an image, as real trees do (no face found)."""
    i = int(rng.integers(1, len(video["frames"])))
    video["frames"][i] = None
    video["no_face"][i] = True


def _subjects(parts, per_part: int) -> List[str]:
    return [s for part in parts for s in part[:per_part]]


def _seed(seed: int, name: str) -> np.random.SeedSequence:
    digest = hashlib.sha256(name.encode()).digest()
    return np.random.SeedSequence([int(seed), int.from_bytes(digest[:8], "little")])


def _bp4d_video(root: str, name: str, frames: int, seed: int, image_dir: Optional[str]) -> Dict:
    """Write one subject-task; returns its frame numbers, labels (9 = not coded) and which frames have an image."""
    video = synth_video(_seed(seed, name), frames, extra=True)
    rng = np.random.default_rng(_seed(seed + 1, name))
    _drop_one_image(video, rng)
    labels = (_columns(video, BP4D_AUS) >= 0.3).astype(np.int64)
    for j in rng.choice(len(BP4D_AUS), size=2, replace=False):  # two AUs left uncoded over a span
        labels[_spans(rng, frames, 1, (3, max(4, frames // 4))), j] = bp4d.NOT_CODED
    steps = np.where(rng.random(frames) < 0.08, int(rng.integers(2, 5)), 1)  # gaps in the frame numbers
    numbers = int(rng.integers(1, 2000)) + np.cumsum(steps) - steps[0]
    facs = facs_intensity(_columns(video, BP4D_AUS))  # (T, 12) 0-5 of BP4D_AUS
    facs[labels == bp4d.NOT_CODED] = bp4d.NOT_CODED  # an AU not coded for occurrence has no intensity either
    return {"video": video, "labels": labels, "numbers": numbers, "has_image": ~video["no_face"], "facs": facs}


def _write_bp4d_intensity(tmp: str, name: str, item: Dict, seed: int) -> None:
    """The intensity files of one subject-task (BP4D_INTENSITY_AUS, the reader's layout), with a span of 9 in one AU
    drawn from its own stream (the occurrence files do not change with it)."""
    rng = np.random.default_rng(_seed(seed + 2, name))
    values = item["facs"][:, [BP4D_AUS.index(au) for au in BP4D_INTENSITY_AUS]].copy()
    frames = len(values)
    values[_spans(rng, frames, 1, (3, max(4, frames // 4))), int(rng.integers(len(BP4D_INTENSITY_AUS)))] = 9
    for j, au in enumerate(BP4D_INTENSITY_AUS):
        path = bp4d.intensity_path(tmp, name, au)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write("".join(f"{n},{v}\n" for n, v in zip(item["numbers"], values[:, j])))


def _write_bp4d(tmp: str, per_part: int, tasks: int, frames: int, seed: int) -> Dict:
    header = ["0"] + [str(n) for n in sorted({au_number(a) for a in BP4D_AUS} | {5})]
    counts = {}
    for subject in _subjects(bp4d.PARTS, per_part):
        for t in range(1, tasks + 1):
            task = f"T{t}"
            item = _bp4d_video(tmp, f"{subject}_{task}", frames, seed, None)
            rows = [header]
            for i, number in enumerate(item["numbers"]):
                by_au = dict(zip((str(au_number(a)) for a in BP4D_AUS), item["labels"][i]))
                rows.append([str(number)] + [str(by_au.get(h, 0)) for h in header[1:]])
            path = os.path.join(tmp, bp4d.LABEL_DIR, f"{subject}_{task}.csv")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8", newline="") as handle:
                handle.write("\n".join(",".join(r) for r in rows) + "\n")
            for image, number in zip(item["video"]["frames"], item["numbers"]):
                if image is not None:
                    out = bp4d.image_path(tmp, subject, task, number)
                    os.makedirs(os.path.dirname(out), exist_ok=True)
                    write_image(out, image)
            _write_bp4d_intensity(tmp, f"{subject}_{task}", item, seed)
            counts[f"{subject}_{task}"] = int(item["has_image"].sum())
    return counts


def _write_disfa(tmp: str, per_part: int, frames: int, seed: int) -> Dict:
    counts = {}
    for subject in _subjects(disfa.PARTS, per_part):
        video = synth_video(_seed(seed, subject), frames, extra=True)
        _drop_one_image(video, np.random.default_rng(_seed(seed + 1, subject)))
        intensity = facs_intensity(_columns(video, DISFA_FILE_AUS))
        for j, au in enumerate(DISFA_FILE_AUS):
            path = disfa.label_path(tmp, subject, au)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write("".join(f"{t + 1},{v}\n" for t, v in enumerate(intensity[:, j])))
        folder = os.path.join(tmp, subject)
        os.makedirs(folder, exist_ok=True)
        for t, image in enumerate(video["frames"]):
            if image is not None:
                write_image(os.path.join(folder, f"{t}{disfa.IMAGE_EXT}"), image)
        counts[subject] = int((~video["no_face"]).sum())
    return counts


def _write_list(tmp: str, per_part: int, frames: int, seed: int) -> Dict:
    items = {}
    for subject in _subjects(bp4d.PARTS, per_part):
        name = f"{subject}_T1"
        item = _bp4d_video(tmp, name, frames, seed, None)
        rel = []
        for i, image in enumerate(item["video"]["frames"]):
            if image is not None:
                path = os.path.join("img", name, f"{item['numbers'][i]}.jpg")
                os.makedirs(os.path.join(tmp, os.path.dirname(path)), exist_ok=True)
                write_image(os.path.join(tmp, path), image)
                rel.append((path.replace(os.sep, "/"), item["labels"][i], item["facs"][i]))
        items[subject] = rel
    for fold in range(1, 4):
        test_part = bp4d.PARTS[3 - fold]
        for part, chosen in (
            ("train", [s for s in items if s not in test_part]),
            ("test", [s for s in items if s in test_part]),
        ):
            rows = [r for s in chosen for r in items[s]]
            with open(os.path.join(tmp, f"{LIST_PREFIX}_{part}_img_path_fold{fold}.txt"), "w", encoding="utf-8") as f:
                f.write("".join(p + "\n" for p, _, _ in rows))
            with open(os.path.join(tmp, f"{LIST_PREFIX}_{part}_label_fold{fold}.txt"), "w", encoding="utf-8") as f:
                f.write("".join(" ".join(str(int(v)) for v in lab) + "\n" for _, lab, _ in rows))
            name = listfiles.INTENSITY_FILE.format(ds=LIST_PREFIX, part=part, k=fold)
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                f.write("".join(" ".join([p] + [str(int(v)) for v in facs]) + "\n" for p, _, facs in rows))
    return {s: len(r) for s, r in items.items()}


def write_synthau(
    out_dir: str,
    format: str = "affwild2",  # noqa: A002 - the data.format name users know
    frames: int = 300,
    seed: int = 0,
    subjects_per_part: int = 2,
    tasks: int = 1,
    overwrite: bool = False,
    **affwild2_options,
) -> Dict:
    """Write SynthAU to `out_dir` in layout `format` (affwild2: `generate`, its options in `affwild2_options`).

    bp4d, disfa, list: `subjects_per_part` subjects from each of the three subject parts, `frames` frames each
    (bp4d: `tasks` tasks per subject). Returns a summary (also written as synthau.json).
    """
    if format not in FORMATS:
        raise UserError(f"SynthAU format {format!r}: expected one of {', '.join(FORMATS)}")
    if format == "affwild2":
        return generate(out_dir, frames=frames, seed=seed, overwrite=overwrite, **affwild2_options)
    if frames < 10 or subjects_per_part < 1 or tasks < 1:
        raise UserError("SynthAU: frames >= 10, subjects_per_part >= 1 and tasks >= 1 expected")
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        if not overwrite or not os.path.isfile(os.path.join(out_dir, SUMMARY_FILE)):
            raise UserError(f"{out_dir}: already exists and is not empty (only a SynthAU folder can be overwritten)")
    tmp = os.path.join(os.path.dirname(out_dir), f".{os.path.basename(out_dir)}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        if format == "bp4d":
            counts = _write_bp4d(tmp, subjects_per_part, tasks, frames, seed)
        elif format == "disfa":
            counts = _write_disfa(tmp, subjects_per_part, frames, seed)
        else:
            counts = _write_list(tmp, subjects_per_part, frames, seed)
        names = {"bp4d": BP4D_AUS, "disfa": DISFA_AUS, "list": BP4D_AUS}[format]
        summary = {"generator": GENERATOR, "format": format, "seed": seed, "frames": frames, "au_names": list(names)}
        summary["intensity_au_names"] = list(INTENSITY_AUS[format])
        summary["images"] = counts
        with open(os.path.join(tmp, SUMMARY_FILE), "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=1)
            handle.write("\n")
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary
