"""A geometry score for generated scenes: are the expected objects there, one per colour, each a
clean shape of the right size, with nothing else on the canvas?

Two kinds of scene, one machinery (a :class:`SceneSpec` says which):

* **Sort-of-Clevr** (:meth:`SceneSpec.from_spec`): objects of distinct colours, each a filled square
  of side ``2r + 1`` or a filled circle of radius ``r``, on a white (or other) background.
* **Not-so-Clevr** (:meth:`SceneSpec.not_so_clevr`): one grey or white 9x9 square on black, the square
  shape only; the images the simple GANs learn. A native file's square is white (255), the original
  layout's grey (128, as the original script painted it).

:meth:`SceneSpec.from_file` reads the scene of either kind of file. Real images score
``geometry == 1.0`` and every detected centre and shape equals the recorded one: the rules below
are exact for the generators' drawing. Meant for images a GAN generates (scored every epoch) and for
held-out real images, which give the ceiling. No torch here: the trainer converts its generator's
float output with :func:`to_uint8` (the inverse of the scaling it gave the real images) and calls
:func:`score_images`, which takes ``(N, H, W, 3)`` RGB or ``(N, H, W, 1)`` grey ``uint8`` images.

The rules, with the thresholds of :class:`Rules` (defaults are the module constants):

1. **Pixel labels.** Each pixel is labelled with the background or an object colour when its RGB
   Euclidean distance to that colour is below ``tolerance`` (default :data:`TOLERANCE` = 0.35) times
   the smallest distance between any two of {background, colours}; otherwise it is *unclear*.
   Because ``tolerance <= 0.5``, the balls around the colours are disjoint, so a labelled pixel's
   colour is also its nearest one. 0.35 leaves a generated image room for colour noise (about 126
   levels for the paper's white/blue/red) while a half-way blend of two colours (an anti-aliased
   edge, 0.5 of the distance) stays unclear instead of being claimed by either side. The labelling
   is one lookup in a 2**24-entry table per pixel, built once per set of colours (about 0.2 s, 16 MiB,
   the last 4 cached), so its cost does not grow with the number of colours.
2. **Components.** Per colour, 8-connected components of its pixels. Components of fewer than
   ``min_object`` (default :data:`MIN_OBJECT` = 0.25) times the *reference area* (the area of the
   smallest shape the scene allows: the circle of the spec's radius for Sort-of-Clevr, 317 px at
   r = 10, so 80 px at least to be an object; the 81 px square for Not-so-Clevr, 21 px) are
   *specks*; larger ones are *objects*.
   A quarter circle is far bigger than noise but far smaller than any real object, even one partly
   covered by a later object (the generator keeps every centre visible, so at most a corner goes).
3. **Count.** Exactly one object per expected colour: none means *missing*, two or more *extra*.
4. **Shape and size.** The scene's shapes (square and circle, or the square only) of the spec's
   radius (the generator's own
   :func:`~coordconv_data.generate.sort_of_clevr.shape_template`, so they equal the drawn shapes
   pixel for pixel; a Not-so-Clevr square of side 9 is the template of radius 4, the same
   ``cv2.rectangle`` pixels the box filter renders) are tried at every integer centre within ``search`` (default :data:`SEARCH` = 2)
   px of the component's bounding-box centre (rounded down). The score of a placement is the IoU of
   template and component, where template pixels that belong to *other* objects (any colour) are
   left out of the union: a later-drawn object may cover part of an earlier one, and the earlier
   one is not to blame. The best placement wins (ties: fewer excused pixels, then nearer the box
   centre, then square before circle); its centre is the object's centre, its template the shape,
   its IoU the ``fit``. The object is *well-formed* iff ``fit >= min_iou`` (default :data:`MIN_IOU`).
   Real objects fit exactly (1.0). The threshold was measured (r = 10, one object on a white
   canvas): a circle in the square's place overlaps it 0.72; squares and circles of radius 8, 9,
   11, 12 fit at best 0.62-0.86; a 30x10 rectangle 0.44, a 12x8 ellipse 0.79 and a half-size
   (11x11) square 0.38. Real images blurred with a Gaussian (2000 images) fit at least 0.98 at
   sigma 0.7 and 0.92 at sigma 1.0, and 0.89-0.91 at sigma 1.2; shifted by a quarter pixel on both
   axes (bilinear) at least 0.97, by half a pixel 0.90-0.91 (99% of images still ok). 206 of
   those 2000 images have overlapping objects, all fit 1.0. :data:`MIN_IOU` = 0.9 sits between
   the best wrong size (0.86) and soft edges up to sigma 1 (0.92): a generator is allowed blur and
   sub-pixel positions, not a wrong shape or size. For the 9x9 square alone: a 7x7 square fits
   49/81 = 0.60, an 11x11 one 81/121 = 0.67, the radius-4 circle 0.60 (square only: no circle
   template to match it).
5. **Stray pixels.** Unclear pixels plus speck pixels, except unclear pixels within 1 px (8-neighbour)
   of an object: a generated object's anti-aliased rim is allowed, stains elsewhere are not.
6. **Verdict.** An image is ok iff no colour is missing or extra, every object is well-formed, and
   it has at most ``stray`` (default :data:`STRAY` = 0.05) times the reference area of stray pixels
   (15 px at r = 10; 4 px for the 9x9 square): a few stray pixels are noise, a twentieth of the
   object is a visible stain.
7. **Positions.** ``position_tv`` is the total-variation distance ``0.5 * sum |p - q|`` between the
   ``bins x bins`` histograms over the canvas (cells of ``size / bins`` px) of the centres of all
   found objects (all colours pooled, clipped to the canvas) and of the reference centres, each
   normalised; 1.0 when no object was found. It catches a generator that draws clean objects in the
   wrong places (mode collapse to a few positions). Finite samples keep it above 0 even for real
   images: 1000 real images (2000 centres) against 10,000 others' centres give about 0.06 at 8x8
   bins, and 300 images with every object in the left half about 0.5.

The analysis is vectorised over the batch (no per-image Python loop; :func:`inspect_images` only
wraps its results in objects per image): :func:`score_images` takes 0.19 s for 1000 Sort-of-Clevr
images of 64x64 on one core and about 0.1 s for 1000 grey Not-so-Clevr images, after a first call
of 0.1-0.2 s that builds the colour table (``benchmarks/bench_geometry.py``).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Sequence

import cv2
import numpy as np

from .generate.sort_of_clevr import CIRCLE, SHAPES, SQUARE, SortOfClevrSpec, shape_template
from .kinds import get_kind
from .kinds.not_so_clevr import NATIVE_SQUARE_VALUE
from .store import FileSummary, MalformedFile, StoreError, read_split, summary_of

TOLERANCE = 0.35  # of the smallest distance between two of {background, colours}
MIN_OBJECT = 0.25  # of the reference area (smallest allowed shape): smaller components are specks
MIN_IOU = 0.9  # least template fit of a well-formed object
STRAY = 0.05  # of the reference area: most stray pixels an ok image may have
SEARCH = 2  # px around the bounding-box centre where template centres are tried
CHUNK = 1024  # images analysed together: bounds memory (about 40 MiB at 64x64)

UNCLEAR = 255  # pixel label of a pixel near no colour (background is 0, colour k is k + 1)



@dataclass(frozen=True)
class SceneSpec:
    """What an image should show: the canvas, the objects' radius, the colours, the allowed shapes.

    ``colors[k]`` is object ``k``'s RGB colour (one object per colour expected), ``names[k]`` its
    name; ``shapes`` the shape names (of :data:`~coordconv_data.generate.sort_of_clevr.SHAPES`) an
    object may have, each of side ``2 * radius + 1``. Build one with :meth:`from_spec` (a Sort-of-Clevr
    generator spec), :meth:`not_so_clevr` or :meth:`from_file` (either kind of file).
    """

    size: int
    radius: int
    background: tuple[int, int, int]
    colors: tuple[tuple[int, int, int], ...]
    names: tuple[str, ...]
    shapes: tuple[str, ...] = SHAPES

    def __post_init__(self) -> None:
        object.__setattr__(self, "background", _rgb(self.background, "background"))
        object.__setattr__(self, "colors", tuple(_rgb(c, "colour") for c in self.colors))
        object.__setattr__(self, "names", tuple(str(n) for n in self.names))
        shapes = (self.shapes,) if isinstance(self.shapes, str) else tuple(self.shapes)
        if not shapes or len(set(shapes)) != len(shapes) or not set(shapes) <= set(SHAPES):
            raise ValueError(f"shapes must be one or more of {', '.join(SHAPES)} without repeats, got {shapes}")
        object.__setattr__(self, "shapes", tuple(sh for sh in SHAPES if sh in shapes))  # canonical order
        if self.size < 1 or self.radius < 0 or 2 * self.radius + 1 > self.size:
            raise ValueError(f"size {self.size} and radius {self.radius} do not make a canvas that holds an object")
        if not self.colors or len(self.names) != len(self.colors):
            raise ValueError(f"need one name per colour and at least one colour, got {len(self.colors)} colours "
                             f"and {len(self.names)} names")
        every = (self.background,) + self.colors
        if len(set(every)) != len(every):
            raise ValueError("background and object colours must all differ")

    @property
    def shape_ids(self) -> tuple[int, ...]:
        """Indices of :attr:`shapes` in :data:`~coordconv_data.generate.sort_of_clevr.SHAPES`."""
        return tuple(SHAPES.index(sh) for sh in self.shapes)

    @property
    def reference_area(self) -> int:
        """Pixels of the smallest allowed shape: the unit of the speck and stray thresholds."""
        return min(int(shape_template(t, self.radius).sum()) for t in self.shape_ids)

    @classmethod
    def from_spec(cls, spec: SortOfClevrSpec) -> "SceneSpec":
        """The scene a Sort-of-Clevr generator spec draws."""
        palette = spec.palette()
        return cls(size=spec.size, radius=spec.radius, background=spec.background,
                   colors=tuple(rgb for _, rgb in palette), names=tuple(name for name, _ in palette))

    @classmethod
    def not_so_clevr(cls, size: int = 64, square: int = 9, value: int = NATIVE_SQUARE_VALUE) -> "SceneSpec":
        """One filled ``square x square`` square of grey level ``value`` on black, the square shape only.

        ``value`` is the square's pixel value in the images to score: 255 in a native file, 128 in
        the original layout (and in images a generator trained on the original's ``imagegray / 255``
        makes, converted back with ``to_uint8(x, (0, 1))``).
        """
        if isinstance(square, bool) or not isinstance(square, (int, np.integer)) or square < 1 or square % 2 == 0:
            raise ValueError(f"square must be an odd positive side in pixels, got {square!r}")
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= 255:
            raise ValueError(f"value must be a grey level in 1..255 (0 is the background), got {value!r}")
        v = int(value)
        return cls(size=int(size), radius=int(square) // 2, background=(0, 0, 0), colors=((v, v, v),),
                   names=("white" if v == 255 else "gray",), shapes=(SHAPES[SQUARE],))

    @classmethod
    def from_file(cls, path: str | os.PathLike | FileSummary) -> "SceneSpec":
        """The scene of a Sort-of-Clevr or Not-so-Clevr file, from its attributes.

        A Not-so-Clevr file's square is white (255) in the native layout and grey (128) in the
        original layout; a file of the original script, which has no attributes, is the paper's
        64x64 canvas with a 9x9 square.

        Raises :class:`~coordconv_data.store.StoreError` (one line) for a file that is missing, of
        another kind, or (Sort-of-Clevr) without the attributes (a file of the original script has none).
        """
        summary = _scene_file(path)
        try:
            return cls(**get_kind(summary.kind).scene(summary))
        except ValueError as e:  # fields the kind read, but no scene (e.g. an object larger than the canvas)
            raise MalformedFile(f"{summary.path}: attributes do not describe a scene ({e})") from None


def _rgb(value: Sequence[int], what: str) -> tuple[int, int, int]:
    rgb = tuple(int(v) for v in value)
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise ValueError(f"{what} must be three values in 0..255, got {tuple(value)}")
    return rgb  # type: ignore[return-value]


@dataclass(frozen=True)
class Rules:
    """The thresholds of the rules in the module docstring (fractions of the scene's reference area,
    :attr:`SceneSpec.reference_area`, where an area is meant, so that they scale with the object size)."""

    tolerance: float = TOLERANCE
    min_object: float = MIN_OBJECT
    min_iou: float = MIN_IOU
    stray: float = STRAY
    search: int = SEARCH

    def __post_init__(self) -> None:
        if not 0 < self.tolerance <= 0.5:
            raise ValueError(f"tolerance must be in (0, 0.5] (colour balls must not overlap), got {self.tolerance}")
        if not 0 < self.min_object <= 1:
            raise ValueError(f"min_object must be in (0, 1], got {self.min_object}")
        if not 0 < self.min_iou <= 1:
            raise ValueError(f"min_iou must be in (0, 1], got {self.min_iou}")
        if self.stray < 0:
            raise ValueError(f"stray must be 0 or more, got {self.stray}")
        if self.search < 0:
            raise ValueError(f"search must be 0 or more, got {self.search}")


DEFAULT_RULES = Rules()


@dataclass(frozen=True)
class DetectedObject:
    """One object component: its colour index, best-fit template centre ``(x, y)``, pixel count,
    shape (``None`` when neither template fits) and that fit (IoU, occluded pixels excused)."""

    color: int
    center: tuple[float, float]
    area: int
    shape: str | None
    fit: float


@dataclass(frozen=True)
class ImageVerdict:
    """What one image holds against its :class:`SceneSpec` (colours as indices into ``spec.colors``)."""

    objects: tuple[DetectedObject, ...]
    missing: tuple[int, ...]
    extra: tuple[int, ...]
    malformed: tuple[int, ...]
    stray: int
    ok: bool


@dataclass(frozen=True)
class GeometryScore:
    """Fractions of images (``geometry``: ok; the others: with that fault; an image can have several
    faults) and the distance of the found centres' distribution from the reference.

    ``malformed``: an object of the wrong shape or size; ``stray``: more stray pixels than allowed.
    """

    n: int
    geometry: float
    missing: float
    extra: float
    malformed: float
    stray: float
    position_tv: float
    objects: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


# -- tables -------------------------------------------------------------------------------------------

def area_limits(spec: SceneSpec, rules: Rules) -> tuple[int, int]:
    """(least object area, most stray pixels) in pixels."""
    area = spec.reference_area
    return max(1, math.ceil(rules.min_object * area)), int(rules.stray * area)


@lru_cache(maxsize=4)
def _label_table(colors: tuple[tuple[int, int, int], ...], tolerance: float) -> np.ndarray:
    """``table[R + 256 G + 65536 B]``: 0 for ``colors[0]`` (the background), ``k`` for ``colors[k]``,
    :data:`UNCLEAR` for a colour within ``tolerance * min distance`` of none."""
    pal = np.array(colors, dtype=np.float64)
    gaps = np.sqrt(((pal[:, None] - pal[None]) ** 2).sum(-1))
    reach2 = (tolerance * gaps[~np.eye(len(pal), dtype=bool)].min()) ** 2
    v = np.arange(256, dtype=np.float32)
    table = np.full(1 << 24, UNCLEAR, dtype=np.uint8)
    for k, (r, g, b) in enumerate(colors):
        # Axis order B, G, R: the index's most significant byte is B (see _labels).
        d2 = ((v - b) ** 2)[:, None, None] + ((v - g) ** 2)[None, :, None] + ((v - r) ** 2)[None, None, :]
        table[(d2 < reach2).ravel()] = k
    table.flags.writeable = False
    return table


@lru_cache(maxsize=None)
def _placements(radius: int, search: int, shapes: tuple[int, ...] = (SQUARE, CIRCLE)
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every placement of the ``shapes`` templates in an ``S x S`` window (``S = 2 (radius + search)
    + 1``) centred on a bounding-box centre: a ``(S*S, P)`` float32 matrix whose column ``j`` is
    placement ``j``'s mask (so a flattened window times it counts shared pixels), and per placement
    its shape index, ``(dx, dy)`` and pixel count. Columns are in tie-break order: nearer the box
    centre first, then square before circle."""
    side = 2 * (radius + search) + 1
    span = range(-search, search + 1)
    order = sorted(((dy * dy + dx * dx, t, dy, dx) for t in shapes for dy in span for dx in span))
    mats = np.zeros((len(order), side, side), dtype=np.float32)
    shape_ids = np.empty(len(order), dtype=np.int64)
    shifts = np.empty((len(order), 2), dtype=np.int64)
    for j, (_, t, dy, dx) in enumerate(order):
        y0, x0 = search + dy, search + dx
        mats[j, y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1] = shape_template(t, radius)
        shape_ids[j], shifts[j] = t, (dx, dy)
    sizes = mats.reshape(len(order), -1).sum(1)
    out = (np.ascontiguousarray(mats.reshape(len(order), -1).T), shape_ids, shifts, sizes)
    for a in out:
        a.flags.writeable = False
    return out


