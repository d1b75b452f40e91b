"""`--report out.html`: one self-contained HTML file per input (inline SVG and CSS; no scripts, fonts or network).

For a video, per face: each AU's probability over time with its smoothed 0/1 periods shaded, and the share of the
face's frames each AU is present (smoothed); the frames without a face (as periods); the run's settings and the
model card (from the CSV's sidecar JSON). For images (one image or a folder): a bar chart of AU probabilities per
image with a face, and the images without one. For a folder of videos, an index page links one page per video.
A CSV with intensity columns (a model with the intensity head) adds, in the same AU panels, each AU's intensity
over time as an orange line on the 0-5 scale, and per face the mean intensity per AU (per image: its intensities).

The 0/1 periods use `mindface_au.postprocess.smooth_probs` over 2k+1 detections of the face (k = the run's
`prob_k`, or `DISPLAY_K` when the run did not smooth), thresholded at the run's threshold.
"""

import collections
import html
import json
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from mindface_au.au_sets import INTENSITY_MAX
from mindface_au.errors import UserError, param
from mindface_au.inference.detect.csvfile import iter_rows, read_detections, sidecar_path
from mindface_au.inference.detect.rows import FILE_COLUMN, RowSchema
from mindface_au.utils.io import atomic_write

__all__ = ["write_report", "video_page", "DISPLAY_K"]

DISPLAY_K = 5  # smoothing window half-width of the 0/1 periods when the run itself did not smooth
PROB_COLOUR = "#1f5fbf"  # probability lines
INTENSITY_COLOUR = "#d9730d"  # intensity lines and bars (the overlay's and the plot's intensity colour too)
MAX_POINTS = 1500  # points per plotted line (longer tracks are subsampled for the drawing only)
_CSS = (
    "body{font-family:sans-serif;margin:16px;color:#222;max-width:1100px}h1{font-size:20px}h2{font-size:17px;"
    "border-bottom:1px solid #ccc}h3{font-size:15px}table{border-collapse:collapse;font-size:12px}"
    "td,th{border:1px solid #ddd;padding:2px 6px;text-align:left}.au{display:flex;align-items:center}"
    ".au b{width:48px;font-size:12px}.note{color:#666;font-size:12px}svg{display:block}"
    ".warn{background:#fff4d6;border:1px solid #e0b84f;padding:6px 10px;font-size:13px}"
)


def _periods(mask: np.ndarray, times: np.ndarray) -> List[tuple]:
    """(start, end) times of the runs of True in `mask`."""
    out, start = [], None
    for i, on in enumerate(mask):
        if on and start is None:
            start = i
        if (not on or i == len(mask) - 1) and start is not None:
            end = i if on else i - 1
            out.append((float(times[start]), float(times[end])))
            start = None
    return out


def _fmt(seconds: float, is_time: bool) -> str:
    if not is_time:
        return f"{int(seconds)}"
    m, s = divmod(float(seconds), 60.0)
    return f"{int(m)}:{s:05.2f}"


