"""Sort-of-Clevr: coloured squares and circles, every object recorded (native and original layout)."""

from __future__ import annotations

from typing import Any, Mapping

import cv2
import h5py
import numpy as np

from ..draw import enlarge, label, scale_for
from ..generate import sort_of_clevr as generator
from .base import ArraySpec, AttrSpec, Column, Kind, LayoutSpec, MalformedFile, int_attr, json_attr


def _last_color(symbols: Mapping[str, int]) -> int:
    return symbols["P"] - 1


def _last_pixel(symbols: Mapping[str, int]) -> int:
    return symbols["S"] - 1


OBJECTS = (
    ArraySpec("colors", ("K",), ("int",), 0, _last_color, what="colour indices (into the palette attribute)"),
    ArraySpec("shapes", ("K",), ("int",), 0, len(generator.SHAPES) - 1, what="shape indices (0 square, 1 circle)"),
    ArraySpec("centers", ("K", 2), ("int",), 0, _last_pixel, what="centres (x, y on the canvas)"),
)

NATIVE = LayoutSpec("native", arrays=(ArraySpec("images", ("S", "S", 3), ("uint8",)), *OBJECTS))

# What the paper's GAN code loads: `train_x`, every image as floats in [-1, 1]; ours add the objects
# (the original kept them in a pickle, so a file of the original script has `train_x` alone).
ORIGINAL = LayoutSpec(
    "original",
    arrays=(ArraySpec("x", ("S", "S", 3), ("float",), -1, 1, what="pixel values"),),
    optional=OBJECTS,
    splits={"train": "train"},
    flat=True,
)