# -- analysis -----------------------------------------------------------------------------------------

@dataclass
class FoundObjects:
    """Per-object and per-image arrays of one batch (objects sorted by image, colour, raster order)."""

    image: np.ndarray  # (M,) image index
    color: np.ndarray  # (M,)
    center: np.ndarray  # (M, 2) float64 (x, y)
    area: np.ndarray  # (M,)
    shape: np.ndarray  # (M,) shape index or -1
    fit: np.ndarray  # (M,)
    counts: np.ndarray  # (N, K) objects per colour
    bad: np.ndarray  # (N, K) malformed objects per colour
    stray: np.ndarray  # (N,)
    ok: np.ndarray  # (N,) bool


def _labels(images: np.ndarray, spec: SceneSpec, rules: Rules) -> np.ndarray:
    """Pixel labels ``(N, H + 1, W)`` uint8: each image followed by one background row, so that one
    image's components never touch the next one's when the batch is processed as one tall picture.
    Grey images (one channel) are labelled as the RGB pixel ``(v, v, v)``."""
    n, h, w, c = images.shape
    table = _label_table((spec.background,) + spec.colors, rules.tolerance)
    # RGBA viewed as little-endian uint32 is R + 256 G + 65536 B + 2**24 A: one index per pixel.
    code = cv2.COLOR_GRAY2RGBA if c == 1 else cv2.COLOR_RGB2RGBA
    rgba = cv2.cvtColor(np.ascontiguousarray(images).reshape(n * h, w, c), code)
    index = rgba.view("<u4").reshape(n * h, w)
    index &= 0xFFFFFF
    out = np.zeros((n, h + 1, w), dtype=np.uint8)
    out[:, :h] = np.take(table, index).reshape(n, h, w)
    return out


