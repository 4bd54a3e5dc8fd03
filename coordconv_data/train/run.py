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
weights_only=True)``: a file planted in a run folder cannot run code. What loads safely is then
checked for structure before anything uses it (:func:`load_checkpoint`: the epoch, the history, the
selection's state, the optimisers' state; :func:`load_weights`: every tensor's name, shape and
finiteness against the model; :func:`load_optimizers`: every state tensor against its parameter), and
``config.json`` likewise (:meth:`RunDir.read_config`, :meth:`RunDir.options`), so that a damaged or
mismatched file is one line naming it and what is wrong, on every path that loads one.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import pickle
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..models import is_model, model_info
from ..store import atomic_write_bytes
from .errors import TrainError
from .options import ADDED_LATER, RUN_FORMAT

if TYPE_CHECKING:
    from .options import TrainConfig

__all__ = ["RunDir", "FORMAT", "RUN_FILES", "load_checkpoint", "load_weights", "load_optimizers"]

FORMAT = RUN_FORMAT  # in config.json and every checkpoint
CHECKPOINTS = ("last.pt", "best.pt")
RUN_FILES = ("config.json", "metrics.csv", "last.pt", "best.pt", "curves.png", "predictions.png")


EVENT_FILES = "events.out.tfevents."  # TensorBoard's event files (--logger tensorboard), in the run folder itself


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _of_type(value: Any, kind: Any) -> bool:
    """Whether a recorded option's ``value`` has the type its :class:`~.options.Option` says."""
    if value is None:
        return True
    if kind in (str, "path"):
        return isinstance(value, str)
    if kind is bool:
        return isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind) and not isinstance(value, bool)


def option_problem(cfg: "TrainConfig") -> str | None:
    """What is wrong with a recorded run's options (None if nothing is): each must have its option's
    type, and together they must be a config the trainer accepts on this machine (:func:`.config.resolve`)."""
    from ..errors import InvalidParameter
    from .config import resolve
    from .options import OPTIONS

    for o in OPTIONS:
        if not o.hparam and not _of_type(getattr(cfg, o.name), o.type):
            return f"option {o.name!r} is {_short(getattr(cfg, o.name))}, not of its type"
    for name, kind in (("hparams", dict), ("seed", int), ("device", str), ("out", "path")):
        value = getattr(cfg, name)
        if (value is None and name != "out") or not _of_type(value, kind):
            return f"option {name!r} is {_short(value)}, not of its type"
    try:
        resolve(replace(cfg, device="cpu"))  # the device is this machine's business, not the file's
    except InvalidParameter as e:
        return f"option {e.field}: {e.message}"
    return None


def _ours(name: str) -> bool:
    return name in RUN_FILES or (name.startswith("samples_") and name.endswith(".png")) or (
        name.startswith(".") and name.endswith(".tmp")) or (  # a temporary file of ours left by a kill
        name.startswith(EVENT_FILES))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _checkpoint_problem(ck: dict[str, Any], resumable: bool) -> str | None:
    """What is wrong with the structure of a checkpoint of ours (None if nothing is)."""
    model = ck["model"]
    if not isinstance(model, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in model.items()):
        return "its model is not a table of named tensors"
    epoch = ck.get("epoch")
    if not _is_int(epoch) or epoch < 1:
        return f"its epoch is {epoch!r}, not a whole number of at least 1"
    if not resumable:
        return None
    optimizers = ck.get("optimizers")
    if not isinstance(optimizers, dict) or not optimizers or not all(
            isinstance(k, str) and isinstance(v, dict) and isinstance(v.get("state"), dict)
            and isinstance(v.get("param_groups"), list) for k, v in optimizers.items()):
        return "its optimizer state is not a table of optimizers, each with its state and parameter groups"
    history = ck.get("history")
    if not isinstance(history, list) or not all(
            isinstance(r, dict) and _is_int(r.get("epoch")) and 0 <= r["epoch"] <= epoch and isinstance(r.get("split"), str)
            and all(isinstance(k, str) and (k == "split" or v is None or _is_number(v)) for k, v in r.items())
            for r in history):
        return f"its history is not a list of rows of numbers, each with a split and an epoch of 0..{epoch}"
    if not any(r["epoch"] == epoch for r in history):
        return f"its history has no row of its epoch {epoch}"
    best_value, best_epoch = ck.get("best_value"), ck.get("best_epoch")
    if best_value is not None and (not isinstance(best_value, list) or not all(map(_is_number, best_value))):
        return f"its best_value is {best_value!r}, not a list of numbers"
    if best_epoch is not None and (not _is_int(best_epoch) or not 1 <= best_epoch <= epoch):
        return f"its best_epoch is {best_epoch!r}, not an epoch of 1..{epoch}"
    return None


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", arch: str | None = None,
                    resumable: bool = False) -> dict[str, Any]:
    """A checkpoint of ``coorddata train``, read without running any code it might hold.

    Raises :class:`TrainError` (one line naming the file) for a file that is unreadable, holds
    anything but tensors and plain containers, is not ours, holds another arch than ``arch``, or whose
    structure is wrong: its model is not named tensors, its epoch is not 1 or more, and, when it must
    continue a run (``resumable``: ``last.pt``), its optimizers, history or selection state are not what
    a run saves. The weights' shapes are checked against a model by :func:`load_weights`.
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
    problem = _checkpoint_problem(ck, resumable)
    if problem:
        raise TrainError(f"{path} is damaged: {problem}")
    return ck


def _shape(t: Any) -> str:
    return "(" + ", ".join(str(d) for d in t.shape) + ")"


def load_weights(path: str | os.PathLike, model: torch.nn.Module, state: dict[str, torch.Tensor], arch: str) -> None:
    """Load ``state`` (the weights of checkpoint ``path``) into ``model`` after checking that every tensor
    is there, of its shape and finite; :class:`TrainError` naming the first that is not."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    if missing or extra:
        what = f"lacks {missing[0]!r}" if missing else f"has {extra[0]!r}, which {arch} has not"
        more = len(missing) + len(extra) - 1
        raise TrainError(f"{path}: its weights do not fit {arch}: it {what}" + (f" (and {more} more)" if more else ""))
    for name, mine in own.items():
        theirs = state[name]
        if tuple(theirs.shape) != tuple(mine.shape):
            raise TrainError(f"{path}: its weights do not fit {arch}: {name!r} is {_shape(theirs)}, the model's is "
                             f"{_shape(mine)}")
        if theirs.is_floating_point() and not bool(torch.isfinite(theirs).all()):
            raise TrainError(f"{path} is damaged: its weights {name!r} hold NaN or infinite values")
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as e:
        raise TrainError(f"{path}: its weights do not fit {arch} ({str(e).splitlines()[0]})") from None


