"""curves.png of a run, drawn with matplotlib (the Agg backend: no display, no global pyplot state).

One panel per figure of ``metrics.csv`` that changes over a run: the loss (log scale when its values
span more than a decade), each of the task's metrics, and the learning rate when a schedule steps it;
GANs: both networks' losses, the discriminator's outputs, and the geometry score and position
histogram distance of the samples against real images (the ceiling). Every panel draws each split
in its fixed colour (:data:`COLORS`) against the epoch, and marks the selected epoch (the one
``best.pt`` holds) with a dashed line; the panel of the metric that selects it marks the value too.

matplotlib is imported inside the functions that draw, so importing this module (and the package)
stays cheap.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

__all__ = ["COLORS", "metric_curves", "gan_curves", "render"]

#: One colour per split (and per GAN series), the same in every picture.
COLORS = {
    "train": "#1f5fbf",  # blue
    "val": "#2e9a44",  # green
    "test": "#d9541e",  # orange
    "generated": "#8e44ad",  # purple
    "real": "#555555",  # grey: a ceiling, drawn dashed
    "d": "#1f5fbf",  # the discriminator's loss / D(real)
    "g": "#d9541e",  # the generator's loss / D(fake)
}
SELECTED = "#222222"
PANEL_INCHES = (4.0, 2.9)
DPI = 100
MAX_COLUMNS = 4


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def _needs_log(values: Sequence[float]) -> bool:
    """A log scale when every value is positive and they span more than a decade."""
    vals = _finite(values)
    return bool(vals) and min(vals) > 0 and max(vals) / min(vals) > 10


def _number(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _series(history: list[dict[str, Any]], split: str, key: str) -> tuple[list[int], list[float]]:
    rows = [r for r in history if r.get("split") == split and key in r and int(r["epoch"]) > 0]
    return [int(r["epoch"]) for r in rows], [_number(r[key]) for r in rows]


def _figure(panels: int, title: str) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    columns = min(panels, MAX_COLUMNS)
    rows = math.ceil(panels / columns)
    fig = Figure(figsize=(PANEL_INCHES[0] * columns, PANEL_INCHES[1] * rows + 0.35), dpi=DPI)
    axes = fig.subplots(rows, columns, squeeze=False).ravel().tolist()
    for ax in axes[panels:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig, axes[:panels]


def render(fig: Any) -> np.ndarray:
    """The figure as an RGB ``uint8`` array (drawn by Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _panel(ax: Any, title: str, ylabel: str, lines: list[tuple[str, list[int], list[float], str, str]],
           log: bool | None = None, unit_range: bool = False, selected: int | None = None,
           mark: tuple[str, list[int], list[float]] | None = None) -> None:
    """Draw ``lines`` (label, epochs, values, colour, style) on ``ax``: labelled axes, integer epochs,
    a log scale when ``log`` (or, if ``None``, when the values need one), the selected epoch marked."""
    from matplotlib.ticker import MaxNLocator

    values = [v for _, _, ys, _, _ in lines for v in ys]
    many = max((len(xs) for _, xs, _, _, _ in lines), default=0) > 30
    for label, xs, ys, color, style in lines:
        if xs:
            ax.plot(xs, ys, style, color=color, label=label, linewidth=1.6,
                    marker=None if many or style != "-" else "o", markersize=3)
    if log if log is not None else _needs_log(values):
        ax.set_yscale("log")
        title += " (log scale)"
    elif unit_range:
        ax.set_ylim(-0.03, 1.03)
    if selected is not None:
        ax.axvline(selected, color=SELECTED, linestyle="--", linewidth=1, label=f"selected (epoch {selected})")
        if mark is not None:
            label, xs, ys = mark
            if selected in xs and math.isfinite(ys[xs.index(selected)]):
                y = ys[xs.index(selected)]
                ax.plot([selected], [y], marker="*", markersize=12, color=SELECTED, linestyle="none")
                ax.annotate(f"{y:.4g}", (selected, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3, which="major")
    if any(xs for _, xs, _, _, _ in lines):
        ax.legend(fontsize=7, loc="best", framealpha=0.8)
    else:
        ax.text(0.5, 0.5, "no values yet", ha="center", va="center", transform=ax.transAxes, color="#888888")


def metric_curves(history: list[dict[str, Any]], metrics: Sequence[str], *, title: str = "",
                  selected: int | None = None, selected_on: str | None = None, primary: str | None = None,
                  fractions: bool = True, units: str = "") -> np.ndarray:
    """A supervised run: the loss, then one panel per metric of ``metrics``, each with a line per
    split (train, val, test) in its colour; the learning rate too when it changed.

    ``selected``: the epoch ``best.pt`` holds (marked in every panel); ``selected_on`` and ``primary``:
    the split and metric that chose it (its value is starred). ``fractions``: the metrics are shares
    in [0, 1] (drawn on that range); otherwise in ``units`` and on a log scale when they span decades.
    """
    splits = [s for s in ("train", "val", "test") if any(r.get("split") == s for r in history)]
    rates = _series(history, "train", "lr")
    step_lr = len({v for v in rates[1] if math.isfinite(v)}) > 1
    keys = ["loss", *metrics]
    fig, axes = _figure(len(keys) + int(step_lr), title)
    for ax, key in zip(axes, keys):
        lines = [(s, *_series(history, s, key), COLORS[s], "-") for s in splits]
        mark = None
        if key == primary and selected_on in splits:
            mark = (selected_on, *_series(history, selected_on, key))
        is_loss = key == "loss"
        _panel(ax, key, "loss" if is_loss else (f"{key} ({units.strip()})" if units.strip() else key), lines,
               log=None if (is_loss or not fractions) else False, unit_range=fractions and not is_loss,
               selected=selected, mark=mark)
    if step_lr:
        _panel(axes[-1], "learning rate", "lr", [("train", *rates, COLORS["train"], "-")], selected=selected)
    return render(fig)


def gan_curves(history: list[dict[str, Any]], *, title: str = "", selected: int | None = None) -> np.ndarray:
    """A GAN run: both networks' losses, the discriminator's mean outputs, and the geometry score and
    position-histogram distance of the generated samples, with real images' (the ceiling) dashed."""
    real = next((r for r in history if r.get("split") == "real"), None)
    gen_epochs = _series(history, "generated", "geometry")[0]
    span = [min(gen_epochs), max(gen_epochs)] if gen_epochs else []

    def ceiling(key: str) -> list[tuple[str, list[int], list[float], str, str]]:
        if real is None or not span or key not in real:
            return []
        return [("real images", span, [_number(real[key])] * len(span), COLORS["real"], "--")]

    fig, axes = _figure(4, title)
    _panel(axes[0], "losses", "loss", [("D loss", *_series(history, "train", "d_loss"), COLORS["d"], "-"),
                                       ("G loss", *_series(history, "train", "g_loss"), COLORS["g"], "-")],
           selected=selected)
    _panel(axes[1], "discriminator outputs", "mean probability 'real'",
           [("D(real)", *_series(history, "train", "d_real"), COLORS["d"], "-"),
            ("D(fake)", *_series(history, "train", "d_fake"), COLORS["g"], "-")],
           log=False, unit_range=True, selected=selected)
    _panel(axes[2], "geometry (share of clean images; selects)", "geometry",
           [("generated", *_series(history, "generated", "geometry"), COLORS["generated"], "-"), *ceiling("geometry")],
           log=False, unit_range=True, selected=selected,
           mark=("generated", *_series(history, "generated", "geometry")))
    _panel(axes[3], "position histogram distance (lower is better)", "position_tv",
           [("generated", *_series(history, "generated", "position_tv"), COLORS["generated"], "-"),
            *ceiling("position_tv")],
           log=False, unit_range=True, selected=selected)
    return render(fig)
