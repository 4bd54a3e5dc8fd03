"""Which tensors ``--l2`` decays: the original's ``kernel_regularizer``, as a list of parameters.

The original added ``l2 * sum(w ** 2)`` over the kernels of the layers built with
``kernel_regularizer=l2reg(l2)`` to the loss (``tf_plus/regularizers.py``): convolution, transposed
convolution and dense **kernels** only, never biases or BatchNorm. :func:`l2_parameters` gives those
tensors for any model here: the model's own ``l2_parameters()`` where the original regularised only
some kernels (:class:`~coordconv_data.models.gans.GANPair`: the CoordConv generator's;
:class:`~coordconv_data.models.not_so_clevr.ConvRegressorFC`: its convolutions, not its dense
head), otherwise every kernel (:func:`kernel_parameters`).
"""

from __future__ import annotations

import torch.nn as nn

from .tiled import TiledCoordConv2d

__all__ = ["KERNEL_LAYERS", "kernel_parameters", "l2_parameters"]

# Layers whose ``weight`` is a kernel. CoordConv layers hold an nn.Conv* (found as a submodule);
# CoordBiasConv2d is an nn.Conv2d (its coordinate weights, one number per filter and axis, are no kernel).
KERNEL_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear,
    TiledCoordConv2d,
)  # fmt: skip


def kernel_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The ``weight`` of every convolution, transposed convolution, dense and tiled CoordConv layer,
    in module order, each once: what the original regularised in a model built entirely with
    ``kernel_regularizer``. Biases, BatchNorm and coordinate-bias weights are left out."""
    out: list[nn.Parameter] = []
    seen: set[int] = set()
    for m in model.modules():
        w = getattr(m, "weight", None)
        if isinstance(m, KERNEL_LAYERS) and isinstance(w, nn.Parameter) and id(w) not in seen:
            seen.add(id(w))
            out.append(w)
    return out


def l2_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The tensors the original decayed in this model: ``model.l2_parameters()`` if it defines one,
    else :func:`kernel_parameters`. The loss term is ``l2 * sum(w.square().sum() for w in ...)``."""
    own = getattr(model, "l2_parameters", None)
    return list(own()) if callable(own) else kernel_parameters(model)
