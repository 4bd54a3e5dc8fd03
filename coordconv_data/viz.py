"""Pictures of the data: enlarged sample grids with the targets drawn over them.

Each dataset kind (:mod:`coordconv_data.kinds`) draws its tiles (and, for Lanes, a legend of the
class colours); this module arranges them (:func:`grid`, scikit-image's montage) and writes the
picture in the format its file name's extension names (:data:`IMAGE_FORMATS`), atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .draw import MARK, enlarge, grid, label, legend, scale_for  # noqa: F401  (train/ draws with these)
from .errors import InvalidParameter
from .kinds import get_kind
from .store import StoreError, atomic_write_bytes, check_target, read_split, summarize

# Extensions OpenCV encodes, by the format they name.
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
                 ".webp": "WebP"}


def check_image_path(path: str | os.PathLike, field: str = "out") -> str:
    """The extension of ``path`` if it names an image format this module writes; InvalidParameter otherwise."""
    ext = Path(path).suffix.lower()
    if ext not in IMAGE_FORMATS:
        known = ", ".join(sorted({e for e in IMAGE_FORMATS}))
        raise InvalidParameter(field, f"{field} {Path(path).name!r} must end in an image format's extension "
                                      f"({known})")
    return ext


def encode_image(image_rgb: np.ndarray, ext: str) -> bytes:
    ok, buf = cv2.imencode(ext, cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise StoreError(f"could not encode the picture as {IMAGE_FORMATS.get(ext, ext)}")
    return buf.tobytes()


def write_image(image_rgb: np.ndarray, path: str | os.PathLike, *, force: bool = False) -> None:
    """Write an RGB image atomically, in the format the file name's extension names."""
    path = Path(path)
    ext = check_image_path(path)
    check_target(path, force)
    atomic_write_bytes(path, encode_image(image_rgb, ext))


def write_png(image_rgb: np.ndarray, path: str | os.PathLike, *, force: bool = False) -> None:
    """Write an RGB image as PNG atomically (whatever the extension; temporary file, then rename)."""
    path = Path(path)
    check_target(path, force)
    atomic_write_bytes(path, encode_image(image_rgb, ".png"))


def preview(path: str | os.PathLike, out: str | os.PathLike, *, split: str = "train", n: int = 16,
            force: bool = False) -> int:
    """Write a picture of the first ``n`` samples of ``split``; returns how many were drawn.

    The format follows ``out``'s extension (:data:`IMAGE_FORMATS`); Lanes pictures get a legend of
    the class colours.
    """
    check_image_path(out)
    summary = summarize(path)
    kind = get_kind(summary.kind)
    if split not in summary.splits:
        raise StoreError(f"{summary.path} has no split {split!r} (it has: {', '.join(summary.splits)})")
    count = min(n, summary.lengths[split])
    if count == 0:
        raise StoreError(f"split {split!r} of {summary.path} is empty")
    check_target(Path(out), force)
    arrays = read_split(path, split, stop=count)
    picture = grid(kind.tiles(arrays, summary.attrs))
    entries = kind.legend(summary.attrs)
    if entries:
        picture = np.concatenate([picture, legend(entries, picture.shape[1])], axis=0)
    write_image(picture, out, force=force)
    return count
