"""The coordinate-bias convolution from the custom-conv2d study (pskugit/custom-conv2d).

An ordinary convolution plus, per output filter ``o``, two learned numbers that multiply the output
position's relative column and row:

    out[n, o, i, j] = conv(x)[n, o, i, j] + b[o, 0] * j / (W_out - 1) + b[o, 1] * i / (H_out - 1)

with ``j / (W_out - 1)`` and ``i / (H_out - 1)`` in ``[0, 1]`` (``0`` for a one-pixel output axis).
Compared with CoordConv, which convolves full ``k x k`` kernels over two extra input channels, this
costs ``2 * out_channels`` parameters and one broadcast add.

The study's implementation (``Conv2dXY`` in ``models/customconv.py``) unfolded the input and multiplied
in float64 (about 3.6x the time of ``nn.Conv2d``), built its coordinate map with a hard-coded
``.cuda()`` (first commit), and broke with dilation, groups, ``bias=False`` and one-pixel outputs. This
one is ``nn.Conv2d`` itself plus the broadcast add, so every ``nn.Conv2d`` argument works.

Two things about the study's parameter change how the layer *trains*, though not what it can compute,
and both are options here:

* ``coord_init``: the study drew ``xy_bias`` from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with ``fan_in =
  in_channels * kh * kw`` (its ``init_xy_bias``, the bound torch gives a conv's bias): ``"uniform"``.
  ``"zeros"`` (the default) starts the layer as exactly the plain convolution it extends.
* ``per_input``: the study's first commit (27d1ea5) kept ``xy_bias`` of shape ``(out, in, 2)`` and summed
  it over the inputs; its commit "reduced parameters" (a21ff8d, what its README describes: "a single
  value per coordinate channel and Filter") made it ``(out, 2)``. The sum computes the same function,
  but every ``(out, in)`` entry gets the same gradient, so under SGD the per-filter pair moves ``in``
  times faster, and with ``"uniform"`` it starts about ``sqrt(in)`` times wider.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch import Tensor
from torch.nn.common_types import _size_2_t

from .coords import check_channels

__all__ = ["CoordBiasConv2d", "relative_positions", "COORD_INITS"]

COORD_INITS = ("zeros", "uniform")


def relative_positions(n: int, *, device: torch.device | None = None, dtype: torch.dtype | None = None) -> Tensor:
    """``i / (n - 1)`` for ``i`` in ``0..n-1`` (``[0.]`` when ``n == 1``): the coordinate-bias ramp."""
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if n == 1:
        return torch.zeros(1, device=device, dtype=dtype)
    return torch.arange(n, device=device, dtype=dtype) / (n - 1)


class CoordBiasConv2d(nn.Conv2d):
    r"""2-D convolution with a learned per-filter bias that is linear in the output position.

    .. math::

        \text{out}(N_i, o, h, w) = \text{conv2d}(\text{input})(N_i, o, h, w)
            + b_{o,0} \frac{w}{W_{out} - 1} + b_{o,1} \frac{h}{H_{out} - 1}

    where the relative positions are ``0`` on a one-pixel output axis. The coordinates are those of
    the OUTPUT grid, so the term means the same thing whatever the stride, padding or dilation.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
        padding_mode, device, dtype: exactly as for :class:`torch.nn.Conv2d` (``padding`` may be
            ``'same'`` or ``'valid'``; ``bias=False`` drops only the constant bias).
        coord_init: ``"zeros"`` (the layer starts as the plain convolution) or ``"uniform"`` (the
            study's ``U(+-1/sqrt(fan_in))`` per entry of :attr:`coord_weight`).
        per_input: keep one pair per input channel of each group, summed (the study's first commit),
            instead of one pair per filter.

    Attributes:
        weight, bias: as in :class:`torch.nn.Conv2d`, so a ``state_dict`` is that of an
            ``nn.Conv2d`` plus ``coord_weight``.
        coord_weight: :math:`(C_{out}, 2)` (or :math:`(C_{out}, C_{in} / \text{groups}, 2)` with
            ``per_input``, summed over its middle axis), the last axis' ``0`` multiplying the relative
            ``x`` (column) position, ``1`` the relative ``y`` (row) position. With ``coord_init="zeros"``
            a fresh layer computes exactly the plain convolution it extends, and the coordinate term is
            learned only as far as the loss asks for it. Zeros do not stall learning: the gradient of
            ``b[o, k]`` is the output gradient weighted by the position ramp, which does not involve
            ``b`` (unlike a multiplicative weight in a deeper product).

    Shape:
        - Input: :math:`(N, C_{in}, H_{in}, W_{in})` or :math:`(C_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C_{out}, H_{out}, W_{out})` (or unbatched), sizes as for
          :class:`torch.nn.Conv2d`.

    Example:
        >>> layer = CoordBiasConv2d(3, 8, kernel_size=3, padding="same")
        >>> layer.coord_weight.shape
        torch.Size([8, 2])
        >>> layer(torch.randn(2, 3, 16, 24)).shape
        torch.Size([2, 8, 16, 24])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _size_2_t,
        stride: _size_2_t = 1,
        padding: str | _size_2_t = 0,
        dilation: _size_2_t = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        coord_init: str = "zeros",
        per_input: bool = False,
    ) -> None:
        if coord_init not in COORD_INITS:
            raise ValueError(f"coord_init must be one of {', '.join(COORD_INITS)}, got {coord_init!r}")
        check_channels(type(self).__name__, in_channels=(in_channels, 1), out_channels=(out_channels, 1))
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
            padding_mode=padding_mode,
            device=device,
            dtype=dtype,
        )
        self.coord_init, self.per_input = coord_init, bool(per_input)
        shape = (out_channels, in_channels // groups, 2) if self.per_input else (out_channels, 2)
        self.coord_weight = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
        self.reset_coord_parameters()

    def reset_coord_parameters(self) -> None:
        if self.coord_init == "zeros":
            nn.init.zeros_(self.coord_weight)
            return
        fan_in = self.weight[0].numel()  # in_channels / groups * kh * kw, as the study's init_xy_bias
        bound = 1 / math.sqrt(fan_in)
        nn.init.uniform_(self.coord_weight, -bound, bound)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        # nn.Conv2d.__init__ calls this before coord_weight exists.
        if hasattr(self, "coord_weight"):
            self.reset_coord_parameters()

    def per_filter_weight(self) -> Tensor:
        """:math:`(C_{out}, 2)`: the pair each filter's coordinate term uses."""
        return self.coord_weight.sum(1) if self.per_input else self.coord_weight

    def coord_term(self, height: int, width: int) -> Tensor:
        """The position-dependent bias, shape :math:`(C_{out}, H_{out}, W_{out})`."""
        cw = self.per_filter_weight()
        xs = relative_positions(width, device=cw.device, dtype=cw.dtype)
        ys = relative_positions(height, device=cw.device, dtype=cw.dtype)
        return cw[:, 0, None, None] * xs + cw[:, 1, None, None] * ys[:, None]

    def forward(self, input: Tensor) -> Tensor:
        out = self._conv_forward(input, self.weight, self.bias)
        # In place: the convolution's backward does not need its output, and skipping a second
        # output-sized tensor halves the layer's overhead over nn.Conv2d (about 7% -> 4% measured).
        return out.add_(self.coord_term(out.shape[-2], out.shape[-1]))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", coord_init={self.coord_init!r}" + (", per_input=True" if self.per_input else "")
