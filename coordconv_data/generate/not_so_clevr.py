"""Not-so-Clevr: one square swept over every position of a canvas, with the paper's two splits.

Every fact here follows the paper's generator (``data/not_so_clevr_generator.py`` of
uber-research/CoordConv): a 64x64 black canvas, a filled 9x9 square whose centre ``(x, y)`` sweeps
``x in 4..59`` (outer loop) and ``y in 4..59`` (inner loop), 3136 samples in that order.

Splits:

* ``uniform``: a legacy ``numpy.random.RandomState(20202)`` draws one ``random() < 0.25`` per
  sample in sweep order; true sends the sample to the test set (2368 train / 768 test).
* ``quadrant``: test iff ``x / 64 > 0.5 and y / 64 > 0.5``, the bottom-right quadrant
  (2407 train / 729 test).

Each split is then shuffled by ``RandomState(10101).permutation(n)``, reseeded for train and again
for test, as the original did. The legacy ``RandomState`` (not ``default_rng``) is what makes the
draws equal to the original's; it is still an explicit generator, never numpy's global state.

Rendering is the paper's formulation: the one-hot centre maps convolved with a 9x9 all-ones kernel
('same' zero padding), done for all samples in one OpenCV call.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import cv2
import numpy as np

from ..writer import DatasetWriter
from . import check_seed, require

SPLITS = ("uniform", "quadrant")
UNIFORM_SEED = 20202  # the original's MAGIC_SEED_OF_WONDER
SHUFFLE_SEED = 10101  # the original's MAGIC_SEED_OF_GREATNESS
UNIFORM_TEST_FRACTION = 0.25
ORIGINAL_GRAY = 128  # the original painted the square grey (128, 128, 128)


@dataclass(frozen=True)
class NotSoClevrSpec:
    """Everything that determines a Not-so-Clevr file.

    ``seed`` drives the uniform split's draw only; the quadrant split uses no randomness but the
    shuffle, whose seed is fixed (as in the original) so that ``--seed`` changes the uniform split only.
    """

    split: str = "uniform"
    seed: int = UNIFORM_SEED
    canvas: int = 64
    square: int = 9
    test_fraction: float = UNIFORM_TEST_FRACTION
    shuffle_seed: int = SHUFFLE_SEED

    def __post_init__(self) -> None:
        require(self.split in SPLITS, "split", f"unknown split {self.split!r}; choose one of {', '.join(SPLITS)}")
        check_seed(self.seed)
        check_seed(self.shuffle_seed, "shuffle_seed")
        require(isinstance(self.square, int) and self.square >= 1 and self.square % 2 == 1, "square",
                f"square must be odd and positive, got {self.square}")
        require(isinstance(self.canvas, int) and 2 * self.half < self.canvas <= 4096, "canvas",
                f"canvas must be more than the square ({self.square}) and at most 4096, got {self.canvas}")
        require(0.0 <= self.test_fraction <= 1.0, "test_fraction",
                f"test_fraction must be within 0..1, got {self.test_fraction}")

    @property
    def half(self) -> int:
        return self.square // 2

    @property
    def samples(self) -> int:
        """Samples in the file (both splits): one per position of the square."""
        return (self.canvas - 2 * self.half) ** 2

    def params(self) -> dict:
        return asdict(self)


def sweep_locations(canvas: int = 64, half: int = 4) -> np.ndarray:
    """All centres ``(x, y)`` in the original's sweep order: x outer, y inner. Shape (N, 2) int64."""
    coords = np.arange(half, canvas - half, dtype=np.int64)
    xs, ys = np.meshgrid(coords, coords, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def onehot_maps(locations: np.ndarray, canvas: int) -> np.ndarray:
    """One-hot centre maps, 1 at row ``y``, column ``x``. Shape (N, canvas, canvas) uint8."""
    maps = np.zeros((len(locations), canvas, canvas), dtype=np.uint8)
    maps[np.arange(len(locations)), locations[:, 1], locations[:, 0]] = 1
    return maps


def render_squares(onehots: np.ndarray, square: int) -> np.ndarray:
    """Convolve each one-hot map with a ``square`` x ``square`` all-ones kernel, 'same' zero padding.

    An unnormalised box filter is exactly that convolution. Stacking the maps into one tall image
    with ``square // 2`` zero rows between neighbours lets a single OpenCV call do all of them
    without one map's kernel reaching into the next. Returns 0/1 masks (N, H, W) uint8 for
    non-overlapping sources (one centre per map).
    """
    n, h, w = onehots.shape
    pad = square // 2
    tall = np.pad(onehots, ((0, 0), (pad, pad), (0, 0))).reshape(n * (h + 2 * pad), w)
    out = cv2.boxFilter(tall, -1, (square, square), normalize=False, borderType=cv2.BORDER_CONSTANT)
    return out.reshape(n, h + 2 * pad, w)[:, pad : pad + h]


def uniform_test_mask(n: int, rng: np.random.RandomState, fraction: float = UNIFORM_TEST_FRACTION) -> np.ndarray:
    """One ``random() < fraction`` draw per sample, in order, as the original's ``random_split``."""
    return rng.random_sample(n) < fraction


def quadrant_test_mask(locations: np.ndarray, canvas: int) -> np.ndarray:
    """The original's ``quadrant_split``: both normalised coordinates strictly above one half."""
    normalized = locations / float(canvas)
    return (normalized[:, 0] > 0.5) & (normalized[:, 1] > 0.5)


def split_indices(spec: NotSoClevrSpec, locations: np.ndarray) -> dict[str, np.ndarray]:
    """Sweep-order indices of each split, already in the original's shuffled order."""
    if spec.split == "uniform":
        is_test = uniform_test_mask(len(locations), np.random.RandomState(spec.seed), spec.test_fraction)
    else:
        is_test = quadrant_test_mask(locations, spec.canvas)
    out = {}
    for name, members in (("train", ~is_test), ("test", is_test)):
        idx = np.flatnonzero(members)
        out[name] = idx[np.random.RandomState(spec.shuffle_seed).permutation(len(idx))]
    return out


@dataclass
class NotSoClevrSplit:
    """One split's samples: centres, one-hot maps and rendered 0/1 square masks."""

    locations: np.ndarray  # (N, 2) int64, (x, y)
    onehots: np.ndarray  # (N, H, W) uint8, 0/1
    masks: np.ndarray  # (N, H, W) uint8, 0/1


def splits(spec: NotSoClevrSpec) -> dict[str, NotSoClevrSplit]:
    """Both splits of ``spec`` as :class:`NotSoClevrSplit` (locations, one-hot maps, 0/1 square masks),
    in the original's order; :func:`generate` gives one split as the file's arrays."""
    locations = sweep_locations(spec.canvas, spec.half)
    onehots = onehot_maps(locations, spec.canvas)
    masks = render_squares(onehots, spec.square)
    return {
        name: NotSoClevrSplit(locations[idx], onehots[idx], masks[idx])
        for name, idx in split_indices(spec, locations).items()
    }


def native_arrays(split: NotSoClevrSplit) -> dict[str, np.ndarray]:
    """A split as the native file stores it: images 0/255 and one-hot maps (N, S, S, 1) uint8, locations."""
    return {
        "images": (split.masks * np.uint8(255))[..., None],
        "onehots": split.onehots[..., None],
        "locations": split.locations,
    }


def generate(spec: NotSoClevrSpec, split: str = "train") -> dict[str, np.ndarray]:
    """One split (``train`` or ``test``) of ``spec`` in the original's order, as the native file holds it."""
    require(split in ("train", "test"), "split", f"split must be train or test, got {split!r}")
    return native_arrays(splits(spec)[split])


def rebuild(spec: NotSoClevrSpec, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The images and one-hot maps again from the locations alone."""
    locations = np.asarray(arrays["locations"], dtype=np.int64)
    onehots = onehot_maps(locations, spec.canvas)
    return native_arrays(NotSoClevrSplit(locations, onehots, render_squares(onehots, spec.square)))


Spec = NotSoClevrSpec


def original_arrays(split: NotSoClevrSplit, canvas: int) -> dict[str, np.ndarray]:
    """The original file's fields for one split, dtype for dtype and value for value.

    ``image`` is float64 RGB with the square at 128 in all channels, ``imagegray`` its channel mean,
    ``onehots`` float64, ``locations`` int64 (x, y), ``normalized_locations`` ``locations / 64``.
    """
    gray = split.masks.astype(np.float64) * ORIGINAL_GRAY
    return {
        "image": np.repeat(gray[..., None], 3, axis=-1),
        "imagegray": gray[..., None],
        "onehots": split.onehots.astype(np.float64)[..., None],
        "locations": split.locations.astype(np.int64),
        "normalized_locations": split.locations / float(canvas),
    }


# Measured on this data (benchmarks/bench_not_so_clevr.py): gzip shrinks the sparse masks and one-hot
# maps by over 99% (25.8 MB -> 0.14 MB) for 0.08 s more; locations are tiny. The original layout's
# float64 arrays (514 MB raw per file) take gzip level 1 without shuffle: 1.2 MB in about a
# third of level 4's time.
NATIVE_COMPRESSION = {"images": "gzip", "onehots": "gzip", "locations": None}
ORIGINAL_COMPRESSION = {"compression": "gzip", "level": 1, "shuffle": False}
# The original layout is written in slices so memory stays near one slice of float64 images, and so
# that an interrupt is seen between slices: 128 images (12 MiB of float64 RGB, 20-65 ms each here)
# instead of 512 (0.3 s).
ORIGINAL_SLICE = 128


def estimate_bytes(spec: NotSoClevrSpec, layout: str = "native") -> int:
    """About how large the file will be (measured: 0.14 MB native, 5.8 MB original at 64x64)."""
    n, px = spec.samples, spec.canvas ** 2
    # gzip leaves about 1/200 of the sparse maps (native) and 1/150 of the float64 ones (original)
    return n * px * 2 // 200 + n * 16 if layout == "native" else n * px * 8 * 6 // 150 + n * 32


def write_file(spec: NotSoClevrSpec, path, *, layout: str = "native", workers: int = 1, force: bool = False,
               progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Generate ``spec`` and write it to ``path`` atomically; returns the sample count per split.

    ``workers`` is accepted for the common signature (the 3136 samples take milliseconds);
    ``progress(k)`` is told of every ``k`` samples written. Raises
    :class:`coordconv_data.writer.StoreError` if ``path`` exists (without ``force``), cannot be
    written, or would not fit.
    """
    advance = progress or (lambda k: None)
    both = splits(spec)
    attrs = {
        "canvas_size": spec.canvas,
        "square_size": spec.square,
        "split_kind": spec.split,
        "location_order": "x, y",
    }
    with DatasetWriter(path, "not-so-clevr", seed=spec.seed, params=spec.params(), attrs=attrs,
                       layout=layout, force=force, expected_bytes=estimate_bytes(spec, layout)) as w:
        for name, data in both.items():
            if layout == "native":
                w.ensure_space(len(data.locations) * spec.canvas ** 2 // 50)
                for key, array in native_arrays(data).items():
                    w.write(f"{name}/{key}", array, compression=NATIVE_COMPRESSION[key])
                advance(len(data.locations))
                continue
            prefix = {"train": "train", "test": "val"}[name]
            n = len(data.locations)
            datasets = None
            for start in range(0, n, ORIGINAL_SLICE):
                part = NotSoClevrSplit(*(a[start : start + ORIGINAL_SLICE] for a in
                                         (data.locations, data.onehots, data.masks)))
                arrays = original_arrays(part, spec.canvas)
                if datasets is None:
                    datasets = {f: w.create(f"{prefix}_{f}", (n,) + a.shape[1:], a.dtype, **ORIGINAL_COMPRESSION)
                                for f, a in arrays.items()}
                w.ensure_space(sum(a.nbytes for a in arrays.values()) // 50)  # gzip keeps about 1/150
                for f, a in arrays.items():
                    datasets[f][start : start + len(a)] = a
                advance(len(part.locations))
    return {name: len(data.locations) for name, data in both.items()}
