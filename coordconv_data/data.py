"""Torch Datasets over coordconv_data HDF5 files, usable from your own training code.

:class:`H5SplitDataset` serves one split of a file as dicts of tensors (one entry per array, the
file's dtypes kept: uint8 images, int64 locations). It works with both the native layout and the
original Not-so-Clevr layout (through :func:`coordconv_data.store.summarize`).

Two modes:

* ``in_memory=True`` (the default when the split is under ``memory_limit`` bytes): the split is read
  once with :func:`~coordconv_data.store.read_split`; indexing is a numpy slice. This is what the
  trainer uses, so the loader never limits training (HDF5 fancy indexing costs 6-11 ms a batch).
* ``in_memory=False``: samples are read one at a time from the file. The HDF5 handle is opened lazily
  in the process that reads (each DataLoader worker opens its own, keyed by process id) and is never
  pickled, so ``DataLoader(num_workers>0)`` is safe under fork, spawn and forkserver.

Example::

    from torch.utils.data import DataLoader
    from coordconv_data.data import H5SplitDataset
    ds = H5SplitDataset("not_so_clevr_uniform.h5", "train", names=("images", "locations"))
    for batch in DataLoader(ds, batch_size=32, shuffle=True, num_workers=2):
        batch["images"]  # (32, 64, 64, 1) uint8
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from .store import StoreError, read_split, summarize

__all__ = ["H5SplitDataset", "split_nbytes", "MEMORY_LIMIT"]

MEMORY_LIMIT = 2 * 1024**3  # bytes of a split read into memory by default


def split_nbytes(path: str | os.PathLike, split: str, kind: str | None = None,
                 names: tuple[str, ...] | None = None) -> int:
    """Bytes the split's arrays (``names`` or all) take in memory."""
    summary = summarize(path, kind)
    if split not in summary.splits:
        raise StoreError(f"{summary.path} has no split {split!r} (it has: {', '.join(summary.splits) or 'none'})")
    arrays = summary.splits[split]
    with h5py.File(summary.path, "r") as f:
        return sum(f[arrays[n]].size * f[arrays[n]].dtype.itemsize for n in (names or tuple(arrays)))


class H5SplitDataset(Dataset):
    """One split of a data file: ``ds[i]`` is ``{name: tensor}`` for the arrays in ``names``."""

    def __init__(self, path: str | os.PathLike, split: str, *, kind: str | None = None,
                 names: tuple[str, ...] | None = None, in_memory: bool | None = None,
                 memory_limit: int = MEMORY_LIMIT) -> None:
        self.path = Path(path)
        self.split = split
        summary = summarize(self.path, kind)
        if split not in summary.splits:
            raise StoreError(f"{self.path} has no split {split!r} (it has: {', '.join(summary.splits) or 'none'})")
        available = summary.splits[split]
        names = tuple(names) if names is not None else tuple(sorted(available))
        missing = [n for n in names if n not in available]
        if missing:
            raise StoreError(f"{self.path}: split {split!r} lacks {', '.join(missing)}")
        self.kind = summary.kind
        self.names = names
        self._keys = {n: available[n] for n in names}
        self._len = summary.lengths[split]
        if in_memory is None:
            in_memory = split_nbytes(self.path, split, kind, names) <= memory_limit
        self.in_memory = in_memory
        self.arrays: dict[str, np.ndarray] | None = (
            read_split(self.path, split, kind, names) if in_memory else None
        )
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return self._len

    def _handle(self) -> h5py.File:
        # A handle opened in another process (the parent before a fork) is never reused.
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(f"index {index} out of range for {self._len} samples")
        if self.arrays is not None:
            return {n: torch.from_numpy(np.array(a[index])) for n, a in self.arrays.items()}
        f = self._handle()
        return {n: torch.from_numpy(np.asarray(f[k][index])) for n, k in self._keys.items()}

    def batch(self, indices: Any) -> dict[str, torch.Tensor]:
        """Many samples at once (in-memory mode: one numpy fancy index per array)."""
        idx = np.asarray(indices, dtype=np.int64)
        if self.arrays is not None:
            return {n: torch.from_numpy(a[idx]) for n, a in self.arrays.items()}
        f = self._handle()
        return {n: torch.from_numpy(np.stack([np.asarray(f[k][i]) for i in idx])) for n, k in self._keys.items()}

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
