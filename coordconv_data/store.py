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

:func:`summarize` validates a file by content before anyone uses it: each array's rank, per-sample
shape, dtype and channel count against its kind's schema (:mod:`coordconv_data.kinds`), and value
ranges where the schema has them (class ids, palette indices, locations inside the canvas), from
metadata, small arrays and a bounded sample of large ones. Every function here raises
:class:`StoreError` with a one-line message for a file that is missing, not HDF5, of another kind,
incomplete or malformed, so callers can show it to a user as it is.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from .kinds import KINDS, get_kind
from .kinds.base import MalformedFile, validate_split
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

__all__ = ["FileSummary", "summarize", "summary_of", "read_split", "iter_datasets", "StoreError", "MalformedFile",
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
    )


def summary_of(source: str | os.PathLike | FileSummary, kind: str | None = None) -> FileSummary:
    """``source`` itself if it is a :class:`FileSummary` (a file validated already), else :func:`summarize` of it."""
    if isinstance(source, FileSummary):
        if kind is not None and source.kind != kind:
            raise StoreError(f"{source.path} holds {source.kind} data, not {kind}")
        return source
    return summarize(source, kind)


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
    try:
        with h5py.File(summary.path, "r") as f:
            return {name: f[key][:stop] for name, key in wanted.items()}
    except OSError as e:
        raise StoreError(f"{summary.path} is corrupt: cannot read split {split!r} ({str(e).splitlines()[0]})") \
            from None


def iter_datasets(f: h5py.File) -> Iterator[tuple[str, h5py.Dataset]]:
    """Every dataset in a file, in a stable order."""
    out: list[tuple[str, h5py.Dataset]] = []
    f.visititems(lambda name, obj: out.append((name, obj)) if isinstance(obj, h5py.Dataset) else None)
    return iter(sorted(out, key=lambda t: t[0]))