def find_objects(images: np.ndarray, spec: SceneSpec, rules: Rules) -> FoundObjects:
    """Apply the rules to a batch ``(N, H, W, 3)`` uint8 of already validated images."""
    n, h, w, _ = images.shape
    k_total, r, s = len(spec.colors), spec.radius, rules.search
    min_area, _ = area_limits(spec, rules)
    labels = _labels(images, spec, rules)
    tall = labels.reshape(n * (h + 1), w)
    objmap = np.full(tall.shape, -1, dtype=np.int32)  # global object id per pixel, -1 for none
    speck = np.zeros(n, dtype=np.int64)
    parts: list[tuple[np.ndarray, ...]] = []
    next_id = 0
    for k in range(k_total):
        mask = (tall == k + 1).view(np.uint8)
        count, comp, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=cv2.CV_32S)
        stats = stats[1:]  # label 0 is everything not of this colour
        area = stats[:, cv2.CC_STAT_AREA]
        img = stats[:, cv2.CC_STAT_TOP] // (h + 1)
        small = area < min_area
        speck += np.bincount(img[small], weights=area[small], minlength=n).astype(np.int64)
        big = np.flatnonzero(~small)
        ids = np.full(count, -1, dtype=np.int32)
        ids[big + 1] = np.arange(next_id, next_id + len(big), dtype=np.int32)
        next_id += len(big)
        if len(big):
            np.maximum(objmap, ids[comp], out=objmap)  # colours never share a pixel
        st = stats[big]
        # Bounding-box centre, rounded down, in image coordinates.
        cx = st[:, cv2.CC_STAT_LEFT] + (st[:, cv2.CC_STAT_WIDTH] - 1) // 2
        cy = st[:, cv2.CC_STAT_TOP] - img[big] * (h + 1) + (st[:, cv2.CC_STAT_HEIGHT] - 1) // 2
        parts.append((img[big], np.full(len(big), k), cx, cy, area[big]))
    obj_img, obj_color, cx, cy, obj_area = (np.concatenate(p).astype(np.int64) for p in zip(*parts))

    # Stray: specks, and unclear pixels not touching an object.
    near = cv2.dilate((objmap >= 0).view(np.uint8), np.ones((3, 3), np.uint8))
    far_unclear = (tall == UNCLEAR) & (near == 0)
    stray = speck + np.count_nonzero(far_unclear.reshape(n, -1), axis=1)

    # Template fit: every placement of both templates in a window around each box centre at once.
    m = next_id
    center = np.zeros((m, 2), dtype=np.float64)
    shape = np.full(m, -1, dtype=np.int64)
    fit = np.zeros(m, dtype=np.float64)
    if m:
        mats, pshape, pshift, psize = _placements(r, s, spec.shape_ids)
        pad = r + s
        padded = np.full((n, h + 2 * pad, w + 2 * pad), -1, dtype=np.int32)
        padded[:, pad : pad + h, pad : pad + w] = objmap.reshape(n, h + 1, w)[:, :h]
        side = 2 * pad + 1
        # The window centred on (cx, cy) starts at (cx - pad, cy - pad), which is (cx, cy) once padded.
        windows = np.lib.stride_tricks.sliding_window_view(padded, (side, side), axis=(1, 2))[obj_img, cy, cx]
        windows = windows.reshape(m, -1)
        own = windows == np.arange(m, dtype=np.int32)[:, None]
        other = (windows >= 0) & ~own
        inter = own.astype(np.float32) @ mats
        excused = other.astype(np.float32) @ mats
        iou = inter / (obj_area[:, None] + psize[None, :] - inter - excused)
        best = iou.max(axis=1)
        # Ties: fewest excused pixels, then the first column (nearest the box centre, square first).
        key = np.where(iou == best[:, None], excused, np.inf)
        j = np.argmin(key, axis=1)
        center[:, 0] = cx + pshift[j, 0]
        center[:, 1] = cy + pshift[j, 1]
        fit = iou[np.arange(m), j].astype(np.float64)
        good = fit >= rules.min_iou
        shape = np.where(good, pshape[j], -1)

    order = np.lexsort((np.arange(m), obj_img))  # by image; ids already run colour by colour
    obj_img, obj_color, shape = obj_img[order], obj_color[order], shape[order]
    flat = obj_img * k_total + obj_color
    counts = np.bincount(flat, minlength=n * k_total).reshape(n, k_total)
    bad = np.bincount(flat[shape < 0], minlength=n * k_total).reshape(n, k_total)
    _, stray_limit = area_limits(spec, rules)
    ok = (counts == 1).all(1) & (bad == 0).all(1) & (stray <= stray_limit)
    return FoundObjects(image=obj_img, color=obj_color, center=center[order], area=obj_area[order], shape=shape,
                  fit=fit[order], counts=counts, bad=bad, stray=stray, ok=ok)


