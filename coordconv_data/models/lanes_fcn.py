"""The custom-conv2d study's FCN-VGG9 segmentation network for Lanes, in three variants.

Follows ``models/fcn.py`` of pskugit/custom-conv2d (``VGGNet(model='vgg9')`` + ``FCNmy``): an encoder
``64, 64, M, 128, 128, M, 256, 256, M`` of ``3x3`` convolutions with ReLU, and a decoder of three
stride-2 transposed convolutions with skip additions and BatchNorm, then a 1x1 classifier. The
variants differ only in the six encoder convolutions: plain ``nn.Conv2d`` (``fcn_vgg9``),
:class:`~coordconv_data.models.coord_bias.CoordBiasConv2d` (``fcn_vgg9_coordbias``, the study's
coordinate network) or :class:`~coordconv_data.models.coords.CoordConv2d` (``fcn_vgg9_coordconv``).

Initialisation, ``init``:

* ``"study"`` (the default): as the study's code initialised it. Its ``VGGNet`` subclasses torchvision's
  ``VGG``, whose ``_initialize_weights`` gives every ``nn.Conv2d`` of the encoder kaiming-normal
  (``fan_out``, ReLU) weights and zero biases; its ``Conv2dXY`` is a ``_ConvNd``, not an ``nn.Conv2d``,
  so the coordinate-bias encoder keeps torch's default (kaiming-uniform with ``a = sqrt(5)``, bias
  ``U(+-1/sqrt(fan_in))``) and its ``xy_bias`` the study's ``U(+-1/sqrt(fan_in))``
  (:class:`CoordBiasConv2d` with ``coord_init="uniform"``). The decoder (``FCNmy``) and the classifier
  keep torch's defaults in every variant. CoordConv (not in the study) wraps an ``nn.Conv2d``, which
  that rule reaches. So the study's comparison mixes the layer with the init.
* ``"comparable"``: :func:`~coordconv_data.models.weight_init.comparable_kaiming_init_` from a
  generator seeded by one draw of the global RNG taken before any layer is built: under the same
  ``torch.manual_seed`` the parameters the variants share are identical, coordinate-bias weights start
  at zero (so ``fcn_vgg9_coordbias`` starts as exactly ``fcn_vgg9``) and CoordConv's extra kernel
  slices come from the same distribution. It separates the layer from the init, but a probe (64 px, one
  epoch) found the coordinate bias learns the position classes far less from zero (docs/lab.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn as nn
from torch import Tensor

from .coord_bias import CoordBiasConv2d
from .coords import CoordConv2d
from .registry import HyperparameterError, check_positive_int, register_model
from .weight_init import comparable_kaiming_init_

__all__ = ["FCNVGG9", "VGG9_CONFIG", "FCN_INITS"]

FCN_INITS = ("study", "comparable")

VGG9_CONFIG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, "M")

EncoderConv = Literal["plain", "coordbias", "coordconv"]


def _conv_factory(kind: EncoderConv, with_r: bool, coord_init: str, per_input: bool) -> Callable[[int, int], nn.Module]:
    if kind == "plain":
        return lambda c_in, c_out: nn.Conv2d(c_in, c_out, 3, padding=1)
    if kind == "coordbias":
        return lambda c_in, c_out: CoordBiasConv2d(c_in, c_out, 3, padding=1, coord_init=coord_init,
                                                   per_input=per_input)
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
        init: ``'study'`` or ``'comparable'`` (the module docstring).
        per_input: for ``'coordbias'``: the study's first ``(out, in, 2)`` parameter, summed over the
            inputs (see :class:`CoordBiasConv2d`).

    Shape:
        - Input: :math:`(N, C_{in}, H, W)`, ``H`` and ``W`` multiples of 8.
        - Output: :math:`(N, \text{num\_classes}, H, W)` logits.
    """

    def __init__(
        self, conv: EncoderConv = "plain", num_classes: int = 4, in_channels: int = 3, with_r: bool = False,
        init: str = "study", per_input: bool = False,
    ) -> None:
        super().__init__()
        if init not in FCN_INITS:
            raise ValueError(f"init must be one of {', '.join(FCN_INITS)}, got {init!r}")
        # Drawn before any layer is built: the variants' constructors consume different amounts of
        # the global RNG, so seeding the init from the state after construction would differ.
        # On the CPU: the model may be built under another default device (the meta device, to count it).
        seed = int(torch.randint(0, 2**62, (), dtype=torch.int64, device="cpu")) if init == "comparable" else None
        make_conv = _conv_factory(conv, with_r, "uniform" if init == "study" else "zeros", per_input)
        self.conv_kind, self.init = conv, init
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
        if seed is not None:
            comparable_kaiming_init_(self, torch.Generator().manual_seed(seed))
        else:
            _torchvision_vgg_init_(self.encoder)

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
        return f"conv={self.conv_kind!r}, init={self.init!r}"


@torch.no_grad()
def _torchvision_vgg_init_(encoder: nn.Module) -> None:
    # torchvision's VGG._initialize_weights for what the study's VGGNet held: every nn.Conv2d instance
    # (a CoordConv2d's inner conv too; not CoordBiasConv2d, a _ConvNd in the study), kaiming-normal
    # fan_out with zero bias. Exact type: our CoordBiasConv2d subclasses nn.Conv2d, the study's did not.
    for m in encoder.modules():
        if type(m) is nn.Conv2d:
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


_LANES = dict(task="segmentation", dataset="lanes", input_shape=(3, 128, 128))


def _check_init(model: str, init: str) -> str:
    if init not in FCN_INITS:
        raise HyperparameterError(f"model {model!r}: init must be one of {', '.join(FCN_INITS)}, got {init!r}",
                                  field="init")
    return init


@register_model(output_shape=(4, 128, 128), **_LANES)
def fcn_vgg9(*, num_classes: int = 4, init: str = "study") -> FCNVGG9:
    """FCN-VGG9 with plain convolutions (the study's vanilla network)."""
    name = "fcn_vgg9"
    return FCNVGG9("plain", num_classes=check_positive_int(name, "num_classes", num_classes), init=_check_init(name, init))


@register_model(output_shape=(4, 128, 128), **_LANES)
def fcn_vgg9_coordbias(*, num_classes: int = 4, init: str = "study", per_input: bool = False) -> FCNVGG9:
    """FCN-VGG9 with coordinate-bias encoder convolutions (the study's coordinate network)."""
    name = "fcn_vgg9_coordbias"
    return FCNVGG9("coordbias", num_classes=check_positive_int(name, "num_classes", num_classes),
                   init=_check_init(name, init), per_input=per_input)


@register_model(output_shape=(4, 128, 128), **_LANES)
def fcn_vgg9_coordconv(*, num_classes: int = 4, with_r: bool = False, init: str = "study") -> FCNVGG9:
    """FCN-VGG9 with CoordConv encoder convolutions."""
    name = "fcn_vgg9_coordconv"
    return FCNVGG9("coordconv", num_classes=check_positive_int(name, "num_classes", num_classes), with_r=with_r,
                   init=_check_init(name, init))
