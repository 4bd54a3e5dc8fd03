"""curves.png of a run (loss and the task's metric per epoch and split), drawn with cv2."""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

TRAIN_COLOR = (40, 90, 220)  # RGB
TEST_COLOR = (220, 80, 30)


def _panel(series: dict[str, list[tuple[float, float]]], title: str, w: int = 440, h: int = 300,
           log_y: bool = False, colors: dict[str, tuple[int, int, int]] | None = None,
           y_range: tuple[float, float] | None = None, legend_bottom: bool = False) -> np.ndarray:
    img = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 60, 12, 28, 36
    pts = [p for s in series.values() for p in s if math.isfinite(p[1]) and (p[1] > 0 or not log_y)]
    cv2.putText(img, title, (left, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(img, (left, top), (w - right, h - bottom), (0, 0, 0), 1)
    if not pts:
        return img
    f = (lambda v: math.log10(v)) if log_y else (lambda v: v)
    xs = [p[0] for p in pts]
    ys = [f(p[1]) for p in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = y_range if y_range is not None else (min(ys), max(ys))
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad

    def to_px(x: float, y: float) -> tuple[int, int]:
        px = left + (x - x0) / (x1 - x0) * (w - left - right)
        py = h - bottom - (f(y) - y0) / (y1 - y0) * (h - top - bottom)
        return int(round(px)), int(round(py))

    for k in range(5):  # y ticks
        v = y0 + (y1 - y0) * k / 4
        py = int(h - bottom - k / 4 * (h - top - bottom))
        cv2.line(img, (left - 4, py), (left, py), (0, 0, 0), 1)
        text = f"{10 ** v:.3g}" if log_y else f"{v:.3g}"
        cv2.putText(img, text, (2, py + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    for e in sorted(set(int(x) for x in xs)):
        if len(set(xs)) > 12 and e % max(1, len(set(xs)) // 10):
            continue
        px, _ = to_px(e, 10 ** y0 if log_y else y0)
        cv2.putText(img, str(e), (px - 4, h - bottom + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "epoch", (w // 2 - 20, h - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for i, (name, s) in enumerate(series.items()):
        color = (colors or {}).get(name, TRAIN_COLOR if name == "train" else TEST_COLOR)
        good = [p for p in s if math.isfinite(p[1]) and (p[1] > 0 or not log_y)]
        ps = [to_px(*p) for p in good]
        for a, b in zip(ps, ps[1:]):
            cv2.line(img, a, b, color, 2, cv2.LINE_AA)
        for p in ps:
            cv2.circle(img, p, 3, color, -1, cv2.LINE_AA)
        tw = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)[0][0]
        ty = (h - bottom - 10 - 16 * (len(series) - 1 - i)) if legend_bottom else (top + 16 + 16 * i)
        cv2.putText(img, name, (w - right - tw - 6, ty), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
    return img


SPLIT_COLORS = {"train": TRAIN_COLOR, "val": (60, 160, 60), "test": TEST_COLOR}


def metric_curves(history: list[dict[str, Any]], metric: str, title: str = "") -> np.ndarray:
    """Loss (log scale) and ``metric`` per epoch, one line per split (train, val, test)."""
    panels = []
    splits = [s for s in SPLIT_COLORS if any(r["split"] == s for r in history)]
    for key, log_y in (("loss", True), (metric, False)):
        series = {s: [(r["epoch"], float(r[key])) for r in history if r["split"] == s] for s in splits}
        panels.append(_panel(series, f"{key}" + (f"  ({title})" if key == "loss" and title else ""), log_y=log_y,
                             colors=SPLIT_COLORS))
    return np.concatenate(panels, axis=1)


def gan_curves(history: list[dict[str, Any]], title: str = "") -> np.ndarray:
    """Losses of both networks per epoch, and the geometry score of the samples against real images."""
    train = [r for r in history if r["split"] == "train"]
    gen = [r for r in history if r["split"] == "generated"]
    real = [r for r in history if r["split"] == "real"]
    losses = {k: [(r["epoch"], float(r[k])) for r in train] for k in ("d_loss", "g_loss")}
    epochs = [r["epoch"] for r in gen] or [1]
    scores = {"generated": [(r["epoch"], float(r["geometry"])) for r in gen]}
    if real:  # the ceiling, drawn as a flat line over the epochs shown
        scores["real"] = [(e, float(real[0]["geometry"])) for e in (min(epochs), max(epochs))]
    panels = [
        _panel(losses, "loss" + (f"  ({title})" if title else ""), colors={"d_loss": TRAIN_COLOR, "g_loss": TEST_COLOR}),
        _panel(scores, "geometry (fraction of clean images)", colors={"generated": TEST_COLOR, "real": (60, 160, 60)},
               y_range=(0.0, 1.0), legend_bottom=True),
    ]
    return np.concatenate(panels, axis=1)