# -- validation ---------------------------------------------------------------------------------------

def check_images(images: Any, spec: SceneSpec, ndim: int, what: str) -> np.ndarray:
    """``images`` as the scorer reads them (uint8 ``(N, H, W, 3)``, grey repeated to RGB), or a
    ``ValueError`` naming ``what`` when they are not images of ``spec``'s canvas (``ndim`` 3: one image)."""
    if not isinstance(images, np.ndarray):
        raise ValueError(f"{what} must be a numpy array, got {type(images).__name__}")
    layout = "(H, W, 3) RGB or (H, W, 1) grey" if ndim == 3 else "(N, H, W, 3) RGB or (N, H, W, 1) grey"
    if images.ndim != ndim or images.shape[-1] not in (1, 3):
        raise ValueError(f"{what} must be {layout}, got shape {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8 (0..255), got {images.dtype}")
    if images.shape[-3:-1] != (spec.size, spec.size):
        raise ValueError(f"{what} are {images.shape[-3]}x{images.shape[-2]} but the scene is {spec.size}x{spec.size}")
    if ndim == 4 and len(images) == 0:
        raise ValueError(f"{what} is empty: nothing to score")
    return images


def _verdicts(found: FoundObjects) -> list[ImageVerdict]:
    n = len(found.stray)
    starts = np.searchsorted(found.image, np.arange(n + 1))
    out = []
    for i in range(n):
        objs = tuple(
            DetectedObject(color=int(found.color[j]), center=(float(found.center[j, 0]), float(found.center[j, 1])),
                           area=int(found.area[j]), shape=SHAPES[found.shape[j]] if found.shape[j] >= 0 else None,
                           fit=float(found.fit[j]))
            for j in range(starts[i], starts[i + 1])
        )
        out.append(ImageVerdict(
            objects=objs,
            missing=tuple(int(c) for c in np.flatnonzero(found.counts[i] == 0)),
            extra=tuple(int(c) for c in np.flatnonzero(found.counts[i] > 1)),
            malformed=tuple(int(c) for c in np.flatnonzero(found.bad[i] > 0)),
            stray=int(found.stray[i]),
            ok=bool(found.ok[i]),
        ))
    return out


