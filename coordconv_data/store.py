"""The HDF5 file format: an atomic writer, the dataset kinds it knows, and a validating reader.

Native layout (``schema_version`` 1)::

    /                      attrs: dataset, schema_version, generator, seed, params (JSON), layout,
                                  and dataset-specific ones
    /train/<array>         first axis is the sample; chunks hold whole samples
    /test/<array>

The Not-so-Clevr ``original`` layout reproduces the files of the paper's generator instead: flat
keys ``train_<field>`` / ``val_<field>`` at the root. Ours carry the same root attributes as a native
file (plus ``layout = "original"``); a file written by the original script has none and is still
recognised by its keys.

Every function here raises :class:`StoreError` with a one-line message for a file that is missing,
not HDF5, of another kind, or incomplete, so callers can show it to a user as it is.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import h5py
import numpy as np

from . import __version__
from .errors import CoordDataError

SCHEMA_VERSION = 1
SPLITS = ("train", "test")
LAYOUTS = ("native", "original")

# A chunk holds whole samples and is sized for HDF5's sweet spot: big enough that per-chunk overhead
# vanishes, small enough that reading one sample decompresses little (DESIGN: 64 KiB to 1 MiB).
CHUNK_TARGET_BYTES = 256 * 1024


class StoreError(CoordDataError):
    """A data file is missing, unreadable, of the wrong kind, or incomplete (one-line message)."""


@dataclass(frozen=True)
class DatasetKind:
    """What the store requires of a file of one dataset kind.

    ``arrays`` are required in every split of a native file; ``original_fields`` (if the kind has an
    original layout) are required as ``train_<field>`` and ``val_<field>`` keys of such a file.
    """

    name: str
    arrays: tuple[str, ...]
    original_fields: tuple[str, ...] = ()
    original_splits: Mapping[str, str] = field(default_factory=dict)  # our split -> its key prefix
    original_optional: tuple[str, ...] = ()  # read when present (a file of the original script lacks them)


KINDS: dict[str, DatasetKind] = {}


def register_kind(kind: DatasetKind) -> DatasetKind:
    KINDS[kind.name] = kind
    return kind


register_kind(
    DatasetKind(
        "not-so-clevr",
        arrays=("images", "onehots", "locations"),
        original_fields=("image", "imagegray", "onehots", "locations", "normalized_locations"),
        original_splits={"train": "train", "test": "val"},
    )
)

# Sort-of-Clevr's original layout is what the paper's GAN code loads: one `train_x` of all images
# (its loader cuts off the last 10% as test), plus our per-object arrays (the original kept those in
# a pickle), so a file of the original script, `train_x` alone, is recognised too.
register_kind(
    DatasetKind(
        "sort-of-clevr",
        arrays=("images", "colors", "shapes", "centers"),
        original_fields=("x",),
        original_splits={"train": "train"},
        original_optional=("colors", "shapes", "centers"),
    )
)


def chunk_shape(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """Chunks of whole samples, about :data:`CHUNK_TARGET_BYTES` each."""
    sample_bytes = int(np.prod(shape[1:], dtype=np.int64)) * itemsize
    per_chunk = max(1, CHUNK_TARGET_BYTES // max(1, sample_bytes))
    return (max(1, min(shape[0], per_chunk)),) + tuple(shape[1:])


def check_target(path: Path, force: bool) -> None:
    """Raise :class:`StoreError` unless a new file may be written at ``path``."""
    path = Path(path)
    if path.is_dir():
        raise StoreError(f"output {path} is a folder; give a file name")
    if path.exists() and not force:
        raise StoreError(f"{path} already exists; use --force to replace it")
    parent = path.parent
    if not parent.is_dir():
        raise StoreError(f"folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(f"folder {parent} is not writable")


def temporary_sibling(path: Path) -> Path:
    """A new hidden temporary file beside ``path``, so that the final rename stays on one filesystem."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise StoreError(f"cannot write in folder {path.parent}: {e.strerror or e}") from None
    os.close(fd)
    # mkstemp makes the file private (0600); the result should get the permissions of any new file.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return Path(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once: readers see the old file or the new, never half."""
    path = Path(path)
    tmp = temporary_sibling(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _place(tmp: Path, final: Path, force: bool) -> None:
    """Move a complete temporary file to its final name.

    Without ``force`` a hard link is the atomic "create only if absent": a file that appeared at the
    final name while we were writing is never clobbered.
    """
    if force:
        os.replace(tmp, final)
        return
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise StoreError(f"{final} already exists; use --force to replace it") from None
    except OSError:  # a filesystem without hard links: the race window is the check itself
        if final.exists():
            raise StoreError(f"{final} already exists; use --force to replace it") from None
        os.replace(tmp, final)
        return
    os.unlink(tmp)


class DatasetWriter:
    """Write one dataset file atomically.

    Use as a context manager. Everything goes to a hidden temporary file in the target folder; it is
    renamed to ``path`` only when the ``with`` block ends without an exception. A failure removes
    the temporary file and leaves any existing file at ``path`` untouched.

    Datasets are created with ``track_times=False`` so that the same content gives the same bytes.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        kind: str,
        *,
        seed: int | None,
        params: Mapping[str, Any],
        attrs: Mapping[str, Any] | None = None,
        layout: str = "native",
        force: bool = False,
    ) -> None:
        if kind not in KINDS:
            raise StoreError(f"unknown dataset kind {kind!r}; known: {', '.join(sorted(KINDS))}")
        if layout not in LAYOUTS:
            raise StoreError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
        self.path = Path(path)
        self.kind = kind
        self.layout = layout
        self.force = force
        self._root_attrs: dict[str, Any] = {
            "dataset": kind,
            "schema_version": SCHEMA_VERSION,
            "generator": f"coordconv_data {__version__}",
            "layout": layout,
            "seed": -1 if seed is None else int(seed),
            "params": json.dumps(dict(params), sort_keys=True),
        }
        self._root_attrs.update(attrs or {})
        self._tmp: Path | None = None
        self.file: h5py.File | None = None

    def __enter__(self) -> "DatasetWriter":
        check_target(self.path, self.force)
        self._tmp = temporary_sibling(self.path)
        try:
            self.file = h5py.File(self._tmp, "w")
            set_attrs(self.file, self._root_attrs)
        except BaseException:
            self._discard()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._discard()
            return
        try:
            assert self.file is not None and self._tmp is not None
            self.file.close()
            _place(self._tmp, self.path, self.force)
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except Exception:  # already broken: the file is going away regardless
                pass
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)

    def create(
        self,
        name: str,
        shape: tuple[int, ...],
        dtype: Any,
        *,
        compression: str | None = None,
        level: int = 4,
        shuffle: bool | None = None,
        chunks: tuple[int, ...] | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> h5py.Dataset:
        """Create ``name`` (e.g. ``"train/images"``), chunked by whole samples, for streaming writes.

        ``compression`` is ``None``, ``"gzip"`` (at ``level``) or ``"lzf"``; ``shuffle`` defaults
        to on for multi-byte dtypes. gzip is the portable choice: every HDF5 reader has it.
        """
        assert self.file is not None, "use DatasetWriter as a context manager"
        dtype = np.dtype(dtype)
        if chunks is None and shape[0] > 0:
            chunks = chunk_shape(shape, dtype.itemsize)
        opts: dict[str, Any] = {}
        if shuffle is None:
            # Shuffle groups equal bytes of neighbouring values: it helps multi-byte numbers.
            shuffle = dtype.itemsize > 1
        if compression == "gzip":
            opts = {"compression": "gzip", "compression_opts": level, "shuffle": shuffle}
        elif compression == "lzf":
            opts = {"compression": "lzf", "shuffle": shuffle}
        elif compression is not None:
            raise ValueError(f"unknown compression {compression!r}; use None, 'gzip' or 'lzf'")
        ds = self.file.create_dataset(
            name, shape=shape, dtype=dtype, chunks=chunks if shape[0] > 0 else None,
            track_times=False, **opts
        )
        set_attrs(ds, attrs or {})
        return ds

    def write(self, name: str, data: np.ndarray, **kwargs: Any) -> h5py.Dataset:
        """Create ``name`` and fill it with ``data`` in one go."""
        data = np.asarray(data)
        ds = self.create(name, data.shape, data.dtype, **kwargs)
        if data.size:
            ds[...] = data
        return ds

    def set_attrs(self, name: str, attrs: Mapping[str, Any]) -> None:
        assert self.file is not None
        obj = self.file.require_group(name) if name not in self.file else self.file[name]
        set_attrs(obj, attrs)


def set_attrs(obj: h5py.HLObject, attrs: Mapping[str, Any]) -> None:
    for key, value in attrs.items():
        if isinstance(value, (dict, list, tuple)) and not _is_numeric_sequence(value):
            value = json.dumps(value)
        obj.attrs[key] = value


def _is_numeric_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in value
    )


# --------------------------------------------------------------------------------------------------
# Reading


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
        return value.decode()
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
    """The kind of a file in an original layout (ours or the original script's), if it is one."""
    for kind in KINDS.values():
        if kind.original_fields and all(
            f"{prefix}_{fld}" in f for prefix in kind.original_splits.values() for fld in kind.original_fields
        ):
            return kind.name
    return None


def summarize(path: str | os.PathLike, kind: str | None = None) -> FileSummary:
    """Open and validate a data file; raise :class:`StoreError` saying what is wrong.

    ``kind``, if given, is the dataset kind the caller needs (e.g. ``"not-so-clevr"``).
    """
    p = Path(path)
    with _open(p) as f:
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
        spec = KINDS[found]
        splits: dict[str, dict[str, str]] = {}
        if layout == "original":
            if not spec.original_fields:
                raise StoreError(f"{p}: {found} has no original layout")
            for split, prefix in spec.original_splits.items():
                splits[split] = {fld: f"{prefix}_{fld}" for fld in spec.original_fields}
                splits[split].update({fld: f"{prefix}_{fld}" for fld in spec.original_optional
                                      if f"{prefix}_{fld}" in f})
        else:
            for split in SPLITS:
                if split not in f:
                    continue
                splits[split] = {name: f"{split}/{name}" for name in f[split]}
            if not splits:
                raise StoreError(f"{p} has no 'train' or 'test' split")
        lengths: dict[str, int] = {}
        for split, arrays in splits.items():
            required = spec.original_fields if layout == "original" else spec.arrays
            for name in required:
                key = arrays.get(name)
                if key is None or key not in f or not isinstance(f[key], h5py.Dataset):
                    raise StoreError(f"{p} is incomplete: split {split!r} lacks array {name!r}")
            sizes = {name: f[key].shape[0] if f[key].shape else 0 for name, key in arrays.items()}
            if len(set(sizes.values())) > 1:
                detail = ", ".join(f"{k}={v}" for k, v in sizes.items())
                raise StoreError(f"{p} is corrupt: split {split!r} arrays differ in length ({detail})")
            lengths[split] = next(iter(sizes.values()))
        params_raw = attrs.get("params", "{}")
        try:
            params = json.loads(params_raw) if isinstance(params_raw, str) else {}
        except json.JSONDecodeError:
            raise StoreError(f"{p}: attribute 'params' is not valid JSON") from None
        seed = attrs.get("seed")
        return FileSummary(
            path=p,
            kind=found,
            layout=layout,
            schema_version=version,
            seed=None if seed is None or seed == -1 else int(seed),
            params=params,
            attrs=attrs,
            splits=splits,
            lengths=lengths,
        )


def read_split(path: str | os.PathLike, split: str, kind: str | None = None,
               names: tuple[str, ...] | None = None, stop: int | None = None) -> dict[str, np.ndarray]:
    """Read one split's arrays (the first ``stop`` samples, or all) into memory.

    Small splits are fastest read once: HDF5 fancy indexing per batch costs far more.
    """
    summary = summarize(path, kind)
    if split not in summary.splits:
        raise StoreError(f"{summary.path} has no split {split!r} (it has: {', '.join(summary.splits)})")
    wanted = summary.splits[split]
    if names is not None:
        missing = [n for n in names if n not in wanted]
        if missing:
            raise StoreError(f"{summary.path}: split {split!r} lacks {', '.join(missing)}")
        wanted = {n: wanted[n] for n in names}
    with h5py.File(summary.path, "r") as f:
        return {name: f[key][:stop] for name, key in wanted.items()}


def iter_datasets(f: h5py.File) -> Iterator[tuple[str, h5py.Dataset]]:
    """Every dataset in a file, in a stable order."""
    out: list[tuple[str, h5py.Dataset]] = []
    f.visititems(lambda name, obj: out.append((name, obj)) if isinstance(obj, h5py.Dataset) else None)
    return iter(sorted(out, key=lambda t: t[0]))


register_kind(
    DatasetKind(
        "lanes",
        arrays=("images", "masks", "centers", "radii", "colors", "classes", "noise_bases", "noise_offsets"),
    )
)
