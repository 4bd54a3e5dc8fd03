"""Weight initialisation shared by the architectures.

Two schemes:

* :func:`he_normal_` / :func:`glorot_uniform_` reproduce the TensorFlow original's initialisers
  (``he_normal`` kernels where ``model_builders.py`` asks for them, ``glorot_uniform`` where it leaves
  the ``tf.layers`` default, zero biases) using the global torch RNG, like any torch module.
* :func:`comparable_kaiming_init_` initialises a network so that its plain, coordinate-bias and
  CoordConv variants get IDENTICAL values for every parameter they share, given the same generator
  state. The custom-conv2d study compared a torchvision-initialised plain VGG (kaiming normal,
  ``fan_out``) with a coordinate-bias VGG that kept ``_ConvNd``'s default (kaiming uniform,
  ``a=sqrt(5)``), so its comparison mixed the effect of the coordinates with that of the init.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from .coord_bias import CoordBiasConv2d
from .coords import CoordConvNd
from .tiled import TiledCoordConv2d

__all__ = ["he_normal_", "glorot_uniform_", "comparable_kaiming_init_"]

_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _reset_norm_and_bias(m: nn.Module) -> None:
    if isinstance(m, _NORM_TYPES):
        if m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        m.reset_running_stats()
    if isinstance(m, CoordBiasConv2d):
        m.reset_coord_parameters()


def _weighted(m: nn.Module) -> bool:
    return isinstance(m, (*_CONV_TYPES, nn.Linear, TiledCoordConv2d))


def he_normal_(module: nn.Module) -> nn.Module:
    """He-normal (``fan_in``, ReLU gain) weights and zero biases for every conv / linear layer.

    ``fan_in`` follows torch's convention, which for transposed convolutions (``out * k * k``) equals
    TensorFlow's for ``Conv2DTranspose``, so the scales match the original's ``he_normal``.
    Norm layers get weight 1 and bias 0; coordinate-bias weights get 0. Returns ``module``.
    """
    for m in module.modules():
        if _weighted(m):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        _reset_norm_and_bias(m)
    return module


def glorot_uniform_(module: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases (the ``tf.layers`` defaults). Returns ``module``."""
    for m in module.modules():
        if _weighted(m):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        _reset_norm_and_bias(m)
    return module


def _fan_out(shape: torch.Size) -> int:
    # torch's kaiming_normal_(mode="fan_out") convention: dim 0 times the receptive field.
    return shape[0] * math.prod(shape[2:])


@torch.no_grad()
def comparable_kaiming_init_(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Kaiming-normal (``fan_out``, ReLU) init that is identical across layer variants.

    Pass 1 walks the modules in order and draws, from ``generator``, every weight a plain network
    would have: for a :class:`CoordConv2d` (or other CoordConv / :class:`TiledCoordConv2d`) only the
    slice over the caller's input channels, drawn as a fresh contiguous tensor of exactly the shape
    the plain layer's weight has. Pass 2 then draws the slices over the coordinate channels, so they
    do not shift the stream for anything shared. ``fan_out`` does not depend on the number of input
    channels, so the coordinate slices get the same scale. Biases and norm shifts are 0, norm scales
    1, coordinate-bias weights 0 (a fresh coordinate-bias network computes exactly what the plain one
    does). Returns ``module``.
    """
    deferred: list[tuple[torch.Tensor, int, float]] = []
    skip: set[int] = set()

    def draw(shape: tuple[int, ...], std: float) -> torch.Tensor:
        return torch.empty(shape).normal_(0.0, std, generator=generator)

    for m in module.modules():
        if id(m) in skip:
            continue
        if isinstance(m, (CoordConvNd, TiledCoordConv2d)):
            if isinstance(m, CoordConvNd):
                weight, bias, n_user = m.conv.weight, m.conv.bias, m.in_channels
                skip.add(id(m.conv))
            else:
                weight, bias, n_user = m.weight, m.bias, m.in_features
            std = math.sqrt(2.0 / _fan_out(weight.shape))
            shape = tuple(weight.shape)
            weight[:, :n_user].copy_(draw((shape[0], n_user, *shape[2:]), std))
            deferred.append((weight, n_user, std))
            if bias is not None:
                bias.zero_()
        elif _weighted(m):
            std = math.sqrt(2.0 / _fan_out(m.weight.shape))
            m.weight.copy_(draw(tuple(m.weight.shape), std))
            if m.bias is not None:
                m.bias.zero_()
        _reset_norm_and_bias(m)

    for weight, n_user, std in deferred:
        shape = tuple(weight.shape)
        weight[:, n_user:].copy_(draw((shape[0], shape[1] - n_user, *shape[2:]), std))
    return module
