"""Not-so-Clevr: one square swept over every position (native and the paper's original layout)."""

from __future__ import annotations

from typing import Any, Mapping

import cv2
import h5py
import numpy as np

from ..draw import MARK, enlarge, label, scale_for
from ..generate import not_so_clevr as generator
from .base import ArraySpec, AttrSpec, Column, Kind, LayoutSpec, MalformedFile, int_attr


def _last_pixel(symbols: Mapping[str, int]) -> int:
    return symbols["S"] - 1


NATIVE = LayoutSpec(
    "native",
    arrays=(
        ArraySpec("images", ("S", "S", 1), ("uint8",), what="image values"),
        ArraySpec("onehots", ("S", "S", 1), ("uint8",), 0, 1, what="one-hot values"),
        ArraySpec("locations", (2,), ("int",), 0, _last_pixel, what="locations (x, y on the canvas)"),
    ),
)

# The paper's keys: train_* and val_* at the root, float64 arrays (a file of the original script has
# no attributes at all; ours carry them).
ORIGINAL = LayoutSpec(
    "original",
    arrays=(
        ArraySpec("image", ("S", "S", 3), ("float", "uint8"), 0, 255, what="image values"),
        ArraySpec("imagegray", ("S", "S", 1), ("float", "uint8"), 0, 255, what="image values"),
        ArraySpec("onehots", ("S", "S", 1), ("float", "uint8"), 0, 1, what="one-hot values"),
        ArraySpec("locations", (2,), ("int",), 0, _last_pixel, what="locations (x, y on the canvas)"),
        ArraySpec("normalized_locations", (2,), ("float",), 0, 1, what="normalized locations"),
    ),
    splits={"train": "train", "test": "val"},
    flat=True,
)


#: The simple GANs' real images: the original fed ``imagegray / 255`` of its 0/128 file (the square at
#: 0.502), so pixel values 0 and 255 of a native file are fed as 0 and 128 / 255.
GAN_GRAY = generator.ORIGINAL_GRAY / 255
NATIVE_SQUARE_VALUE = 255  # a native file's square (0/1 mask * 255)


