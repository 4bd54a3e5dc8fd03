"""Lanes: coloured circles on Perlin-noise backgrounds, classed by *where* they are.

The segmentation data of the custom-conv2d study (pskugit/custom-conv2d, ``data/make_circles.py``),
made reproducible. Per image (size ``S``, 128 by default):

* background: three independent Perlin-noise fields (R, G, B), each min-max scaled to [0, 1] and
  multiplied by ``intensity`` (0.5);
* ``circles`` (3) filled circles, drawn in order; each is yellow or red with p = 0.5, radius
  ``int(S/12 + (S/8) u)`` (10..26 at 128), ``side`` in {0, 1}, centre
  ``cx = int(r + (S//2) side + u (S//2 - 2r))``, ``cy = int(r + u (S - r))`` (each ``u`` a fresh
  uniform draw);
* mask classes: a yellow circle with ``cx > S//2`` is 1 ("yellow right"), any other yellow one 2
  ("yellow left"), a red one with ``cy > S//2`` 3 ("red bottom"), any other red one 0 (background).
  Later circles overwrite earlier ones, in the image and in the mask.

Differences from the study, on purpose: the noise is the ``noise`` package's ``pnoise2`` (a
vectorised port, :mod:`.perlin`), seeded, with its own coordinate offset and ``base`` per field so no
two backgrounds are alike; images are stored RGB (the study's PNGs were written by OpenCV from an RGB
array, so its yellow circles were saved cyan and its red ones blue); everything is seeded.

Backgrounds are rounded from each noise field ``f`` (float32) as
``rint((f - min(f)) * (float32(intensity * 255) / (max(f) - min(f))))`` (0 for a constant field).

The default noise (``scale = S/4`` pixels per lattice cell, one octave) matches the study's
generator, which put a gradient lattice node every ``S/4`` pixels and used a single octave: the same
soft blotches, about four across the image.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, replace
from typing import Callable

import cv2
import numpy as np

from ..errors import InvalidParameter
from ..writer import DatasetWriter, DiskFull, ensure_space, is_disk_full
from . import check_seed, require
from .blocks import generate_blocks, worker_pool
from .chunks import ChunkAssembler, ChunkCodec, chunk_rows
from .perlin import check_fractal, perlin_fields
from .shards import ContentDigest, Shard, ShardSource, block_arrays, shard_attrs, shard_ranges

KIND = "lanes"
COLOR_NAMES = ("yellow", "red")
PALETTE = ((255, 255, 0), (255, 0, 0))  # RGB, by colour index
YELLOW, RED = 0, 1
CLASS_NAMES = ("background", "yellow right", "yellow left", "red bottom")
SPLIT_STREAMS = {"train": 0, "test": 1}
STREAMS = SPLIT_STREAMS  # every generator's name for its splits' random streams
# Noise offsets are drawn within one period of the reference's default repeat, in lattice units.
OFFSET_RANGE = 1024.0
NOISE_BASES = 2  # bases 0 and 1: the ones for which the reference never reads past its table
BLOCK_BYTES = 4 * 2**20  # images of one block at most (64 at 128x128: 3 MiB)
# The largest noise cell in pixels: the offsets, up to OFFSET_RANGE cells in whole pixels, stay exact
# integers in int64 and float64 (2**42 pixels); the noise is flat over any image long before.
MAX_SCALE = 2**32
MAX_BLOCK = 64


def default_block_size(size: int) -> int:
    """Samples per block: 64, halved until a block's images fit :data:`BLOCK_BYTES` (large canvases)."""
    block = MAX_BLOCK
    while block > 1 and block * size * size * 3 > BLOCK_BYTES:
        block //= 2
    return block


