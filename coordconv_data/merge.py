"""Merging shards into one file: HDF5 virtual arrays over them (nothing copied), or a self-contained copy.

Shards (:mod:`coordconv_data.generate.shards`) are checked as a set before anything is written: every
file a valid shard (:func:`~coordconv_data.store.summarize`), all of one dataset (kind, parameters,
the generator that wrote them), every index of ``0..count-1`` exactly once. Then either

* **virtual** (the default): a small file whose arrays are HDF5 virtual datasets (h5py's
  ``VirtualLayout``), each mapping every shard's samples to their place. Its root attributes are those
  of the one-machine file, plus ``virtual_sources`` (the shards' names, relative to the merged file's
  folder: the shards must lie in that folder or below it) and ``shards`` (each shard's name, index,
  content digest and size, as merged). The reader (:func:`~coordconv_data.store.summarize`) checks
  every shard against that record when the file is opened, so a missing or changed shard is a
  one-line error naming it, never zeros read in its place; or
* **a copy** (``copy=True``): the generator's own writer run with its blocks read from the shards
  instead of drawn, so the file is the one-machine file byte for byte (and needs no shard after).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import h5py

from . import __version__
from .errors import InvalidParameter
from .generate.shards import SHARD_ATTRS, ShardSource, close_shards, shard_file_name
from .kinds import Kind, get_kind
from .store import SHARDS, VIRTUAL_SOURCES, FileSummary, StoreError, summarize
from .writer import DatasetWriter, check_target

__all__ = ["ShardFile", "ShardSet", "MergeResult", "check_shards", "merge_shards"]


@dataclass(frozen=True)
class ShardFile:
    path: Path
    summary: FileSummary
    index: int
    ranges: dict[str, tuple[int, int]]
    digest: str


@dataclass(frozen=True)
class ShardSet:
    """A complete set of shards of one dataset, by index."""

    kind: Kind
    params: dict[str, Any]
    generator: str
    count: int
    shards: tuple[ShardFile, ...]

    @property
    def lengths(self) -> dict[str, int]:
        return {split: max((s.ranges[split][1] for s in self.shards), default=0) for split in self.shards[0].ranges}

    def source(self) -> ShardSource:
        return ShardSource({split: tuple((str(s.path.resolve()), *s.ranges[split]) for s in self.shards
                                         if s.ranges[split][1] > s.ranges[split][0])
                            for split in self.shards[0].ranges})


@dataclass(frozen=True)
class MergeResult:
    path: Path
    kind: str
    lengths: dict[str, int]
    shards: int
    copied: bool


def _differences(a: FileSummary, b: FileSummary) -> list[str]:
    out = []
    if a.layout != b.layout:
        out.append(f"its layout is {b.layout}")
    differ = sorted(k for k in set(a.params) | set(b.params) if a.params.get(k) != b.params.get(k))
    if differ:
        k = differ[0]
        out.append(f"parameter {k} is {b.params.get(k)!r}, not {a.params.get(k)!r}"
                   + (f" (and {len(differ) - 1} more)" if len(differ) > 1 else ""))
    if a.attrs.get("generator") != b.attrs.get("generator"):
        out.append(f"it was written by {b.attrs.get('generator')!r}, not {a.attrs.get('generator')!r}")
    if a.attrs.get("shard_count") != b.attrs.get("shard_count"):
        out.append(f"it is one of {b.attrs.get('shard_count')} shards, not {a.attrs.get('shard_count')}")
    return out


def check_shards(paths: Sequence[str | os.PathLike]) -> ShardSet:
    """Validate ``paths`` as one complete set of shards; a one-line :class:`StoreError` naming the file
    (or the index) that is wrong: not a shard, of another dataset, a duplicate, or missing."""
    if not paths:
        raise InvalidParameter("shards", "give the shard files to merge")
    seen: dict[Path, Path] = {}
    shards: dict[int, ShardFile] = {}
    first: FileSummary | None = None
    for given in paths:
        path = Path(given)
        real = path.resolve()
        if real in seen:
            raise InvalidParameter("shards", f"{path} is given twice (as {seen[real]} too)")
        seen[real] = path
        summary = summarize(path, None if first is None else first.kind)  # the store refuses another kind
        attrs = summary.attrs
        if "shard_index" not in attrs:
            raise StoreError(f"{path} is not a shard (it records no shard index): merge takes the shard files "
                             "a sharded generation wrote")
        if "shard_digest" not in attrs:
            raise StoreError(f"{path} is incomplete: a shard records its content digest")
        if first is None:
            first = summary
        else:
            differ = _differences(first, summary)
            if differ:
                raise StoreError(f"{path} is not a shard of the dataset of {first.path}: {'; '.join(differ)}")
        index = int(attrs["shard_index"])
        if index in shards:
            raise StoreError(f"{shards[index].path} and {path} are both shard {index} of {attrs['shard_count']}")
        ranges = {split: (int(a), int(b)) for split, (a, b) in json.loads(attrs["shard_ranges"]).items()}
        shards[index] = ShardFile(path, summary, index, ranges, str(attrs["shard_digest"]))
    assert first is not None
    count = int(first.attrs["shard_count"])
    missing = [k for k in range(count) if k not in shards]
    if missing:
        kind = get_kind(first.kind)
        from .generate.shards import Shard

        example = shard_file_name(kind.file_name(), Shard(missing[0], count))
        more = f" (and {len(missing) - 1} more: {', '.join(map(str, missing[1:6]))}{'...' if len(missing) > 6 else ''})" \
            if len(missing) > 1 else ""
        raise StoreError(f"shard {missing[0]} of {count} is missing{more}; a merge takes every shard 0..{count - 1} "
                         f"(written by default as {example} and the like)")
    return ShardSet(get_kind(first.kind), dict(first.params), str(first.attrs.get("generator")), count,
                    tuple(shards[k] for k in range(count)))


def _relative(shard: Path, folder: Path) -> str:
    rel = os.path.relpath(os.path.abspath(shard), os.path.abspath(folder))
    if rel.startswith("..") or os.path.isabs(rel):
        raise InvalidParameter("out", f"shard {shard} is not in the merged file's folder {folder} or below it, "
                                      "where its virtual arrays find the shards by relative name",
                               hint="write {out} into a folder above the shards, or use {copy}")
    return Path(rel).as_posix()


def merge_shards(paths: Sequence[str | os.PathLike] | ShardSet, out: str | os.PathLike, *, copy: bool = False,
                 force: bool = False, workers: int = 1, progress: Callable[[int], None] | None = None) -> MergeResult:
    """Merge a complete set of shards (their paths, or the :class:`ShardSet` :func:`check_shards` made of
    them) into ``out`` (atomically): virtual arrays over them, or (``copy``) a self-contained file equal,
    byte for byte, to the one-machine file of the same spec."""
    out = Path(out)
    shard_set = paths if isinstance(paths, ShardSet) else check_shards(paths)
    check_target(out, force)
    for s in shard_set.shards:
        if s.path.resolve() == out.resolve():
            raise InvalidParameter("out", f"{out} is one of the shards")
    kind = shard_set.kind
    if copy:
        if shard_set.generator != f"coordconv_data {__version__}":
            raise StoreError(f"the shards were written by {shard_set.generator!r}, this is coordconv_data "
                             f"{__version__}: a copy would record this version as its generator",
                             hint="merge them without {copy} (virtual arrays), or write them again")
        spec = kind.spec_from_params(shard_set.params)
        try:
            kind.generator.write_file(spec, out, workers=workers, force=force, progress=progress,
                                      source=shard_set.source())
        finally:
            close_shards()
    else:
        _write_virtual(shard_set, out, force)
    lengths = summarize(out).lengths  # the merged file as a reader sees it: every shard checked
    return MergeResult(out, kind.name, lengths, shard_set.count, copy)


def _write_virtual(shard_set: ShardSet, out: Path, force: bool) -> None:
    first = shard_set.shards[0].summary
    names = [_relative(s.path, out.parent) for s in shard_set.shards]
    attrs = {k: v for k, v in first.attrs.items()
             if k not in SHARD_ATTRS and k not in ("dataset", "schema_version", "layout", "seed", "params")}
    attrs[VIRTUAL_SOURCES] = json.dumps(names)
    attrs[SHARDS] = json.dumps([{"file": name, "index": s.index, "digest": s.digest, "bytes": s.path.stat().st_size}
                                for name, s in zip(names, shard_set.shards)])
    lengths = shard_set.lengths
    with DatasetWriter(out, shard_set.kind.name, seed=first.seed, params=shard_set.params, attrs=attrs,
                       layout=first.layout, force=force) as w:
        assert w.file is not None
        for split in first.splits:
            n = lengths.get(split, 0)
            with h5py.File(first.path, "r") as f:
                arrays = {name: (f[key].shape[1:], f[key].dtype) for name, key in first.splits[split].items()}
            for name, (sample, dtype) in arrays.items():
                key = f"{split}/{name}"
                if n == 0:
                    w.create(key, (0, *sample), dtype)
                    continue
                layout = h5py.VirtualLayout(shape=(n, *sample), dtype=dtype)
                for rel, s in zip(names, shard_set.shards):
                    a, b = s.ranges[split]
                    if b > a:
                        layout[a:b] = h5py.VirtualSource(rel, key, shape=(b - a, *sample), dtype=dtype)
                w.file.create_virtual_dataset(key, layout)
