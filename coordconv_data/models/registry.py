"""Model registry: every architecture by name, with what it computes and what it accepts.

Modelled on ``timm.models._registry``: a builder function is registered with
:func:`register_model`, found with :func:`list_models`, described by :func:`model_info` and built by
:func:`create_model`. Unlike timm, each entry also declares its task, the dataset kind it is meant
for, the hyperparameters it accepts (the keyword arguments of its builder, with their defaults) and
its input/output contract, so a trainer can map batches and reject options generically::

    >>> from coordconv_data.models import create_model, model_info
    >>> info = model_info("coordconv_classification")
    >>> info.task, info.dataset, dict(info.hparams)
    ('classification', 'not-so-clevr', {'mul': 1, 'with_r': False})
    >>> model = create_model("coordconv_classification", mul=2)

Task contracts (shapes at the defaults; ``N`` is the batch; locations use
:func:`~coordconv_data.models.coords.normalize_coords`):

* ``classification``: input ``(N, 2)`` float ``(x, y)`` square centre, each
  ``loc / 63 * 2 - 1`` in ``[-1, 1]``; output ``(N, 1, 64, 64)`` logits, one per pixel; the target is
  the one-hot pixel, softmax cross-entropy over the flattened 4096 logits (row-major, index
  ``y * 64 + x``); metric: exact-pixel accuracy of the argmax.
* ``rendering``: input as for classification; output ``(N, 1, 64, 64)`` mask logits; target the
  square's 0/1 mask, per-pixel sigmoid cross-entropy; metric: IoU of ``logits > 0``.
* ``regression``: input ``(N, 1, 64, 64)`` float one-channel image (the original fed the one-hot map;
  a grayscale square scaled to ``[0, 1]`` also fits); output ``(N, 2)`` ``(x, y)`` in the same
  ``[-1, 1]`` scale; loss MSE; metric: mean Euclidean error in pixels after
  :func:`~coordconv_data.models.coords.denormalize_coords`.
* ``segmentation``: input ``(N, 3, H, W)`` float RGB in ``[0, 1]``, ``H`` and ``W`` multiples of 8;
  output ``(N, 4, H, W)`` class logits; per-pixel cross-entropy against the ``(N, H, W)`` class mask.
* ``gan``: a :class:`~coordconv_data.models.gans.GANPair` with ``.generator`` (input ``(N, z_dim)``
  noise, uniform in ``[-1, 1]`` as in the original, output ``(N, C, S, S)`` images in ``[-1, 1]``)
  and ``.discriminator`` (input ``(N, C, S, S)``, output ``(N, 1)`` real/fake logits), where
  ``C = model.channels`` (1 grey for the ``simple_*`` GANs on Not-so-Clevr, 3 RGB for the
  ``clevr_*`` ones on Sort-of-Clevr) and ``S = model.image_size`` (64 by default); ``model(z)`` runs
  the generator, ``model.fakes_for_discriminator(z)`` gives what the discriminator is trained on
  (the images, or the CoordConv generator's output before ``tanh``) and ``model.l2_parameters()``
  the kernels the original regularised. Real images as the original scaled them: Sort-of-Clevr
  ``uint8 / 127.5 - 1``; Not-so-Clevr the grey image ``imagegray / 255`` (square 0.502, background 0).
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

import torch
import torch.nn as nn

from ..errors import CoordDataError, InvalidParameter
from ..kinds import KINDS
from ..resources import format_bytes, memory_bytes

__all__ = [
    "TASKS",
    "DATASETS",
    "TASK_CONTRACTS",
    "ModelInfo",
    "TaskContract",
    "UnknownModelError",
    "HyperparameterError",
    "register_model",
    "create_model",
    "list_models",
    "model_info",
    "is_model",
    "check_positive_int",
    "check_int_range",
    "parameter_count",
    "check_model_size",
]

TASKS: tuple[str, ...] = ("classification", "rendering", "regression", "segmentation", "gan")
DATASETS: tuple[str, ...] = tuple(KINDS)  # the dataset kinds (coordconv_data.kinds, the one registry of them)


@dataclass(frozen=True)
class TaskContract:
    """What a model of a task takes and returns (shapes at the default sizes)."""

    input: str
    output: str
    target: str


TASK_CONTRACTS: Mapping[str, TaskContract] = MappingProxyType(
    {
        "classification": TaskContract(
            input="(N, 2) float (x, y) locations, normalize_coords(loc, 64): loc / 63 * 2 - 1 in [-1, 1]",
            output="(N, 1, 64, 64) logits, one per pixel",
            target="the one-hot pixel: softmax cross-entropy over the 4096 flattened logits, class y * 64 + x",
        ),
        "rendering": TaskContract(
            input="(N, 2) float (x, y) locations, normalize_coords(loc, 64) in [-1, 1]",
            output="(N, 1, 64, 64) mask logits",
            target="(N, 1, 64, 64) 0/1 mask of the square: per-pixel sigmoid cross-entropy; IoU of logits > 0",
        ),
        "regression": TaskContract(
            input="(N, 1, 64, 64) float one-channel image (one-hot map, or square mask in [0, 1])",
            output="(N, 2) (x, y) location in the normalize_coords scale, [-1, 1]",
            target="normalize_coords(loc, 64): MSE; metric: Euclidean error in pixels via denormalize_coords",
        ),
        "segmentation": TaskContract(
            input="(N, 3, H, W) float RGB in [0, 1], H and W multiples of 8",
            output="(N, num_classes, H, W) class logits (4 Lanes classes)",
            target="(N, H, W) int64 class mask: per-pixel cross-entropy",
        ),
        "gan": TaskContract(
            input="generator: (N, z_dim) noise, uniform in [-1, 1]; discriminator: (N, C, S, S) images "
            "(C = model.channels: 1 grey or 3 RGB; S = model.image_size, 64 by default)",
            output="generator: (N, C, S, S) images in [-1, 1] (tanh); discriminator: (N, 1) real/fake logits",
            target="real images as the original scaled them (Sort-of-Clevr uint8 / 127.5 - 1; Not-so-Clevr "
            "imagegray / 255); non-saturating sigmoid GAN losses",
        ),
    }
)


class UnknownModelError(CoordDataError, KeyError, ValueError):
    """Raised for a model name that is not registered; the message lists the known names."""

    def __str__(self) -> str:
        # KeyError would repr() the message, quoting it.
        return str(self.args[0]) if self.args else ""


class HyperparameterError(CoordDataError, ValueError):
    """Raised when a model is given a hyperparameter its architecture does not take, or a value its
    builder rejects; ``field`` names the hyperparameter."""


@dataclass(frozen=True)
class ModelInfo:
    """The registry's description of one model.

    Attributes:
        name: registry name.
        task: one of :data:`TASKS`.
        dataset: the dataset kind it is meant for, one of :data:`DATASETS`.
        hparams: the keyword hyperparameters it accepts, with their defaults.
        input_shape: shape of one input sample at the defaults (for a GAN: the generator's noise).
        output_shape: shape of one output sample at the defaults (for a GAN: a generated image).
        contract: the task's :class:`TaskContract`.
        summary: first line of the builder's docstring.
    """

    name: str
    task: str
    dataset: str
    hparams: Mapping[str, Any]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    contract: TaskContract
    summary: str
    builder: Callable[..., nn.Module] = field(repr=False, compare=False)


_REGISTRY: dict[str, ModelInfo] = {}


def check_positive_int(model: str, hparam: str, value: Any) -> int:
    """Validate an integer hyperparameter such as ``mul`` or ``fs`` for a builder."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HyperparameterError(f"model {model!r}: {hparam} must be a positive integer, got {value!r}", field=hparam)
    return value


def check_int_range(model: str, hparam: str, value: Any, lo: int, hi: int, why: str = "") -> int:
    """Validate an integer hyperparameter that has a ceiling too (``fs``: no kernel wider than the canvas)."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise HyperparameterError(f"model {model!r}: {hparam} must be an integer in {lo}..{hi}{why}, got {value!r}",
                                  field=hparam)
    return value


_F = TypeVar("_F", bound=Callable[..., nn.Module])


def _builder_hparams(fn: Callable[..., nn.Module]) -> dict[str, Any]:
    hparams: dict[str, Any] = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind is not inspect.Parameter.KEYWORD_ONLY or p.default is inspect.Parameter.empty:
            raise TypeError(
                f"model builder {fn.__name__} must take only keyword-only hyperparameters with "
                f"defaults; {p.name!r} is not one"
            )
        hparams[p.name] = p.default
    return hparams


def register_model(
    *,
    task: str,
    dataset: str,
    input_shape: tuple[int, ...],
    output_shape: tuple[int, ...],
    name: str | None = None,
) -> Callable[[_F], _F]:
    """Decorator registering a model builder under its function name (or ``name``).

    The builder must take keyword-only hyperparameters with defaults (``def m(*, mul: int = 1)``);
    those become the model's accepted hyperparameters.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; got {dataset!r}")

    def decorator(fn: _F) -> _F:
        model_name = name or fn.__name__
        if model_name in _REGISTRY:
            raise ValueError(f"model {model_name!r} is already registered")
        doc = inspect.getdoc(fn) or ""
        _REGISTRY[model_name] = ModelInfo(
            name=model_name,
            task=task,
            dataset=dataset,
            hparams=MappingProxyType(_builder_hparams(fn)),
            input_shape=tuple(input_shape),
            output_shape=tuple(output_shape),
            contract=TASK_CONTRACTS[task],
            summary=doc.splitlines()[0] if doc else "",
            builder=fn,
        )
        return fn

    return decorator


def list_models(pattern: str | None = None, *, task: str | None = None, dataset: str | None = None) -> list[str]:
    """Sorted names of the registered models, optionally filtered.

    Args:
        pattern: an :mod:`fnmatch` pattern on the name, e.g. ``"fcn_*"``.
        task: keep models of this task only.
        dataset: keep models for this dataset kind only.
    """
    for name, value, known in (("task", task, TASKS), ("dataset", dataset, DATASETS)):
        if value is not None and value not in known:
            raise InvalidParameter(name, f"{name} must be one of {', '.join(known)}, got {value!r}")
    if pattern is not None and not isinstance(pattern, str):
        raise TypeError(f"pattern must be a string such as 'fcn_*', got {type(pattern).__name__}")
    names = sorted(_REGISTRY)
    if pattern is not None:
        names = fnmatch.filter(names, pattern)
    if task is not None:
        names = [n for n in names if _REGISTRY[n].task == task]
    if dataset is not None:
        names = [n for n in names if _REGISTRY[n].dataset == dataset]
    return names


def is_model(name: str) -> bool:
    """Whether ``name`` is a registered model."""
    return name in _REGISTRY


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered model; :class:`UnknownModelError` otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def parameter_count(name: str, **kwargs: Any) -> int:
    """How many numbers (parameters and buffers) the model holds, counted on the meta device: nothing is
    allocated, whatever the hyperparameters. Raises as :func:`create_model` does for bad values."""
    info = _checked(name, kwargs)
    # The global random state is put back: counting must not change the weights a seeded run gets.
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        model = info.builder(**kwargs)
    return sum(t.numel() for t in (*model.parameters(), *model.buffers()))


def check_model_size(name: str, kwargs: dict[str, Any], copies: int = 1, what: str = "as float32",
                     limit: int | None = None, where: str = "this machine's memory") -> int:
    """Refuse (:class:`HyperparameterError` naming the hyperparameter that makes it big, and the limit)
    a model whose ``copies`` float32 copies of its numbers would not fit ``limit`` bytes (by default the
    machine's memory); returns the count. Nothing is allocated (:func:`parameter_count`)."""
    count = parameter_count(name, **kwargs)
    limit = memory_bytes() if limit is None else limit
    need = count * 4 * copies
    if limit is None or need <= limit:
        return count
    info = _REGISTRY[name]
    changed = [k for k, v in kwargs.items() if v != info.hparams[k]]
    culprit = min(changed, key=lambda k: parameter_count(name, **{**kwargs, k: info.hparams[k]}), default=None)
    given = f"{culprit} {kwargs[culprit]!r} makes" if culprit else "makes"
    raise HyperparameterError(f"model {name!r}: {given} {count:.3g} numbers, about {format_bytes(need)} {what}; "
                              f"{where} is {format_bytes(limit)}", field=culprit or "arch")


def _checked(name: str, kwargs: dict[str, Any]) -> ModelInfo:
    info = model_info(name)
    unknown = [k for k in kwargs if k not in info.hparams]
    if unknown:
        accepted = ", ".join(info.hparams) or "none"
        raise HyperparameterError(
            f"model {name!r} does not take {', '.join(repr(k) for k in unknown)}; it accepts: {accepted}",
            field=unknown[0],
        )
    for key, value in kwargs.items():
        if isinstance(info.hparams[key], bool) and not isinstance(value, bool):
            raise HyperparameterError(f"model {name!r}: {key} must be True or False, got {value!r}", field=key)
    return info


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model with the given hyperparameters (the others take their defaults).

    The model is counted first on the meta device (:func:`check_model_size`): one whose weights alone
    would not fit this machine's memory (``width=10**6``) is refused before anything is allocated.

    Raises:
        UnknownModelError: ``name`` is not registered (the message lists the known names).
        HyperparameterError: a keyword the architecture does not take (the message lists those it
            does take), a value the builder rejects, or a model too large for this machine.
    """
    _checked(name, kwargs)
    check_model_size(name, kwargs)
    return _REGISTRY[name].builder(**kwargs)
