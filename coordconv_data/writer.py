"""Writing files safely: atomic replacement, owned temporary files, free-space checks, full disks.

Every file this package writes (HDF5 datasets, PNGs, checkpoints, run files) goes to a hidden
temporary file in the target folder and is renamed into place only when complete, so an
interrupted or failed run never leaves a partial file under the final name and never destroys a
file it was not told to replace.

Temporary files carry their owner in their name: ``.<name>.cdtmp-<host>-<boot>-<pid>-<start>.<random>.tmp``
(a hash of the host name, of the boot id, the writing process's id and its start time). A process
killed outright (SIGKILL, power loss) cannot remove its temporary file; the next write into that
folder recognises it as stale, because its owner is no longer running (no process with that id, or
one started at another time, or an earlier boot of this host), and removes it. A temporary file of
a live process, or of another host, is never touched.

A full disk (``ENOSPC``, ``EDQUOT``, ``EFBIG``) while writing is turned into :class:`DiskFull`, a
one-line error naming the file; the temporary file is emptied first, so that HDF5's closing writes
succeed and nothing is left behind. Before a large write, :func:`check_free_space` refuses, in one
line, a file the target's filesystem cannot hold.

Outputs are only ever regular files: a target that exists as anything else (a device such as
``/dev/full``, a FIFO, a socket, a symbolic link) is refused, with or without ``force``, and so is a
target another live process is writing now (its temporary file is its claim on the name), so that a
second writer is refused before it does any work.

This module imports only numpy and h5py (and the errors module), so that the generators can use it
without importing the reader, the dataset kinds or anything else of the package.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import socket
import stat
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import h5py
import numpy as np

from . import __version__
from .errors import CoordDataError, InvalidParameter
from .resources import format_bytes

__all__ = [
    "SCHEMA_VERSION", "LAYOUTS", "CHUNK_TARGET_BYTES",
    "StoreError", "DiskFull", "NotEnoughSpace", "OutputInUse",
    "check_target", "output_file", "prepare_folder", "temporary_sibling", "live_writers", "remove_stale_temporaries",
    "remove_own_temporaries", "atomic_write_bytes",
    "check_free_space", "free_bytes", "format_bytes", "is_disk_full", "chunk_shape", "DatasetWriter",
    "set_attrs",
]

SCHEMA_VERSION = 1
LAYOUTS = ("native", "original")

# A chunk holds whole samples and is sized for HDF5's sweet spot: big enough that per-chunk overhead
# vanishes, small enough that reading one sample decompresses little (64 KiB to 1 MiB).
CHUNK_TARGET_BYTES = 256 * 1024

# Room left beside a file of the estimated size before a write is refused: HDF5's metadata and the
# estimate's own error (compressed arrays are estimated, not known).
SPACE_MARGIN_BYTES = 16 * 2**20

_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class StoreError(CoordDataError):
    """A data file is missing, unreadable, of the wrong kind, malformed, or cannot be written (one line)."""


class DiskFull(StoreError):
    """The disk (or a quota) filled up while writing; the partial file was removed.

    ``hdf5_failed`` is true when HDF5 itself met the full disk (rather than the writer's own check
    before a write): HDF5's objects of that file may then be left inconsistent, and a process should
    end soon without further HDF5 work (the CLI exits at once).
    """

    hdf5_failed = False


class NotEnoughSpace(StoreError):
    """A file was refused before any write because its filesystem cannot hold it."""


class OutputInUse(StoreError):
    """Another live process is writing the same file now (a runtime state, not a bad name)."""


# -- sizes ------------------------------------------------------------------------------------------

def free_bytes(folder: str | os.PathLike) -> int:
    """Bytes an unprivileged process may still write in ``folder``'s filesystem."""
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def check_free_space(path: str | os.PathLike, needed: int) -> None:
    """Raise :class:`NotEnoughSpace` (one line) unless ``path``'s folder can hold about ``needed`` bytes."""
    path = Path(path)
    try:
        free = free_bytes(path.parent)
    except OSError:  # a filesystem that cannot tell: let the write find out
        return
    if needed + SPACE_MARGIN_BYTES > free:
        raise NotEnoughSpace(
            f"{path} would need about {format_bytes(needed)} plus a margin of {format_bytes(SPACE_MARGIN_BYTES)}, "
            f"but its folder {path.parent} has {format_bytes(free)} free", field="out",
            hint="ask for less data ({n}) or write elsewhere ({out})"
        )


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says a disk or quota is full, from Python (``errno``) or from HDF5 (its message)."""
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS:
        return True
    text = str(exc)
    return any(f"errno = {e}," in text for e in _DISK_FULL_ERRNOS) or "No space left on device" in text


def _disk_full(path: Path, hdf5_failed: bool = False) -> DiskFull:
    error = DiskFull(f"disk full while writing {path}: nothing was written (free some space, or write elsewhere)")
    error.hdf5_failed = hdf5_failed
    return error


def _from_hdf5(exc: BaseException) -> bool:
    """Whether an error came out of HDF5 (h5py's messages carry HDF5's own wording)."""
    return "file write failed" in str(exc) or "HDF5" in str(exc) or type(exc).__module__.startswith("h5py")


def _free_now(folder: Path) -> int | None:
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def ensure_space(path: str | os.PathLike, nbytes: int) -> None:
    """Raise :class:`NotEnoughSpace` unless ``path``'s folder can take about ``nbytes`` more and the
    margin. Called before each part of a file is written, by the writer or by a worker that writes
    its own part, so that the disk is never met full."""
    path = Path(path)
    free = _free_now(path.parent)
    if free is not None and nbytes + SPACE_MARGIN_BYTES > free:
        raise NotEnoughSpace(
            f"stopped writing {path} before the disk filled up: its next part needs about "
            f"{format_bytes(nbytes)} plus a margin of {format_bytes(SPACE_MARGIN_BYTES)}, and "
            f"{format_bytes(free)} is free (nothing was written)", field="out",
            hint="free some space, or write elsewhere ({out})")


# -- targets ----------------------------------------------------------------------------------------

_FILE_TYPES = ((stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISFIFO, "FIFO"),
               (stat.S_ISSOCK, "socket"), (stat.S_ISLNK, "symbolic link"), (stat.S_ISDIR, "folder"))


def _not_a_regular_file(path: Path) -> str | None:
    """What ``path`` is when it exists as anything but a regular file (``"FIFO"``, ...); else None."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StoreError(f"{path}: cannot look at it ({e.strerror or e})") from None
    if stat.S_ISREG(mode):
        return None
    return next((what for test, what in _FILE_TYPES if test(mode)), "special file")


