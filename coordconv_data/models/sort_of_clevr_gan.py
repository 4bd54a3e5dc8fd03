"""The paper's Sort-of-Clevr GANs: a DCGAN-64 pair and its CoordConv counterpart.

Follows ``CoordConvGAN`` in ``model_builders.py`` of uber-research/CoordConv (built by ``train_gan.py``
as ``clevr_gan`` with no coordinates and ``clevr_coordconv_in_gd`` with coordinates in both networks).
Differences, and why:

* None in what the networks compute. Kept on purpose: the original's CoordConv generator handed
  its last convolution WITHOUT ``tanh`` to the discriminator (``tanh`` only made the images it
  saved), so in training its fakes are unbounded while real images are in ``[-1, 1]``. Here
  ``generator(z)`` always returns images in ``[-1, 1]``, and :meth:`GANPair.fakes_for_discriminator`
  gives what the discriminator sees in training, as the original. Changing that is not harmless:
  with ``tanh`` in front of the discriminator, at the paper's learning rates, the discriminator won
  within one epoch and the generator's pre-``tanh`` outputs grew to about 33 in magnitude (99% of
  them beyond 3), saturated, with no gradient left to recover (measured on 1620 images,
  ``benchmarks/bench_gan.py``); without it, the discriminator's gradient pulls them back.
* The CoordConv generator tiles ``z`` over the 64x64 grid before its first 1x1 convolution; that step
  runs as one :class:`~coordconv_data.models.tiled.TiledCoordConv2d` (same parameters, no tiled
  tensor); the generator's forward pass measured about 25% faster on CPU for it.
* TensorFlow's asymmetric ``'same'`` padding at stride 2 becomes symmetric padding (same sizes).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from .coords import CoordConv2d
from .registry import check_positive_int, register_model
from .tiled import TiledCoordConv2d
from .weight_init import glorot_uniform_, he_normal_

__all__ = ["DCGANGenerator", "CoordConvGenerator", "DCGANDiscriminator", "GANPair"]

IMAGE_SIZE = 64
IMAGE_CHANNELS = 3


def _up(c_in: int, c_out: int) -> nn.ConvTranspose2d:
    # 5x5 stride-2 transposed conv that doubles the size, as TF's 'same'.
    return nn.ConvTranspose2d(c_in, c_out, 5, stride=2, padding=2, output_padding=1)


class DCGANGenerator(nn.Module):
    r"""DCGAN-64 generator: dense to ``4x4x512``, four stride-2 ``5x5`` transposed convs, ``tanh``.

    Widths ``512 -> 256 -> 128 -> 64 -> 3`` with BatchNorm and ReLU between; Glorot-uniform init (the
    original left these layers at the ``tf.layers`` defaults).

    Shape:
        - Input: :math:`(N, z_{dim})`.
        - Output: :math:`(N, 3, 64, 64)` in ``[-1, 1]``.
    """

    def __init__(self, z_dim: int = 256, out_channels: int = IMAGE_CHANNELS) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.project = nn.Linear(z_dim, 512 * 4 * 4)
        self.body = nn.Sequential(
            nn.BatchNorm2d(512), nn.ReLU(inplace=True),
            _up(512, 256), nn.BatchNorm2d(256), nn.ReLU(inplace=True),
            _up(256, 128), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            _up(128, 64), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            _up(64, out_channels), nn.Tanh(),
        )  # fmt: skip
        glorot_uniform_(self)

    def forward(self, z: Tensor) -> Tensor:
        return self.body(self.project(z).view(-1, 512, 4, 4))


class CoordConvGenerator(nn.Module):
    r"""CoordConv generator: ``z`` tiled over 64x64 with coordinates, then per-pixel convolutions.

    ``z`` is tiled over the grid, :class:`AddCoords` appends ``x``, ``y`` (, ``r``), and 1x1
    convolutions of width ``512, 256, 256, 128, 64``, two ``3x3`` of 64 (ReLU after each) and a 1x1
    to 3 channels follow (:meth:`unbounded`), then ``tanh`` (:meth:`forward`). He-normal init, as
    the original.

    Shape:
        - Input: :math:`(N, z_{dim})`.
        - Output: :math:`(N, 3, 64, 64)` in ``[-1, 1]``.
    """

    def __init__(self, z_dim: int = 256, out_channels: int = IMAGE_CHANNELS, with_r: bool = False) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.coordconv = TiledCoordConv2d(z_dim, 512, IMAGE_SIZE, with_r=with_r)
        self.body = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.Conv2d(512, 256, 1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 128, 1), nn.ReLU(inplace=True),
            nn.Conv2d(128, 64, 1), nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(64, out_channels, 1),
        )  # fmt: skip
        he_normal_(self)

    def unbounded(self, z: Tensor) -> Tensor:
        """The last convolution's output, before ``tanh``: what the original's discriminator saw."""
        return self.body(self.coordconv(z))

    def forward(self, z: Tensor) -> Tensor:
        return torch.tanh(self.unbounded(z))


class DCGANDiscriminator(nn.Module):
    r"""DCGAN-64 discriminator, optionally with coordinate channels on its input.

    Four stride-2 ``5x5`` convolutions of width ``64, 128, 256, 512`` with leaky ReLU (slope 0.2),
    BatchNorm on all but the first, then a dense layer from ``4x4x512`` to one logit. With
    ``coords=True`` the first convolution is a :class:`CoordConv2d` (the original's ``coords_in_d``:
    AddCoords on the input image).
    Glorot-uniform init (the ``tf.layers`` defaults).

    Shape:
        - Input: :math:`(N, 3, 64, 64)` in ``[-1, 1]``.
        - Output: :math:`(N, 1)` logits (real: positive).
    """

    def __init__(self, in_channels: int = IMAGE_CHANNELS, coords: bool = False, with_r: bool = False) -> None:
        super().__init__()
        first: nn.Module
        if coords:
            first = CoordConv2d(in_channels, 64, 5, stride=2, padding=2, with_r=with_r)
        else:
            first = nn.Conv2d(in_channels, 64, 5, stride=2, padding=2)
        lrelu = nn.LeakyReLU
        self.features = nn.Sequential(
            first, lrelu(0.2, inplace=True),
            nn.Conv2d(64, 128, 5, stride=2, padding=2), nn.BatchNorm2d(128), lrelu(0.2, inplace=True),
            nn.Conv2d(128, 256, 5, stride=2, padding=2), nn.BatchNorm2d(256), lrelu(0.2, inplace=True),
            nn.Conv2d(256, 512, 5, stride=2, padding=2), nn.BatchNorm2d(512), lrelu(0.2, inplace=True),
            nn.Flatten(),
        )  # fmt: skip
        self.classifier = nn.Linear(512 * (IMAGE_SIZE // 16) ** 2, 1)
        glorot_uniform_(self)

    def forward(self, image: Tensor) -> Tensor:
        return self.classifier(self.features(image))


class GANPair(nn.Module):
    r"""A generator and a discriminator trained together; ``model(z)`` runs the generator.

    Attributes:
        generator: ``(N, z_dim)`` noise to ``(N, 3, 64, 64)`` images in ``[-1, 1]``.
        discriminator: ``(N, 3, 64, 64)`` images in ``[-1, 1]`` to ``(N, 1)`` logits.
        z_dim: length of the noise vector.
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, z_dim: int) -> None:
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator
        self.z_dim = z_dim

    def sample_noise(
        self, n: int, *, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> Tensor:
        """``(n, z_dim)`` noise uniform in ``[-1, 1]``, the original's prior."""
        return torch.rand(n, self.z_dim, generator=generator, device=device) * 2 - 1

    def fakes_for_discriminator(self, z: Tensor) -> Tensor:
        """What the discriminator is trained on: ``generator(z)``, or for a generator with an
        ``unbounded`` method (the CoordConv one) its output before ``tanh``, as the original did."""
        unbounded = getattr(self.generator, "unbounded", None)
        return unbounded(z) if unbounded is not None else self.generator(z)

    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}"


_GAN = dict(task="gan", dataset="sort-of-clevr", output_shape=(IMAGE_CHANNELS, IMAGE_SIZE, IMAGE_SIZE))


@register_model(input_shape=(256,), **_GAN)
def clevr_gan(*, z_dim: int = 256) -> GANPair:
    """DCGAN-64 generator and discriminator for Sort-of-Clevr, without coordinates."""
    z_dim = check_positive_int("clevr_gan", "z_dim", z_dim)
    return GANPair(DCGANGenerator(z_dim), DCGANDiscriminator(), z_dim)


@register_model(input_shape=(256,), **_GAN)
def clevr_coordconv_in_gd(*, z_dim: int = 256, with_r: bool = False) -> GANPair:
    """CoordConv generator and a discriminator with coordinate inputs, for Sort-of-Clevr."""
    z_dim = check_positive_int("clevr_coordconv_in_gd", "z_dim", z_dim)
    return GANPair(CoordConvGenerator(z_dim, with_r=with_r), DCGANDiscriminator(coords=True, with_r=with_r), z_dim)
