"""A training run's options: defaults per arch, validation before any work, resume merging.

:class:`TrainConfig` holds what the user chose (``None``: the arch's default). :func:`resolve`
fills in the defaults and checks every option against the arch, raising
:class:`~coordconv_data.errors.InvalidParameter` (naming the field) before anything is read or
written (:func:`.data.resolve_data` then finds the data file). :func:`resume_config` merges the
options given to ``--resume`` with the run's own: only ``epochs``, ``device`` and ``logger`` may change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch

from ..errors import InvalidParameter
from ..models import HyperparameterError, UnknownModelError, create_model, list_models, model_info
from ..models.registry import check_model_size
from .errors import TrainError
from .options import (INTERM_LOSSES, LOGGERS, LR_POLICIES, MAX_EVAL_SAMPLES, OPTIMIZERS, RESUMABLE, SEED_MAX, TAKEN_BY,
                      TrainConfig)
from .tasks import TASKS

__all__ = ["TrainConfig", "Recipe", "RECIPES", "resolve", "resume_config", "defaults_for",
           "recipe_source", "learning_rate", "pick_device", "trainable_archs"]

@dataclass(frozen=True)
class Recipe:
    """An arch's default options (model hyperparameters under ``hparams``) and where they come from."""

    options: dict[str, Any]
    source: str


_ORIGINAL_README = "the original README's command (train.py"
_STEP = dict(lr_policy="step", lr_step_every=200, lr_step_ratio=0.1, lr_max_steps=4)
_DECONV = Recipe(dict(epochs=1000, batch_size=16, lr=0.01, l2=0.001, hparams=dict(mul=2, fs=3), **_STEP),
                 "the original README's deconv command (-mb 16 -L 0.01 --l2 0.001 -mul 2 -fs 3) with the step schedule "
                 "and -E 1000 of every deconv sweep in experiment_logs.sh (--lrpolicy step --lrstepratio 0.1 "
                 "--lrstepevery 200 --lrmaxsteps 4)")
_REGRESSION = Recipe(dict(epochs=100, batch_size=256, lr=0.01, l2=1e-5),
                     "experiment_logs.sh (-E 100 -L 0.01 --l2 0.00001; minibatch: the parser's default, 256)")
_CLEVR_GAN = Recipe(dict(epochs=50, batch_size=16, lr=0.0001, lr2=0.0005, l2=0.0, hparams=dict(z_dim=256)),
                    "the original README's GAN command (train_gan.py -mb 16 -E 50 -L 0.0001 --lr2 .0005 --opt adam "
                    "--z_dim 256)")
_SIMPLE_GAN = Recipe(dict(epochs=50, batch_size=16, lr=0.0001, lr2=0.0005, l2=0.0, hparams=dict(z_dim=10)),
                     "no command of the original was recorded: its Sort-of-Clevr GAN command's optimiser settings "
                     "(-mb 16 -E 50 -L 0.0001 --lr2 .0005) and train_gan.py's default --z_dim 10")