def refuse_non_regular(path: str | os.PathLike) -> None:
    """Raise :class:`StoreError` if ``path`` exists as anything but a regular file: nothing is ever
    written over a device, FIFO, socket or link, whatever ``force`` says."""
    path = Path(path)
    what = _not_a_regular_file(path)
    if what == "folder":
        raise StoreError(f"output {path} is a folder; give a file name", field="out")
    if what is not None:
        raise StoreError(f"{path} is a {what}, not a regular file: outputs are only ever written as regular files",
                         field="out", hint="choose another {out}")


def check_target(path: str | os.PathLike, force: bool, exclusive: bool = True) -> None:
    """Raise :class:`StoreError` unless a new file may be written at ``path`` (its folder must exist):
    nothing but a regular file there (replaced only with ``force``), and no live process writing it
    (unless not ``exclusive``: see :class:`DatasetWriter`)."""
    path = Path(path)
    refuse_non_regular(path)
    if path.exists() and not force:
        raise StoreError(f"{path} already exists", field="force", hint="use {force} to replace it")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise StoreError(f"{parent} is a file, not a folder")
    if not parent.is_dir():
        raise StoreError(f"folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(f"folder {parent} is not writable")
    if exclusive:
        _refuse_other_writers(path)


def output_file(out: str | os.PathLike | None, default_name: str, field: str = "out") -> Path:
    """The file an output option names: ``default_name`` in the current folder when ``out`` is None;
    ``default_name`` inside ``out`` when ``out`` ends with a path separator or is a folder; else ``out``.
    An empty ``out`` is refused (it names nothing)."""
    if out is None:
        return Path(default_name)
    text = os.fspath(out)
    if text == "":
        raise InvalidParameter(field, f"{field} must not be empty; give a file or a folder (ending in /)")
    if text.endswith(("/", os.sep)) or Path(text).is_dir():
        return Path(text) / default_name
    return Path(text)


def prepare_folder(folder: str | os.PathLike) -> list[Path]:
    """Create ``folder`` and any missing parents; return the folders created, outermost first.

    Raises :class:`StoreError` (one line) when a part of the path is a file or cannot be created.
    """
    folder = Path(folder)
    missing: list[Path] = []
    p = folder
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    if p.exists() and not p.is_dir():
        raise StoreError(f"cannot create folder {folder}: {p} is a file")
    created: list[Path] = []
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        except OSError as e:
            remove_empty_folders(created)
            raise StoreError(f"cannot create folder {d}: {e.strerror or e}") from None
        created.append(d)
    return created


def remove_empty_folders(created: list[Path]) -> None:
    """Undo :func:`prepare_folder` after a failure: remove the folders it made, innermost first, if empty."""
    for d in reversed(created):
        try:
            d.rmdir()
        except OSError:
            break


# -- temporary files and their owners ----------------------------------------------------------------

_TAG = re.compile(r"\.cdtmp-([0-9a-f]{8})-([0-9a-f]{8})-(\d+)-(\d+)\.[0-9a-z]+\.tmp$")


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def _start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot); None if there is none (or no /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


_HOST = _short_hash(socket.gethostname())
_BOOT = _short_hash(_boot_id())


def _owner_tag() -> str:
    pid = os.getpid()
    return f"cdtmp-{_HOST}-{_BOOT}-{pid}-{_start_time(pid) or 0}"


def _owner_alive(host: str, boot: str, pid: int, start: int) -> bool:
    """Whether the process that made a temporary file may still be writing it (when unsure: yes)."""
    if host != _HOST:
        return True  # another machine's file (a shared folder): not ours to judge
    if boot != _BOOT:
        return False  # written before this host last booted
    if not Path("/proc/self/stat").exists():  # no /proc: only the pid can be checked
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            return True
        return True
    now = _start_time(pid)
    return now is not None and (start == 0 or now == start)


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files in ``folder`` whose writer is gone; return what was removed."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _TAG.search(name) if name.startswith(".") else None
        if m is None:
            continue
        host, boot, pid, start = m.group(1), m.group(2), int(m.group(3)), int(m.group(4))
        if _owner_alive(host, boot, pid, start):
            continue
        p = Path(folder) / name
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def _is_mine(pid: int, start: int) -> bool:
    return pid == os.getpid() and start in (0, _start_time(pid) or 0)


def live_writers(path: str | os.PathLike) -> list[int]:
    """The ids of the other live processes writing ``path`` now (each holds a temporary file for it)."""
    path = Path(path)
    prefix = f".{path.name}."
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    pids = []
    for name in names:
        m = _TAG.search(name) if name.startswith(prefix) else None
        if m is None or name[len(prefix):].count(".") != 2:  # another file's temporary ("a.h5.x" of "a.h5")
            continue
        host, boot, pid, start = m.group(1), m.group(2), int(m.group(3)), int(m.group(4))
        if not _is_mine(pid, start) and _owner_alive(host, boot, pid, start):
            pids.append(pid)
    return sorted(set(pids))


def _refuse_other_writers(path: Path) -> None:
    writers = live_writers(path)
    if writers:
        raise OutputInUse(f"{path} is being written by another process (pid {writers[0]})", field="out",
                         hint="wait for it, or choose another {out}")


_OWN_TEMPORARIES: set[Path] = set()  # this process's temporary files that may still exist


def remove_own_temporaries() -> None:
    """Remove every temporary file this process made and has not renamed or removed yet: what a
    process that must end at once (a signal's deadline) leaves tidy. Safe from any thread: a file
    already renamed into place is not touched (its temporary name is gone)."""
    for tmp in list(_OWN_TEMPORARIES):
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _done_with(tmp: Path) -> None:
    _OWN_TEMPORARIES.discard(tmp)


def temporary_sibling(path: str | os.PathLike, exclusive: bool = True) -> Path:
    """A new hidden temporary file beside ``path`` (so the final rename stays on one filesystem),
    named after its owner; stale ones left in that folder by dead runs are removed first. Refused
    while another live process writes ``path``, unless not ``exclusive``."""
    path = Path(path)
    remove_stale_temporaries(path.parent)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{_owner_tag()}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
        except FileExistsError:
            continue
        except OSError as e:
            raise StoreError(f"cannot write in folder {path.parent}: {e.strerror or e}") from None
        os.close(fd)
        _OWN_TEMPORARIES.add(tmp)
        if not exclusive:
            return tmp
        try:  # two writers that started at once: each sees the other's claim, and neither goes on
            _refuse_other_writers(path)
        except StoreError:
            tmp.unlink(missing_ok=True)
            _done_with(tmp)
            raise
        return tmp
    raise StoreError(f"cannot create a temporary file in {path.parent}")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once: readers see the old file or the new, never half."""
    path = Path(path)
    refuse_non_regular(path)
    tmp = temporary_sibling(path)
    try:
        tmp.write_bytes(data)
        refuse_non_regular(path)
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if is_disk_full(e):
            raise _disk_full(path) from None
        raise
    finally:
        _done_with(tmp)


def _place(tmp: Path, final: Path, force: bool) -> None:
    """Move a complete temporary file to its final name.

    Without ``force`` a hard link is the atomic "create only if absent": a file that appeared at the
    final name while we were writing is never clobbered. Nothing but a regular file is ever replaced.
    """
    refuse_non_regular(final)
    if force:
        os.replace(tmp, final)
        _done_with(tmp)
        return
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise StoreError(f"{final} already exists", field="force", hint="use {force} to replace it") from None
    except OSError:  # a filesystem without hard links: the race window is the check itself
        if final.exists():
            raise StoreError(f"{final} already exists", field="force", hint="use {force} to replace it") from None
        os.replace(tmp, final)
        _done_with(tmp)
        return
    os.unlink(tmp)
    _done_with(tmp)


# -- HDF5 ---------------------------------------------------------------------------------------------

def chunk_shape(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """Chunks of whole samples, about :data:`CHUNK_TARGET_BYTES` each."""
    sample_bytes = int(np.prod(shape[1:], dtype=np.int64)) * itemsize
    per_chunk = max(1, CHUNK_TARGET_BYTES // max(1, sample_bytes))
    return (max(1, min(shape[0], per_chunk)),) + tuple(shape[1:])


@contextmanager
def _quiet_unraisable(only_disk_full: bool = False) -> Iterator[None]:
    """Silence "Exception ignored in ..." reports of h5py ids closing on a broken file (all of them,
    or only those that say the disk is full). h5py's Cython code prints their tracebacks through
    ``sys.excepthook`` and the rest through ``sys.unraisablehook``: both are filtered."""
    previous, previous_except = sys.unraisablehook, sys.excepthook

    def hook(unraisable: Any) -> None:
        if only_disk_full and not (unraisable.exc_value is not None and is_disk_full(unraisable.exc_value)):
            previous(unraisable)

    def except_hook(exc_type: Any, exc: Any, tb: Any) -> None:
        if only_disk_full and not (exc is not None and is_disk_full(exc)):
            previous_except(exc_type, exc, tb)

    sys.unraisablehook, sys.excepthook = hook, except_hook
    try:
        yield
    finally:
        sys.unraisablehook, sys.excepthook = previous, previous_except


@contextmanager
def _blocked_signals() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP for a moment (delivered after), so clean-up runs to its end."""
    import signal
    import threading

    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class DatasetWriter:
    """Write one dataset file atomically.

    Use as a context manager. Everything goes to a hidden temporary file in the target folder; it is
    renamed to ``path`` only when the ``with`` block ends without an exception. A failure (or an
    interrupt: KeyboardInterrupt, a signal turned into an exception) removes the temporary file and
    leaves any existing file at ``path`` untouched. A full disk becomes :class:`DiskFull`.

    ``expected_bytes``, when given, is checked against the target folder's free space before the
    temporary file is created (:class:`NotEnoughSpace`).

    ``exclusive=False`` writes even while another live process writes the same file: for writers that
    are known to write the same bytes (a cluster that runs a shard's task again after losing the
    worker that ran it, on another host whose temporary file nobody here can judge stale). The last
    complete file renamed into place wins; none is ever partial.

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
        expected_bytes: int | None = None,
        exclusive: bool = True,
    ) -> None:
        if layout not in LAYOUTS:
            raise StoreError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
        self.path = Path(path)
        self.kind = kind
        self.layout = layout
        self.force = force
        self.expected_bytes = expected_bytes
        self.exclusive = exclusive
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
        self._quiet: Any = None

    def __enter__(self) -> "DatasetWriter":
        check_target(self.path, self.force, self.exclusive)
        if self.expected_bytes is not None:
            check_free_space(self.path, self.expected_bytes)
        self._tmp = temporary_sibling(self.path, self.exclusive)
        # h5py reports a failed write's objects as "Exception ignored" while they are freed: the
        # one error that matters is raised from here.
        self._quiet = _quiet_unraisable(only_disk_full=True)
        self._quiet.__enter__()
        try:
            self.file = h5py.File(self._tmp, "w")
            set_attrs(self.file, self._root_attrs)
        except BaseException as e:
            self._discard()
            if is_disk_full(e):
                raise _disk_full(self.path, hdf5_failed=True) from None
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._discard()
            if exc is not None and not isinstance(exc, DiskFull) and is_disk_full(exc):
                raise _disk_full(self.path, hdf5_failed=_from_hdf5(exc)) from None
            return
        try:
            assert self.file is not None and self._tmp is not None
            self.file.close()
            _place(self._tmp, self.path, self.force)
        except BaseException as e:
            self._discard()
            if is_disk_full(e):
                raise _disk_full(self.path, hdf5_failed=True) from None
            raise
        finally:
            self._end_quiet()

    def _end_quiet(self) -> None:
        if self._quiet is not None:
            quiet, self._quiet = self._quiet, None
            quiet.__exit__(None, None, None)

    def ensure_space(self, nbytes: int) -> None:
        """Raise :class:`NotEnoughSpace` (the partial file is then removed) unless about ``nbytes`` more
        and the margin can be written: called before each block, so that HDF5 itself practically never
        meets a full disk. The disk is not full yet, and the message says so."""
        ensure_space(self.path, nbytes)

    def _discard(self) -> None:
        """Remove the temporary file, whatever state HDF5 is in.

        The file is emptied before HDF5 closes it: the space it held comes back, so the writes HDF5
        makes while closing succeed even on a full disk (they land in an unlinked, sparse file).
        """
        with _blocked_signals(), _quiet_unraisable():
            if self._tmp is not None:
                try:
                    os.truncate(self._tmp, 0)
                except OSError:
                    pass
            if self.file is not None:
                try:
                    self.file.close()
                except Exception:  # already broken: the file is going away regardless
                    pass
                self.file = None
            if self._tmp is not None:
                self._tmp.unlink(missing_ok=True)
                _done_with(self._tmp)
        self._end_quiet()

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
        allocate: bool = False,
    ) -> h5py.Dataset:
        """Create ``name`` (e.g. ``"train/images"``), chunked by whole samples, for streaming writes.

        ``compression`` is ``None``, ``"gzip"`` (at ``level``) or ``"lzf"``; ``shuffle`` defaults
        to on for multi-byte dtypes. gzip is the portable choice: every HDF5 reader has it.
        ``allocate`` (uncompressed only) places every chunk in the file now, unfilled, so that other
        processes can write chunks straight into the temporary file (:meth:`chunk_offsets`).
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
        if allocate and shape[0] > 0:
            if compression is not None:
                raise ValueError("only uncompressed datasets can be allocated for direct writes")
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
            opts["dcpl"] = dcpl
        ds = self.file.create_dataset(
            name, shape=shape, dtype=dtype, chunks=chunks if shape[0] > 0 else None,
            track_times=False, **opts
        )
        set_attrs(ds, attrs or {})
        return ds

    @property
    def temporary_path(self) -> Path:
        """The file being written (renamed to ``path`` at the end): where direct chunk writes go."""
        assert self._tmp is not None, "use DatasetWriter as a context manager"
        return self._tmp

    @staticmethod
    def chunk_offsets(ds: h5py.Dataset) -> np.ndarray:
        """Byte offset in the file of each chunk (in sample order) of a dataset made with ``allocate``."""
        rows = ds.chunks[0]
        tail = (0,) * (ds.ndim - 1)
        return np.array([ds.id.get_chunk_info_by_coord((k * rows, *tail)).byte_offset
                         for k in range(-(-ds.shape[0] // rows))], dtype=np.int64)

    def write(self, name: str, data: np.ndarray, **kwargs: Any) -> h5py.Dataset:
        """Create ``name`` and fill it with ``data`` in one go."""
        data = np.asarray(data)
        ds = self.create(name, data.shape, data.dtype, **kwargs)
        if data.size:
            ds[...] = data
        return ds

    def set_root_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Add root attributes (known only once the arrays are written, such as a content digest)."""
        assert self.file is not None
        set_attrs(self.file, attrs)

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
