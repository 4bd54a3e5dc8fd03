"""Lanes: yellow and red circles on Perlin noise with a 4-class mask whose class depends on position."""

from __future__ import annotations

import json
from typing import Any, Mapping

import cv2
import h5py
import numpy as np

from ..draw import enlarge, scale_for
from ..generate import lanes as generator
from ..generate.perlin import BASE_MAX
from .base import COORDCONV_CITATION, ArraySpec, AttrSpec, Column, Kind, LayoutSpec, MalformedFile, int_attr

# The one palette of the mask classes, for every picture (previews, training predictions): background
# black, yellow right yellow, yellow left sky blue, red bottom red (RGB).
CLASS_COLORS = ((0, 0, 0), (255, 255, 0), (0, 200, 255), (255, 0, 0))
LAST_CLASS = len(generator.CLASS_NAMES) - 1


def _last_pixel(symbols: Mapping[str, int]) -> int:
    return symbols["S"] - 1


NATIVE = LayoutSpec(
    "native",
    arrays=(
        ArraySpec("images", ("S", "S", 3), ("uint8",)),
        ArraySpec("masks", ("S", "S"), ("uint8",), 0, LAST_CLASS, what="mask class ids"),
        ArraySpec("centers", ("K", 2), ("int",), 0, _last_pixel, what="circle centres (x, y on the canvas)"),
        ArraySpec("radii", ("K",), ("int",), 1, lambda s: s["S"], what="circle radii"),
        ArraySpec("colors", ("K",), ("int",), 0, len(generator.COLOR_NAMES) - 1, what="colour indices"),
        ArraySpec("classes", ("K",), ("int",), 0, LAST_CLASS, what="circle class ids"),
        ArraySpec("noise_bases", (3,), ("int",), 0, BASE_MAX, what="noise bases"),
        ArraySpec("noise_offsets", (3, 2), ("float",), 0, generator.OFFSET_RANGE, what="noise offsets"),
    ),
)


CUSTOM_CONV2D_CITATION = """@misc{customconv2d,
  title        = {custom-conv2d: a coordinate-bias convolution and the Lanes segmentation study},
  author       = {pskugit},
  howpublished = {\\url{https://github.com/pskugit/custom-conv2d}},
  note         = {GitHub repository}
}"""


