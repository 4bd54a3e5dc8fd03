"""The run folder: one live run at a time, every file written atomically, checkpoints that run no code.

A run folder holds ``config.json`` (the options, the data file's identity, versions), ``metrics.csv``
(one row per epoch and split), ``last.pt`` (everything needed to continue), ``best.pt`` (the selected
epoch's model), ``curves.png`` and the task's pictures. Each is replaced whole (temporary file, then
rename), so a reader or a killed run never sees half a file. With the tensorboard logger it also holds
TensorBoard's event files: append-only records, each with its checksum (see :mod:`.loggers`).

Claiming: a run holds an exclusive ``flock`` on the folder itself for its whole life; the kernel
drops it when the process ends, however it ends. A second run into a folder whose run still lives is
refused. A folder whose run died before its first epoch ended (``config.json`` and no ``last.pt``)
can be resumed (it starts over) or used again as ``--out``.

Checkpoints hold tensors and plain containers only, and are read with ``torch.load(...,
weights_only=True)``: a file planted in a run folder cannot run code.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..models import is_model, model_info
from ..store import atomic_write_bytes
from .errors import TrainError
from .options import RUN_FORMAT

if TYPE_CHECKING:
    from .options import TrainConfig

__all__ = ["RunDir", "FORMAT", "RUN_FILES", "load_checkpoint"]

FORMAT = RUN_FORMAT  # in config.json and every checkpoint
CHECKPOINTS = ("last.pt", "best.pt")
RUN_FILES = ("config.json", "metrics.csv", "last.pt", "best.pt", "curves.png", "predictions.png")


EVENT_FILES = "events.out.tfevents."  # TensorBoard's event files (--logger tensorboard), in the run folder itself


def _ours(name: str) -> bool:
    return name in RUN_FILES or (name.startswith("samples_") and name.endswith(".png")) or (
        name.startswith(".") and name.endswith(".tmp")) or (  # a temporary file of ours left by a kill
        name.startswith(EVENT_FILES))


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", arch: str | None = None) -> dict[str, Any]:
    """A checkpoint of ``coorddata train``, read without running any code it might hold.

    Raises :class:`TrainError` (one line naming the file) for a file that is unreadable, holds
    anything but tensors and plain containers, is not ours, or holds another arch than ``arch``.
    """
    path = Path(path)
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise TrainError(f"{path}: not a coordconv_data checkpoint (it holds objects other than tensors and plain "
                         "containers; refused without loading them)") from None
    except Exception as e:  # a damaged file fails in many ways (EOFError, RuntimeError, IndexError, ...)
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TrainError(f"{path}: not a readable checkpoint ({first})") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT or not isinstance(ck.get("arch"), str) or "model" not in ck:
        raise TrainError(f"{path}: not a checkpoint of this version of coordconv_data (no {FORMAT!r} format, arch "
                         "and model)")
    if arch is not None and ck["arch"] != arch:
        raise TrainError(f"{path} holds a {ck['arch']} model, but the run is of {arch}")
    return ck


class RunDir:
    """A run folder, claimed by this process (see the module docstring)."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self._fd = fd

    # -- claiming --------------------------------------------------------------------------------

    @staticmethod
    def _lock(path: Path) -> int:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise TrainError(f"{path} is in use by a running training run", field="out",
                             hint="wait for it, or choose another {out}") from None
        return fd

    @staticmethod
    def state(path: str | os.PathLike) -> str:
        """``missing``, ``empty``, ``started`` (died before its first epoch ended), ``run`` (has
        ``last.pt``) or ``foreign`` (holds files that are not a run's)."""
        p = Path(path)
        if not p.exists():
            return "missing"
        if not p.is_dir():
            return "foreign"
        names = [e.name for e in p.iterdir()]
        if not names:
            return "empty"
        if not all(_ours(n) for n in names):
            return "foreign"
        if "last.pt" in names:
            return "run"
        if "config.json" in names:
            return "started"
        return "foreign"

    @classmethod
    def check_new(cls, path: str | os.PathLike) -> None:
        """Refuse now, before any work, an ``--out`` that a new run could not claim."""
        p = Path(path)
        state = cls.state(p)
        if state == "run":
            raise TrainError(f"{p} holds a run already", field="out",
                             hint=f"continue it with {{resume}} {p}, or choose another {{out}}")
        if state == "foreign":
            raise TrainError(f"{p} exists and is not an empty folder or a run folder", field="out",
                             hint="choose another {out}")
        if state == "started":
            fd = cls._lock(p)  # refuses a folder whose run is still in its first epoch
            os.close(fd)

    @classmethod
    def create(cls, path: str | os.PathLike) -> "RunDir":
        """Claim ``path`` for a new run: a new or empty folder, or one whose run died in its first epoch."""
        p = Path(path)
        cls.check_new(p)
        p.mkdir(parents=True, exist_ok=True)
        fd = cls._lock(p)
        state = cls.state(p)  # again, now that it is ours: another run may have claimed it meanwhile
        if state not in ("empty", "started"):
            os.close(fd)
            cls.check_new(p)
            raise TrainError(f"{p} is no longer empty", field="out", hint="choose another {out}")
        for entry in p.iterdir():  # what a run that died in its first epoch left
            entry.unlink()
        return cls(p, fd)

    @classmethod
    def resume(cls, path: str | os.PathLike) -> "RunDir":
        """Claim an existing run folder to continue it (or to start over, if it died in its first epoch)."""
        p = Path(path)
        state = cls.state(p)
        if state not in ("run", "started"):
            raise TrainError(f"{p} is not a run folder to resume (no config.json and last.pt of a training run)")
        return cls(p, cls._lock(p))

    @classmethod
    def read_only(cls, path: str | os.PathLike) -> "RunDir":
        """A run folder to read (evaluate, interpolate): not claimed; it may still be training."""
        p = Path(path)
        if not (p / "config.json").is_file():
            raise TrainError(f"{p} is not a run folder (no config.json)")
        return cls(p, None)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunDir":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    # -- files -----------------------------------------------------------------------------------

    def file(self, name: str) -> Path:
        return self.path / name

    def write_json(self, name: str, obj: Any) -> None:
        atomic_write_bytes(self.file(name), (json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n").encode())

    def read_config(self) -> dict[str, Any]:
        p = self.file("config.json")
        try:
            raw = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise TrainError(f"{p}: cannot read the run's config ({e})") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise TrainError(f"{p}: not the config of a training run of this version of coordconv_data")
        return raw

    def options(self) -> "TrainConfig":
        """The run's options as it resolved them (task and dataset included)."""
        from .options import TrainConfig

        raw = self.read_config()
        options = raw.get("options")
        if not isinstance(options, dict):
            raise TrainError(f"{self.file('config.json')}: not the config of a training run of this version of coordconv_data")
        cfg = TrainConfig.from_dict({"task": raw.get("task"), "dataset": raw.get("dataset"), **options})
        if not isinstance(cfg.arch, str) or not is_model(cfg.arch):
            raise TrainError(f"{self.file('config.json')}: arch {cfg.arch!r} is not a model of this version")
        info = model_info(cfg.arch)  # the registry's word, whatever the file says
        cfg.task, cfg.dataset = info.task, info.dataset
        return cfg

    def write_metrics(self, rows: list[dict[str, Any]], columns: list[str]) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        atomic_write_bytes(self.file("metrics.csv"), buf.getvalue().encode())

    def write_picture(self, name: str, rgb: np.ndarray) -> None:
        from ..viz import write_png

        write_png(rgb, self.file(name), force=True)

    def save_checkpoint(self, name: str, payload: dict[str, Any]) -> None:
        buf = io.BytesIO()
        torch.save({"format": FORMAT, **payload}, buf)
        atomic_write_bytes(self.file(name), buf.getvalue())

    def load_checkpoint(self, name: str, map_location: Any = "cpu", arch: str | None = None) -> dict[str, Any]:
        path = self.file(name)
        if not path.is_file():
            raise TrainError(f"{self.path} has no {name} (not a run that finished an epoch)")
        return load_checkpoint(path, map_location, arch)
