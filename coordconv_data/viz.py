"""Pictures of the data: enlarged sample grids with the targets drawn over them.

Each dataset kind registers a tile renderer in :data:`TILE_RENDERERS`: given one split's arrays
(already sliced to the samples shown) and the file's attributes, it returns RGB uint8 tiles.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from .store import StoreError, atomic_write_bytes, check_target, read_split, summarize

TileFn = Callable[[dict[str, np.ndarray], dict[str, Any]], list[np.ndarray]]
TILE_RENDERERS: dict[str, TileFn] = {}
MARK = (255, 64, 64)  # RGB of target marks


def register_tiles(kind: str) -> Callable[[TileFn], TileFn]:
    def deco(fn: TileFn) -> TileFn:
        TILE_RENDERERS[kind] = fn
        return fn

    return deco


def enlarge(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling so single pixels stay visible as blocks; gray becomes RGB."""
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.ascontiguousarray(image.repeat(scale, axis=0).repeat(scale, axis=1))


def label(tile: np.ndarray, text: str) -> None:
    """Small text in the tile's top-left corner, legible on any background."""
    (w, h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
    cv2.rectangle(tile, (0, 0), (w + 7, h + baseline + 6), (40, 40, 40), -1)
    cv2.putText(tile, text, (4, h + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)


def _scale_for(size: int) -> int:
    return max(1, 256 // size)


@register_tiles("not-so-clevr")
def _not_so_clevr_tiles(arrays: dict[str, np.ndarray], attrs: dict[str, Any]) -> list[np.ndarray]:
    images = arrays["images"] if "images" in arrays else arrays["image"]
    images = np.asarray(images)
    if images.dtype != np.uint8:  # the original layout's float64 0/128 images
        images = np.clip(images * (255.0 / max(1.0, float(images.max()))), 0, 255).astype(np.uint8)
    scale = _scale_for(images.shape[1])
    tiles = []
    for img, (x, y) in zip(images, arrays["locations"]):
        tile = enlarge(img, scale)
        # The centre pixel, outlined: the target the classification task must find.
        cx, cy = int(x) * scale, int(y) * scale
        cv2.rectangle(tile, (cx, cy), (cx + scale - 1, cy + scale - 1), MARK, -1)
        cv2.drawMarker(tile, (cx + scale // 2, cy + scale // 2), MARK, cv2.MARKER_CROSS, 6 * scale, 1)
        label(tile, f"x={int(x)} y={int(y)}")
        tiles.append(tile)
    return tiles


# Mask colours as the custom-conv2d study showed them: 1 yellow, 2 blue, 3 red, background black.
LANES_CLASS_COLORS = np.array([(0, 0, 0), (255, 255, 0), (0, 96, 255), (255, 0, 0)], np.uint8)


@register_tiles("lanes")
def _lanes_tiles(arrays: dict[str, np.ndarray], attrs: dict[str, Any]) -> list[np.ndarray]:
    scale = _scale_for(arrays["images"].shape[1])
    tiles = []
    for img, mask, centers, classes in zip(arrays["images"], arrays["masks"], arrays["centers"], arrays["classes"]):
        left = enlarge(img, scale)
        right = enlarge(LANES_CLASS_COLORS[np.minimum(mask, 3)], scale)
        for (x, y), c in zip(centers, classes):
            # Each circle's centre and class, on the mask: the class depends on where this point is.
            p = (int(x) * scale + scale // 2, int(y) * scale + scale // 2)
            cv2.drawMarker(right, p, (255, 255, 255), cv2.MARKER_CROSS, 4 * scale, 1)
            cv2.putText(right, str(int(c)), (p[0] + 3, p[1] - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        (255, 255, 255), 1, cv2.LINE_AA)
        h = left.shape[0]
        # The image's midlines, on the mask side: the class boundaries (x for yellow, y for red).
        cv2.line(right, (h // 2, 0), (h // 2, h - 1), (128, 128, 128), 1)
        cv2.line(right, (0, h // 2), (h - 1, h // 2), (128, 128, 128), 1)
        tiles.append(np.concatenate([left, np.full((h, 2, 3), 255, np.uint8), right], axis=1))
    return tiles


def grid(tiles: list[np.ndarray], columns: int | None = None, gap: int = 4, background: int = 96) -> np.ndarray:
    """Tiles of equal size arranged in a grid, separated by ``gap`` pixels."""
    if not tiles:
        raise ValueError("no tiles to arrange")
    h, w = tiles[0].shape[:2]
    # Near-square pictures whatever the tiles' aspect ratio.
    columns = columns or min(len(tiles), max(1, math.ceil(math.sqrt(len(tiles) * h / w))))
    rows = math.ceil(len(tiles) / columns)
    out = np.full((rows * h + (rows + 1) * gap, columns * w + (columns + 1) * gap, 3), background, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        y, x = gap + r * (h + gap), gap + c * (w + gap)
        out[y : y + h, x : x + w] = tile
    return out


def write_png(image_rgb: np.ndarray, path: str | os.PathLike, *, force: bool = False) -> None:
    """Write an RGB image as PNG atomically (temporary file, then rename)."""
    path = Path(path)
    check_target(path, force)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise StoreError(f"could not encode {path} as PNG")
    atomic_write_bytes(path, buf.tobytes())


def preview(path: str | os.PathLike, out: str | os.PathLike, *, split: str = "train", n: int = 16,
            force: bool = False) -> int:
    """Write a PNG grid of the first ``n`` samples of ``split``; returns how many were drawn."""
    summary = summarize(path)
    renderer = TILE_RENDERERS.get(summary.kind)
    if renderer is None:
        raise StoreError(f"preview does not know how to draw {summary.kind} data yet")
    if split not in summary.splits:
        raise StoreError(f"{summary.path} has no split {split!r} (it has: {', '.join(summary.splits)})")
    count = min(n, summary.lengths[split])
    if count == 0:
        raise StoreError(f"split {split!r} of {summary.path} is empty")
    check_target(Path(out), force)
    arrays = read_split(path, split, stop=count)
    write_png(grid(renderer(arrays, summary.attrs)), out, force=force)
    return count


@register_tiles("sort-of-clevr")
def _sort_of_clevr_tiles(arrays: dict[str, np.ndarray], attrs: dict[str, Any]) -> list[np.ndarray]:
    """Each image enlarged, every object outlined in black (its square or circle) with its centre
    crossed, and labelled with colour and shape initials in drawing order (e.g. ``b:sq r:ci``)."""
    import json

    images = np.asarray(arrays["images"] if "images" in arrays else arrays["x"])
    if images.dtype != np.uint8:  # the original layout's floats in [-1, 1]
        images = np.clip(np.rint((images.astype(np.float64) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    scale = _scale_for(images.shape[1])
    palette = attrs.get("palette")
    names = [p["name"] for p in json.loads(palette)] if isinstance(palette, str) else []
    radius = int(attrs.get("object_size", 21)) // 2
    outline = (0, 0, 0)
    tiles = []
    for i, img in enumerate(images):
        tile = enlarge(img, scale)
        if "centers" not in arrays:  # a file of the original script: nothing to mark
            tiles.append(tile)
            continue
        words = []
        for (x, y), shape, color in zip(arrays["centers"][i], arrays["shapes"][i], arrays["colors"][i]):
            x0, y0 = (int(x) - radius) * scale, (int(y) - radius) * scale
            x1, y1 = (int(x) + radius + 1) * scale - 1, (int(y) + radius + 1) * scale - 1
            cx, cy = int(x) * scale + scale // 2, int(y) * scale + scale // 2
            if int(shape) == 0:
                cv2.rectangle(tile, (x0, y0), (x1, y1), outline, 1)
            else:
                cv2.circle(tile, (cx, cy), (2 * radius + 1) * scale // 2, outline, 1, cv2.LINE_AA)
            cv2.drawMarker(tile, (cx, cy), outline, cv2.MARKER_CROSS, 3 * scale, 1)
            name = names[int(color)] if int(color) < len(names) else str(int(color))
            words.append(f"{name[0]}:{'sq' if int(shape) == 0 else 'ci'}")
        label(tile, " ".join(words))
        tiles.append(tile)
    return tiles
