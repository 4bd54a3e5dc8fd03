"""A training run's options: defaults per arch, validation before any work, resume merging.

:class:`TrainConfig` holds what the user chose (``None``: the arch's default). :func:`resolve`
fills in the defaults and checks every option against the arch, raising
:class:`~coordconv_data.errors.InvalidParameter` (naming the field) before anything is read or
written; :func:`resolve_data` then finds the data file (the arch's default file in the current
folder when none is given, generated if missing) and checks it against the arch. :func:`resume_config`
merges the options given to ``--resume`` with the run's own: only ``epochs`` and ``device`` may change.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import InvalidParameter
from ..models import HyperparameterError, UnknownModelError, create_model, list_models, model_info
from ..store import FileSummary, StoreError, summarize
from .errors import TrainError
from .tasks import TASKS

__all__ = ["TrainConfig", "DEFAULTS", "ARCH_DEFAULTS", "GAN_ONLY", "MAX_EVAL_SAMPLES", "resolve", "resolve_data",
           "resume_config", "defaults_for", "pick_device", "trainable_archs"]

# Per-task defaults. Classification and rendering: the paper's command (-mb 16 -L 0.005, adam, l2 0.001);
# regression: lr 1e-3 (the original's 1e-2 can stall coordconv_regressor; see its docstring);
# GANs: the paper's command (-mb 16 -E 50 -L 0.0001 --lr2 .0005; lr is D's, lr2 G's).
DEFAULTS: dict[str, dict[str, Any]] = {
    "classification": dict(epochs=10, batch_size=16, lr=0.005, opt="adam", l2=0.001, val_fraction=0.1),
    "rendering": dict(epochs=10, batch_size=16, lr=0.005, opt="adam", l2=0.001, val_fraction=0.1),
    "regression": dict(epochs=20, batch_size=32, lr=0.001, opt="adam", l2=1e-5, val_fraction=0.1),
    "segmentation": dict(epochs=10, batch_size=16, lr=0.001, opt="adam", l2=0.0, val_fraction=0.1),
    "gan": dict(epochs=50, batch_size=16, lr=0.0001, lr2=0.0005, opt="adam", l2=0.0, eval_samples=1000),
}
# Per-arch overrides, each from a measured run (README): coordconv_rendering's softmax "sharpen" stage
# stalled at IoU 0 for 3 epochs with lr 0.005 / l2 0.001 and reached 0.81 with lr 0.001 / no l2.
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "coordconv_rendering": dict(lr=0.001, l2=0.0),
}
GAN_ONLY = ("lr2", "eval_samples")  # options only GAN training takes
NOT_GAN = ("val_fraction",)  # GANs select on their samples' score, not on held-out data
MAX_EVAL_SAMPLES = 50000  # generated images are kept in memory as uint8
RESUMABLE = ("epochs", "device")  # the options a resumed run may change


@dataclass
class TrainConfig:
    """The options of a training run; ``None`` means the arch's default (see :func:`defaults_for`).

    ``hparams`` are the model's hyperparameters (``mul``, ``fs``, ``z_dim``, ...: whatever the arch's
    builder takes); :func:`resolve` completes them with the builder's defaults.
    """

    arch: str
    data: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    lr2: float | None = None  # GANs: the generator's learning rate (lr is the discriminator's)
    opt: str | None = None
    l2: float | None = None
    eval_samples: int | None = None  # GANs: generated images scored after every epoch
    val_fraction: float | None = None  # share of the train split held out to select best.pt
    hparams: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    out: str | None = None

    @property
    def task(self) -> str:
        return model_info(self.arch).task

    @property
    def dataset(self) -> str:
        return model_info(self.arch).dataset

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def trainable_archs() -> list[str]:
    return [name for name in list_models() if model_info(name).task in TASKS]


def defaults_for(arch: str) -> dict[str, Any]:
    """The option defaults of an arch (its task's, then its own overrides)."""
    info = model_info(arch)
    return {**DEFAULTS[info.task], **ARCH_DEFAULTS.get(arch, {})}


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InvalidParameter("device", f"device cuda is not available here (torch {torch.__version__} sees no GPU); "
                                         "use cpu or auto")
    if name not in ("cpu", "cuda"):
        raise InvalidParameter("device", f"device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
        raise InvalidParameter(name, f"{name} must be a positive number, got {value}")


def resolve(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with every default filled in and every option checked against the arch; no file is read."""
    try:
        info = model_info(cfg.arch)
    except UnknownModelError:
        raise InvalidParameter("arch", f"unknown arch {cfg.arch!r}; choose one of: {', '.join(trainable_archs())}") from None
    if info.task not in TASKS:
        raise InvalidParameter("arch", f"{cfg.arch} is a {info.task} model; train handles {', '.join(TASKS)} models")
    defaults = defaults_for(cfg.arch)
    for key in GAN_ONLY + NOT_GAN:
        if getattr(cfg, key) is not None and key not in defaults:
            kind = "GAN" if key in GAN_ONLY else "supervised"
            raise InvalidParameter(key, f"only {kind} archs take {key}; {cfg.arch} is a {info.task} model")
    out = replace(cfg, hparams=dict(cfg.hparams))
    for key, value in defaults.items():
        if getattr(out, key) is None:
            setattr(out, key, value)
    if out.opt not in ("adam", "sgd"):
        raise InvalidParameter("opt", f"opt must be adam or sgd, got {out.opt!r}")
    for key in ("epochs", "batch_size"):
        value = getattr(out, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidParameter(key, f"{key} must be a whole number of at least 1, got {value!r}")
    _positive("lr", out.lr)
    if out.lr2 is not None:
        _positive("lr2", out.lr2)
    if not (isinstance(out.l2, (int, float)) and out.l2 >= 0 and math.isfinite(out.l2)):
        raise InvalidParameter("l2", f"l2 must be 0 or more, got {out.l2}")
    if out.eval_samples is not None and not 1 <= out.eval_samples <= MAX_EVAL_SAMPLES:
        raise InvalidParameter("eval_samples", f"eval_samples must be 1 to {MAX_EVAL_SAMPLES} (kept in memory), "
                                               f"got {out.eval_samples}")
    if out.val_fraction is not None and not 0 <= out.val_fraction < 1:
        raise InvalidParameter("val_fraction", f"val_fraction must be in [0, 1), got {out.val_fraction}")
    if isinstance(out.seed, bool) or not isinstance(out.seed, int) or not 0 <= out.seed < 2**63:
        raise InvalidParameter("seed", f"seed must be a whole number in 0..2**63-1, got {out.seed!r}")
    unknown = [k for k in out.hparams if k not in info.hparams]
    if unknown:
        takes = ", ".join(info.hparams) or "none"
        raise InvalidParameter(unknown[0], f"{cfg.arch} does not take {unknown[0]} (its hyperparameters: {takes})")
    out.hparams = {**info.hparams, **out.hparams}
    try:  # the builder checks the values (e.g. fs, z_dim); building a model is cheap next to training it
        create_model(cfg.arch, **out.hparams)
    except HyperparameterError as e:
        bad = next((h for h in out.hparams if h in str(e)), "arch")
        raise InvalidParameter(bad, str(e)) from None
    pick_device(out.device)
    return out


def resolve_data(cfg: TrainConfig, *, announce: Callable[[str], None] | None = None) -> TrainConfig:
    """``cfg`` with ``data`` an absolute path to a file the arch can train on.

    No ``data``: the arch's default file in the current folder (``not_so_clevr_quadrant.h5``,
    ``sort_of_clevr.h5`` or ``lanes.h5``), generated with the generator's defaults when missing (one
    line to ``announce``). A file of another kind, or one the arch cannot use, is a one-line error.
    """
    from ..datasets import dataset_class
    from .tasks import task_for

    cls = dataset_class(cfg.dataset)
    if cfg.data is None:
        path = cls.ensure_file(Path("."), generate=True, announce=announce)
    else:
        path = Path(cfg.data)
    try:
        summary = summarize(path)
    except StoreError as e:
        raise TrainError(str(e)) from None
    if summary.kind != cfg.dataset:
        raise TrainError(f"{path} holds {summary.kind} data, but {cfg.arch} ({cfg.task}) trains on {cfg.dataset}"
                         + (f" (make it with coorddata {cfg.dataset})" if cfg.data is None else ""))
    out = replace(cfg, data=str(path.resolve()))
    task_for(out).check_data(summary)
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return float(a) == float(b)
        except (TypeError, ValueError):
            return False
    return a == b


def resume_config(run_cfg: TrainConfig, given: dict[str, Any]) -> TrainConfig:
    """The config of a resumed run: the run's own, with ``epochs`` and ``device`` from ``given``.

    ``given`` holds only the options the user passed (hyperparameters under ``hparams``); any other
    that differs from the run's is refused, naming it.
    """
    out = replace(run_cfg, hparams=dict(run_cfg.hparams))
    for key, value in given.items():
        if key in RESUMABLE:
            setattr(out, key, value)
            continue
        if key == "hparams":
            for name, v in value.items():
                used = run_cfg.hparams.get(name)
                if not _same(v, used):
                    raise InvalidParameter(name, f"{name} {v!r} differs from the resumed run's ({used!r}); "
                                                 "a resumed run keeps its options (only epochs and device may change)")
            continue
        used = getattr(run_cfg, key)
        if key == "data" and value is not None:
            value = str(Path(value).resolve())
        if not _same(value, used):
            raise InvalidParameter(key, f"{key} {value!r} differs from the resumed run's ({used!r}); "
                                        "a resumed run keeps its options (only epochs and device may change)")
    return out