# -- public API ---------------------------------------------------------------------------------------

def inspect_image(image: np.ndarray, spec: SceneSpec, *, rules: Rules = DEFAULT_RULES) -> ImageVerdict:
    """Apply the rules of the module docstring to one image.

    Shape:
        image: ``(H, W, 3)`` uint8 RGB or ``(H, W, 1)`` grey, with ``H == W == spec.size``.
    """
    image = check_images(image, spec, 3, "image")
    return _verdicts(find_objects(image[None], spec, rules))[0]


def inspect_images(images: np.ndarray, spec: SceneSpec, *, rules: Rules = DEFAULT_RULES) -> list[ImageVerdict]:
    """:func:`inspect_image` for a batch, vectorised.

    Shape:
        images: ``(N, H, W, 3)`` uint8 RGB or ``(N, H, W, 1)`` grey.
    """
    images = check_images(images, spec, 4, "images")
    out: list[ImageVerdict] = []
    for start in range(0, len(images), CHUNK):
        out += _verdicts(find_objects(images[start : start + CHUNK], spec, rules))
    return out


def position_tv(centers: np.ndarray, reference: np.ndarray, size: int, bins: int = 8) -> float:
    """Total-variation distance between the normalised ``bins x bins`` histograms of two sets of
    ``(x, y)`` centres on a ``size``-pixel canvas; 1.0 when ``centers`` is empty.

    Shape:
        centers: ``(M, 2)``; reference: ``(R, 2)`` with ``R >= 1``.
    """
    if len(centers) == 0:
        return 1.0

    def hist(c: np.ndarray) -> np.ndarray:
        c = np.clip(np.asarray(c, dtype=np.float64), 0, size - 1)
        hh, _, _ = np.histogram2d(c[:, 0], c[:, 1], bins=bins, range=[[0, size], [0, size]])
        return hh / hh.sum()

    return float(0.5 * np.abs(hist(centers) - hist(reference)).sum())


