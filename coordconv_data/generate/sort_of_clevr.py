"""Sort-of-Clevr: coloured squares and circles on a plain canvas, with every object recorded.

By default this is the CoordConv paper's variant (``data/sort_of_clevr_generator.py`` of
uber-research/CoordConv): a 64x64 white canvas, two objects, the first blue (0, 0, 255) and the second
red (255, 0, 0) in RGB, each a filled 21x21 square (``cv2.rectangle`` from ``centre - 10`` to
``centre + 10``, corners inclusive) or a filled circle of radius 10 (``cv2.circle``), 50/50; integer
centres ``(x, y)`` uniform in 10..53 on both axes (``randint(10, 64 - 10)``), each new centre redrawn
until it is at least 20 px from every earlier one (rejected iff ``squared distance < 20**2``). Objects
are drawn in order, so a later one covers an earlier one where they meet: the 20 px rule keeps every
centre visible, but two squares (or a square and a circle) can still overlap at their corners.

It generalises the relational-networks original (kimhc6028/relational-networks): up to six objects
of distinct colours (blue, red, green, orange, gray, yellow, in that order, so that two objects are the
paper's), any canvas size; that dataset is ``size=75, objects=6, object_size=11`` (min distance 10).

Placement follows the original's order of draws: object ``k``'s centre is redrawn until it keeps the
minimum distance from objects ``0..k-1``. It is vectorised over a block of samples (only the rejected
samples are redrawn each round) and bounded: a sample whose object ``k`` finds no place within
``max_rounds`` draws starts over, and a block that still has unplaced samples after ``max_restarts``
starts raises :class:`PlacementError` instead of looping forever as the original would. Requests
that are clearly impossible are refused before any work (:func:`check_feasible`).

Rendering paints each object's pixel offsets (taken from OpenCV's own rasterisation of one square and
one circle, so they equal ``cv2.rectangle``/``cv2.circle`` exactly) into a colour-index map for all
samples at once, then looks the colours up: no per-image Python loop.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any, Callable, Iterable

import cv2
import numpy as np

from ..errors import InvalidParameter
from . import check_seed, require
from .blocks import generate_blocks, worker_pool
from .chunks import CHUNK_BYTES, ChunkAssembler, ChunkCodec, chunk_rows  # noqa: F401
from .shards import ContentDigest, Shard, ShardSource, block_arrays, shard_attrs, shard_ranges

KIND = "sort-of-clevr"

# Palette in RGB, in the order objects take their colours: blue and red first (the paper's two), then
# the rest of the relational-networks original's six (its tuples were BGR; these are the same colours).
PALETTE: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("blue", (0, 0, 255)),
    ("red", (255, 0, 0)),
    ("green", (0, 255, 0)),
    ("orange", (255, 156, 0)),
    ("gray", (128, 128, 128)),
    ("yellow", (255, 255, 0)),
)
MAX_OBJECTS = len(PALETTE)
SHAPES = ("square", "circle")  # index stored in the `shapes` arrays
SQUARE, CIRCLE = 0, 1
BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0)}

PAPER_CANVAS = 64
PAPER_HALF = 10  # the original's `size`: square corners centre +- 10, circle radius 10
STREAMS = {"train": 0, "test": 1}
BLOCK_BYTES = 16 * 2**20  # images of one block (1024 at 64x64: 12 MiB)


class PlacementError(InvalidParameter):
    """The objects of a sample could not be placed within the bounded number of tries (or, checked
    up front, cannot be placed at all): a request too tight. ``field`` names the option to change first."""

    def __init__(self, message: str, field: str = "min_distance") -> None:
        super().__init__(field, message)


def parse_color(text: str) -> tuple[int, int, int]:
    """``white``, ``black``, a palette name, or ``R,G,B`` with each value in 0..255."""
    name = text.strip().lower()
    if name in BACKGROUNDS:
        return BACKGROUNDS[name]
    for pname, rgb in PALETTE:
        if name == pname:
            return rgb
    parts = name.replace(" ", "").split(",")
    try:
        rgb = tuple(int(p) for p in parts)
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise InvalidParameter("background", f"background {text!r} is not a colour: give white, black, a palette "
                                             "name or R,G,B (0..255 each)")
    return rgb  # type: ignore[return-value]


@dataclass(frozen=True)
class SortOfClevrSpec:
    """Everything that determines a Sort-of-Clevr file (all recorded in its ``params``).

    ``object_size`` is the square's side and the circle's diameter (odd: ``2 * radius + 1``); left
    ``None`` it scales with the canvas from the paper's 21 at 64. ``min_distance`` defaults to twice
    the radius (the original's ``size * 2``), at least 1. Centres range over
    ``radius .. size - 1 - radius``, so every object lies wholly inside the canvas (the original's
    ``randint(size, img_size - size)``). ``block_size`` (samples generated together from one seeded
    stream) defaults to :func:`default_block_size`; like the seed, it determines the data.
    """

    n: int = 50000
    test_fraction: float = 0.1
    objects: int = 2
    size: int = PAPER_CANVAS
    object_size: int | None = None
    min_distance: int | None = None
    background: tuple[int, int, int] = BACKGROUNDS["white"]
    seed: int = 0
    block_size: int | None = None
    max_rounds: int = 100
    max_restarts: int = 10

    def __post_init__(self) -> None:
        def integer(name: str, lo: int, hi: int | None = None) -> None:
            v = getattr(self, name)
            ok = isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= lo and (hi is None or v <= hi)
            allowed = f"in {lo}..{hi}" if hi is not None else f">= {lo}"
            require(ok, name, f"{name} must be an integer {allowed}, got {v!r}")

        integer("n", 1)
        require(isinstance(self.test_fraction, (int, float, np.floating)) and 0 <= self.test_fraction < 1,
                "test_fraction", f"test_fraction must be in [0, 1), got {self.test_fraction}")
        integer("objects", 1, MAX_OBJECTS)
        integer("size", 1, 4096)
        check_seed(self.seed)
        try:
            background = tuple(int(v) for v in self.background)
        except (TypeError, ValueError):
            background = ()
        require(len(background) == 3 and all(0 <= v <= 255 for v in background), "background",
                f"background must be three values in 0..255, got {self.background}")
        object.__setattr__(self, "background", background)
        if self.object_size is None:
            object.__setattr__(self, "object_size", 2 * round(PAPER_HALF * self.size / PAPER_CANVAS) + 1)
        integer("object_size", 1)
        require(self.object_size % 2 == 1, "object_size",
                f"object_size must be odd (2 * radius + 1), got {self.object_size}")
        require(self.object_size <= self.size, "object_size",
                f"object_size {self.object_size} does not fit on a {self.size}x{self.size} canvas: lower "
                "object_size or raise size")
        if self.min_distance is None:
            # The original's `size * 2`; at least 1 so that one-pixel objects never coincide. Any
            # distance above radius * sqrt(2) keeps every object's centre pixel uncovered.
            object.__setattr__(self, "min_distance", max(1, 2 * self.radius))
        integer("min_distance", 0)
        if self.block_size is None:
            object.__setattr__(self, "block_size", default_block_size(self.size))
        for name in ("block_size", "max_rounds", "max_restarts"):
            integer(name, 1)
        used = dict(self.palette())
        clash = [name for name, rgb in used.items() if rgb == self.background]
        require(not clash, "background", f"background {self.background} is the colour of the "
                                         f"{clash[0] if clash else ''} object; choose another background or fewer objects")
        check_feasible(self)

    @property
    def radius(self) -> int:
        return self.object_size // 2  # type: ignore[operator]

    @property
    def center_range(self) -> tuple[int, int]:
        """Smallest and largest centre coordinate, inclusive (both axes)."""
        return self.radius, self.size - 1 - self.radius

    @property
    def n_test(self) -> int:
        return int(round(self.n * self.test_fraction))

    @property
    def n_train(self) -> int:
        return self.n - self.n_test

    def palette(self) -> list[tuple[str, tuple[int, int, int]]]:
        """The colours of this file's objects: object ``k`` is ``palette()[k]``."""
        return list(PALETTE[: self.objects])

    def params(self) -> dict[str, Any]:
        return asdict(self)


def default_block_size(size: int) -> int:
    """Samples per block: a power of two (so chunk grids divide it), at most 1024, with a block's
    images within :data:`BLOCK_BYTES` so that memory stays small for big canvases too."""
    block = 1024
    while block > 1 and block * size * size * 3 > BLOCK_BYTES:
        block //= 2
    return block


# The largest possible least distance between k points in a unit square (the "spreading points"
# problem; exact values, Schaer and others): k points at least d apart in a square of side s exist
# iff d <= s * SPREAD[k]. The integer grid of centres only makes it harder.
SPREAD = {2: math.sqrt(2), 3: math.sqrt(6) - math.sqrt(2), 4: 1.0, 5: math.sqrt(2) / 2, 6: math.sqrt(13) / 6}


def check_feasible(spec: SortOfClevrSpec) -> None:
    """Refuse requests that no placement can satisfy, before any work starts.

    ``k`` centres at least ``d`` apart must fit in the square of side ``hi - lo`` that holds the
    centres: impossible when ``d`` exceeds that side times :data:`SPREAD[k]`, or when there are
    fewer grid points than objects. A request that passes may still be too tight for rejection
    sampling (near the limit almost no random draw fits); it then fails after its bounded tries.
    """
    k, d = spec.objects, spec.min_distance
    lo, hi = spec.center_range
    side = hi - lo
    if k < 2 or d == 0:
        return
    why = None
    if k > (side + 1) ** 2:
        why = f"only {(side + 1) ** 2} centre positions"
    elif d > side * SPREAD[k] + 1e-9:
        why = f"{k} centres in a {side} px square can be at most {side * SPREAD[k]:.1f} px apart"
    if why:
        raise PlacementError(
            f"cannot place {k} objects at least {d} px apart with centres in {lo}..{hi} "
            f"({why}): lower objects, min_distance or object_size, or raise size",
            field="objects" if k > (side + 1) ** 2 else "min_distance",
        )


# -- placement -----------------------------------------------------------------------------------------

def _place_once(spec: SortOfClevrSpec, rng: np.random.Generator, m: int) -> tuple[np.ndarray, np.ndarray]:
    """One sequential placement attempt for ``m`` samples: centres (m, K, 2) and which succeeded."""
    k_total, d2 = spec.objects, spec.min_distance ** 2  # type: ignore[operator]
    lo, hi = spec.center_range
    centers = np.zeros((m, k_total, 2), dtype=np.int64)
    alive = np.ones(m, dtype=bool)
    for k in range(k_total):
        pending = np.flatnonzero(alive)
        for _ in range(spec.max_rounds):
            if len(pending) == 0:
                break
            centers[pending, k] = rng.integers(lo, hi + 1, size=(len(pending), 2))
            if k == 0:
                pending = pending[:0]
                break
            diff = centers[pending, :k] - centers[pending, k : k + 1]
            too_close = ((diff * diff).sum(axis=-1) < d2).any(axis=1)
            pending = pending[too_close]
        alive[pending] = False
    return centers, alive


def place_centers(spec: SortOfClevrSpec, rng: np.random.Generator, count: int) -> np.ndarray:
    """Centres ``(count, K, 2)`` int64 ``(x, y)``, each at least ``min_distance`` from the earlier ones.

    Raises :class:`PlacementError` when some sample cannot be placed within the bounded tries.
    """
    centers = np.zeros((count, spec.objects, 2), dtype=np.int64)
    todo = np.arange(count)
    for _ in range(spec.max_restarts):
        got, ok = _place_once(spec, rng, len(todo))
        centers[todo[ok]] = got[ok]
        todo = todo[~ok]
        if len(todo) == 0:
            return centers
    lo, hi = spec.center_range
    raise PlacementError(
        f"could not place {spec.objects} objects at least {spec.min_distance} px apart with centres in "
        f"{lo}..{hi} in {spec.max_restarts} x {spec.max_rounds} random tries per object (too tight to place "
        "by chance): lower objects, min_distance or object_size, or raise size"
    )


# -- rendering -----------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def shape_template(shape: int, radius: int) -> np.ndarray:
    """The pixels of one filled shape as a ``(2r+1, 2r+1)`` bool mask centred on its centre pixel.

    Drawn by OpenCV itself, exactly as the original called it: ``cv2.rectangle(img, c - r, c + r,
    colour, -1)`` (corners inclusive: a ``2r+1`` square) or ``cv2.circle(img, c, r, colour, -1)``.
    Both rasterisations depend only on the offset from the centre, so this mask placed at any centre
    equals drawing there (a test checks it against per-object drawing).
    """
    pad = 2
    n = 2 * radius + 1 + 2 * pad
    canvas = np.zeros((n, n), dtype=np.uint8)
    c = radius + pad
    if shape == SQUARE:
        cv2.rectangle(canvas, (c - radius, c - radius), (c + radius, c + radius), 1, -1)
    elif shape == CIRCLE:
        cv2.circle(canvas, (c, c), radius, 1, -1)
    else:
        raise ValueError(f"unknown shape index {shape}")
    if canvas[:pad].any() or canvas[-pad:].any() or canvas[:, :pad].any() or canvas[:, -pad:].any():
        raise AssertionError(f"OpenCV drew {SHAPES[shape]} of radius {radius} beyond its box")
    mask = canvas[pad:-pad, pad:-pad].astype(bool)
    mask.flags.writeable = False
    return mask


@lru_cache(maxsize=None)
def _flat_offsets(shape: int, radius: int, size: int) -> np.ndarray:
    """Flat (row * size + column) offsets of a shape's pixels from its centre pixel."""
    dy, dx = np.nonzero(shape_template(shape, radius))
    out = (dy - radius) * size + (dx - radius)
    out.flags.writeable = False
    return out.astype(np.int64)


def render_index_map(centers: np.ndarray, shapes: np.ndarray, colors: np.ndarray, *, size: int,
                     radius: int) -> np.ndarray:
    """Colour-index maps ``(N, size, size)`` uint8: 0 background, ``c + 1`` palette colour ``c``.

    Objects are painted in order (a later object covers an earlier one), as the original drew them.
    """
    n, k_total = shapes.shape
    out = np.zeros(n * size * size, dtype=np.uint8)
    if n == 0:
        return out.reshape(0, size, size)
    base = np.arange(n, dtype=np.int64) * (size * size)
    for k in range(k_total):
        centre = base + centers[:, k, 1] * size + centers[:, k, 0]
        for shape in (SQUARE, CIRCLE):
            sel = np.flatnonzero(shapes[:, k] == shape)
            if len(sel) == 0:
                continue
            idx = centre[sel, None] + _flat_offsets(shape, radius, size)[None, :]
            out[idx] = (colors[sel, k] + 1)[:, None]
    return out.reshape(n, size, size)


def render(centers: np.ndarray, shapes: np.ndarray, colors: np.ndarray, *, size: int, radius: int,
           palette_rgb: Iterable[Iterable[int]], background: Iterable[int]) -> np.ndarray:
    """Images ``(N, size, size, 3)`` uint8 RGB from the per-object arrays: the generator's renderer,
    and the way to rebuild a file's images from its ``centers``, ``shapes`` and ``colors``."""
    lut = np.array([tuple(background)] + [tuple(c) for c in palette_rgb], dtype=np.uint8)
    centers, shapes, colors = np.asarray(centers), np.asarray(shapes), np.asarray(colors)
    index = render_index_map(centers, shapes, colors, size=size, radius=radius)
    n = len(index)
    if n == 0:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    # One OpenCV table lookup per channel, then one interleave: measured 12 ms for a block of 1024
    # 64x64 images, against 90 ms for numpy's `lut[index]` (a gather of 3-byte rows).
    flat = index.reshape(n * size, size)
    tables = np.zeros((3, 256), dtype=np.uint8)
    tables[:, : len(lut)] = lut.T
    planes = [cv2.LUT(flat, tables[ch]) for ch in range(3)]
    return cv2.merge(planes).reshape(n, size, size, 3)


def rebuild(spec: SortOfClevrSpec, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A split's images again from its per-object arrays (``centers``, ``shapes``, ``colors``).

    ``spec`` is the file's (``coordconv_data.kinds.get_kind("sort-of-clevr").spec_from_params(summary.params)``).
    """
    return {"images": render(arrays["centers"], arrays["shapes"], arrays["colors"], size=spec.size,
                             radius=spec.radius, palette_rgb=[rgb for _, rgb in spec.palette()],
                             background=spec.background)}


# -- pair geometry (for statistics and tests) -----------------------------------------------------------

@lru_cache(maxsize=None)
def overlap_table(radius: int) -> np.ndarray:
    """``table[a, b, dy + 2r, dx + 2r]``: do shape ``a`` at the origin and shape ``b`` at ``(dx, dy)``
    share a pixel? Offsets beyond ``2r`` never overlap."""
    span = 4 * radius + 1
    table = np.zeros((2, 2, span, span), dtype=bool)
    for a in (SQUARE, CIRCLE):
        ta = shape_template(a, radius).astype(np.float32)
        for b in (SQUARE, CIRCLE):
            tb = shape_template(b, radius).astype(np.float32)
            # Full cross-correlation: entry (dy + 2r, dx + 2r) counts the shared pixels.
            padded = np.pad(ta, 2 * radius)
            corr = cv2.matchTemplate(padded, tb, cv2.TM_CCORR)
            table[a, b] = corr > 0.5
    table.flags.writeable = False
    return table


def pair_overlaps(centers: np.ndarray, shapes: np.ndarray, radius: int) -> np.ndarray:
    """``(N,)`` bool: does any pair of objects in a sample share a pixel?"""
    n, k_total = shapes.shape
    out = np.zeros(n, dtype=bool)
    table = overlap_table(radius)
    r2 = 2 * radius
    for i in range(k_total):
        for j in range(i + 1, k_total):
            d = centers[:, j] - centers[:, i]
            near = (np.abs(d) <= r2).all(axis=1)
            hit = np.zeros(n, dtype=bool)
            sel = np.flatnonzero(near)
            hit[sel] = table[shapes[sel, i], shapes[sel, j], d[sel, 1] + r2, d[sel, 0] + r2]
            out |= hit
    return out


# -- blocks --------------------------------------------------------------------------------------------

def sample_params(spec: SortOfClevrSpec, rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    """Every random draw of a block of ``count`` samples: each object's colour, shape and centre.
    Cheap next to drawing the images, which :func:`rebuild` makes from any of these samples alone."""
    shapes = (rng.random((count, spec.objects)) >= 0.5).astype(np.uint8)  # original: random() < 0.5 -> square
    centers = place_centers(spec, rng, count)
    colors = np.broadcast_to(np.arange(spec.objects, dtype=np.uint8), (count, spec.objects)).copy()
    return {"colors": colors, "shapes": shapes, "centers": centers}


def make_block(spec: SortOfClevrSpec, rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    """``count`` samples: images, colors, shapes, centers (one block of :func:`generate_blocks`)."""
    params = sample_params(spec, rng, count)
    return {**rebuild(spec, params), **params}


def split_sizes(spec: SortOfClevrSpec) -> dict[str, int]:
    """The samples of each split."""
    return {"train": spec.n_train, "test": spec.n_test}


def generate_split(spec: SortOfClevrSpec, split: str, *, workers: int = 1):
    """Yield ``(start, arrays)`` blocks of one split (``train`` or ``test``), in order."""
    n = spec.n_train if split == "train" else spec.n_test
    yield from generate_blocks(make_block, spec, n, seed=spec.seed, stream=STREAMS[split],
                               block_size=spec.block_size, workers=workers)


def generate(spec: SortOfClevrSpec, split: str = "train") -> dict[str, np.ndarray]:
    """A whole split in memory (for small ``n``: tests, notebooks)."""
    require(split in STREAMS, "split", f"split must be train or test, got {split!r}")
    parts = [a for _, a in generate_split(spec, split)]
    if not parts:
        empty = make_block(spec, np.random.default_rng(0), 0)
        return empty
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


# -- files ---------------------------------------------------------------------------------------------

# Storage, measured by benchmarks/bench_sort_of_clevr.py --compression on 10240 default images
# (126 MB raw; 2-core machine shared with other jobs, medians of 5): none 0.21 s / 126 MB, lzf
# 0.50 s / 4.0 MB, gzip-1 0.40 s / 3.1 MB, gzip-3 0.50 s / 1.85 MB, gzip-4 0.74 s / 1.8 MB, gzip-6
# 0.89 s / 0.9 MB. White backgrounds compress ~70x. gzip-3 costs about what gzip-1 does (levels 1-3
# use zlib's fast matcher) for 40% less; from level 4 zlib's lazy matching costs 50-80% more time,
# which would dominate the run. lzf is bigger, no faster, and not in every HDF5 reader. uint8 gains
# nothing from shuffle.
IMAGE_LEVEL = 3
# The original layout's float32 images are 4x the bytes. Encoding 50,000 of them, interleaved
# repeats: gzip-1 9.1 s / 25 MB, gzip-3 9.2 s / 24 MB, gzip-3 with shuffle 10.5 s / 17 MB. Shuffle
# groups the equal high bytes of the few distinct values: 30% smaller for 13% more time.
ORIGINAL_IMAGE = {"dtype": "float32", "level": 3, "shuffle": True}
# The per-object arrays are small (bytes per sample); the writer's default gzip-4 (shuffled for
# int64 centres) keeps them at a few hundred kB for 50,000 samples.
SMALL_COMPRESSION = "gzip"


def image_codec(spec: SortOfClevrSpec, layout: str) -> ChunkCodec:
    shape = (spec.size, spec.size, 3)
    if layout == "original":
        # The paper's GAN code reads `train_x` as floats in [-1, 1]: pixel / 127.5 - 1, as its
        # generator computed them (in float64, then stored as float32: the model casts to float32
        # anyway, and its loader sizes memory at 4 bytes a value).
        dtype = np.dtype(ORIGINAL_IMAGE["dtype"])
        return ChunkCodec(chunk_rows(spec.block_size, dtype.itemsize * 3 * spec.size ** 2), shape,
                          dtype.name, level=ORIGINAL_IMAGE["level"], shuffle=ORIGINAL_IMAGE["shuffle"],
                          divisor=127.5, offset=-1.0)
    return ChunkCodec(chunk_rows(spec.block_size, 3 * spec.size ** 2), shape, "uint8", level=IMAGE_LEVEL)


@dataclass(frozen=True)
class _FileJob:
    """What a worker needs to generate a block (or read it from shards) and encode its image chunks."""

    spec: SortOfClevrSpec
    codec: ChunkCodec
    misalign: int  # how far past a chunk boundary every block of this stream starts
    split: str = "train"
    digest: bool = False  # return each block's content digest (a shard's)
    source: ShardSource | None = None  # read the blocks from these shards instead of generating them


def _file_block(job: _FileJob, rng: np.random.Generator, count: int, block: int) -> dict[str, np.ndarray]:
    arrays, digest = block_arrays(lambda: make_block(job.spec, rng, count), job.source, job.split,
                                  block * job.spec.block_size, count, job.digest)
    parts = job.codec.split_block(arrays.pop("images"), job.misalign)
    arrays.update({f"images_{k}": v for k, v in parts.items()})
    if digest is not None:
        arrays["digest"] = digest
    return arrays


def file_attrs(spec: SortOfClevrSpec, layout: str = "native") -> dict[str, Any]:
    lo, hi = spec.center_range
    attrs: dict[str, Any] = {
        "canvas_size": spec.size,
        "objects": spec.objects,
        "object_size": spec.object_size,
        "min_distance": spec.min_distance,
        "center_range": [lo, hi],
        "center_order": "x, y",
        "palette": json.dumps([{"name": name, "rgb": list(rgb)} for name, rgb in spec.palette()]),
        "shape_names": json.dumps(list(SHAPES)),
        "background": list(spec.background),
        "drawing_order": "objects in index order; a later object covers an earlier one where they meet",
    }
    if layout == "original":
        attrs["train_x"] = (f"all {spec.n} images as float32 pixel / 127.5 - 1 in [-1, 1]: the native "
                            f"train split (first {spec.n_train}) then its test split (last {spec.n_test})")
    return attrs


def estimate_bytes(spec: SortOfClevrSpec, layout: str = "native") -> int:
    """About how large the file will be. Measured at the defaults: 9.2 MiB native (about 1/70 of the
    raw images) and 23 MiB original for 50,000 images; a busier or larger canvas compresses less,
    so this assumes 1/40 of the raw pixels (the per-object arrays: about a quarter of their raw bytes)."""
    raw = spec.n * spec.size * spec.size * 3 * (4 if layout == "original" else 1)
    return raw // (100 if layout == "original" else 40) + spec.n * spec.objects * 18 // 4


Spec = SortOfClevrSpec


def write_file(spec: SortOfClevrSpec, path, *, layout: str = "native", workers: int = 1, force: bool = False,
               progress: Callable[[int], None] | None = None, shard: Shard | None = None,
               source: ShardSource | None = None, exclusive: bool = True) -> dict[str, int]:
    """Generate ``spec`` into ``path`` atomically, block by block; returns the sample count per split.

    Memory stays flat in ``n``: each block is generated (in ``workers`` processes), its image chunks
    compressed there, and written before more than ``2 * workers`` blocks are in flight. The file is
    the same, byte for byte, for any ``workers``.

    ``layout="native"``: groups ``train`` and ``test`` with ``images`` (N, S, S, 3) uint8 RGB,
    ``colors`` (N, K) uint8, ``shapes`` (N, K) uint8, ``centers`` (N, K, 2) int64 ``(x, y)``.
    ``layout="original"``: what the paper's GAN code loads: ``train_x`` (N, S, S, 3) float32 in
    [-1, 1] holding the train images then the test images, and ``train_colors``, ``train_shapes``,
    ``train_centers`` alike.

    ``shard`` (native layout): write only that share of every split (:mod:`.shards`), its arrays those
    samples of the whole file, with the shard's attributes. ``source``: read the blocks from shards
    instead of generating them (a merge that copies: the file is then the one-machine file byte for
    byte). ``exclusive=False`` lets another live writer of ``path`` be (see :class:`~coordconv_data.writer.DatasetWriter`).

    Raises :class:`PlacementError` when objects cannot be placed, and
    :class:`coordconv_data.store.StoreError` when ``path`` exists (without ``force``) or cannot be written.
    """
    from ..writer import DatasetWriter  # here: the worker processes never need h5py

    require(layout in ("native", "original"), "layout", f"layout must be native or original, got {layout!r}")
    require(layout == "native" or (shard is None and source is None), "layout",
            "shards are written and merged in the native layout only (the original layout mixes the splits in "
            "one array)")
    advance = progress or (lambda k: None)
    codec = image_codec(spec, layout)
    k = spec.objects
    ranges = shard_ranges(split_sizes(spec), spec.block_size, shard)
    counts = {split: b - a for split, (a, b) in ranges.items()}
    attrs = file_attrs(spec, layout)
    if shard is not None:
        attrs.update(shard_attrs(shard, ranges))
    digest = ContentDigest() if shard is not None else None
    with DatasetWriter(path, KIND, seed=spec.seed, params=spec.params(), attrs=attrs,
                       layout=layout, force=force, exclusive=exclusive,
                       expected_bytes=estimate_bytes(spec, layout) * sum(counts.values()) // spec.n) as w, \
            worker_pool(_file_block, workers, sum(counts.values()), spec.block_size) as pool:
        def small(name: str, n: int) -> dict[str, Any]:
            return {
                "colors": w.create(f"{name}colors", (n, k), np.uint8, compression=SMALL_COMPRESSION),
                "shapes": w.create(f"{name}shapes", (n, k), np.uint8, compression=SMALL_COMPRESSION),
                "centers": w.create(f"{name}centers", (n, k, 2), np.int64, compression=SMALL_COMPRESSION),
            }

        def images(name: str, n: int) -> ChunkAssembler:
            # HDF5 wants chunks no longer than the data; a split that short is a single block anyway.
            fitted = replace(codec, rows=min(codec.rows, max(1, n)))
            return ChunkAssembler(fitted.create(w, name, n), fitted)

        if layout == "native":
            targets = []
            for split, (a, b) in ranges.items():
                # The file's row 0 of a split is its sample `a` (a shard's first, on a block boundary).
                targets.append((split, -a, images(f"{split}/images", b - a), small(f"{split}/", b - a)))
        else:
            both, arrays = images("train_x", spec.n), small("train_", spec.n)
            targets = [("train", 0, both, arrays), ("test", spec.n_train, both, arrays)]
        for split, base, assembler, arrays in targets:
            job = _FileJob(spec, assembler.codec, base % assembler.codec.rows, split=split,
                           digest=digest is not None, source=source)
            a, b = ranges[split]
            for start, block in generate_blocks(_file_block, job, b, seed=spec.seed, stream=STREAMS[split],
                                                block_size=spec.block_size, pool=pool, pass_block=True, start=a):
                count = len(block["colors"])
                w.ensure_space(sum(v.nbytes for v in block.values()))
                assembler.add(base + start, {key: block[f"images_{key}"] for key in ("head", "tail", "chunks",
                                                                                     "chunk_sizes")})
                for name, ds in arrays.items():
                    ds[base + start : base + start + count] = block[name]
                if digest is not None:
                    digest.add(split, start, block["digest"])
                advance(count)
        for _, _, assembler, _ in targets:
            assembler.close()
        if digest is not None:
            w.set_root_attrs({"shard_digest": digest.text()})
    return counts
