"""Plots for AU results: a per-video time line, a per-AU bar chart and per-image bars (PNG, written atomically).

matplotlib runs on the non-interactive Agg backend so plotting works on servers without a display. Every plot
takes `au_names`, the model's or dataset's AU set (None: the ABAW 12).
"""

from typing import Optional, Sequence

import numpy as np

from mindface_au.au_sets import ABAW_AUS, default_au_names
from mindface_au.errors import UserError
from mindface_au.utils.io import atomic_path

__all__ = ["plot_au_timeline", "plot_au_bars", "plot_image_bars"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _as_2d(values, name: str, columns: int = len(ABAW_AUS)) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != columns:
        raise UserError(f"{name}: expected shape (N, {columns}), got {arr.shape}")
    return arr


def _save(fig, out_png: str) -> None:
    plt = _pyplot()
    try:
        with atomic_path(out_png) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)


def plot_au_timeline(
    probs,
    out_png: str,
    truth=None,
    times: Optional[Sequence[float]] = None,
    title: str = "",
    au_names: Optional[Sequence[str]] = None,
    labels: Optional[Sequence[str]] = None,
    intensity=None,
    intensity_au_names: Sequence[str] = (),
) -> None:
    """One small panel per AU: probability over time, with the 0/1 truth shaded when given.

    Args:
        probs: (T, C) probabilities, one column per AU of `au_names`; NaN rows (no face) leave gaps. With `labels`
            (one per series, e.g. per face), (S, T, C): one line per series in each panel.
        out_png: output PNG path.
        truth: optional (T, C) 0/1 labels drawn as a shaded band.
        times: optional (T,) x values (seconds); frame indices otherwise.
        title: figure title.
        intensity: optional intensities (FACS 0-5) of `intensity_au_names`, shaped like `probs` with one column per
            intensity AU: drawn dashed on a right-hand 0-5 axis in those AUs' panels (orange; in each series' colour
            when there are several).
    """
    names = default_au_names(au_names)
    series = (
        [_as_2d(p, "probs", len(names)) for p in probs] if labels is not None else [_as_2d(probs, "probs", len(names))]
    )
    probs = series[0]
    t = probs.shape[0]
    x = np.arange(t) if times is None else np.asarray(times, dtype=np.float64)
    if x.shape != (t,):
        raise UserError(f"times: expected {t} values, got shape {x.shape}")
    if truth is not None:
        truth = _as_2d(truth, "truth", len(names))
        if truth.shape[0] != t:
            raise UserError(f"truth: expected {t} rows like probs, got {truth.shape[0]}")
    columns = {au: j for j, au in enumerate(intensity_au_names)}
    if intensity is not None:
        shaped = [intensity] if labels is None else list(intensity)
        intensity = [_as_2d(v, "intensity", len(columns)) for v in shaped]
        if len(intensity) != len(series) or any(v.shape[0] != t for v in intensity):
            raise UserError(f"intensity: expected {len(series)} series of {t} rows like probs")
    plt = _pyplot()
    n = len(names)
    fig, axes = plt.subplots(n, 1, figsize=(10, 0.75 * n + 1), sharex=True, squeeze=False)
    for i, (ax, au) in enumerate(zip(axes[:, 0], names)):
        if truth is not None:
            ax.fill_between(x, 0, truth[:, i], step="mid", color="tab:green", alpha=0.25, linewidth=0)
        lines = []
        for j, one in enumerate(series):
            label = labels[j] if labels is not None and i == 0 else None
            lines += ax.plot(x, one[:, i], color=None if labels is not None else "tab:blue", linewidth=1.0, label=label)
        if intensity is not None and au in columns:
            right = ax.twinx()
            for line, one in zip(lines, intensity):
                colour = line.get_color() if len(series) > 1 else "tab:orange"
                right.plot(x, one[:, columns[au]], color=colour, linestyle="--", linewidth=1.0)
            ax.set_zorder(right.get_zorder() + 1)  # the probabilities and the legend above the intensity axis
            ax.patch.set_visible(False)
            right.set_ylim(-0.1, 5.1)
            right.set_yticks([0, 5])
            right.tick_params(labelsize=6)
        if labels is not None and i == 0:
            ax.legend(fontsize=7, ncol=min(6, len(series)), loc="upper right")
        ax.axhline(0.5, color="grey", linewidth=0.5, linestyle="--")
        ax.set_ylim(-0.02, 1.02)
        ax.set_yticks([])
        ax.set_ylabel(au, rotation=0, ha="right", va="center", fontsize=8)
    axes[-1, 0].set_xlabel("time (s)" if times is not None else "frame")
    if intensity is not None:
        title = f"{title}: " if title else ""
        title += "probability (solid, 0-1); intensity (dashed, right axis, 0-5)"
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, out_png)


