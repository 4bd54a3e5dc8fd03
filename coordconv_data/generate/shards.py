"""Shards: one machine's share of a dataset, equal to those samples of the one-machine file.

A dataset whose size can grow (Sort-of-Clevr, Lanes) is cut into ``count`` shards. Each split's
blocks (:mod:`.blocks`: block ``b`` of split stream ``s`` drawn from ``SeedSequence(seed,
spawn_key=(s, b))``) are dealt out whole and in order (:func:`.blocks.share_of_blocks`), so shard
``index`` holds a contiguous range of samples of every split, starting on a block boundary, and its
arrays are byte for byte those samples of the file one machine writes from the same spec. A shard
file records the whole dataset's parameters (``params``, as the one-machine file does) and, in its
own root attributes, which share it is:

* ``shard_index``, ``shard_count``: share ``index`` of ``count`` (0-based, as a Slurm job array's
  ``SLURM_ARRAY_TASK_ID``);
* ``shard_ranges``: JSON ``{"train": [start, stop], "test": [start, stop]}``, the samples it holds;
* ``shard_digest``: ``sha256:<hex>`` of its content (:class:`ContentDigest`), so that a merged file
  can tell the shard it was made from from another one of the same name.

:class:`ShardSource` reads blocks back from a set of shards (a merge that copies writes the file
through the generator's own writer, with the blocks read instead of generated, so the copy is the
one-machine file byte for byte).

Imports numpy, and h5py only where a shard is read (workers import this module).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from numbers import Integral
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import InvalidParameter
from .blocks import share_of_blocks

__all__ = ["Shard", "parse_shard", "shard_file_name", "shard_ranges", "shard_attrs", "ContentDigest",
           "block_digest", "ShardSource", "block_arrays", "SHARD_ATTRS", "MAX_SHARDS"]

MAX_SHARDS = 1_000_000
SHARD_ATTRS = ("shard_index", "shard_count", "shard_ranges", "shard_digest")
_SHARD_TEXT = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Share ``index`` (0-based) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        for name in ("index", "count"):
            v = getattr(self, name)
            if not isinstance(v, Integral) or isinstance(v, bool):
                raise InvalidParameter("shard", f"shard {name} must be an integer, got {v!r}")
        if not 1 <= self.count <= MAX_SHARDS:
            raise InvalidParameter("shard", f"the shard count must be in 1..{MAX_SHARDS}, got {self.count}")
        if not 0 <= self.index < self.count:
            raise InvalidParameter("shard", f"shard index {self.index} is not in 0..{self.count - 1} (shards of "
                                            f"{self.count} are numbered from 0, as a job array's task ids)")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"K/N"`` (shard K of N, K in 0..N-1) as a :class:`Shard`."""
    m = _SHARD_TEXT.match(str(text))
    if m is None:
        raise InvalidParameter("shard", f"shard must be K/N (shard K of N, K from 0 to N-1), got {text!r}")
    return Shard(int(m.group(1)), int(m.group(2)))


def shard_file_name(default_file: str, shard: Shard) -> str:
    """``lanes-00003-of-00512.h5``: a shard's default name, from the kind's default file."""
    stem, dot, ext = default_file.rpartition(".")
    if not dot:
        stem, ext = default_file, "h5"
    width = max(5, len(str(shard.count - 1)))
    return f"{stem}-{shard.index:0{width}d}-of-{shard.count:0{width}d}.{ext}"


def shard_ranges(sizes: Mapping[str, int], block_size: int, shard: Shard | None) -> dict[str, tuple[int, int]]:
    """The samples ``(start, stop)`` of each split (``sizes``: split -> sample count) that ``shard``
    holds: its share of the split's blocks; every sample when ``shard`` is None."""
    if shard is None:
        return {split: (0, n) for split, n in sizes.items()}
    return {split: share_of_blocks(n, block_size, shard.index, shard.count) for split, n in sizes.items()}


def shard_attrs(shard: Shard, ranges: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
    """The root attributes that say which share a shard file is (its digest is added when written)."""
    return {"shard_index": shard.index, "shard_count": shard.count,
            "shard_ranges": json.dumps({split: [int(a), int(b)] for split, (a, b) in ranges.items()})}


# -- content digests ---------------------------------------------------------------------------------

def block_digest(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """SHA-256 of one block's arrays (in name order: each name, dtype, shape and C-order bytes), as
    32 uint8 (computed where the block is made, in a worker, so no array travels for it)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}\n".encode())
        h.update(a.data)
    return np.frombuffer(h.digest(), dtype=np.uint8)


class ContentDigest:
    """A shard's content digest: SHA-256 over its splits' block digests, in order."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def add(self, split: str, start: int, digest: np.ndarray) -> None:
        self._h.update(f"{split}:{start}:".encode())
        self._h.update(np.asarray(digest, dtype=np.uint8).tobytes())

    def text(self) -> str:
        return "sha256:" + self._h.hexdigest()


# -- reading blocks back from shards ---------------------------------------------------------------

@dataclass(frozen=True)
class ShardSource:
    """Where each split's samples lie in a set of shard files: ``parts[split]`` is a tuple of
    ``(path, start, stop)`` (the shard holds samples ``start..stop`` of the split at its rows ``0..``).
    Picklable: worker processes read their blocks from the shards themselves."""

    parts: Mapping[str, tuple[tuple[str, int, int], ...]]

    def read(self, split: str, start: int, count: int) -> dict[str, np.ndarray]:
        """Samples ``start..start + count`` of ``split`` (all within one shard: shards hold whole blocks)."""
        for path, a, b in self.parts[split]:
            if a <= start and start + count <= b:
                f = _open_shard(path)
                group = f[split]
                return {name: group[name][start - a : start - a + count] for name in group}
        raise ValueError(f"samples {start}..{start + count} of split {split!r} lie in no single shard")


_OPEN: dict[str, Any] = {}  # path -> h5py.File: the shard this process read last (one at a time)


def _open_shard(path: str) -> Any:
    import h5py

    f = _OPEN.get(path)
    if f is None:
        for other in _OPEN.values():
            other.close()
        _OPEN.clear()
        f = _OPEN[path] = h5py.File(path, "r")
    return f


def close_shards() -> None:
    """Close the shard this process holds open (after a copy)."""
    for f in _OPEN.values():
        f.close()
    _OPEN.clear()


def block_arrays(make: Callable[[], dict[str, np.ndarray]], source: ShardSource | None, split: str, start: int,
                 count: int, digest: bool) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """A block's arrays, read from ``source``'s shards when given, else made by ``make()``; with its
    content digest when ``digest`` (a shard's), taken before any encoding."""
    arrays = source.read(split, start, count) if source is not None else make()
    return arrays, (block_digest(arrays) if digest else None)
