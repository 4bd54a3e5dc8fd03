"""The HDF5 file format: the validating reader (and, re-exported from :mod:`.writer`, the atomic writer).

Native layout (``schema_version`` 1)::

    /                      attrs: dataset, schema_version, generator, seed, params (JSON), layout,
                                  and dataset-specific ones
    /train/<array>         first axis is the sample; chunks hold whole samples
    /test/<array>

The Not-so-Clevr ``original`` layout reproduces the files of the paper's generator instead: flat
keys ``train_<field>`` / ``val_<field>`` at the root. Ours carry the same root attributes as a native
file (plus ``layout = "original"``); a file written by the original script has none and is still
recognised by its keys.

:func:`summarize` validates a file by content before anyone uses it: the types and values of its
attributes, its links (an external link, which would pull an array from any path, is refused; a
virtual dataset may map only this file or the files its ``virtual_sources`` attribute names, beside
it), each array's rank, per-sample shape, dtype and channel count against its kind's schema
(:mod:`coordconv_data.kinds`), value ranges where the schema has them (class ids, palette indices,
locations inside the canvas), from metadata, small arrays and a bounded sample of large ones, and what
the kind's arrays must agree on, on a few samples. :func:`check_content` then checks every value and
every sample, once, before a run relies on them (what training and evaluation do). Every function here raises
:class:`StoreError` with a one-line message for a file that is missing, not HDF5, of another kind,
incomplete or malformed, so callers can show it to a user as it is.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from .errors import CoordDataError
from .generate.shards import Shard
from .kinds import KINDS, get_kind
from .kinds.base import AttrSpec, MalformedFile, check_attr_types, check_range, check_values, validate_split, whole_slices
from .writer import (  # noqa: F401  (the writer's names, where callers have always found them)
    CHUNK_TARGET_BYTES,
    LAYOUTS,
    SCHEMA_VERSION,
    DatasetWriter,
    DiskFull,
    NotEnoughSpace,
    StoreError,
    atomic_write_bytes,
    check_target,
    chunk_shape,
    set_attrs,
    temporary_sibling,
)

SPLITS = ("train", "test")

__all__ = ["FileSummary", "summarize", "summary_of", "check_content", "read_split", "iter_datasets", "StoreError",
           "MalformedFile",
           "DatasetWriter", "atomic_write_bytes", "check_target", "SCHEMA_VERSION", "SPLITS", "LAYOUTS"]


@dataclass
class FileSummary:
    """What a validated file holds: enough to describe it and to find its arrays."""

    path: Path
    kind: str
    layout: str
    schema_version: int | None
    seed: int | None
    params: dict[str, Any]
    attrs: dict[str, Any]
    splits: dict[str, dict[str, str]]  # split -> array name -> dataset path in the file
    lengths: dict[str, int]  # split -> sample count
    symbols: dict[str, int] = field(default_factory=dict)  # shape symbols bound by the file (S: canvas side, ...)
    content_checked: bool = False  # every value and sample checked (check_content), not only a sample

    def read_arrays(self, split: str, keys: dict[str, str], stop: int | None = None) -> dict[str, np.ndarray]:
        """The first ``stop`` samples (all by default) of arrays ``keys`` (name -> key) of ``split``."""
        try:
            with h5py.File(self.path, "r") as f:
                return {name: f[key][:stop] for name, key in keys.items()}
        except OSError as e:
            raise StoreError(f"{self.path} is corrupt: cannot read split {split!r} ({str(e).splitlines()[0]})") \
                from None


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _open(path: str | os.PathLike) -> h5py.File:
    p = Path(path)
    if not p.exists():
        raise StoreError(f"{p}: no such file")
    if p.is_dir():
        raise StoreError(f"{p} is a folder, not a data file")
    try:
        is_hdf5 = h5py.is_hdf5(p)
    except OSError as e:
        raise StoreError(f"{p}: cannot read ({e.strerror or e})") from None
    if not is_hdf5:
        raise StoreError(f"{p} is not an HDF5 file")
    try:
        return h5py.File(p, "r")
    except OSError as e:
        raise StoreError(f"{p}: cannot open as HDF5 ({str(e).splitlines()[0]})") from None


#: The root attributes every file of ours carries (a file of the original script has none), and those
#: of a shard (:mod:`coordconv_data.generate.shards`) and of a merged file (:mod:`coordconv_data.merge`).
ROOT_ATTRS = {"dataset": AttrSpec("text"), "layout": AttrSpec("text"), "schema_version": AttrSpec("int", lo=0),
              "generator": AttrSpec("text"), "seed": AttrSpec("int", lo=-1), "params": AttrSpec("json"),
              "shard_index": AttrSpec("int", lo=0), "shard_count": AttrSpec("int", lo=1),
              "shard_ranges": AttrSpec("json"), "shard_digest": AttrSpec("text"), "shards": AttrSpec("json")}
VIRTUAL_SOURCES = "virtual_sources"  # root attribute: the files beside this one its virtual datasets may map
SHARDS = "shards"  # root attribute of a merged file: the shards its virtual arrays map, as they were merged


def plain_relative(name: Any) -> bool:
    """Whether ``name`` is a relative path of plain parts (``a.h5``, ``lanes-shards/a.h5``): a file in
    a folder or below it, never above it (no ``..``), never absolute."""
    if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name:
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def _virtual_sources(p: Path, f: h5py.File) -> list[str]:
    raw = f.attrs.get(VIRTUAL_SOURCES)
    if raw is None:
        return []
    try:
        names = json.loads(_decode(raw))
    except (TypeError, ValueError):
        names = None
    if not isinstance(names, list) or not all(plain_relative(n) for n in names):
        raise MalformedFile(f"{p} is malformed: attribute {VIRTUAL_SOURCES!r} must be a JSON list of file names "
                            "(files in the same folder or below it)")
    return names


def _check_links(p: Path, f: h5py.File) -> None:
    """Refuse external links anywhere in the file, and virtual datasets that map other files than this
    one and those its ``virtual_sources`` attribute names (relative names: files in the same folder or
    below it); every file named there must exist (a missing source would read as zeros)."""
    names = _virtual_sources(p, f)
    allowed_files = set(names)
    for name in names:
        what = _not_a_file(p.parent / name)
        if what:
            raise StoreError(f"{p}: {name}, which its arrays map, {what}", hint="restore it, or make the file again")

    def walk(group: h5py.Group, prefix: str) -> None:
        for name in group:
            link = group.get(name, getlink=True)
            where = f"{prefix}{name}"
            if isinstance(link, h5py.ExternalLink):
                raise MalformedFile(f"{p} is malformed: '{where}' is an external link to {link.filename}:{link.path}; "
                                    "data files hold their own arrays (external links are refused)")
            if isinstance(link, h5py.SoftLink):
                continue  # a name for an object of this file; it is reached through its own path too
            obj = group.get(name)
            if isinstance(obj, h5py.Group):
                walk(obj, where + "/")
            elif isinstance(obj, h5py.Dataset) and obj.is_virtual:
                for source in obj.virtual_sources():
                    target = source.file_name
                    if target != "." and (target not in allowed_files or not plain_relative(target)):
                        raise MalformedFile(
                            f"{p} is malformed: virtual array '{where}' maps {target!r}, which is not this file or "
                            f"one its {VIRTUAL_SOURCES!r} attribute names beside it")

    walk(f, "")


def _not_a_file(path: Path) -> str | None:
    """Why ``path`` cannot be read as a data file (``is missing``, ``is a folder``...), or None."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "is missing"
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    return None


