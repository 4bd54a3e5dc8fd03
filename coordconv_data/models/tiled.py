"""A 1x1 CoordConv applied to a vector tiled over a grid, without building the tiled tensor.

The paper's coordinate classifier, coordinate renderer and CoordConv GAN generator all start the same
way: a per-sample vector (the ``(x, y)`` location, or the noise ``z``) is tiled over an ``H x W`` grid,
:class:`~coordconv_data.models.coords.AddCoords` appends the coordinate channels, and a 1x1
convolution follows. Because the tiled channels are constant over the grid, that convolution splits
into a matrix product on the vector plus a 1x1 convolution of the (batch-independent) coordinate
maps, broadcast-added. For the GAN (``z_dim = 256`` into 512 filters at 64x64) this skips about
0.5 GMAC and a 4 MB tiled tensor per sample (the generator's forward pass measured about 25% faster
on 2 CPU cores); the parameters are those of the 1x1 convolution it replaces.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .coords import check_channels, coordinate_channels

__all__ = ["TiledCoordConv2d"]


class TiledCoordConv2d(nn.Module):
    r"""Tile a vector over a grid, append coordinates, apply a 1x1 convolution, in one step.

    Equal (up to float rounding) to
    ``Conv2d(in_features + 2 + with_r, out_channels, 1)(AddCoords(2, with_r)(v[:, :, None, None].expand(-1, -1, H, W)))``.

    Args:
        in_features: length ``C`` of the input vector.
        out_channels: filters of the 1x1 convolution.
        size: grid size, ``int`` for square or ``(H, W)``.
        with_r: include the radial coordinate channel.
        bias: add a learned bias per filter.

    Attributes:
        weight: :math:`(C_{out}, C + 2 + \text{with\_r}, 1, 1)`, the 1x1 kernel; input channels are
            the vector's, then ``x``, ``y`` (, ``r``), as after :class:`AddCoords`.
        bias: :math:`(C_{out})` or ``None``.

    Shape:
        - Input: :math:`(N, C)`.
        - Output: :math:`(N, C_{out}, H, W)`.

    Example:
        >>> TiledCoordConv2d(2, 32, size=64)(torch.zeros(5, 2)).shape
        torch.Size([5, 32, 64, 64])
    """

    def __init__(
        self,
        in_features: int,
        out_channels: int,
        size: int | tuple[int, int],
        with_r: bool = False,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_channels(type(self).__name__, in_features=(in_features, 1), out_channels=(out_channels, 1))
        self.in_features = in_features
        self.out_channels = out_channels
        self.size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.with_r = bool(with_r)
        extra = 2 + int(self.with_r)
        self.weight = nn.Parameter(torch.empty(out_channels, in_features + extra, 1, 1, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.empty(out_channels, device=device, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # The defaults of the nn.Conv2d this layer stands for.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.weight.shape[1])
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        if input.dim() != 2 or input.shape[1] != self.in_features:
            raise ValueError(f"expected input (N, {self.in_features}), got {tuple(input.shape)}")
        w = self.weight.flatten(1)
        per_sample = F.linear(input, w[:, : self.in_features], self.bias)
        coords = coordinate_channels(self.size, self.with_r, device=w.device, dtype=w.dtype)
        per_pixel = torch.einsum("oc,chw->ohw", w[:, self.in_features :], coords)
        return per_sample[:, :, None, None] + per_pixel

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_channels}, size={self.size}, with_r={self.with_r}, "
            f"bias={self.bias is not None}"
        )