def score_images(images: np.ndarray, spec: SceneSpec, reference_centers: np.ndarray, *, bins: int = 8,
                 rules: Rules = DEFAULT_RULES) -> GeometryScore:
    """Score a batch of images: the fractions of ok and faulty images, and ``position_tv`` of all
    found objects' centres against ``reference_centers`` (e.g. :func:`reference_centers` of the
    training split).

    Shape:
        images: ``(N, H, W, 3)`` uint8 RGB or ``(N, H, W, 1)`` grey, ``N >= 1``, ``H == W == spec.size``;
        reference_centers: ``(M, 2)`` ``(x, y)``, ``M >= 1``.
    """
    images = check_images(images, spec, 4, "images")
    ref = np.asarray(reference_centers)
    if ref.ndim != 2 or ref.shape[1] != 2 or len(ref) == 0:
        raise ValueError(f"reference_centers must be (M, 2) (x, y) with M >= 1, got shape {ref.shape}")
    if not np.issubdtype(ref.dtype, np.number) or not np.isfinite(ref).all():
        raise ValueError("reference_centers must be finite numbers")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be an integer of at least 1, got {bins!r}")
    n = len(images)
    ok = missing = extra = malformed = stray = 0
    centers = []
    _, stray_limit = area_limits(spec, rules)
    for start in range(0, n, CHUNK):
        f = find_objects(images[start : start + CHUNK], spec, rules)
        ok += int(f.ok.sum())
        missing += int((f.counts == 0).any(1).sum())
        extra += int((f.counts > 1).any(1).sum())
        malformed += int((f.bad > 0).any(1).sum())
        stray += int((f.stray > stray_limit).sum())
        centers.append(f.center)
    found = np.concatenate(centers)
    return GeometryScore(n=n, geometry=ok / n, missing=missing / n, extra=extra / n, malformed=malformed / n,
                         stray=stray / n,
                         position_tv=position_tv(found, ref, spec.size, int(bins)), objects=len(found))