def _attr_json(attrs: dict[str, Any], name: str) -> Any:
    try:
        return json.loads(attrs[name])
    except (TypeError, ValueError):
        return None


def _check_shard(p: Path, kind: Any, attrs: dict[str, Any], params: dict[str, Any], lengths: dict[str, int]) -> None:
    """A shard's attributes agree with each other, with its parameters and with its arrays: it holds the
    samples its ``shard_ranges`` says, which are its share of the whole dataset's."""
    have = [a for a in ("shard_index", "shard_count", "shard_ranges") if a in attrs]
    if not have:
        return
    if len(have) < 3:
        missing = next(a for a in ("shard_index", "shard_count", "shard_ranges") if a not in attrs)
        raise MalformedFile(f"{p} is malformed: it has shard attributes but not {missing!r}")
    if not kind.growable:
        raise MalformedFile(f"{p} is malformed: {kind.name} files are never shards (its size is fixed)")
    if attrs["shard_index"] >= attrs["shard_count"]:
        raise MalformedFile(f"{p} is malformed: shard_index {attrs['shard_index']} is not below shard_count "
                            f"{attrs['shard_count']}")
    try:
        expected = kind.split_ranges(params, Shard(attrs["shard_index"], attrs["shard_count"]))
    except CoordDataError as e:
        raise MalformedFile(f"{p} is malformed: its params do not describe a {kind.name} dataset ({e})") from None
    ranges = _attr_json(attrs, "shard_ranges")
    want = {split: list(r) for split, r in expected.items()}
    if ranges != want:
        raise MalformedFile(f"{p} is malformed: shard_ranges is {attrs['shard_ranges']}; shard {attrs['shard_index']} "
                            f"of {attrs['shard_count']} of its dataset holds {json.dumps(want)}")
    for split, (a, b) in expected.items():
        if lengths.get(split, 0) != b - a:
            raise MalformedFile(f"{p} is corrupt: split {split!r} holds {lengths.get(split, 0)} samples; as shard "
                                f"{attrs['shard_index']} of {attrs['shard_count']} it holds samples {a}..{b - 1} "
                                f"({b - a})")


