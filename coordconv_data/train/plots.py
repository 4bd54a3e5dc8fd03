"""curves.png (loss and the task's metric per epoch, train and test) and predictions.png, drawn with cv2."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ..viz import enlarge, grid, label, write_png
from . import tasks as T

TRAIN_COLOR = (40, 90, 220)  # RGB
TEST_COLOR = (220, 80, 30)
SEG_COLORS = np.array([(0, 0, 0), (255, 255, 0), (0, 200, 255), (255, 0, 0)], np.uint8)


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


def write_curves(path: str | Path, history: list[dict[str, Any]], metric: str, title: str = "") -> None:
    panels = []
    for key, log_y in (("loss", True), (metric, False)):
        series = {s: [(r["epoch"], float(r[key])) for r in history if r["split"] == s] for s in ("train", "test")}
        panels.append(_panel(series, f"{key}" + (f"  ({title})" if key == "loss" and title else ""), log_y=log_y))
    write_png(np.concatenate(panels, axis=1), path, force=True)


def write_gan_curves(path: str | Path, history: list[dict[str, Any]], title: str = "") -> None:
    """Losses of both networks per epoch, and the geometry score of the samples against real images."""
    train = [r for r in history if r["split"] == "train"]
    gen = [r for r in history if r["split"] == "generated"]
    real = [r for r in history if r["split"] == "real"]
    losses = {k: [(r["epoch"], float(r[k])) for r in train] for k in ("d_loss", "g_loss")}
    epochs = [r["epoch"] for r in gen] or [1]
    scores = {"generated": [(r["epoch"], float(r["geometry"])) for r in gen]}
    if real:  # the ceiling, drawn as a flat line over the epochs shown
        scores["real test"] = [(e, float(real[0]["geometry"])) for e in (min(epochs), max(epochs))]
    panels = [
        _panel(losses, "loss" + (f"  ({title})" if title else ""), colors={"d_loss": TRAIN_COLOR, "g_loss": TEST_COLOR}),
        _panel(scores, "geometry (fraction of clean images)", colors={"generated": TEST_COLOR, "real test": (60, 160, 60)},
               y_range=(0.0, 1.0), legend_bottom=True),
    ]
    write_png(np.concatenate(panels, axis=1), path, force=True)


@torch.no_grad()
def prediction_tiles(model: torch.nn.Module, batch: dict[str, torch.Tensor], task: str,
                     device: torch.device) -> tuple[list[np.ndarray], int]:
    """Tiles (input/target/prediction per sample) and the number of columns per sample."""
    was = model.training
    model.eval()
    x, y = T.to_inputs_targets(task, batch, device)
    out = model(x).float().cpu()
    model.train(was)
    y = y.cpu()
    tiles: list[np.ndarray] = []
    n = y.shape[0]
    if task in ("classification", "rendering", "regression"):
        scale = 4
        for i in range(n):
            if task == "classification":
                tgt = np.zeros((64, 64), np.uint8)
                tgt.reshape(-1)[int(y[i])] = 255
                prob = torch.softmax(out[i].flatten(), 0).reshape(64, 64)
                pred = (prob / prob.max() * 255).numpy().astype(np.uint8)
                t1, t2 = enlarge(tgt, scale), enlarge(pred, scale)
                py, px = divmod(int(prob.flatten().argmax()), 64)
                cv2.circle(t2, (px * scale + 2, py * scale + 2), 8, (255, 64, 64), 1, cv2.LINE_AA)
                label(t1, "target"), label(t2, f"pred ({px},{py})")
            elif task == "rendering":
                t1 = enlarge((y[i, 0].numpy() * 255).astype(np.uint8), scale)
                t2 = enlarge((torch.sigmoid(out[i, 0]).numpy() * 255).astype(np.uint8), scale)
                label(t1, "target mask"), label(t2, "sigmoid(pred)")
            else:
                t1 = enlarge((x[i, 0].cpu().numpy() * 255).astype(np.uint8), scale)
                t2 = t1.copy()
                tx, ty = ((y[i] + 1) / 2 * 63).tolist()
                px, py = ((out[i] + 1) / 2 * 63).tolist()
                cv2.circle(t2, (int(tx * scale + 2), int(ty * scale + 2)), 10, (64, 255, 64), 1, cv2.LINE_AA)
                cv2.drawMarker(t2, (int(px * scale + 2), int(py * scale + 2)), (255, 64, 64), cv2.MARKER_CROSS, 12, 1)
                label(t1, "input"), label(t2, f"pred ({px:.1f},{py:.1f})")
            tiles += [t1, t2]
        return tiles, 2
    scale = max(1, 256 // x.shape[-1])
    for i in range(n):
        img = enlarge((x[i].permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8), scale)
        tgt = enlarge(SEG_COLORS[y[i].numpy().clip(0, 3)], scale)
        pred = enlarge(SEG_COLORS[out[i].argmax(0).numpy().clip(0, 3)], scale)
        label(img, "input"), label(tgt, "target"), label(pred, "prediction")
        tiles += [img, tgt, pred]
    return tiles, 3


def write_predictions(path: str | Path, model: torch.nn.Module, ds: Any, task: str, device: torch.device,
                      n: int = 4) -> None:
    batch = ds.batch(range(min(n, len(ds))))
    tiles, columns = prediction_tiles(model, batch, task, device)
    write_png(grid(tiles, columns=columns), path, force=True)