def _sample_limit(limit: int | None, what: str) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"{what} must be a positive integer or None, got {limit!r}")
    return None if limit is None else int(limit)


def reference_centers(path: str | os.PathLike | FileSummary, split: str = "train", limit: int | None = None) -> np.ndarray:
    """All objects' true centres ``(M, 2)`` float64 ``(x, y)`` of a split's first ``limit`` images
    (all by default): a Sort-of-Clevr file's ``centers``, a Not-so-Clevr file's ``locations``.

    Raises :class:`~coordconv_data.store.StoreError` for a file of another kind, without the split,
    or without the centres (a Sort-of-Clevr file of the original script).
    """
    limit = _sample_limit(limit, "limit")
    summary = _scene_file(path)
    name = get_kind(summary.kind).scene_arrays(summary.layout)[1]
    arrays = read_split(summary, split, names=(name,), stop=limit)
    return arrays[name].reshape(-1, 2).astype(np.float64)


def load_images(path: str | os.PathLike | FileSummary, split: str = "test", n: int | None = None) -> np.ndarray:
    """A split's first ``n`` images (all by default) as uint8, in the file's own pixel values:
    Sort-of-Clevr ``(N, H, W, 3)`` RGB (the original layout's floats in ``[-1, 1]`` mapped back to
    their pixels), Not-so-Clevr ``(N, H, W, 1)`` grey (native: square 255; original layout: its
    ``imagegray``, square 128). :meth:`SceneSpec.from_file` describes exactly these pixels."""
    n = _sample_limit(n, "n")
    summary = _scene_file(path)
    kind = get_kind(summary.kind)
    name = kind.scene_arrays(summary.layout)[0]
    return kind.scene_pixels(read_split(summary, split, names=(name,), stop=n)[name], summary.layout)