def _check_merged(p: Path, attrs: dict[str, Any]) -> None:
    """Every shard a merged file maps is there and is the file that was merged: of the same dataset
    (kind, parameters, generator), the same share, the same content digest and size. One line naming the
    first shard that is missing or changed."""
    record = _attr_json(attrs, SHARDS)
    if not isinstance(record, list) or not all(
            isinstance(e, dict) and plain_relative(e.get("file")) and isinstance(e.get("index"), int)
            and isinstance(e.get("digest"), str) and isinstance(e.get("bytes"), int) for e in record):
        raise MalformedFile(f"{p} is malformed: attribute {SHARDS!r} must be a JSON list of the shards it maps "
                            "(file, index, digest, bytes)")
    hint = "restore the shards it was merged from, or merge them again"
    params = _attr_json(attrs, "params")
    for e in record:
        path = p.parent / e["file"]
        name = e["file"]
        what = _not_a_file(path)
        if what:
            raise StoreError(f"{p}: shard {name} {what} (shard {e['index']} of {len(record)} of this merged file)",
                             hint=hint)
        size = path.stat().st_size
        try:
            with h5py.File(path, "r") as g:
                theirs = {k: _decode(v) for k, v in g.attrs.items()}
        except OSError as err:
            raise StoreError(f"{p}: shard {name} cannot be read ({str(err).splitlines()[0]})", hint=hint) from None
        changed = []
        if theirs.get("dataset") != attrs.get("dataset"):
            changed.append(f"it holds {theirs.get('dataset')!r} data")
        if _attr_json(theirs, "params") != params:
            changed.append("its parameters differ")
        if theirs.get("generator") != attrs.get("generator"):
            changed.append(f"it was written by {theirs.get('generator')!r}")
        if (theirs.get("shard_index"), theirs.get("shard_count")) != (e["index"], len(record)):
            changed.append(f"it is shard {theirs.get('shard_index')} of {theirs.get('shard_count')}")
        if theirs.get("shard_digest") != e["digest"]:
            changed.append("its content digest differs")
        if size != e["bytes"]:
            changed.append(f"it is {size} bytes, not {e['bytes']}")
        if changed:
            raise StoreError(f"{p}: shard {name} changed since it was merged ({'; '.join(changed)})", hint=hint)


def _detect_original(f: h5py.File) -> str | None:
    """The kind of a file in an original layout without attributes (the original script's), if any."""
    for kind in KINDS.values():
        if kind.detect_original(f):
            return kind.name
    return None