@dataclass(frozen=True)
class LanesSpec:
    """Everything that determines a Lanes file (recorded in its ``params`` attribute)."""

    n: int = 5000
    test_n: int = 2500
    size: int = 128
    circles: int = 3
    intensity: float = 0.5
    scale: float | None = None  # pixels per noise lattice cell; None: size / 4
    octaves: int = 1
    persistence: float = 0.5
    lacunarity: float = 2.0
    seed: int = 0
    block_size: int | None = None  # None: default_block_size(size)

    def __post_init__(self) -> None:
        def integer(name: str, lo: int, hi: int | None = None) -> None:
            v = getattr(self, name)
            ok = isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= lo and (hi is None or v <= hi)
            require(ok, name, f"{name} must be an integer {'in %d..%d' % (lo, hi) if hi is not None else '>= %d' % lo}"
                              f", got {v!r}")

        def real(name: str) -> float:
            v = getattr(self, name)
            require(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                    and math.isfinite(v), name, f"{name} must be a finite number, got {v!r}")
            return float(v)

        integer("n", 0)
        integer("test_n", 0)
        require(self.n + self.test_n > 0, "n", "n and test_n cannot both be 0")
        integer("size", 32, 2048)
        integer("circles", 1, 64)
        require(0.0 <= real("intensity") <= 1.0, "intensity", f"intensity must be within 0..1, got {self.intensity}")
        if self.scale is not None:
            require(real("scale") > 0, "scale", f"scale must be positive, got {self.scale}")
            require(self.scale <= MAX_SCALE, "scale", f"scale must be at most {MAX_SCALE} pixels per noise cell (the "
                                                      f"noise is flat over any image long before), got {self.scale:g}")
        integer("octaves", 1, 16)
        require(real("persistence") > 0, "persistence", f"persistence must be positive, got {self.persistence}")
        require(real("lacunarity") > 0, "lacunarity", f"lacunarity must be positive, got {self.lacunarity}")
        check_seed(self.seed)
        if self.block_size is None:
            object.__setattr__(self, "block_size", default_block_size(self.size))
        integer("block_size", 1)
        # The noise must stay finite: coordinates reach size / scale + OFFSET_RANGE lattice cells.
        max_coordinate = self.size / self.noise_scale + OFFSET_RANGE
        require(math.isfinite(max_coordinate) and max_coordinate < 1e30, "scale",
                f"scale {self.noise_scale:g} is too small for a {self.size}-pixel image")
        check_fractal(octaves=self.octaves, persistence=self.persistence, lacunarity=self.lacunarity,
                      max_coordinate=max_coordinate)

    @property
    def noise_scale(self) -> float:
        return float(self.scale) if self.scale is not None else self.size / 4

    def params(self) -> dict:
        d = asdict(self)
        d["scale"] = self.noise_scale
        return d


Spec = LanesSpec


# -- the pieces ------------------------------------------------------------------------------------

def sample_circles(rng: np.random.Generator, count: int, circles: int, size: int) -> dict[str, np.ndarray]:
    """Colour, radius and centre of every circle, as the study draws them (vectorised)."""
    shape = (count, circles)
    colors = np.where(rng.random(shape) < 0.5, YELLOW, RED).astype(np.uint8)
    radii = (size / 12 + (size / 8) * rng.random(shape)).astype(np.int32)
    side = (2 * rng.random(shape)).astype(np.int32)
    half = size // 2
    cx = (radii + half * side + rng.random(shape) * (half - 2 * radii)).astype(np.int32)
    cy = (radii + rng.random(shape) * (size - radii)).astype(np.int32)
    centers = np.stack([cx, cy], axis=-1)
    return {"colors": colors, "radii": radii, "centers": centers, "classes": circle_classes(colors, centers, size)}


def circle_classes(colors: np.ndarray, centers: np.ndarray, size: int) -> np.ndarray:
    """The class of each circle from its colour and where its centre lies."""
    half = size // 2
    right = centers[..., 0] > half
    bottom = centers[..., 1] > half
    classes = np.where(colors == YELLOW, np.where(right, 1, 2), np.where(bottom, 3, 0))
    return classes.astype(np.uint8)