def _scene_file(path: str | os.PathLike | FileSummary) -> FileSummary:
    """The summary of a file whose kind has scenes the geometry score knows (``path`` may be the
    :class:`~coordconv_data.store.FileSummary` of one validated already)."""
    from .kinds import KINDS

    summary = summary_of(path)
    if not get_kind(summary.kind).has_scene:
        known = [k.name for k in KINDS.values() if k.has_scene]
        raise StoreError(f"{summary.path} holds {summary.kind} data; the geometry score knows "
                         f"{' and '.join(known)} scenes")
    return summary


def score_file(path: str | os.PathLike, split: str = "test", *, n: int | None = None,
               reference_split: str = "train", bins: int = 8, rules: Rules = DEFAULT_RULES) -> GeometryScore:
    """The scorer applied to a file's real images (the first ``n`` of ``split``), against the centres
    of ``reference_split``: the ceiling a generator is measured against. Sort-of-Clevr or
    Not-so-Clevr, either layout.

    Raises :class:`~coordconv_data.store.StoreError` for a file that is not a readable file of
    those kinds with the splits, and ``ValueError`` when a split is empty.
    """
    spec = SceneSpec.from_file(path)
    images = load_images(path, split, n)
    if len(images) == 0:
        raise ValueError(f"split {split!r} of {path} has no images to score")
    ref = reference_centers(path, reference_split)
    if len(ref) == 0:
        raise ValueError(f"split {reference_split!r} of {path} has no centres to compare with")
    return score_images(images, spec, ref, bins=bins, rules=rules)


def to_uint8(images: Any, value_range: tuple[float, float] = (-1.0, 1.0), *, channels_first: bool = True) -> np.ndarray:
    """Float images (a generator's output) to the uint8 pixels :func:`score_images` takes.

    ``value_range = (lo, hi)`` is the pair of floats that pixel values 0 and 255 of the file were
    fed to the model as, i.e. the inverse of the trainer's scaling ``x = lo + (hi - lo) * p / 255``:
    each value becomes ``round((x - lo) / (hi - lo) * 255)``, clipped to ``0..255`` (NaN to 0).

    * Sort-of-Clevr as the original (``uint8 / 127.5 - 1``): ``(-1, 1)``, the default.
    * Not-so-Clevr as the original (grey ``imagegray / 255`` of its 0/128 file: square 0.502):
      ``(0, 1)`` gives the square back as 128, the scene ``SceneSpec.not_so_clevr(value=128)`` (the
      scene of an original-layout file). A native file's 0/255 image fed at the original's values
      (``p / 255 * 128 / 255``) is ``(0, 128 / 255)``, which gives back 255, the native file's scene.

    The scene must describe the pixels this returns; a mismatch (e.g. a white scene for grey
    squares) labels the squares *unclear* and scores every image as missing its object.

    Args:
        images: ``(N, C, H, W)`` (``channels_first``, the generator's layout) or ``(N, H, W, C)``
            floats, ``C`` 1 (grey) or 3 (RGB); a numpy array or anything ``numpy.asarray`` takes
            (a CPU tensor without grad).
        value_range: ``(lo, hi)`` with ``lo != hi``.

    Returns:
        ``(N, H, W, C)`` uint8.
    """
    lo, hi = (float(v) for v in value_range)
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo == hi:
        raise ValueError(f"value_range must be two different finite numbers, got {tuple(value_range)}")
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[1 if channels_first else 3] not in (1, 3):
        layout = "(N, C, H, W)" if channels_first else "(N, H, W, C)"
        raise ValueError(f"images must be {layout} with C 1 or 3, got shape {x.shape}")
    if channels_first:
        x = x.transpose(0, 2, 3, 1)
    p = np.nan_to_num((x - lo) * (255.0 / (hi - lo)), nan=0.0, posinf=255.0, neginf=0.0)
    return np.ascontiguousarray(np.clip(np.rint(p), 0, 255).astype(np.uint8))