def plot_au_bars(
    values, out_png: str, title: str = "", ylabel: str = "F1", au_names: Optional[Sequence[str]] = None
) -> None:
    """Bar chart of one value per AU of `au_names` (e.g. per-AU F1), with the mean as a dashed line."""
    names = default_au_names(au_names)
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.shape != (len(names),):
        raise UserError(f"values: expected {len(names)} values (one per AU), got {arr.size}")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.bar(np.arange(arr.size), arr, color="tab:blue")
    ax.axhline(float(np.nanmean(arr)), color="tab:red", linestyle="--", linewidth=1, label="mean")
    ax.set_xticks(np.arange(arr.size))
    ax.set_xticklabels(names, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper right", fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    _save(fig, out_png)


def _grouped_bars(ax, values: np.ndarray, names: Sequence[str], groups: Sequence[str]) -> None:
    """One group of bars per entry of `groups`, one bar per row of `values` (named by `names`)."""
    n_img = max(values.shape[0], 1)
    width = 0.8 / n_img
    base = np.arange(len(groups))
    for j, name in enumerate(names):
        ax.bar(base + (j - (n_img - 1) / 2) * width, values[j], width=width, label=name)
    ax.set_xticks(base)
    ax.set_xticklabels(groups, fontsize=8)


def plot_image_bars(
    probs,
    names: Sequence[str],
    out_png: str,
    title: str = "",
    au_names: Optional[Sequence[str]] = None,
    intensity=None,
    intensity_au_names: Sequence[str] = (),
) -> None:
    """Grouped bars: for each image, its AU probabilities (one group per AU of `au_names`, one bar per image), and
    below them its intensities (FACS 0-5, one group per AU of `intensity_au_names`) when `intensity` is given."""
    aus = default_au_names(au_names)
    probs = _as_2d(probs, "probs", len(aus))
    names = [str(n) for n in names]
    if len(names) != probs.shape[0]:
        raise UserError(f"names: expected {probs.shape[0]} names (one per image), got {len(names)}")
    if intensity is not None:
        intensity = _as_2d(intensity, "intensity", len(intensity_au_names))
        if intensity.shape[0] != probs.shape[0]:
            raise UserError(f"intensity: expected {probs.shape[0]} rows (one per image), got {intensity.shape[0]}")
    plt = _pyplot()
    n_img = max(probs.shape[0], 1)
    size = min(24.0, 8.0 + 0.5 * n_img)
    if intensity is None:
        fig, ax = plt.subplots(figsize=(size, 4))
    else:
        fig, (ax, lower) = plt.subplots(2, 1, figsize=(size, 7), gridspec_kw={"height_ratios": [4, 3]})
    _grouped_bars(ax, probs, names, aus)
    ax.axhline(0.5, color="grey", linewidth=0.5, linestyle="--")
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    if intensity is not None:
        _grouped_bars(lower, intensity, names, [str(a) for a in intensity_au_names])
        lower.set_ylim(0, 5)
        lower.set_ylabel("intensity (0-5)")
    if names and len(names) <= 20:
        ax.legend(fontsize=7, ncol=min(4, len(names)), loc="upper right")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    _save(fig, out_png)