RECIPES: dict[str, Recipe] = {
    "coordconv_classification": Recipe(dict(epochs=100, batch_size=16, lr=0.005, l2=0.1, hparams=dict(mul=1)),
                                       "the original README's command (-mb 16 -E 100 -L 0.005 --opt adam -mul 1) with "
                                       "--l2 0.1 instead of its 0.001: on the quadrant split after 10 epochs, test accuracy "
                                       ">= 0.99 on 3 of 5 tuning seeds at 0.001, 9 of 9 at 0.1 (docs/lab.md); the misses "
                                       "were squares in the held-out corner placed a few pixels toward the training "
                                       "quadrants, which a stronger penalty on the per-pixel weights removes"),
    "deconv_classification": _DECONV,
    "coordconv_rendering": Recipe(dict(epochs=100, batch_size=16, lr=0.005, l2=0.0, l2_locate=0.1,
                                       interm_loss="softmax", hparams=dict(mul=1)),
                                  "the original README's command (-mb 16 -E 100 -L 0.005 --opt adam -mul 1) with --l2 0 "
                                  "on the painter, the other value its sweep in experiment_logs.sh ran (with the "
                                  "README's 0.001 the quadrant split's test IoU swung 0.85-0.95 over 6 epochs; 0.01 "
                                  "and 0.1 stop it painting), and 0.1 on the locating stage (--l2-locate), the "
                                  "coordinate classifier's departure (docs/lab.md); --interm-loss softmax is our choice "
                                  "of the original's -interm options (without it stage 1 never locates the centre)"),
    "deconv_rendering": _DECONV,
    "conv_regressor": _REGRESSION,
    "conv_regressor_fc": _REGRESSION,
    "coordconv_regressor": Recipe(dict(epochs=100, batch_size=256, lr=0.001, l2=1e-5),
                                  "experiment_logs.sh (--epochs 100 --l2 0.00001; minibatch 256, the parser's default) "
                                  "with lr 0.001 instead of its 0.01: on the quadrant split, after 10 epochs at 0.01 two "
                                  "of seeds 0-2 were stuck at 21 and 25 px test error (0.28 px for the third); at 0.001 "
                                  "one of three (seed 1, 19 px; 0.30 and 1.4 px for the others after 20 epochs)"),
    "fcn_vgg9": Recipe(dict(epochs=2, batch_size=1, lr=0.001, opt="sgd", l2=0.0),
                       "the custom-conv2d study's train.py: its parser's defaults --batch_size 1 and --epochs 2, "
                       "optim.SGD(model.parameters(), lr=1e-3, momentum=0.9) (its --lr flag is ignored), "
                       "nn.CrossEntropyLoss(), no weight decay; torch's default initialisation as its models/ "
                       "left it (the init hyperparameter)"),
    "simple_gan": _SIMPLE_GAN, "simple_coordconv_in_g": _SIMPLE_GAN, "simple_coordconv_in_gd": _SIMPLE_GAN,
    "clevr_gan": _CLEVR_GAN, "clevr_coordconv_in_g": _CLEVR_GAN, "clevr_coordconv_in_gd": _CLEVR_GAN,
}
RECIPES["fcn_vgg9_coordbias"] = RECIPES["fcn_vgg9_coordconv"] = RECIPES["fcn_vgg9"]
# Every arch: Adam with the original's betas (0.9, 0.99) (util.py), a constant rate unless the recipe
# steps it; supervised archs select best.pt on a tenth of the train split (ours: the original had no
# validation split).
BASE = dict(opt="adam", lr_policy="constant", lr_step_every=200, lr_step_ratio=0.1, lr_max_steps=4)


def trainable_archs() -> list[str]:
    """Registered archs the trainer has a task and a recipe for."""
    return [name for name in list_models() if model_info(name).task in TASKS and name in RECIPES]


def defaults_for(arch: str) -> dict[str, Any]:
    """The default options of an arch (model hyperparameters under ``hparams``); an option an arch has
    no default for is one it does not take (``lr2`` for a supervised arch, ``interm_loss`` for most)."""
    info = model_info(arch)
    recipe = RECIPES[arch].options
    base = {**BASE, **TASKS[info.task].default_options}
    return {**base, **{k: v for k, v in recipe.items() if k != "hparams"},
            "hparams": {**info.hparams, **recipe.get("hparams", {})}}


def recipe_source(arch: str) -> str:
    return RECIPES[arch].source