def sample_noise(rng: np.random.Generator, count: int, scale: float) -> dict[str, np.ndarray]:
    """Per image and channel, a ``base`` and a coordinate offset for its noise field.

    ``base`` is drawn from 0..1 only: from 2 up, the reference C code reads past its permutation
    table for some lattice cells (undefined behaviour that :mod:`.perlin` reproduces for one build
    only). The variety comes from the offsets, uniform over the noise's whole 1024-cell period in
    whole pixels (stored in lattice cells, ``pixels / scale``): with a power-of-two ``scale`` (the
    default ``size / 4`` of the usual sizes) every field is then a mosaic of the same few cell
    patterns, which :func:`.perlin.perlin_fields` copies instead of computing.
    """
    pixels = rng.integers(0, int(OFFSET_RANGE * scale), size=(count, 3, 2))
    return {
        "noise_bases": rng.integers(0, NOISE_BASES, size=(count, 3), dtype=np.int32),
        "noise_offsets": pixels / np.float64(scale),
    }


def backgrounds(spec: LanesSpec, bases: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """RGB uint8 noise backgrounds (N, S, S, 3) from each field's base and offset (in lattice units).

    The fields are made channel by channel (all red fields, then green, then blue), so that one
    interleaving call turns them into RGB images.
    """
    n, s = len(bases), spec.size
    if n == 0:
        return np.zeros((0, s, s, 3), np.uint8)
    fields = perlin_fields(
        n * 3, s, s,
        scale=spec.noise_scale,
        octaves=spec.octaves,
        persistence=spec.persistence,
        lacunarity=spec.lacunarity,
        offsets=np.ascontiguousarray(np.asarray(offsets).transpose(1, 0, 2)).reshape(n * 3, 2) * spec.noise_scale,
        bases=np.ascontiguousarray(np.asarray(bases).T).reshape(n * 3),
    )
    lo = fields.min(axis=(1, 2))
    span = fields.max(axis=(1, 2)) - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(span > 0, np.float32(spec.intensity * 255) / span, np.float32(0)).astype(np.float32)
    fields -= lo[:, None, None]
    fields *= factor[:, None, None]
    # |v| rounded half to even and saturated, as np.rint(v).astype(uint8) for these 0..255 values
    planes = cv2.convertScaleAbs(fields.reshape(n * 3 * s, s)).reshape(3, n * s, s)
    return cv2.merge([planes[0], planes[1], planes[2]]).reshape(n, s, s, 3)


def owner_maps(centers: np.ndarray, radii: np.ndarray, size: int) -> np.ndarray:
    """Which circle (1-based; 0 for none) is on top at each pixel: later circles overwrite earlier.

    Circles are rasterised by OpenCV's filled ``cv2.circle``, as the study drew them.
    """
    n, k = radii.shape
    owners = np.zeros((n, size, size), np.uint8 if k < 255 else np.uint16)
    for i in range(n):
        for j in range(k):
            cv2.circle(owners[i], (int(centers[i, j, 0]), int(centers[i, j, 1])), int(radii[i, j]), j + 1, -1)
    return owners


def paint_masks(centers: np.ndarray, radii: np.ndarray, classes: np.ndarray, size: int) -> np.ndarray:
    """The masks (N, S, S) uint8 the circles paint, as :func:`compose` paints them (its masks alone)."""
    masks = np.zeros((len(radii), size, size), np.uint8)
    for mask, cs, rs, ks in zip(masks, np.asarray(centers).tolist(), np.asarray(radii).tolist(),
                                np.asarray(classes).tolist()):
        for (x, y), r, cls in zip(cs, rs, ks):
            cv2.circle(mask, (x, y), r, cls, -1)
    return masks


def compose(background: np.ndarray, circles: dict[str, np.ndarray], size: int,
            in_place: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Paint the circles over the backgrounds: the images (N,S,S,3) and masks (N,S,S), both uint8.

    Each circle is drawn in order with OpenCV's filled ``cv2.circle``, as the study drew them, into
    the image (its colour) and the mask (its class), so later circles overwrite earlier ones in both.
    ``in_place`` paints into ``background`` itself (it must be a C-contiguous uint8 array).
    """
    images = background if in_place else np.array(background, dtype=np.uint8, order="C")
    masks = np.zeros(images.shape[:3], np.uint8)
    colors = [tuple(int(v) for v in c) for c in PALETTE]
    for i, (centers, radii, cols, classes) in enumerate(zip(
            circles["centers"].tolist(), circles["radii"].tolist(), circles["colors"].tolist(),
            circles["classes"].tolist())):
        img, mask = images[i], masks[i]
        for (x, y), r, color, cls in zip(centers, radii, cols, classes):
            cv2.circle(img, (x, y), r, colors[color], -1)
            cv2.circle(mask, (x, y), r, cls, -1)
    return images, masks


def sample_params(spec: LanesSpec, rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    """Every random draw of a block of ``count`` samples: the arrays that determine the rest (the
    circles and the noise's bases and offsets). Cheap next to drawing the images, which
    :func:`rebuild` makes from any of these samples alone, equal to the block's own."""
    circles = sample_circles(rng, count, spec.circles, spec.size)
    noise = sample_noise(rng, count, spec.noise_scale)
    return {**circles, **noise}


def lanes_block(spec: LanesSpec, rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    """One block of ``count`` samples (the unit of seeding and of parallel work)."""
    params = sample_params(spec, rng, count)
    circles = {k: params[k] for k in ("colors", "radii", "centers", "classes")}
    images, masks = compose(backgrounds(spec, params["noise_bases"], params["noise_offsets"]), circles, spec.size,
                            in_place=True)
    return {"images": images, "masks": masks, **params}


def split_sizes(spec: LanesSpec) -> dict[str, int]:
    """The samples of each split."""
    return {"train": spec.n, "test": spec.test_n}


def _split_n(spec: LanesSpec, split: str) -> int:
    require(split in SPLIT_STREAMS, "split", f"split must be train or test, got {split!r}")
    return spec.n if split == "train" else spec.test_n


def generate(spec: LanesSpec, split: str = "train") -> dict[str, np.ndarray]:
    """One split (``train`` or ``test``) in memory, exactly the arrays its file holds (small ``n``)."""
    n = _split_n(spec, split)
    parts = [a for _, a in generate_blocks(lanes_block, spec, n, seed=spec.seed, stream=SPLIT_STREAMS[split],
                                           block_size=spec.block_size)]
    if not parts:
        return {name: np.zeros(shape, dtype) for name, (shape, dtype) in array_specs(spec, 0).items()}
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def rebuild(spec: LanesSpec, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Images and masks again from the per-circle arrays and the noise parameters alone."""
    classes = circle_classes(arrays["colors"], arrays["centers"], spec.size)
    circles = {"colors": arrays["colors"], "radii": arrays["radii"], "centers": arrays["centers"], "classes": classes}
    images, masks = compose(backgrounds(spec, arrays["noise_bases"], arrays["noise_offsets"]), circles, spec.size,
                            in_place=True)
    return {"images": images, "masks": masks}


# -- the file --------------------------------------------------------------------------------------

# Measured (benchmarks/bench_lanes.py --compression, 1000 images): gzip saves 30% of the noise
# images at 40x the write time (1.8 s against 0.04 s), lzf 15% at 16x: they stay raw. The masks are
# mostly background: gzip level 1 saves 98% in 0.07 s, as much as level 4 in half the time.
# The raw images (98% of the file) never pass through the parent: their chunks are placed in the
# temporary file up front and each worker writes its block's chunks there itself. The masks are
# compressed chunk by chunk in the workers and stored by the parent as they are (:mod:`.chunks`).
COMPRESSION = {"masks": {"compression": "gzip", "level": 1}}
CHUNKED = ("images", "masks")


def array_specs(spec: LanesSpec, n: int) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    s, k = spec.size, spec.circles
    return {
        "images": ((n, s, s, 3), np.dtype(np.uint8)),
        "masks": ((n, s, s), np.dtype(np.uint8)),
        "centers": ((n, k, 2), np.dtype(np.int32)),
        "radii": ((n, k), np.dtype(np.int32)),
        "colors": ((n, k), np.dtype(np.uint8)),
        "classes": ((n, k), np.dtype(np.uint8)),
        "noise_bases": ((n, 3), np.dtype(np.int32)),
        "noise_offsets": ((n, 3, 2), np.dtype(np.float64)),
    }


def estimate_bytes(spec: LanesSpec, layout: str = "native") -> int:
    """The file's size: raw images and per-circle arrays, masks at 3% (gzip measured 2%)."""
    n = spec.n + spec.test_n
    s, k = spec.size, spec.circles
    return n * (s * s * 3 + s * s * 3 // 100 + k * 18 + 60)


def file_attrs(spec: LanesSpec, layout: str = "native") -> dict:
    return {
        "class_names": list(CLASS_NAMES),
        "color_names": list(COLOR_NAMES),
        "palette": [list(c) for c in PALETTE],
        "channel_order": "RGB",
        "center_order": "x, y",
        "noise": "noise.pnoise2 per field: pixel (i, j) -> pnoise2((j + ox) / scale, (i + oy) / scale, "
                 "octaves, persistence, lacunarity, 1024, 1024, base) with (ox, oy) = noise_offsets * scale "
                 "(whole pixels), "
                 "as float32 f; then rint((f - min f) * (float32(intensity * 255) / (max f - min f)))",
    }


def codecs(spec: LanesSpec) -> dict[str, ChunkCodec]:
    """How the image and mask chunks are stored: whole samples, a divisor of the block size."""
    s = spec.size
    return {
        "images": ChunkCodec(chunk_rows(spec.block_size, s * s * 3), (s, s, 3), "uint8", level=None),
        "masks": ChunkCodec(chunk_rows(spec.block_size, s * s), (s, s), "uint8",
                            level=COMPRESSION["masks"]["level"]),
    }


@dataclass(frozen=True)
class _FileJob:
    """What a worker needs to make a block (or read it from shards), encode its mask chunks and write
    its image chunks (blocks start on chunk boundaries)."""

    spec: LanesSpec
    masks: ChunkCodec
    image_rows: int  # samples per image chunk
    file: str  # the temporary file the image chunks go to
    image_offsets: np.ndarray  # byte offset of each image chunk in it
    final: str  # the file's final name, for messages
    split: str = "train"
    first_block: int = 0  # the block the file's first sample of this split belongs to (a shard's)
    digest: bool = False  # return each block's content digest (a shard's)
    source: ShardSource | None = None  # read the blocks from these shards instead of generating them


def _file_block(job: _FileJob, rng: np.random.Generator, count: int, block: int) -> dict[str, np.ndarray]:
    arrays, digest = block_arrays(lambda: lanes_block(job.spec, rng, count), job.source, job.split,
                                  block * job.spec.block_size, count, job.digest)
    images = arrays.pop("images")
    first = (block - job.first_block) * job.spec.block_size // job.image_rows
    rows = job.image_rows
    # The workers write ahead of the main process's check before each block: each checks its own part.
    ensure_space(job.final, images.nbytes)
    try:
        fd = os.open(job.file, os.O_WRONLY)
        try:
            for k, start in enumerate(range(0, count, rows)):
                chunk = images[start : start + rows]
                if len(chunk) < rows:  # the split's last chunk: HDF5 stores it whole
                    chunk = np.concatenate([chunk, np.zeros((rows - len(chunk),) + chunk.shape[1:], np.uint8)])
                os.pwrite(fd, np.ascontiguousarray(chunk).data, int(job.image_offsets[first + k]))
        finally:
            os.close(fd)
    except OSError as e:
        if is_disk_full(e):
            raise DiskFull(f"disk full while writing {job.final}: nothing was written (free some space, or "
                           "write elsewhere)") from None
        raise
    parts = job.masks.split_block(arrays.pop("masks"), 0)
    arrays.update({f"masks_{k}": v for k, v in parts.items()})
    if digest is not None:
        arrays["digest"] = digest
    return arrays


def write_file(spec: LanesSpec, path, *, layout: str = "native", workers: int = 1, force: bool = False,
               progress: Callable[[int], None] | None = None, shard: Shard | None = None,
               source: ShardSource | None = None, exclusive: bool = True) -> dict[str, int]:
    """Generate ``spec`` block by block into ``path`` (atomically); returns the count per split.

    Memory stays flat in ``n``: blocks are written as they arrive. The file is the same for every
    ``workers`` count. Lanes has only the native layout.

    ``shard``: write only that share of every split (:mod:`.shards`), its arrays those samples of the
    whole file, with the shard's attributes. ``source``: read the blocks from shards instead of
    generating them (what a merge that copies does: the file is then the one-machine file byte for
    byte). ``exclusive=False`` lets another live writer of ``path`` be (a cluster may run a shard's task
    twice; both write the same bytes).
    """
    if layout != "native":
        raise InvalidParameter("layout", f"layout must be native for lanes (the study kept PNG files), got {layout!r}")
    ranges = shard_ranges(split_sizes(spec), spec.block_size, shard)
    counts = {split: b - a for split, (a, b) in ranges.items()}
    total = spec.n + spec.test_n
    attrs = file_attrs(spec)
    if shard is not None:
        attrs.update(shard_attrs(shard, ranges))
    digest = ContentDigest() if shard is not None else None
    codec = codecs(spec)
    with DatasetWriter(path, KIND, seed=spec.seed, params=spec.params(), attrs=attrs, force=force,
                       expected_bytes=estimate_bytes(spec) * sum(counts.values()) // max(1, total),
                       exclusive=exclusive) as w, \
            worker_pool(_file_block, workers, sum(counts.values()), spec.block_size) as pool:
        for split, (a, b) in ranges.items():
            n = b - a
            image_rows = min(codec["images"].rows, max(1, n))  # HDF5: chunks no longer than the data
            s = spec.size
            images = w.create(f"{split}/images", (n, s, s, 3), np.uint8, chunks=(image_rows, s, s, 3), allocate=True)
            fitted = replace(codec["masks"], rows=min(codec["masks"].rows, max(1, n)))
            masks = ChunkAssembler(fitted.create(w, f"{split}/masks", n), fitted)
            small = {name: w.create(f"{split}/{name}", shape, dtype)
                     for name, (shape, dtype) in array_specs(spec, n).items() if name not in CHUNKED}
            if n == 0:
                continue
            job = _FileJob(spec, fitted, image_rows, str(w.temporary_path), w.chunk_offsets(images), str(path),
                           split=split, first_block=a // spec.block_size, digest=digest is not None, source=source)
            for start, arrays in generate_blocks(_file_block, job, b, seed=spec.seed, stream=SPLIT_STREAMS[split],
                                                 block_size=spec.block_size, pool=pool, pass_block=True, start=a):
                count = len(arrays["colors"])
                local = start - a
                w.ensure_space(count * s * s * 3 * 2)  # the next blocks' images, written by the workers
                masks.add(local, {k: arrays[f"masks_{k}"] for k in ("head", "tail", "chunks", "chunk_sizes")})
                for name, ds in small.items():
                    ds[local : local + count] = arrays[name]
                if digest is not None:
                    digest.add(split, start, arrays["digest"])
                if progress:
                    progress(count)
            masks.close()
        if digest is not None:
            w.set_root_attrs({"shard_digest": digest.text()})
    return counts