class NotSoClevrKind(Kind):
    gan_value_range = (0.0, GAN_GRAY)
    has_scene = True
    title = "Not-so-Clevr"
    about = ("One 9x9 white square on a black 64x64 canvas, its centre swept over every position `(x, y)` with "
             "x and y in 4..59: 3,136 images, the data of the CoordConv paper's coordinate classification, "
             "regression and rendering experiments, in the paper's order and split. The *uniform* split holds a "
             "random quarter out for testing (the paper's draw: 2,368 train / 768 test); the *quadrant* split holds "
             "out the bottom-right quadrant, x and y in 33..59 (2,407 train / 729 test), so a model is tested on "
             "positions it never saw. The image equals the one-hot map of its centre convolved with a 9x9 box.")

    def columns(self, attrs: Mapping[str, Any]) -> tuple[Column, ...]:
        return (Column("image", "images", "the 64x64 grey image: 255 on the square, 0 elsewhere", image=True),
                Column("onehot", "onehots", "the one-hot map of the centre: 1 at row y, column x, 0 elsewhere "
                                            "(the regression input)", image=True),
                Column("location", "locations", "the square's centre as (x, y) in pixels (the classification "
                                                "target is the pixel y * 64 + x)"))

    def file_name(self, holdout: str | None = None, **options: Any) -> str:
        return f"not_so_clevr_{holdout or 'quadrant'}.h5"

    def default_spec(self, holdout: str | None = None, file: str | None = None, **options: Any) -> Any:
        """The split ``holdout`` names, else the one a file name names (``..._uniform.h5``), else quadrant."""
        return generator.NotSoClevrSpec(split=holdout or ("uniform" if file and "uniform" in file else "quadrant"))

    def command(self, spec: Any, out: Any = None) -> str:
        # One file is one split: the command always names it (its own default writes both).
        words = f"coorddata not-so-clevr --split {spec.split}"
        if spec.split == "uniform" and spec.seed != generator.UNIFORM_SEED:
            words += f" --seed {spec.seed}"
        return words + (f" --out {out}" if out is not None else "")

    def scene(self, summary: Any) -> dict[str, Any]:
        """One filled square on black, the square shape only: white (255) in a native file, grey (128,
        as the original script painted it) in the original layout and in a file of the original script."""
        attrs = summary.attrs
        value = generator.ORIGINAL_GRAY if summary.layout == "original" else NATIVE_SQUARE_VALUE
        try:
            size, square = int(attrs.get("canvas_size", 64)), int(attrs.get("square_size", 9))
        except (TypeError, ValueError):
            raise MalformedFile(f"{summary.path}: attributes 'canvas_size' and 'square_size' must be integers") from None
        return {"size": size, "radius": square // 2, "background": (0, 0, 0), "colors": ((value,) * 3,),
                "names": ("white" if value == 255 else "gray",), "shapes": ("square",)}

    def scene_arrays(self, layout: str) -> tuple[str, str]:
        return ("imagegray" if layout == "original" else "images"), "locations"

    def scene_pixels(self, images: np.ndarray, layout: str) -> np.ndarray:
        if images.dtype != np.uint8:  # the original layout's float64 0/128
            images = np.clip(np.rint(images.astype(np.float64)), 0, 255).astype(np.uint8)
        return images

    def symbols(self, attrs: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, int]:
        s = int_attr(attrs, params, "canvas_size", "canvas")
        return {} if s is None else {"S": s}

    def display_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        # The quadrant split draws nothing at random: its seed and test fraction change nothing.
        if params.get("split") == "quadrant":
            return {k: v for k, v in params.items() if k not in ("seed", "test_fraction")}
        return dict(params)

    def consistency_arrays(self, arrays: Mapping[str, str]) -> tuple[str, ...]:
        return ("locations", "images" if "images" in arrays else "imagegray", "onehots")

    def check_consistency(self, path: Any, data: Mapping[str, np.ndarray], keys: Mapping[str, str], split: str,
                          symbols: Mapping[str, int], attrs: Mapping[str, Any], first: int) -> None:
        """Each sample's square is centred on its location, and its one-hot map marks that pixel alone
        (the image is the one-hot map convolved with the square's kernel)."""
        loc_key = keys["locations"]
        locations = np.asarray(data["locations"], dtype=np.int64)
        if len(locations) == 0:
            return
        canvas = symbols.get("S", 64)
        square = int(attrs.get("square_size", generator.NotSoClevrSpec.square))
        half = square // 2
        image = "images" if "images" in data else "imagegray"
        image_key = keys[image]
        # A centre too near the edge is not the centre of a whole square (the sweep keeps them inside).
        edge = (locations < half) | (locations > canvas - 1 - half)
        if edge.any():
            i = int(np.flatnonzero(edge.any(axis=1))[0])
            raise MalformedFile(f"{path} is malformed: sample {first + i} of split '{split}' has location "
                                f"{tuple(int(v) for v in locations[i])} in '{loc_key}', where no whole {square}x{square} "
                                f"square fits the {canvas}x{canvas} canvas")
        hot = generator.onehot_maps(locations, canvas)
        squares = generator.render_squares(hot, square) > 0
        drawn = data[image][..., 0] > 0
        wrong = np.flatnonzero((drawn != squares).reshape(len(drawn), -1).any(axis=1))
        if len(wrong):
            i = int(wrong[0])
            raise MalformedFile(f"{path} is malformed: sample {first + i} of split '{split}': the square in "
                                f"'{image_key}' is not the {square}x{square} square centred on its location "
                                f"{tuple(int(v) for v in locations[i])} in '{loc_key}'")
        onehots = data["onehots"][..., 0] > 0
        wrong = np.flatnonzero((onehots != (hot > 0)).reshape(len(hot), -1).any(axis=1))
        if len(wrong):
            i = int(wrong[0])
            raise MalformedFile(f"{path} is malformed: sample {first + i} of split '{split}': its one-hot map in "
                                f"'{keys['onehots']}' does not mark its location {tuple(int(v) for v in locations[i])} "
                                "alone")

    def statistics(self, f: h5py.File, summary: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for split, arrays in summary.splits.items():
            loc = f[arrays["locations"]][...]
            if len(loc) == 0:
                out[split] = {"samples": 0}
                continue
            out[split] = {
                "x_range": [int(loc[:, 0].min()), int(loc[:, 0].max())],
                "y_range": [int(loc[:, 1].min()), int(loc[:, 1].max())],
                "distinct_positions": int(len(np.unique(loc, axis=0))),
            }
        return out

    def tiles(self, arrays: dict[str, np.ndarray], attrs: Mapping[str, Any]) -> list[np.ndarray]:
        """Each image enlarged, the centre pixel (the classification target) filled and crossed."""
        images = np.asarray(arrays["images"] if "images" in arrays else arrays["image"])
        if images.dtype != np.uint8:  # the original layout's float64 0/128 images
            images = np.clip(images * (255.0 / max(1.0, float(images.max()))), 0, 255).astype(np.uint8)
        scale = scale_for(images.shape[1])
        tiles = []
        for img, (x, y) in zip(images, arrays["locations"]):
            tile = enlarge(img, scale)
            cx, cy = int(x) * scale, int(y) * scale
            cv2.rectangle(tile, (cx, cy), (cx + scale - 1, cy + scale - 1), MARK, -1)
            cv2.drawMarker(tile, (cx + scale // 2, cy + scale // 2), MARK, cv2.MARKER_CROSS, 6 * scale, 1)
            label(tile, f"x={int(x)} y={int(y)}")
            tiles.append(tile)
        return tiles

    @property
    def generator(self) -> Any:
        return generator


NOT_SO_CLEVR = NotSoClevrKind(
    "not-so-clevr", {"native": NATIVE, "original": ORIGINAL}, dataset="NotSoClevr",
    default_file="not_so_clevr_quadrant.h5", cli_options=("split", "seed"),
    attrs={"canvas_size": AttrSpec("int", lo=2, hi=4096), "square_size": AttrSpec("int", lo=1, hi=4095),
           "split_kind": AttrSpec("text"), "location_order": AttrSpec("text")})
