"""The paper's datasets as torch Datasets, shaped like torchvision's: ``(input, target)`` per sample.

:class:`NotSoClevr`, :class:`SortOfClevr` and :class:`Lanes` read the HDF5 files the generators write
and return, for each sample, the input and the target of a task exactly as ``coorddata train`` feeds
them to a model: this module is the one definition of each task's sample, and the trainer reads its
data through these classes. Inputs are float tensors, images channel-first (CHW)::

    from torch.utils.data import DataLoader
    from coordconv_data import NotSoClevr

    train = NotSoClevr("data/", split="train", task="classification")  # makes the file if missing
    x, y = train[0]            # x: (2,) float, the square's centre in [-1, 1]; y: its pixel index
    for xb, yb in DataLoader(train, batch_size=16, shuffle=True):
        ...

Splits: the file's ``train`` and ``test`` splits, and ``val``: a fixed subset of the file's train
split (``val_fraction`` of it, 0.1 by default, drawn with :data:`VAL_SEED`), held out for model
selection. With ``val_fraction > 0`` the ``train`` split is the file's train split *without* those
samples, so train, val and test never share a sample; ``val_fraction=0`` gives the whole file split
and no ``val``. ``all`` is every sample of the file (train then test), what the original GANs trained on.

Files: ``root`` is a data file or a folder holding one under the generator's default name (the
kind's :meth:`~coordconv_data.kinds.Kind.file_name`). A missing file is generated with the generator's defaults when
``generate=True`` (said once on stderr), as torchvision's ``download=True`` fetches; a file of
another kind, or one that fails validation, is a one-line :class:`~coordconv_data.store.StoreError`
and is never replaced.

Reading: a split that fits in ``memory_limit`` bytes is read once, at construction; indexing is then
a numpy gather. What is read is checked against the kind's value ranges (a mask class, a location on
the canvas), at construction or batch by batch, naming the sample, unless the file's every value was
checked already (:func:`~coordconv_data.store.check_content`, as the trainer does once per run). A larger one is read sample by sample through an HDF5 handle opened lazily in the
process that reads (each DataLoader worker opens its own), never pickled, so ``num_workers > 0``
is safe under fork, spawn and forkserver. ``__getitems__`` serves a whole batch from one gather,
which a standard ``DataLoader`` uses by itself.

On the fly: :meth:`CoordDataset.from_spec` (Sort-of-Clevr and Lanes, the kinds whose size can grow)
serves the samples of a generator spec without any file: sample ``i`` is drawn when asked for, equal bit
for bit to sample ``i`` of the file the spec writes (:mod:`coordconv_data.specs`), in any process (each
DataLoader worker draws its own), under any sampler (``DistributedSampler`` too)::

    from coordconv_data import Lanes
    from coordconv_data.generate.lanes import LanesSpec

    train = Lanes.from_spec(LanesSpec(n=10_000_000, test_n=5_000_000, seed=0), split="train")
"""

from __future__ import annotations

import operator
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import h5py
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from .errors import InvalidParameter
from .kinds import LANES, NOT_SO_CLEVR, SORT_OF_CLEVR, Kind, get_kind
from .kinds.not_so_clevr import GAN_GRAY
from .kinds.base import check_range
from .specs import SpecSummary, spec_summary
from .store import FileSummary, StoreError, summarize, summary_of

__all__ = ["CoordDataset", "NotSoClevr", "SortOfClevr", "Lanes", "SPLITS", "VAL_SEED",
           "MEMORY_LIMIT", "val_partition", "dataset_class", "locate_file"]

SPLITS = ("train", "val", "test", "all")
VAL_SEED = 1807  # the validation carve-out's seed (fixed, so that every run of a file selects on the same samples)
MEMORY_LIMIT = 2 * 1024**3  # bytes of a split read into memory by default

Target = Any  # a Tensor, or a dict of Tensors for tasks with several targets