def summarize(path: str | os.PathLike, kind: str | None = None) -> FileSummary:
    """Open and validate a data file by content; raise :class:`StoreError` saying what is wrong.

    ``kind``, if given, is the dataset kind the caller needs (e.g. ``"not-so-clevr"``).
    """
    p = Path(path)
    try:
        with _open(p) as f:
            return _summarize(p, f, kind)
    except StoreError:
        raise
    except (OSError, RuntimeError, KeyError) as e:  # HDF5 errors reading a damaged file
        raise StoreError(f"{p} is corrupt: cannot read it ({str(e).splitlines()[0] if str(e) else type(e).__name__})") \
            from None


def _summarize(p: Path, f: h5py.File, kind: str | None) -> FileSummary:
    attrs = {k: _decode(v) for k, v in f.attrs.items()}
    check_attr_types(p, attrs, ROOT_ATTRS)
    if SHARDS in attrs:
        _check_merged(p, attrs)  # before any read through its virtual arrays
    _check_links(p, f)
    layout = attrs.get("layout", "native")
    found = attrs.get("dataset")
    if found is None:
        found = _detect_original(f)
        if found is None:
            raise StoreError(f"{p} is an HDF5 file but not a coordconv_data dataset (no 'dataset' attribute)")
        layout = "original"
    if found not in KINDS:
        raise StoreError(f"{p} holds dataset {found!r}, which this version does not know ({', '.join(sorted(KINDS))})")
    if kind is not None and found != kind:
        raise StoreError(f"{p} holds {found} data, not {kind}")
    version = attrs.get("schema_version")
    if version is not None and (not isinstance(version, int) or version > SCHEMA_VERSION):
        raise StoreError(
            f"{p} has schema version {version}; this version of coordconv_data reads up to {SCHEMA_VERSION} (upgrade it)"
        )
    spec = get_kind(found)
    check_attr_types(p, attrs, spec.attrs)
    if layout not in spec.layouts:
        raise StoreError(f"{p}: {found} has no {layout!r} layout (it has: {', '.join(spec.layouts)})")
    schema = spec.layouts[layout]
    params_raw = attrs.get("params", "{}")
    try:
        params = json.loads(params_raw) if isinstance(params_raw, str) else {}
    except json.JSONDecodeError:
        raise StoreError(f"{p}: attribute 'params' is not valid JSON") from None
    if not isinstance(params, dict):
        raise StoreError(f"{p}: attribute 'params' is not a JSON object")

    splits: dict[str, dict[str, str]] = {}
    if schema.flat:
        for split in schema.splits:
            names = {a.name: schema.key(split, a.name) for a in schema.arrays}
            names.update({a.name: schema.key(split, a.name) for a in schema.optional
                          if schema.key(split, a.name) in f})
            splits[split] = names
    else:
        for split in SPLITS:
            if split not in f:
                continue
            group = f[split]
            if not isinstance(group, h5py.Group):
                raise MalformedFile(f"{p} is malformed: '{split}' is an array, not a group of arrays")
            splits[split] = {name: f"{split}/{name}" for name in group}
        if not splits:
            raise StoreError(f"{p} has no 'train' or 'test' split")
    symbols = spec.symbols(attrs, params)
    try:
        spec.check_attrs(p, attrs, symbols)
    except MalformedFile as e:
        raise MalformedFile(str(e) if str(e).startswith(str(p)) else f"{p}: {e}") from None
    lengths: dict[str, int] = {}
    for split, arrays in splits.items():
        for a in schema.arrays:
            key = arrays.get(a.name)
            if key is None or key not in f:
                raise StoreError(f"{p} is incomplete: split {split!r} lacks array {a.name!r}")
        lengths[split] = validate_split(p, f, found, schema, split, arrays, symbols)
    _check_shard(p, spec, attrs, params, lengths)
    for split, arrays in splits.items():
        names = spec.consistency_arrays(arrays)
        for rows in spec.consistency_sample(lengths[split]):
            _check_rows(p, spec, schema, split, arrays, symbols, attrs, {n: f[arrays[n]][rows] for n in names},
                        rows.start or 0)
    seed = attrs.get("seed")
    return FileSummary(
        path=p,
        kind=found,
        layout=layout,
        schema_version=version,
        seed=None if not isinstance(seed, int) or seed == -1 else int(seed),
        params=params,
        attrs=attrs,
        splits=splits,
        lengths=lengths,
        symbols=symbols,
    )