class LanesKind(Kind):
    growable = True
    title = "Lanes"
    about = ("The custom-conv2d study's segmentation data: yellow and red filled circles on a fractal Perlin-noise "
             "background, with a 4-class mask whose class depends on *where* a circle is, which a plain "
             "convolution cannot see: a yellow circle is class 1 (yellow right) when its centre is right of the "
             "image's middle and 2 (yellow left) otherwise; a red circle is class 3 (red bottom) in the bottom half "
             "and background (0) in the top half; later circles overwrite earlier ones. By default 128x128 RGB "
             "images with 3 circles each (yellow or red with p = 0.5, radius 10..26); the noise is an exact port "
             "of the `noise` package's `pnoise2`.")
    citations = (COORDCONV_CITATION, CUSTOM_CONV2D_CITATION)

    def columns(self, attrs: Mapping[str, Any]) -> tuple[Column, ...]:
        classes = tuple(self.class_names)
        return (Column("image", "images", "the RGB image", image=True),
                Column("mask", "masks", "the class of every pixel (a grey PNG whose values are the class ids)",
                       image=True, names=classes),
                Column("centers", "centers", "each circle's centre as (x, y) in pixels, in drawing order"),
                Column("radii", "radii", "each circle's radius in pixels"),
                Column("colors", "colors", "each circle's colour", names=generator.COLOR_NAMES),
                Column("classes", "classes", "each circle's class (a red circle in the top half is background)",
                       names=classes),
                Column("noise_bases", "noise_bases", "each colour field's pnoise2 base (R, G, B)"),
                Column("noise_offsets", "noise_offsets", "each colour field's pnoise2 offset in lattice cells "
                                                         "(x, y; R, G, B)"))

    def cli_defaults(self, given: Mapping[str, Any]) -> dict[str, Any]:
        # coorddata lanes: --test-n defaults to half of --n
        n = given.get("n", generator.LanesSpec.n)
        # a value that is no count is left to the spec's own check, which names it
        return {} if "test_n" in given or isinstance(n, bool) or not isinstance(n, int) else {"test_n": n // 2}

    def symbols(self, attrs: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, int]:
        out = {}
        for symbol, param in (("S", "size"), ("K", "circles")):
            v = int_attr(params, params, param)
            if v is not None:
                out[symbol] = v
        return out

    def check_attrs(self, path: Any, attrs: Mapping[str, Any], symbols: Mapping[str, int]) -> None:
        names = attrs.get("class_names")
        if names is not None:
            try:
                names = json.loads(names) if isinstance(names, str) else list(names)
            except (json.JSONDecodeError, TypeError):
                names = None
            if not isinstance(names, list) or len(names) != len(generator.CLASS_NAMES):
                raise MalformedFile(f"{path}: attribute 'class_names' must be a JSON list of "
                                    f"{len(generator.CLASS_NAMES)} names")

    def consistency_arrays(self, arrays: Mapping[str, str]) -> tuple[str, ...]:
        return ("centers", "radii", "colors", "classes", "masks")

    def check_consistency(self, path: Any, data: Mapping[str, np.ndarray], keys: Mapping[str, str], split: str,
                          symbols: Mapping[str, int], attrs: Mapping[str, Any], first: int) -> None:
        """Each circle's class is what its colour and place make it, and each mask is what the circles
        paint (in order, later over earlier; background 0 elsewhere): one class per pixel, the right one."""
        centers = np.asarray(data["centers"], dtype=np.int64)
        if len(centers) == 0:
            return
        size = symbols.get("S", int(data["masks"].shape[1]))
        colors, radii = data["colors"], np.asarray(data["radii"], dtype=np.int64)
        classes = data["classes"]
        expected = generator.circle_classes(colors, centers, size)
        wrong = np.argwhere(classes != expected)
        if len(wrong):
            i, j = (int(v) for v in wrong[0])
            raise MalformedFile(
                f"{path} is malformed: circle {j} of sample {first + i} of split '{split}' has class {int(classes[i, j])} "
                f"in '{keys['classes']}', but a {generator.COLOR_NAMES[int(colors[i, j])]} circle centred at "
                f"{tuple(int(v) for v in centers[i, j])} is class {int(expected[i, j])}")
        masks = data["masks"]
        painted = generator.paint_masks(centers, radii, classes, size)
        wrong_pixels = masks != painted
        bad = np.flatnonzero(wrong_pixels.reshape(len(masks), -1).any(axis=1))
        if len(bad):
            i = int(bad[0])
            y, x = (int(v) for v in np.argwhere(wrong_pixels[i])[0])
            raise MalformedFile(
                f"{path} is malformed: the mask of sample {first + i} of split '{split}' in '{keys['masks']}' is not "
                f"what its circles paint: pixel (x {x}, y {y}) is class {int(masks[i, y, x])}, its circles make it "
                f"{int(painted[i, y, x])}")

    def statistics(self, f: h5py.File, summary: Any) -> dict[str, Any]:
        """Per split: the fraction of mask pixels in each class, and the circles of each class."""
        names = list(self.class_names)
        out = {}
        for split, arrays in summary.splits.items():
            masks = f[arrays["masks"]]
            counts = np.zeros(len(names), np.int64)
            step = max(1, (64 << 20) // max(1, int(np.prod(masks.shape[1:]))))  # bounded memory
            for start in range(0, masks.shape[0], step):
                part = masks[start : start + step]
                counts += np.bincount(part.ravel(), minlength=len(names))[: len(names)]
            total = int(counts.sum())
            classes = f[arrays["classes"]][...]
            out[split] = {
                "pixel_fraction": {name: round(int(c) / total, 4) if total else 0.0 for name, c in zip(names, counts)},
                "circles_per_class": {name: int((classes == i).sum()) for i, name in enumerate(names)},
            }
        return out

    def mask_colors(self, masks: np.ndarray) -> np.ndarray:
        """Masks (..., H, W) of class ids as RGB pictures (..., H, W, 3) in the class palette."""
        palette = np.array(self.class_colors, np.uint8)
        return palette[np.minimum(masks, len(palette) - 1)]

    def tiles(self, arrays: dict[str, np.ndarray], attrs: Mapping[str, Any]) -> list[np.ndarray]:
        """The image with each class region outlined in its colour, beside the mask in the class
        palette with every circle's centre and class marked and the class boundaries (the midlines)."""
        from skimage.segmentation import find_boundaries

        scale = scale_for(arrays["images"].shape[1])
        palette = np.array(self.class_colors, np.uint8)
        tiles = []
        for img, mask, centers, classes in zip(arrays["images"], arrays["masks"], arrays["centers"], arrays["classes"]):
            big_mask = enlarge(mask, scale)[..., 0]
            left = enlarge(img, scale)
            # Outlines of the labelled regions (scikit-image), in their class colour (background: white).
            edge = find_boundaries(big_mask, mode="inner")
            left[edge] = np.where(big_mask[edge, None] == 0, 255, palette[np.minimum(big_mask[edge], len(palette) - 1)])
            right = self.mask_colors(big_mask)
            for (x, y), c in zip(centers, classes):
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

    def legend(self, attrs: Mapping[str, Any]) -> list[tuple[str, tuple[int, int, int]]]:
        return [(f"{i} {name}", color) for i, (name, color) in enumerate(zip(self.class_names, self.class_colors))]

    @property
    def generator(self) -> Any:
        return generator


LANES = LanesKind("lanes", {"native": NATIVE}, class_names=generator.CLASS_NAMES, class_colors=CLASS_COLORS,
                  dataset="Lanes", default_file="lanes.h5",
                  cli_options=("n", "test_n", "size", "circles", "intensity", "scale", "octaves", "persistence",
                               "lacunarity", "seed"),
                  attrs={"class_names": AttrSpec("json"), "color_names": AttrSpec("json"), "palette": AttrSpec("json"),
                         "channel_order": AttrSpec("text"), "center_order": AttrSpec("text"), "noise": AttrSpec("text")})
