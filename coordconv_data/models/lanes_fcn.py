"""The custom-conv2d study's FCN-VGG9 segmentation network for Lanes, in three variants.

Follows ``models/fcn.py`` of pskugit/custom-conv2d (``VGGNet(model='vgg9')`` + ``FCNmy``): an encoder
``64, 64, M, 128, 128, M, 256, 256, M`` of ``3x3`` convolutions with ReLU, and a decoder of three
stride-2 transposed convolutions with skip additions and BatchNorm, then a 1x1 classifier. The
variants differ only in the six encoder convolutions: plain ``nn.Conv2d`` (``fcn_vgg9``),
:class:`~coordconv_data.models.coord_bias.CoordBiasConv2d` (``fcn_vgg9_coordbias``, the study's
coordinate network) or :class:`~coordconv_data.models.coords.CoordConv2d` (``fcn_vgg9_coordconv``).

The study initialised its plain encoder with torchvision's VGG init (kaiming normal, ``fan_out``) but
left its coordinate-bias layers (not ``nn.Conv2d`` instances) at ``_ConvNd``'s default, so its
comparison confounded the layer with the init. Here every variant goes through
:func:`~coordconv_data.models.weight_init.comparable_kaiming_init_` from a generator seeded by one
draw of the global RNG taken before any layer is built: under the same ``torch.manual_seed`` the
parameters the variants share are identical, coordinate-bias weights start at zero (so
``fcn_vgg9_coordbias`` starts as exactly ``fcn_vgg9``) and CoordConv's extra kernel slices come from
the same distribution.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn as nn
from torch import Tensor

from .coord_bias import CoordBiasConv2d
from .coords import CoordConv2d
from .registry import check_positive_int, register_model
from .weight_init import comparable_kaiming_init_

__all__ = ["FCNVGG9", "VGG9_CONFIG"]

VGG9_CONFIG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, "M")

EncoderConv = Literal["plain", "coordbias", "coordconv"]


def _conv_factory(kind: EncoderConv, with_r: bool) -> Callable[[int, int], nn.Module]:
    if kind == "plain":
        return lambda c_in, c_out: nn.Conv2d(c_in, c_out, 3, padding=1)
    if kind == "coordbias":
        return lambda c_in, c_out: CoordBiasConv2d(c_in, c_out, 3, padding=1)
    if kind == "coordconv":
        return lambda c_in, c_out: CoordConv2d(c_in, c_out, 3, padding=1, with_r=with_r)
    raise ValueError(f"encoder conv must be 'plain', 'coordbias' or 'coordconv', got {kind!r}")


class FCNVGG9(nn.Module):
    r"""FCN with a VGG9 encoder and a three-stage decoder with skip additions.

    Encoder: three blocks of two ``3x3`` convolutions (64, 128, 256 filters, padding 1) with ReLU,
    each block ending in a 2x2 max-pool; the block outputs ``x1`` (64, H/2), ``x2`` (128, H/4) and
    ``x3`` (256, H/8) are kept. Decoder (the study's ``FCNmy``)::

        s = BN(ReLU(deconv(x3 -> 128)) + x2)      # H/4
        s = BN(ReLU(deconv(s -> 64)) + x1)        # H/2
        s = BN(ReLU(deconv(s -> 32)))             # H
        logits = conv1x1(s -> num_classes)

    with ``3x3`` stride-2 transposed convolutions. The decoder is the same in every variant.

    Args:
        conv: encoder convolution: ``'plain'``, ``'coordbias'`` or ``'coordconv'``.
        num_classes: output classes (4 for Lanes: background, right lane, left lane, road).
        in_channels: input channels.
        with_r: radial channel for ``'coordconv'`` (ignored otherwise).

    Shape:
        - Input: :math:`(N, C_{in}, H, W)`, ``H`` and ``W`` multiples of 8.
        - Output: :math:`(N, \text{num\_classes}, H, W)` logits.
    """

    def __init__(
        self, conv: EncoderConv = "plain", num_classes: int = 4, in_channels: int = 3, with_r: bool = False
    ) -> None:
        super().__init__()
        # Drawn before any layer is built: the variants' constructors consume different amounts of
        # the global RNG, so seeding the init from the state after construction would differ.
        seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
        make_conv = _conv_factory(conv, with_r)
        self.conv_kind = conv
        blocks = []
        c_in = in_channels
        block: list[nn.Module] = []
        for v in VGG9_CONFIG:
            if v == "M":
                block.append(nn.MaxPool2d(2, 2))
                blocks.append(nn.Sequential(*block))
                block = []
            else:
                block += [make_conv(c_in, int(v)), nn.ReLU(inplace=True)]
                c_in = int(v)
        self.encoder = nn.ModuleList(blocks)
        self.deconv1 = nn.ConvTranspose2d(256, 128, 3, stride=2, padding=1, output_padding=1)
        self.bn1 = nn.BatchNorm2d(128)
        self.deconv2 = nn.ConvTranspose2d(128, 64, 3, stride=2, padding=1, output_padding=1)
        self.bn2 = nn.BatchNorm2d(64)
        self.deconv3 = nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1)
        self.bn3 = nn.BatchNorm2d(32)
        self.classifier = nn.Conv2d(32, num_classes, 1)
        self.relu = nn.ReLU(inplace=True)
        comparable_kaiming_init_(self, torch.Generator().manual_seed(seed))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] % 8 or x.shape[-2] % 8:
            raise ValueError(f"FCNVGG9 needs H and W that are multiples of 8, got {tuple(x.shape[-2:])}")
        x1 = self.encoder[0](x)
        x2 = self.encoder[1](x1)
        x3 = self.encoder[2](x2)
        s = self.bn1(self.relu(self.deconv1(x3)) + x2)
        s = self.bn2(self.relu(self.deconv2(s)) + x1)
        s = self.bn3(self.relu(self.deconv3(s)))
        return self.classifier(s)

    def extra_repr(self) -> str:
        return f"conv={self.conv_kind!r}"


_LANES = dict(task="segmentation", dataset="lanes", input_shape=(3, 128, 128))


@register_model(output_shape=(4, 128, 128), **_LANES)
def fcn_vgg9(*, num_classes: int = 4) -> FCNVGG9:
    """FCN-VGG9 with plain convolutions (the study's vanilla network)."""
    return FCNVGG9("plain", num_classes=check_positive_int("fcn_vgg9", "num_classes", num_classes))


@register_model(output_shape=(4, 128, 128), **_LANES)
def fcn_vgg9_coordbias(*, num_classes: int = 4) -> FCNVGG9:
    """FCN-VGG9 with coordinate-bias encoder convolutions (the study's coordinate network)."""
    return FCNVGG9("coordbias", num_classes=check_positive_int("fcn_vgg9_coordbias", "num_classes", num_classes))


@register_model(output_shape=(4, 128, 128), **_LANES)
def fcn_vgg9_coordconv(*, num_classes: int = 4, with_r: bool = False) -> FCNVGG9:
    """FCN-VGG9 with CoordConv encoder convolutions."""
    return FCNVGG9(
        "coordconv", num_classes=check_positive_int("fcn_vgg9_coordconv", "num_classes", num_classes), with_r=with_r
    )