def summary_of(source: str | os.PathLike | FileSummary, kind: str | None = None) -> FileSummary:
    """``source`` itself if it is a :class:`FileSummary` (a file validated already), else :func:`summarize` of it."""
    if isinstance(source, FileSummary):
        if kind is not None and source.kind != kind:
            raise StoreError(f"{source.path} holds {source.kind} data, not {kind}")
        return source
    return summarize(source, kind)


def _check_rows(p: Path, spec: Any, schema: Any, split: str, arrays: dict[str, str], symbols: dict[str, int],
                attrs: dict[str, Any], data: dict[str, np.ndarray], first: int) -> None:
    """Value ranges, then the kind's consistency, of samples ``first...`` of one split (``data``: arrays read)."""
    for name, values in data.items():
        a = schema.spec(name)
        if a is not None:
            lo, hi = a.bounds(symbols)
            if lo is not None or hi is not None:
                check_range(p, arrays[name], a, values, lo, hi, spec.name, first=first)
    spec.check_consistency(p, data, arrays, split, symbols, attrs, first)


def check_content(source: str | os.PathLike | FileSummary, kind: str | None = None) -> FileSummary:
    """Every check of :func:`summarize` on every sample: the value range of every array in full (large
    ones too, read in slices of bounded memory) and the kind's consistency checks on every sample.
    What a run does once before its first step, so that a bad value in a chunk the opening sample
    skipped is one line now instead of a crash mid-run. Returns the summary (validated now when
    ``source`` is a path), marked ``content_checked``."""
    summary = summary_of(source, kind)
    if summary.content_checked:
        return summary
    spec = get_kind(summary.kind)
    schema = spec.layouts[summary.layout]
    p = summary.path
    try:
        with h5py.File(p, "r") as f:
            for split, arrays in summary.splits.items():
                together = spec.consistency_arrays(arrays)  # read once a slice, for ranges and consistency
                row_bytes = 0
                for name, key in arrays.items():
                    ds = f[key]
                    a = schema.spec(name)
                    if name in together:
                        row_bytes += int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize
                    elif a is not None:
                        check_values(p, key, a, ds, summary.symbols, summary.kind, full=True)
                for rows in whole_slices(summary.lengths[split], row_bytes):
                    _check_rows(p, spec, schema, split, arrays, summary.symbols, summary.attrs,
                                {n: f[arrays[n]][rows] for n in together}, rows.start)
    except StoreError:
        raise
    except (OSError, RuntimeError, KeyError) as e:
        raise StoreError(f"{p} is corrupt: cannot read it ({str(e).splitlines()[0] if str(e) else type(e).__name__})") \
            from None
    summary.content_checked = True
    return summary


def read_split(source: str | os.PathLike | FileSummary, split: str, kind: str | None = None,
               names: tuple[str, ...] | None = None, stop: int | None = None) -> dict[str, np.ndarray]:
    """Read one split's arrays (the first ``stop`` samples, or all) into memory, after validation
    (``source``: a file, validated now, or the :class:`FileSummary` of one validated before).

    Small splits are fastest read once: HDF5 fancy indexing per batch costs far more.
    """
    summary = summary_of(source, kind)
    if split not in summary.splits:
        raise StoreError(f"{summary.path} has no split {split!r} (it has: {', '.join(summary.splits)})")
    wanted = summary.splits[split]
    if names is not None:
        missing = [n for n in names if n not in wanted]
        if missing:
            raise StoreError(f"{summary.path}: split {split!r} lacks {', '.join(missing)}")
        wanted = {n: wanted[n] for n in names}
    return summary.read_arrays(split, wanted, stop)


def iter_datasets(f: h5py.File) -> Iterator[tuple[str, h5py.Dataset]]:
    """Every dataset in a file, in a stable order."""
    out: list[tuple[str, h5py.Dataset]] = []
    f.visititems(lambda name, obj: out.append((name, obj)) if isinstance(obj, h5py.Dataset) else None)
    return iter(sorted(out, key=lambda t: t[0]))