class SortOfClevrKind(Kind):
    growable = True

    def parse_option(self, name: str, text: str) -> Any:
        if name == "background":  # white, black, a palette name or R,G,B: as the command's option
            return generator.parse_color(text)
        return super().parse_option(name, text)
    gan_value_range = (-1.0, 1.0)  # the original's pixel / 127.5 - 1
    has_scene = True
    title = "Sort-of-Clevr"
    about = ("Coloured squares and circles at random places on a plain canvas, every object's colour, shape and "
             "centre recorded beside its image. By default the CoordConv paper's two-object data for its GAN "
             "experiments: 50,000 64x64 white images, each with a blue and a red object, a 21x21 square or a "
             "radius-10 circle (50/50), centres uniform in 10..53 on both axes and at least 20 px apart; later "
             "objects are drawn over earlier ones. With more objects and another size it is data like the "
             "relational-networks Sort-of-CLEVR's (Santoro et al., 2017).")

    def columns(self, attrs: Mapping[str, Any]) -> tuple[Column, ...]:
        names = tuple(name for name, _ in self.palette(attrs))
        return (Column("image", "images", "the RGB image", image=True),
                Column("colors", "colors", "each object's colour, in drawing order", names=names),
                Column("shapes", "shapes", "each object's shape, in drawing order", names=generator.SHAPES),
                Column("centers", "centers", "each object's centre as (x, y) in pixels, in drawing order"))

    def scene(self, summary: Any) -> dict[str, Any]:
        """The file's canvas, object size, background and palette (a file of the original script has
        none of them: its colours and sizes are unknown)."""
        attrs = summary.attrs
        for name in ("canvas_size", "object_size", "background", "palette"):
            if name not in attrs:
                raise MalformedFile(f"{summary.path} lacks attribute {name!r} (a file of the original script?), "
                                    "so its colours and sizes are unknown")
        palette = self.palette(attrs, summary.path)
        try:
            return {"size": int(attrs["canvas_size"]), "radius": int(attrs["object_size"]) // 2,
                    "background": tuple(attrs["background"]), "colors": tuple(rgb for _, rgb in palette),
                    "names": tuple(name for name, _ in palette)}
        except (ValueError, TypeError) as e:
            raise MalformedFile(f"{summary.path}: attributes do not describe a scene ({e})") from None

    def scene_arrays(self, layout: str) -> tuple[str, str]:
        return ("x" if layout == "original" else "images"), "centers"

    def scene_pixels(self, images: np.ndarray, layout: str) -> np.ndarray:
        if images.dtype != np.uint8:  # the original layout's floats in [-1, 1]
            images = np.clip(np.rint((images.astype(np.float64) + 1.0) * 127.5), 0, 255).astype(np.uint8)
        return images

    def symbols(self, attrs: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, int]:
        out = {}
        for symbol, attr, param in (("S", "canvas_size", "size"), ("K", "objects", "objects")):
            v = int_attr(attrs, params, attr, param)
            if v is not None:
                out[symbol] = v
        out["P"] = len(self.palette(attrs)) if "palette" in attrs else generator.MAX_OBJECTS
        return out

    def check_attrs(self, path: Any, attrs: Mapping[str, Any], symbols: Mapping[str, int]) -> None:
        if "palette" in attrs:
            self.palette(attrs, path)

    def consistency_arrays(self, arrays: Mapping[str, str]) -> tuple[str, ...]:
        return ("colors",) if "colors" in arrays else ()  # a file of the original script: images only

    def check_consistency(self, path: Any, data: Mapping[str, np.ndarray], keys: Mapping[str, str], split: str,
                          symbols: Mapping[str, int], attrs: Mapping[str, Any], first: int) -> None:
        """The objects of one image have distinct colours (the generator draws each colour once)."""
        if "colors" not in data:
            return
        colors = np.sort(np.asarray(data["colors"]), axis=1)
        same = np.argwhere(colors[:, 1:] == colors[:, :-1])
        if len(same):
            i, j = (int(v) for v in same[0])
            names = [name for name, _ in self.palette(attrs)]
            c = int(colors[i, j])
            raise MalformedFile(f"{path} is malformed: sample {first + i} of split '{split}' has two "
                                f"{names[c] if c < len(names) else c} objects in '{keys['colors']}'; the objects of "
                                "an image have distinct colours")

    def consistency_sample(self, n: int) -> list[slice]:
        # The colours are a few bytes a sample: all of them, when a file is opened.
        return [slice(0, n)] if n else []

    def palette(self, attrs: Mapping[str, Any], path: Any = None) -> list[tuple[str, tuple[int, int, int]]]:
        """The file's object colours ``[(name, (r, g, b)), ...]`` in index order: the one parser of
        the ``palette`` attribute (a JSON list of ``{"name", "rgb"}``); the paper's two without one."""
        raw = attrs.get("palette")
        if raw is None:
            return generator.PALETTE[:2]
        where = f"{path}: " if path is not None else ""
        try:
            entries = json_attr(attrs, "palette")
            out = [(str(e["name"]), tuple(int(v) for v in e["rgb"])) for e in entries]
        except (MalformedFile, TypeError, KeyError, ValueError):
            raise MalformedFile(f"{where}attribute 'palette' is not a JSON list of {{name, rgb}}") from None
        if not out or any(len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb) for _, rgb in out):
            raise MalformedFile(f"{where}attribute 'palette' must list RGB colours (three values 0..255 each)")
        return out  # type: ignore[return-value]

    def statistics(self, f: h5py.File, summary: Any) -> dict[str, Any]:
        """Per split: objects per colour and shape, the centres' range and mean, the closest pair of
        centres, and how many images have objects that touch or overlap (a later one covering part of
        an earlier one: the paper's 20 px rule allows it at the corners of squares)."""
        names = [name for name, _ in self.palette(summary.attrs)]
        radius = int(summary.attrs.get("object_size", 21)) // 2
        out: dict[str, Any] = {}
        for split, arrays in summary.splits.items():
            if "centers" not in arrays:  # a file of the original script: images only
                out[split] = {"per-object arrays": "none (images only)"}
                continue
            centers = f[arrays["centers"]][...]
            shapes = f[arrays["shapes"]][...]
            colors = f[arrays["colors"]][...]
            if len(centers) == 0:
                out[split] = {"samples": 0}
                continue
            color_counts = np.bincount(colors.ravel(), minlength=len(names))
            shape_counts = np.bincount(shapes.ravel(), minlength=len(generator.SHAPES))
            stats: dict[str, Any] = {
                "colors": {(names[i] if i < len(names) else str(i)): int(c) for i, c in enumerate(color_counts)},
                "shapes": {generator.SHAPES[i]: int(c) for i, c in enumerate(shape_counts)},
                "x_range": [int(centers[..., 0].min()), int(centers[..., 0].max())],
                "y_range": [int(centers[..., 1].min()), int(centers[..., 1].max())],
                "mean_center": [round(float(centers[..., 0].mean()), 2), round(float(centers[..., 1].mean()), 2)],
            }
            k = centers.shape[1]
            if k > 1:
                i, j = np.triu_indices(k, 1)
                d = np.sqrt(((centers[:, i] - centers[:, j]) ** 2).sum(-1))
                stats["min_center_distance"] = round(float(d.min()), 2)
                stats["images_with_overlap"] = int(generator.pair_overlaps(centers, shapes, radius).sum())
            out[split] = stats
        return out

    def tiles(self, arrays: dict[str, np.ndarray], attrs: Mapping[str, Any]) -> list[np.ndarray]:
        """Each image enlarged, every object outlined in black (its square or circle) with its centre
        crossed, and labelled with colour and shape initials in drawing order (e.g. ``b:sq r:ci``)."""
        images = np.asarray(arrays["images"] if "images" in arrays else arrays["x"])
        if images.dtype != np.uint8:  # the original layout's floats in [-1, 1]
            images = np.clip(np.rint((images.astype(np.float64) + 1.0) * 127.5), 0, 255).astype(np.uint8)
        scale = scale_for(images.shape[1])
        names = [name for name, _ in self.palette(attrs)]
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
                if int(shape) == generator.SQUARE:
                    cv2.rectangle(tile, (x0, y0), (x1, y1), outline, 1)
                else:
                    cv2.circle(tile, (cx, cy), (2 * radius + 1) * scale // 2, outline, 1, cv2.LINE_AA)
                cv2.drawMarker(tile, (cx, cy), outline, cv2.MARKER_CROSS, 3 * scale, 1)
                name = names[int(color)] if int(color) < len(names) else str(int(color))
                words.append(f"{name[0]}:{'sq' if int(shape) == generator.SQUARE else 'ci'}")
            label(tile, " ".join(words))
            tiles.append(tile)
        return tiles

    @property
    def generator(self) -> Any:
        return generator


SORT_OF_CLEVR = SortOfClevrKind(
    "sort-of-clevr", {"native": NATIVE, "original": ORIGINAL}, dataset="SortOfClevr", default_file="sort_of_clevr.h5",
    cli_options=("n", "test_fraction", "objects", "size", "object_size", "min_distance", "background", "seed"),
    attrs={"canvas_size": AttrSpec("int", lo=1, hi=4096), "objects": AttrSpec("int", lo=1, hi=generator.MAX_OBJECTS),
           "object_size": AttrSpec("int", lo=1), "min_distance": AttrSpec("int", lo=0),
           "center_range": AttrSpec("ints", lo=0, length=2), "background": AttrSpec("ints", lo=0, hi=255, length=3),
           "palette": AttrSpec("json"), "shape_names": AttrSpec("json"), "center_order": AttrSpec("text"),
           "drawing_order": AttrSpec("text"), "train_x": AttrSpec("text")})