def val_partition(n: int, fraction: float, seed: int = VAL_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices ``(train, val)`` of a file's train split of ``n`` samples: ``round(n * fraction)``
    of them (at least one when ``fraction > 0``) drawn for validation by ``default_rng(seed)``."""
    if not 0 <= fraction < 1:
        raise InvalidParameter("val_fraction", f"val_fraction must be in [0, 1), got {fraction}")
    if fraction == 0:
        return np.arange(n), np.arange(0)
    k = max(1, int(round(n * fraction)))
    if k >= n:
        raise InvalidParameter("val_fraction", f"val_fraction {fraction} of {n} train samples leaves none to train on")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[k:]), np.sort(order[:k])


@dataclass(frozen=True)
class Encoding:
    """One task's sample: which arrays it reads and how a batch of them becomes ``(input, target)``.

    ``encode(arrays, attrs)`` takes numpy arrays whose first axis is the sample (any batch size)
    and returns batched tensors; ``describe`` says what the two are, for ``repr`` and the docs.
    """

    arrays: tuple[str, ...]
    encode: Callable[[dict[str, np.ndarray], dict[str, Any]], tuple[Tensor, Target]]
    describe: str


def _normalized(locations: np.ndarray, canvas: int) -> Tensor:
    # The CoordConv convention (coordconv_data.models.coords.normalize_coords): i / (n - 1) * 2 - 1.
    return torch.from_numpy(locations).float() / (canvas - 1) * 2 - 1


def _canvas(attrs: dict[str, Any]) -> int:
    return int(attrs.get("canvas_size", 64))


def _nsc_classification(a: dict[str, np.ndarray], attrs: dict[str, Any]) -> tuple[Tensor, Tensor]:
    canvas = _canvas(attrs)
    loc = a["locations"]
    return _normalized(loc, canvas), torch.from_numpy(loc[:, 1] * canvas + loc[:, 0]).long()


def _nsc_rendering(a: dict[str, np.ndarray], attrs: dict[str, Any]) -> tuple[Tensor, Tensor]:
    mask = torch.from_numpy(np.ascontiguousarray(a["images"][..., 0] > 0)).float().unsqueeze(1)
    return _normalized(a["locations"], _canvas(attrs)), mask


def _nsc_regression(a: dict[str, np.ndarray], attrs: dict[str, Any]) -> tuple[Tensor, Tensor]:
    hot = torch.from_numpy(np.ascontiguousarray(a["onehots"][..., 0] > 0)).float().unsqueeze(1)
    return hot, _normalized(a["locations"], _canvas(attrs))


def _nsc_gan(a: dict[str, np.ndarray], attrs: dict[str, Any]) -> tuple[Tensor, Target]:
    gray = torch.from_numpy(np.ascontiguousarray(a["images"][..., 0] > 0)).float().mul_(GAN_GRAY)
    return gray.unsqueeze(1), {}


def _chw(images: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)


def _soc_gan(a: dict[str, np.ndarray], attrs: dict[str, Any]) -> tuple[Tensor, Target]:
    return _chw(a["images"]).float().div_(127.5).sub_(1.0), {}


def _soc_objects(a: dict[str, np.ndarray], attrs: dict[str, Any]) -> tuple[Tensor, Target]:
    return _chw(a["images"]).float().div_(255.0), {
        "colors": torch.from_numpy(a["colors"]).long(),
        "shapes": torch.from_numpy(a["shapes"]).long(),
        "centers": torch.from_numpy(a["centers"]).long(),
    }


def _lanes_segmentation(a: dict[str, np.ndarray], attrs: dict[str, Any]) -> tuple[Tensor, Tensor]:
    return _chw(a["images"]).float().div_(255.0), torch.from_numpy(a["masks"]).long()


def _unbatch(x: Tensor, y: Target, n: int) -> list[tuple[Tensor, Target]]:
    xs = x.unbind(0)
    if isinstance(y, dict):
        ys = [{k: v[i] for k, v in y.items()} for i in range(n)]
    else:
        ys = y.unbind(0)
    return list(zip(xs, ys))


def locate_file(root: str | os.PathLike, default_file: str) -> Path:
    """The data file ``root`` names: ``root`` itself, or ``root/default_file`` for a folder."""
    p = Path(root)
    if p.is_dir():
        return p / default_file
    return p


class CoordDataset(Dataset):
    """Base of the three datasets: one split of one file, as ``(input, target)`` for one task.

    Subclasses set :attr:`kind` (the :class:`~coordconv_data.kinds.Kind`, which names the default file
    and makes it), :attr:`tasks` and :attr:`default_task`.

    Args:
        root: a data file, or a folder holding the kind's default file.
        split: ``train``, ``val``, ``test`` or ``all`` (see the module docstring).
        task: which ``(input, target)`` to serve (one of :attr:`tasks`).
        transform: called on each input tensor.
        target_transform: called on each target.
        generate: make a missing file with the generator's defaults (else a missing file is an error).
        val_fraction: share of the file's train split held out as ``val``.
        memory_limit: read the split into memory when it takes at most this many bytes.
        summary: the :class:`~coordconv_data.store.FileSummary` of ``root`` when the caller validated
            the file already (the trainer validates once per run); ``root`` is then that file.
    """

    kind: ClassVar[Kind]
    tasks: ClassVar[dict[str, Encoding]]
    default_task: ClassVar[str]

    def __init__(self, root: str | os.PathLike, split: str = "train", *, task: str | None = None,
                 transform: Callable[[Tensor], Any] | None = None,
                 target_transform: Callable[[Target], Any] | None = None, generate: bool = True,
                 val_fraction: float = 0.1, memory_limit: int = MEMORY_LIMIT, summary: FileSummary | None = None) -> None:
        task = self.default_task if task is None else task
        if task not in self.tasks:
            raise InvalidParameter("task", f"task must be one of {', '.join(self.tasks)} for {type(self).__name__}, got {task!r}")
        if split not in SPLITS:
            raise InvalidParameter("split", f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        if summary is None:
            self.path = self.ensure_file(root, generate=generate, **self._file_options()).resolve()
            self.summary = summarize(self.path, self.kind.name)
        else:
            self.summary = summary_of(summary, self.kind.name)
            self.path = summary.path if isinstance(summary, SpecSummary) else summary.path.resolve()
        self._sampler = self.summary.sampler if isinstance(self.summary, SpecSummary) else None
        self.check_file(self.summary)
        self.split, self.task, self.val_fraction = split, task, float(val_fraction)
        self.transform, self.target_transform = transform, target_transform
        self.encoding = self.tasks[task]
        self._attrs = dict(self.summary.attrs)
        self._parts = self._select(split)  # [(file split, row indices)]
        self._len = sum(len(rows) for _, rows in self._parts)
        keys = {s: self._keys(s) for s, _ in self._parts}
        self._file_keys = keys
        self.in_memory = self._sampler is None and self._nbytes(keys) <= memory_limit
        self._arrays: dict[str, np.ndarray] | None = self._read_all(keys) if self.in_memory else None
        # Sample i is row _rows[i] of file split _parts[_part_of[i]] (arrays: a list of 10**7 tuples would not fit).
        self._rows = np.concatenate([np.asarray(rows, np.int64) for _, rows in self._parts]) if self._parts else \
            np.zeros(0, np.int64)
        self._part_of = np.repeat(np.arange(len(self._parts), dtype=np.int8), [len(rows) for _, rows in self._parts])
        self._file: h5py.File | None = None
        self._pid: int | None = None

    @classmethod
    def from_spec(cls, spec: Any, split: str = "train", **kwargs: Any) -> "CoordDataset":
        """The samples of generator ``spec`` (e.g. a :class:`~coordconv_data.generate.lanes.LanesSpec`),
        drawn when asked for, without any file: sample ``i`` equals sample ``i`` of the file ``spec``
        writes (the ``val`` carve-out and every other option as for a file). ``kwargs``: as the class
        takes them (``task``, ``transform``, ``val_fraction``, ...)."""
        if "summary" in kwargs or "generate" in kwargs:
            raise TypeError("from_spec takes no summary or generate: the spec is the data")
        summary = spec_summary(cls.kind, spec)
        return cls(summary.path, split, summary=summary, **kwargs)

    # -- the file --------------------------------------------------------------------------------

    @classmethod
    def ensure_file(cls, root: str | os.PathLike, *, generate: bool = True,
                    announce: Callable[[str], None] | None = None, **options: Any) -> Path:
        """The data file for ``root``; a missing one is generated with the defaults if ``generate``."""
        path = locate_file(root, cls.kind.file_name(**options))
        if path.exists():
            return path
        if not generate:
            raise StoreError(f"{path}: no such file (pass generate=True to make it with the generator's defaults)")
        if not path.parent.is_dir():
            raise StoreError(f"folder {path.parent} does not exist")
        say = announce if announce is not None else (lambda line: print(line, file=sys.stderr, flush=True))
        t0 = time.perf_counter()
        command = cls.kind.make_file(path, cls.kind.default_spec(file=path.name, **options))
        say(f"{path} was missing: generated it as `{command}` does ({time.perf_counter() - t0:.1f} s)")
        return path

    def check_file(self, summary: FileSummary) -> None:
        """Refuse, in one line, a valid file this dataset cannot serve (kind-specific checks)."""
        if summary.layout != "native":
            raise StoreError(f"{summary.path} is in the original layout; {type(self).__name__} reads native files",
                             hint="write one without {layout} original")

    def _select(self, split: str) -> list[tuple[str, np.ndarray]]:
        lengths = self.summary.lengths
        have = [s for s in ("train", "test") if lengths.get(s, 0) > 0]
        if split == "all":
            return [(s, np.arange(lengths[s])) for s in have]
        if split == "test":
            if "test" not in have:
                raise StoreError(f"{self.path} has no test samples")
            return [("test", np.arange(lengths["test"]))]
        if "train" not in have:
            raise StoreError(f"{self.path} has no train samples")
        train, val = val_partition(lengths["train"], self.val_fraction)
        if split == "val" and len(val) == 0:
            raise InvalidParameter("split", "split 'val' needs val_fraction > 0 (it is carved from the train split)")
        return [("train", val if split == "val" else train)]

    def _keys(self, file_split: str) -> dict[str, str]:
        arrays = self.summary.splits[file_split]
        aliases = self._aliases()
        out = {}
        for name in self.encoding.arrays:
            key = arrays.get(name) or arrays.get(aliases.get(name, ""))
            if key is None:
                raise StoreError(f"{self.path}: split {file_split!r} lacks array {name!r}, which task {self.task!r} needs")
            out[name] = key
        return out

    def _aliases(self) -> dict[str, str]:
        return {}

    def _file_options(self) -> dict[str, Any]:
        return {}

    def _nbytes(self, keys: dict[str, dict[str, str]]) -> int:
        total = 0
        with h5py.File(self.path, "r") as f:
            for s, rows in self._parts:
                for key in keys[s].values():
                    d = f[key]
                    total += len(rows) * int(np.prod(d.shape[1:], dtype=np.int64)) * d.dtype.itemsize
        return total

    def _check_read(self, file_split: str, key: str, data: np.ndarray, rows: np.ndarray) -> None:
        """Refuse values of array ``key`` (samples ``rows`` of ``file_split``) outside its kind's range."""
        if self.summary.content_checked:
            return
        name = next((n for n, k in self.summary.splits[file_split].items() if k == key), None)
        spec = self.kind.layouts[self.summary.layout].spec(name) if name else None
        if spec is None:
            return
        lo, hi = spec.bounds(self.summary.symbols)
        if lo is None and hi is None:
            return
        check_range(self.path, key, spec, data, lo, hi, self.kind.name, rows=rows)

    def _read_all(self, keys: dict[str, dict[str, str]]) -> dict[str, np.ndarray]:
        parts: dict[str, list[np.ndarray]] = {name: [] for name in self.encoding.arrays}
        with h5py.File(self.path, "r") as f:
            for s, rows in self._parts:
                for name, key in keys[s].items():
                    whole = f[key][...]
                    part = whole if len(rows) == len(whole) else whole[rows]
                    self._check_read(s, key, part, rows)
                    parts[name].append(part)
        return {name: np.concatenate(p) if len(p) > 1 else p[0] for name, p in parts.items()}

    def _handle(self) -> h5py.File:
        # A handle opened in another process (the parent before a fork) is never reused.
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def _gather(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        if self._arrays is not None:
            return {name: a[indices] for name, a in self._arrays.items()}
        parts, rows = self._part_of[indices], self._rows[indices]
        out: dict[str, np.ndarray] = {}
        for i, (s, _) in enumerate(self._parts):
            mine = np.flatnonzero(parts == i)
            if len(mine) == 0:
                continue
            for name, a in self._read_rows(s, rows[mine]).items():
                if name not in out:
                    out[name] = np.empty((len(indices),) + a.shape[1:], a.dtype)
                out[name][mine] = a
        return out

    def _read_rows(self, file_split: str, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The task's arrays of rows ``rows`` of a file split: drawn from the spec, or read from the file
        one sample at a time (32 single reads cost less than one HDF5 fancy-indexed read) and checked."""
        if self._sampler is not None:
            return self._sampler.samples(file_split, rows, self.encoding.arrays)
        f = self._handle()
        keys = self._file_keys[file_split]
        data = {name: np.stack([f[keys[name]][r] for r in rows.tolist()]) for name in self.encoding.arrays}
        for name, key in keys.items():
            self._check_read(file_split, key, data[name], rows)
        return data

    # -- torch Dataset -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._len

    def _position(self, index: Any) -> int:
        """A sample's position from an index as Python's sequences take one: an integer (numpy's and
        0-d tensors' too; not a bool or a float), negative from the end; TypeError or IndexError."""
        if isinstance(index, (bool, np.bool_)) or (isinstance(index, Tensor) and index.dtype == torch.bool):
            raise TypeError(f"{type(self).__name__} indices must be integers, not {type(index).__name__}")
        try:
            i = operator.index(index)
        except TypeError:
            raise TypeError(f"{type(self).__name__} indices must be integers, not {type(index).__name__}") from None
        if not -self._len <= i < self._len:
            raise IndexError(f"index {i} is out of range for {type(self).__name__} of {self._len} samples")
        return i + self._len if i < 0 else i

    def _positions(self, indices: Any) -> np.ndarray:
        if isinstance(indices, np.ndarray) and indices.dtype.kind in "iu" and indices.ndim <= 1:
            values: Any = indices.reshape(-1).tolist()  # Python ints: no overflow in the range check
        elif isinstance(indices, Tensor) and not indices.is_floating_point() and indices.dtype != torch.bool:
            values = indices.reshape(-1).tolist()
        elif isinstance(indices, (str, bytes)) or not hasattr(indices, "__iter__"):
            values = [indices]
        else:
            values = list(indices)
        return np.array([self._position(i) for i in values], dtype=np.int64)

    def encode(self, indices: Any) -> tuple[Tensor, Target]:
        """The batched ``(input, target)`` of many samples, before any transform (what the trainer uses)."""
        return self.encoding.encode(self._gather(self._positions(indices)), self._attrs)

    def _transformed(self, x: Tensor, y: Target) -> tuple[Any, Any]:
        if self.transform is not None:
            x = self.transform(x)
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        x, y = self.encode([self._position(index)])
        return self._transformed(*_unbatch(x, y, 1)[0])

    def __getitems__(self, indices: list[int]) -> list[tuple[Any, Any]]:
        x, y = self.encode(indices)
        return [self._transformed(xi, yi) for xi, yi in _unbatch(x, y, len(indices))]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None  # never send an open HDF5 handle to another process
        state["_pid"] = None
        return state

    def __del__(self) -> None:
        f = getattr(self, "_file", None)
        if f is not None and self._pid == os.getpid():
            try:
                f.close()
            except Exception:
                pass

    def __repr__(self) -> str:
        counts = self.summary.lengths
        split = self.split
        if split in ("train", "val") and self.val_fraction > 0:
            split += f" ({self._len} of the file's {counts.get('train', 0)} train samples; val_fraction {self.val_fraction:g})"
        drawn = self._sampler is not None
        lines = [
            f"{type(self).__name__}",
            f"    Number of datapoints: {self._len}",
            f"    {'Spec' if drawn else 'File'}: {self.path}{self._file_note()}",
            f"    Split: {split}",
            f"    Task: {self.task}: {self.encoding.describe}",
            f"    Read: {'drawn on the fly, per batch' if drawn else 'into memory' if self.in_memory else 'per sample from the file'}",
        ]
        for name, t in (("Transform", self.transform), ("Target transform", self.target_transform)):
            if t is not None:
                body = repr(t).replace("\n", "\n" + " " * 8)
                lines.append(f"    {name}: {body}")
        return "\n".join(lines)

    def _file_note(self) -> str:
        return ""


class NotSoClevr(CoordDataset):
    """Not-so-Clevr: one 9x9 square per 64x64 image, at each of 3136 positions (the paper's data).

    Args:
        root: a data file, or a folder holding ``not_so_clevr_<holdout>.h5``.
        holdout: ``quadrant`` (the bottom-right quadrant is the test set) or ``uniform`` (a random
            quarter is). Names the file in a folder (default ``quadrant``); checked against a file
            given by path (default: whatever it holds).
        **kwargs: as :class:`CoordDataset` (``split``, ``task``, ``transform``, ...).

    Tasks (``(input, target)``, per sample):

    * ``classification``: the centre ``(x, y)`` normalised to [-1, 1], ``(2,)`` float; the class
      index of its pixel ``y * 64 + x`` (int64).
    * ``rendering``: the same input; the square's 0/1 mask, ``(1, 64, 64)`` float.
    * ``regression``: the one-hot centre map, ``(1, 64, 64)`` float 0/1; the centre in [-1, 1], ``(2,)``.
    * ``gan``: the grey image of the original GANs, ``(1, 64, 64)`` float, the square at 128/255
      (``imagegray / 255``); the target is ``{}``.
    """

    kind = NOT_SO_CLEVR
    default_task = "classification"
    tasks = {
        "classification": Encoding(("locations",), _nsc_classification,
                                   "input (2,) float: the centre (x, y) in [-1, 1]; target int64 pixel index y * 64 + x"),
        "rendering": Encoding(("images", "locations"), _nsc_rendering,
                              "input (2,) float: the centre (x, y) in [-1, 1]; target (1, 64, 64) float 0/1 square mask"),
        "regression": Encoding(("onehots", "locations"), _nsc_regression,
                               "input (1, 64, 64) float one-hot centre map; target (2,) float centre (x, y) in [-1, 1]"),
        "gan": Encoding(("images",), _nsc_gan,
                        "input (1, 64, 64) float grey image, the square at 128/255 (the original's imagegray / 255); target {}"),
    }

    def __init__(self, root: str | os.PathLike, split: str = "train", *, holdout: str | None = None,
                 **kwargs: Any) -> None:
        if holdout not in (None, "quadrant", "uniform"):
            raise InvalidParameter("holdout", f"holdout must be quadrant or uniform, got {holdout!r}")
        self.holdout = holdout
        super().__init__(root, split, **kwargs)

    def check_file(self, summary: FileSummary) -> None:
        found = summary.attrs.get("split_kind") or summary.params.get("split")
        if self.holdout is not None and found is not None and found != self.holdout:
            raise StoreError(f"{summary.path} holds the {found} split, not the {self.holdout} one (holdout={self.holdout!r})")
        if self.holdout is None:
            self.holdout = found

    def _file_options(self) -> dict[str, Any]:
        return {"holdout": self.holdout}

    def _aliases(self) -> dict[str, str]:
        # A file in the original layout: its grey image stands for our images (0/128 instead of 0/255).
        return {"images": "imagegray"}

    def _file_note(self) -> str:
        return f" ({self.holdout} holdout)" if self.holdout else ""


class SortOfClevr(CoordDataset):
    """Sort-of-Clevr: coloured squares and circles on a plain canvas (the paper's: two objects, 64x64).

    Tasks:

    * ``gan``: the image as the GANs see it, ``(3, S, S)`` float in [-1, 1] (``pixel / 127.5 - 1``);
      the target is ``{}``.
    * ``objects``: the image ``(3, S, S)`` float in [0, 1]; the target a dict of ``colors`` ``(K,)``
      (palette index), ``shapes`` ``(K,)`` (0 square, 1 circle) and ``centers`` ``(K, 2)`` ``(x, y)``,
      all int64, objects in drawing order.
    """

    kind = SORT_OF_CLEVR
    default_task = "gan"
    tasks = {
        "gan": Encoding(("images",), _soc_gan, "input (3, S, S) float in [-1, 1] (pixel / 127.5 - 1); target {}"),
        "objects": Encoding(("images", "colors", "shapes", "centers"), _soc_objects,
                            "input (3, S, S) float in [0, 1]; target {colors (K,), shapes (K,), centers (K, 2)} int64"),
    }


class Lanes(CoordDataset):
    """Lanes: yellow and red circles on Perlin noise, with a 4-class mask that depends on position.

    Task ``segmentation``: the image ``(3, S, S)`` float in [0, 1]; the class mask ``(S, S)`` int64
    (0 background, 1 yellow right, 2 yellow left, 3 red bottom).
    """

    kind = LANES
    default_task = "segmentation"
    tasks = {
        "segmentation": Encoding(("images", "masks"), _lanes_segmentation,
                                 "input (3, S, S) float RGB in [0, 1]; target (S, S) int64 class mask"),
    }


def dataset_class(kind: str) -> type[CoordDataset]:
    """The dataset class that serves a dataset kind (the class its :class:`~coordconv_data.kinds.Kind` names)."""
    try:
        cls = globals()[get_kind(kind).dataset]
    except StoreError:
        raise InvalidParameter("kind", f"unknown dataset kind {kind!r}") from None
    assert issubclass(cls, CoordDataset) and cls.kind.name == kind
    return cls
