"""Drawing primitives for pictures of the data: enlarged tiles, labels, grids and legends (RGB uint8).

The dataset kinds draw their tiles with these; :mod:`coordconv_data.viz` arranges and writes them.
Grids are scikit-image's :func:`skimage.util.montage` (imported when a grid is drawn).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

MARK = (255, 64, 64)  # RGB of target marks
FONT = cv2.FONT_HERSHEY_SIMPLEX


def scale_for(size: int) -> int:
    """The enlargement that makes a ``size``-pixel image about 256 pixels across."""
    return max(1, 256 // max(1, size))


def enlarge(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling so single pixels stay visible as blocks; gray becomes RGB."""
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.ascontiguousarray(image.repeat(scale, axis=0).repeat(scale, axis=1))


def label(tile: np.ndarray, text: str) -> None:
    """Small text in the tile's top-left corner, legible on any background."""
    (w, h), baseline = cv2.getTextSize(text, FONT, 0.4, 1)
    cv2.rectangle(tile, (0, 0), (w + 7, h + baseline + 6), (40, 40, 40), -1)
    cv2.putText(tile, text, (4, h + 4), FONT, 0.4, (255, 255, 255), 1, cv2.LINE_AA)


def grid(tiles: list[np.ndarray], columns: int | None = None, gap: int = 4, background: int = 96) -> np.ndarray:
    """Tiles of equal size in a near-square grid, ``gap`` pixels between them and around the edge."""
    if not tiles:
        raise ValueError("no tiles to arrange")
    from skimage.util import montage

    h, w = tiles[0].shape[:2]
    columns = columns or min(len(tiles), max(1, math.ceil(math.sqrt(len(tiles) * h / w))))
    rows = math.ceil(len(tiles) / columns)
    stack = np.stack([t if t.ndim == 3 else np.repeat(t[..., None], 3, axis=-1) for t in tiles])
    return montage(stack, grid_shape=(rows, columns), padding_width=gap, fill=(background,) * stack.shape[-1],
                   channel_axis=-1, rescale_intensity=False)


def legend(entries: list[tuple[str, tuple[int, int, int]]], width: int, background: int = 96) -> np.ndarray:
    """A strip ``width`` pixels wide with a colour swatch and a name per entry, wrapped onto lines."""
    pad, swatch, line_h = 8, 14, 24
    items = []
    for name, rgb in entries:
        (tw, _), _ = cv2.getTextSize(name, FONT, 0.45, 1)
        items.append((name, rgb, swatch + 6 + tw + 18))
    lines, x = [[]], pad
    for item in items:
        if x + item[2] > width - pad and lines[-1]:
            lines.append([])
            x = pad
        lines[-1].append(item)
        x += item[2]
    strip = np.full((pad + line_h * len(lines), width, 3), background, np.uint8)
    for row, line in enumerate(lines):
        x, y = pad, pad + row * line_h
        for name, rgb, w in line:
            cv2.rectangle(strip, (x, y + 2), (x + swatch, y + 2 + swatch), tuple(int(v) for v in rgb), -1)
            cv2.rectangle(strip, (x, y + 2), (x + swatch, y + 2 + swatch), (255, 255, 255), 1)
            cv2.putText(strip, name, (x + swatch + 6, y + 14), FONT, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
            x += w
    return strip