def _polylines(times, values, x, y, colour: str) -> List[str]:
    """A line through (x(t), y(v)), subsampled to MAX_POINTS and broken where the face was away (gaps in its
    frames)."""
    step = max(1, -(-len(times) // MAX_POINTS))
    gap = 3 * step * max(float(np.median(np.diff(times))) if len(times) > 1 else 1.0, 1e-9)
    segments, seg, last = [], [], None
    for i in range(0, len(times), step):
        if last is not None and times[i] - last > gap:
            segments.append(seg)
            seg = []
        seg.append(f"{x(times[i]):.1f},{y(float(values[i])):.1f}")
        last = times[i]
    segments.append(seg)
    return [
        f'<polyline fill="none" stroke="{colour}" stroke-width="1.2" points="{" ".join(seg)}"/>'
        for seg in segments
        if seg
    ]


def _au_svg(times, probs, on, t0, t1, threshold, width=860, height=46, intensity=None) -> str:
    """One AU's probability line over [t0, t1] with its 0/1 periods shaded, and its intensity line (0-5 from the
    bottom to the top of the panel) when given; probs None: the intensity line alone."""
    span = max(t1 - t0, 1e-9)

    def x(t):
        return 2 + (float(t) - t0) / span * (width - 4)

    parts = [f'<svg width="{width}" height="{height}" role="img">']
    parts.append(f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fafafa" stroke="#ddd"/>')
    if probs is not None:
        for a, b in _periods(on, times):
            parts.append(
                f'<rect x="{x(a):.1f}" y="0" width="{max(x(b) - x(a), 1.5):.1f}" height="{height}" fill="#b8e0b8"/>'
            )
        ty = height - 2 - threshold * (height - 4)
        parts.append(f'<line x1="0" x2="{width}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#999" stroke-dasharray="3,3"/>')
        parts += _polylines(times, probs, x, lambda v: height - 2 - v * (height - 4), PROB_COLOUR)
    if intensity is not None:
        parts += _polylines(
            times, intensity, x, lambda v: height - 2 - v / INTENSITY_MAX * (height - 4), INTENSITY_COLOUR
        )
    parts.append("</svg>")
    return "".join(parts)


def _share_svg(names: Sequence[str], shares: Sequence[float], width=420, texts=None, colour="#3a9a3a") -> str:
    """Horizontal bars of shares in [0, 1], labelled as percentages (or by `texts`)."""
    row = 16
    parts = [f'<svg width="{width}" height="{row * len(names) + 4}">']
    for i, (name, share) in enumerate(zip(names, shares)):
        y = 2 + i * row
        text = f"{100 * share:.1f}%" if texts is None else texts[i]
        parts.append(f'<text x="0" y="{y + 12}" font-size="12">{html.escape(name)}</text>')
        parts.append(f'<rect x="60" y="{y + 2}" width="{share * 300:.1f}" height="{row - 5}" fill="{colour}"/>')
        parts.append(f'<text x="{66 + share * 300:.1f}" y="{y + 12}" font-size="11">{text}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _intensity_svg(names: Sequence[str], values) -> str:
    """Horizontal bars of intensities on the 0-5 scale, labelled with their values."""
    values = [float(v) for v in values]
    return _share_svg(
        names, [v / INTENSITY_MAX for v in values], texts=[f"{v:.2f}" for v in values], colour=INTENSITY_COLOUR
    )


def _sidecar(csv_path: str) -> dict:
    path = sidecar_path(csv_path)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    return {}


def _table(items: Dict[str, object]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(json.dumps(v) if not isinstance(v, str) else v)}</td></tr>"
        for k, v in items.items()
    )
    return f"<table>{rows}</table>"


def _validity_note(card: dict) -> str:
    """What the reader must know before trusting the numbers: what the model was trained on, as far as known."""
    described = card.get("card")
    if described and "synth" in json.dumps(described).lower():
        text = (
            "This model was trained on synthetic faces (SynthAU). Its outputs on real faces are not validated: "
            "read them as a demonstration, not as measurements."
        )
    elif described:
        return ""
    else:
        text = (
            "The model file does not say what it was trained on. The project's demo model is trained on synthetic "
            "faces (SynthAU) only, and its outputs on real faces are not validated."
        )
    return f'<p class="warn">{html.escape(text)}</p>'


def video_page(csv_path: str, threshold: Optional[float] = None, k: Optional[int] = None, title: str = "") -> str:
    """The HTML of one CSV's report (a video, or images when the CSV has a file column)."""
    from mindface_au.postprocess import smooth_probs

    header, _ = read_detections(csv_path)
    schema = RowSchema.from_header(header, csv_path)
    side = _sidecar(csv_path)
    settings = side.get("settings", {})
    threshold = float(settings.get("threshold", 0.5) if threshold is None else threshold)
    run_k = int(settings.get("prob_k", 0) if k is None else k)
    k_show = run_k or DISPLAY_K
    rows = list(iter_rows(csv_path))
    title = title or os.path.basename(csv_path)
    body = [f"<h1>{html.escape(title)}</h1>", _validity_note(side.get("model_card") or {})]
    faces = [r for r in rows if r["success"]]
    empty = [r for r in rows if not r["success"]]
    body.append(
        f'<p>{len({r["frame"] for r in rows})} frames processed, {len(faces)} face detections, '
        f"{len(empty)} frames without a face.</p>"
    )
    if schema.with_file:
        body.append("<h2>Images</h2>")
        for r in faces:
            probs = [r[c] for c in schema.prob_columns]
            body.append(f"<h3>{html.escape(str(r[FILE_COLUMN]))} (face {r['face_id']})</h3>")
            body.append(_share_svg(schema.au_names, probs))
            if schema.intensity_columns:
                body.append('<p class="note">Intensity (0-5)</p>')
                body.append(_intensity_svg(schema.intensity_au_names, [r[c] for c in schema.intensity_columns]))
        if empty:
            names = ", ".join(html.escape(str(r[FILE_COLUMN])) for r in empty)
            body.append(f"<h2>Images without a face</h2><p>{names}</p>")
    else:
        is_time = all(r["timestamp"] is not None for r in rows)
        key = "timestamp" if is_time else "frame"
        t_all = np.array([r[key] for r in rows], dtype=np.float64)
        t0, t1 = (float(t_all.min()), float(t_all.max())) if len(t_all) else (0.0, 1.0)
        tracks: Dict[int, List[dict]] = collections.defaultdict(list)
        for r in faces:
            tracks[r["face_id"]].append(r)
        unit = "s" if is_time else "frame"
        intensity_note = (
            "; orange: intensity on the 0-5 scale (0 at the bottom of the panel, 5 at the top)"
            if schema.intensity_columns
            else ""
        )
        body.append(
            f'<p class="note">Time axis {_fmt(t0, is_time)} - {_fmt(t1, is_time)} ({unit}); green: AU present '
            f"(probability smoothed over {2 * k_show + 1} detections, threshold {threshold}); dashed: threshold"
            f"{intensity_note}.</p>"
        )
        intensity_index = {au: j for j, au in enumerate(schema.intensity_au_names)}
        only_intensity = [au for au in schema.intensity_au_names if au not in schema.au_names]
        for fid in sorted(tracks):
            track = tracks[fid]
            times = np.array([r[key] for r in track], dtype=np.float64)
            probs = np.array([[r[c] for c in schema.prob_columns] for r in track], dtype=np.float64)
            smooth = smooth_probs(probs, k_show) if len(track) else probs
            on = smooth >= threshold
            intensity = np.array([[r[c] for c in schema.intensity_columns] for r in track], dtype=np.float64)
            body.append(
                f"<h2>Face {fid}</h2><p>{len(track)} detections, {_fmt(times[0], is_time)} - "
                f"{_fmt(times[-1], is_time)}</p>"
            )
            for j, au in enumerate(schema.au_names):
                line = intensity[:, intensity_index[au]] if au in intensity_index else None
                body.append(f'<div class="au"><b>{html.escape(au)}</b>')
                body.append(_au_svg(times, probs[:, j], on[:, j], t0, t1, threshold, intensity=line) + "</div>")
            for au in only_intensity:  # an intensity AU without an occurrence column: its intensity alone
                body.append(f'<div class="au"><b>{html.escape(au)}</b>')
                line = intensity[:, intensity_index[au]]
                body.append(_au_svg(times, None, None, t0, t1, threshold, intensity=line) + "</div>")
            body.append("<h3>Share of the face's frames with the AU present</h3>")
            body.append(_share_svg(schema.au_names, on.mean(axis=0).tolist()))
            if schema.intensity_columns:
                body.append("<h3>Mean intensity over the face's frames (0-5)</h3>")
                body.append(_intensity_svg(schema.intensity_au_names, intensity.mean(axis=0)))
        if not tracks:
            body.append("<p>No face was found.</p>")
        missing = np.array([not r["success"] for r in rows])
        periods = _periods(missing, t_all) if len(rows) else []
        text = ", ".join(f"{_fmt(a, is_time)}-{_fmt(b, is_time)}" for a, b in periods[:200]) or "none"
        body.append(f"<h2>Frames without a face</h2><p>{len(empty)} frames: {html.escape(text)}</p>")
    body.append("<h2>Settings</h2>" + _table({k: v for k, v in settings.items()}))
    for key in ("kind", "fps", "width", "height"):
        if side.get(key) is not None:
            body[-1] += _table({key: side[key]})
    body.append("<h2>Model card</h2>" + _table(side.get("model_card") or {"card": None}))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>" + "".join(body) + "</body></html>"
    )


def _duration(rows: List[dict]) -> str:
    """The span of a video's processed frames, as m:ss.ss (or frames when there are no timestamps)."""
    if not rows:
        return ""
    if all(r["timestamp"] is not None for r in rows):
        return _fmt(max(r["timestamp"] for r in rows) - min(r["timestamp"] for r in rows), True)
    return f"{len({r['frame'] for r in rows})} frames"


def write_report(
    csv_paths: Sequence[str],
    out_html: str,
    threshold: Optional[float] = None,
    k: Optional[int] = None,
    index: bool = False,
    records: Optional[Sequence[dict]] = None,
    root: Optional[str] = None,
) -> List[str]:
    """Write the report of one CSV to `out_html`, or (index=True) an index page at `out_html` linking one page per
    CSV (written beside each CSV as .html). For a folder of videos, `records` (the summary's per-video records:
    video, output, status, error) give the index one row per video, named by its path under the input folder, with
    its status and duration; `root` is the output folder. Returns the files written."""
    if not csv_paths and not index:
        raise UserError(f"{param('report')}: no detect results to report")
    if not index:
        with atomic_write(out_html, encoding="utf-8") as handle:
            handle.write(video_page(csv_paths[0], threshold, k))
        return [out_html]
    written, links, notes = [], [], []
    folder = os.path.dirname(os.path.abspath(out_html))
    if records is None:
        records = [{"video": os.path.relpath(p, root) if root else os.path.basename(p), "output": p} for p in csv_paths]
    for record in records:
        name, csv_path, status = str(record["video"]), record.get("output"), record.get("status", "ok")
        if status == "failed" or not csv_path or not os.path.isfile(csv_path):
            error = html.escape(str(record.get("error") or "no CSV"))
            links.append(f"<tr><td>{html.escape(name)}</td><td></td><td></td><td></td><td></td>"
                         f"<td>{html.escape(status)}: {error}</td></tr>")  # fmt: skip
            continue
        page = os.path.splitext(csv_path)[0] + ".html"
        with atomic_write(page, encoding="utf-8") as handle:
            handle.write(video_page(csv_path, threshold, k, title=name))
        written.append(page)
        rows = list(iter_rows(csv_path))
        n_faces = sum(1 for r in rows if r["success"])
        ids = len({r["face_id"] for r in rows if r["success"]})
        rel = os.path.relpath(os.path.abspath(page), folder)
        note = _validity_note(_sidecar(csv_path).get("model_card") or {})
        if note and note not in notes:
            notes.append(note)
        links.append(
            f'<tr><td><a href="{html.escape(rel)}">{html.escape(name)}</a></td>'
            f"<td>{len({r['frame'] for r in rows})}</td><td>{_duration(rows)}</td><td>{n_faces}</td><td>{ids}</td>"
            f"<td>{html.escape(status)}</td></tr>"
        )
    body = (
        "<h1>detect: videos</h1>" + "".join(notes) + "<table><tr><th>video</th><th>frames</th><th>duration</th>"
        "<th>face detections</th><th>face ids</th><th>status</th></tr>" + "".join(links) + "</table>"
    )
    with atomic_write(out_html, encoding="utf-8") as handle:
        handle.write(
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>detect: videos</title>'
            f"<style>{_CSS}</style></head><body>{body}</body></html>"
        )
    return [out_html] + written