def learning_rate(base: float, epoch: int, cfg: "TrainConfig") -> float:
    """The rate of 1-based ``epoch``: ``base`` for a constant policy; for the step policy the original's
    ``LRPolicyStep``: times ``lr_step_ratio`` after every ``lr_step_every`` epochs, at most ``lr_max_steps`` times."""
    if cfg.lr_policy != "step":
        return base
    steps = min(cfg.lr_max_steps, (epoch - 1) // cfg.lr_step_every)
    return base * cfg.lr_step_ratio ** steps


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
    if cfg.arch not in RECIPES:
        raise InvalidParameter("arch", f"{cfg.arch} has no training recipe; choose one of: {', '.join(trainable_archs())}")
    defaults = defaults_for(cfg.arch)
    for f in fields(TrainConfig):
        if f.name in TAKEN_BY and getattr(cfg, f.name) is not None and f.name not in defaults:
            raise InvalidParameter(f.name, f"{cfg.arch} does not take {f.name} ({TAKEN_BY[f.name]} take it)")
    out = replace(cfg, hparams=dict(cfg.hparams), task=info.task, dataset=info.dataset)
    for key, value in defaults.items():
        if key != "hparams" and getattr(out, key) is None:
            setattr(out, key, value)
    if out.opt not in OPTIMIZERS:
        raise InvalidParameter("opt", f"opt must be one of {', '.join(OPTIMIZERS)}, got {out.opt!r}")
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
    if out.l2_locate is not None and not (isinstance(out.l2_locate, (int, float)) and out.l2_locate >= 0
                                          and math.isfinite(out.l2_locate)):
        raise InvalidParameter("l2_locate", f"l2_locate must be 0 or more, got {out.l2_locate}")
    if out.interm_loss is not None and out.interm_loss not in INTERM_LOSSES:
        raise InvalidParameter("interm_loss", f"interm_loss must be one of {', '.join(INTERM_LOSSES)}, got {out.interm_loss!r}")
    if out.lr_policy not in LR_POLICIES:
        raise InvalidParameter("lr_policy", f"lr_policy must be one of {', '.join(LR_POLICIES)}, got {out.lr_policy!r}")
    for key in ("lr_step_every", "lr_max_steps"):
        value = getattr(out, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if key == "lr_step_every" else 0):
            raise InvalidParameter(key, f"{key} must be a whole number of at least {1 if key == 'lr_step_every' else 0}, "
                                        f"got {value!r}")
    if not (isinstance(out.lr_step_ratio, (int, float)) and 0 < out.lr_step_ratio <= 1):
        raise InvalidParameter("lr_step_ratio", f"lr_step_ratio must be in (0, 1], got {out.lr_step_ratio}")
    if isinstance(out.seed, bool) or not isinstance(out.seed, int) or not 0 <= out.seed <= SEED_MAX:
        raise InvalidParameter("seed", f"seed must be a whole number in 0..{SEED_MAX}, got {out.seed!r}")
    unknown = [k for k in out.hparams if k not in info.hparams]
    if unknown:
        takes = ", ".join(info.hparams) or "none"
        raise InvalidParameter(unknown[0], f"{cfg.arch} does not take {unknown[0]} (its hyperparameters: {takes})")
    out.hparams = {**defaults["hparams"], **out.hparams}
    device = pick_device(out.device)
    try:  # the builder checks the values (e.g. fs, z_dim); on the meta device nothing is allocated
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            create_model(cfg.arch, **out.hparams)
        check_model_size(cfg.arch, out.hparams, copies=TRAINING_COPIES[out.opt],
                         what=f"to train with {out.opt} (weights, gradients and {OPTIMIZER_STATES[out.opt]})",
                         limit=device_memory(device),
                         where="this machine's memory" if device.type == "cpu" else f"the memory of {device}")
    except HyperparameterError as e:
        raise InvalidParameter(e.field or "arch", str(e)) from None
    check_logger(out.logger)
    return out


def check_logger(name: str | None) -> None:
    """Refuse an unknown logger, or tensorboard where its package is not installed (before any work)."""
    if name is None or name == "csv":
        return
    if name not in LOGGERS:
        raise InvalidParameter("logger", f"logger must be one of {', '.join(LOGGERS)}, got {name!r}")
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        raise TrainError("the tensorboard logger needs the tensorboard package, which is not installed",
                         field="logger", hint="pip install 'coordconv_data[tensorboard]', or train without {logger} "
                                              "tensorboard")


#: float32 copies of a model that training keeps: weights, gradients and the optimizer's state.
OPTIMIZER_STATES = {"adam": "Adam's two moments", "sgd": "SGD's momentum"}
TRAINING_COPIES = {"adam": 4, "sgd": 3}


def device_memory(device: torch.device) -> int | None:
    """Bytes of memory on ``device`` (the GPU's own, or this machine's for the CPU)."""
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device.index or 0).total_memory)
    from ..resources import memory_bytes

    return memory_bytes()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return float(a) == float(b)
        except (TypeError, ValueError):
            return False
    return a == b


def resume_config(run_cfg: TrainConfig, given: dict[str, Any]) -> TrainConfig:
    """The config of a resumed run: the run's own, with ``epochs``, ``device`` and ``logger`` from ``given``.

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
                                                 "a resumed run keeps its options (only epochs, device and logger may change)")
            continue
        used = getattr(run_cfg, key)
        if key == "data" and value is not None:
            value = str(Path(value).resolve())
        if not _same(value, used):
            raise InvalidParameter(key, f"{key} {value!r} differs from the resumed run's ({used!r}); "
                                        "a resumed run keeps its options (only epochs, device and logger may change)")
    return out