def load_optimizers(path: str | os.PathLike, optimizers: dict[str, torch.optim.Optimizer],
                    states: dict[str, Any]) -> None:
    """Load each optimizer's saved state (of checkpoint ``path``) after checking it against the optimizer:
    the same optimizers, parameter groups and parameters, and each state tensor of its parameter's shape
    (Adam's moments); :class:`TrainError` naming what does not fit."""
    if set(states) != set(optimizers):
        raise TrainError(f"{path}: its optimizer state is for {', '.join(sorted(states))}, the run has "
                         f"{', '.join(sorted(optimizers))}")
    for name, opt in optimizers.items():
        saved = states[name]
        groups = opt.param_groups
        if len(saved["param_groups"]) != len(groups) or not all(
                isinstance(g, dict) and isinstance(g.get("params"), list) and len(g["params"]) == len(mine["params"])
                for g, mine in zip(saved["param_groups"], groups)):
            raise TrainError(f"{path}: its {name} optimizer state does not fit the model (other parameter groups)")
        params = {i: p for g, mine in zip(saved["param_groups"], groups) for i, p in zip(g["params"], mine["params"])}
        for key, entry in saved["state"].items():
            if key not in params or not isinstance(entry, dict):
                raise TrainError(f"{path}: its {name} optimizer state names parameter {key!r}, which the model has not")
            for field, value in entry.items():
                if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != params[key].shape:
                    raise TrainError(f"{path}: its {name} optimizer state {field!r} of parameter {key} is "
                                     f"{_shape(value)}, the parameter is {_shape(params[key])}")
                if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
                    raise TrainError(f"{path} is damaged: its {name} optimizer state {field!r} holds NaN or infinite values")
        try:
            opt.load_state_dict(saved)
        except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as e:
            raise TrainError(f"{path}: its {name} optimizer state does not fit the run "
                             f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


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
        for key, kind, what in (("options", dict, "a table of options"), ("data", dict, "a table describing the data file"),
                                ("selection", str, "text"), ("task", str, "text"), ("dataset", str, "text")):
            if key in raw and not isinstance(raw[key], kind):
                raise TrainError(f"{p} is damaged: its {key!r} is {_short(raw[key])}, not {what}")
        return raw

    def options(self) -> "TrainConfig":
        """The run's options as it resolved them (task and dataset included)."""
        from .config import defaults_for
        from .options import TrainConfig

        raw = self.read_config()
        where = self.file("config.json")
        options = raw.get("options")
        if not isinstance(options, dict):
            raise TrainError(f"{where}: not the config of a training run of this version of coordconv_data")
        cfg = TrainConfig.from_dict({"task": raw.get("task"), "dataset": raw.get("dataset"), **options})
        if not isinstance(cfg.arch, str) or not is_model(cfg.arch):
            raise TrainError(f"{where}: arch {_short(cfg.arch)} is not a model of this version")
        info = model_info(cfg.arch)  # the registry's word, whatever the file says
        cfg.task, cfg.dataset = info.task, info.dataset
        for name, was in ADDED_LATER.items():
            if name not in options and name in defaults_for(cfg.arch):
                setattr(cfg, name, getattr(cfg, was))
        problem = option_problem(cfg)
        if problem:
            raise TrainError(f"{where}: {problem}")
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
