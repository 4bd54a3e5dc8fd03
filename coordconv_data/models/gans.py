"""The paper's six GANs (``train_gan.py``): a DCGAN-64 pair and its CoordConv counterparts.

Follows ``CoordConvGAN(coords_in_g, coords_in_d, cout)`` in ``model_builders.py`` of
uber-research/CoordConv, which ``train_gan.py`` builds under six names:

* ``simple_gan``: DCGAN generator, plain discriminator; Not-so-Clevr, 1 grey channel.
* ``simple_coordconv_in_g``: CoordConv generator, plain discriminator; Not-so-Clevr, 1 grey channel.
* ``simple_coordconv_in_gd``: CoordConv generator, discriminator with AddCoords on its input;
  Not-so-Clevr, 1 grey channel.
* ``clevr_gan``, ``clevr_coordconv_in_g``, ``clevr_coordconv_in_gd``: the same three pairs for
  Sort-of-Clevr, 3 RGB channels.

Hyperparameters (keyword-only, with defaults): ``z_dim`` (simple: 10, the original parser's default,
as no command for the simple GANs was recorded; clevr: 256, the original README's command),
``width`` (the base channel count: 64 gives the paper's widths, 512/256/128/64 in the DCGAN
generator and 64..512 in the discriminator; every width scales with ``width / 64``, so 8 or 16 is a
GAN small enough to train on a CPU), ``size`` (the image side, a multiple of 16: the DCGAN generator
starts at ``size / 16`` and the discriminator ends there) and, where coordinates are used,
``with_r``. At ``width=64, size=64`` every layer is the original's.

Differences from the original, and why:

* None in what the networks compute at the defaults. Kept on purpose: the original's CoordConv
  generator handed its last convolution WITHOUT ``tanh`` to the discriminator (``tanh`` only made
  the images it saved), so in training its fakes are unbounded while real images are bounded. Here
  ``generator(z)`` always returns images in ``[-1, 1]``, and :meth:`GANPair.fakes_for_discriminator`
  gives what the discriminator sees in training, as the original. Changing that is not harmless:
  with ``tanh`` in front of the discriminator, at the paper's learning rates, the discriminator won
  within one epoch and the generator's pre-``tanh`` outputs grew to about 33 in magnitude (99% of
  them beyond 3), saturated, with no gradient left to recover (measured on 1620 Sort-of-Clevr
  images, ``benchmarks/bench_gan.py``); without it, the discriminator's gradient pulls them back.
* ``width`` and ``size`` generalise the original's fixed 64 (its ``mul`` existed for the supervised
  models only); the discriminator's dense layer takes ``8 * width * (size / 16) ** 2`` features.
* The CoordConv generator tiles ``z`` over the grid before its first 1x1 convolution; that step
  runs as one :class:`~coordconv_data.models.tiled.TiledCoordConv2d` (same parameters, no tiled
  tensor); the generator's forward pass measured about 25% faster on CPU for it.
* TensorFlow's asymmetric ``'same'`` padding at stride 2 becomes symmetric padding (same sizes).
* ``with_r`` on a ``*_coordconv_in_g`` model adds ``r`` to the generator only (the original's
  ``add_r`` reached the discriminator only through ``coords_in_d``); the ``*_gan`` models have no
  coordinates and take no ``with_r``.

Regularisation: the original put ``kernel_regularizer=l2reg(l2)`` on the CoordConv generator's
convolutions only (the DCGAN generator, the dense layers and the discriminator had none), and
added ``l2 * sum(w**2)`` of those kernels to the generator's loss; :meth:`GANPair.l2_parameters`
returns exactly those kernels.

Pixel scale of real images (the trainer's choice, recorded here because the generator must be able
to reach it): the original fed Sort-of-Clevr as ``uint8 / 127.5 - 1`` in ``[-1, 1]`` and the simple
GANs the grey Not-so-Clevr image ``imagegray / 255`` (background 0, square ``128 / 255 = 0.502``).
Both generators end in ``tanh``, so either fits.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from .coords import CoordConv2d
from .registry import HyperparameterError, check_positive_int, register_model
from .tiled import TiledCoordConv2d
from .weight_init import glorot_uniform_, he_normal_

__all__ = ["DCGANGenerator", "CoordConvGenerator", "DCGANDiscriminator", "GANPair", "check_gan_size"]

IMAGE_SIZE = 64  # the paper's canvas
BASE_WIDTH = 64  # the paper's base channel count; widths are multiples of it
SIZE_STEP = 16  # four stride-2 stages: the image side must divide by 16
SIMPLE_Z_DIM = 10  # train_gan.py's --z_dim default (no recorded command for the simple GANs)
CLEVR_Z_DIM = 256  # the original README's command for clevr_gan / clevr_coordconv_in_gd


def check_gan_size(model: str, size: object) -> int:
    """Validate the image side of a GAN: a positive integer multiple of 16."""
    if isinstance(size, bool) or not isinstance(size, int) or size < SIZE_STEP or size % SIZE_STEP:
        raise HyperparameterError(
            f"model {model!r}: size must be a positive multiple of {SIZE_STEP} (the DCGAN generator starts "
            f"at size/16), got {size!r}", field="size"
        )
    return size


def _up(c_in: int, c_out: int) -> nn.ConvTranspose2d:
    # 5x5 stride-2 transposed conv that doubles the size, as TF's 'same'.
    return nn.ConvTranspose2d(c_in, c_out, 5, stride=2, padding=2, output_padding=1)


class DCGANGenerator(nn.Module):
    r"""DCGAN generator: dense to ``(8w, s/16, s/16)``, four stride-2 ``5x5`` transposed convs, ``tanh``.

    Widths ``8w -> 4w -> 2w -> w -> out_channels`` (``w = width``; the paper's ``512 -> 256 -> 128
    -> 64`` at ``width=64``) with BatchNorm and ReLU between; Glorot-uniform init (the original left
    these layers at the ``tf.layers`` defaults). No layer of it was regularised in the original.

    Args:
        z_dim: length of the noise vector.
        out_channels: image channels (3 RGB, 1 grey).
        width: base channel count ``w``.
        size: image side ``s``, a multiple of 16.

    Shape:
        - Input: :math:`(N, z_{dim})`.
        - Output: :math:`(N, C_{out}, s, s)` in ``[-1, 1]``.
    """

    def __init__(self, z_dim: int = CLEVR_Z_DIM, out_channels: int = 3, width: int = BASE_WIDTH,
                 size: int = IMAGE_SIZE) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.start = size // SIZE_STEP
        w = width
        self.project = nn.Linear(z_dim, 8 * w * self.start**2)
        self.body = nn.Sequential(
            nn.BatchNorm2d(8 * w), nn.ReLU(inplace=True),
            _up(8 * w, 4 * w), nn.BatchNorm2d(4 * w), nn.ReLU(inplace=True),
            _up(4 * w, 2 * w), nn.BatchNorm2d(2 * w), nn.ReLU(inplace=True),
            _up(2 * w, w), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
            _up(w, out_channels), nn.Tanh(),
        )  # fmt: skip
        glorot_uniform_(self)

    def forward(self, z: Tensor) -> Tensor:
        return self.body(self.project(z).view(len(z), -1, self.start, self.start))

    def l2_parameters(self) -> list[nn.Parameter]:
        """None: the original regularised no layer of the DCGAN generator."""
        return []


class CoordConvGenerator(nn.Module):
    r"""CoordConv generator: ``z`` tiled over the grid with coordinates, then per-pixel convolutions.

    ``z`` is tiled over ``s x s``, :class:`AddCoords` appends ``x``, ``y`` (, ``r``), and 1x1
    convolutions of width ``8w, 4w, 4w, 2w, w``, two ``3x3`` of ``w`` (ReLU after each) and a 1x1 to
    ``out_channels`` follow (:meth:`unbounded`), then ``tanh`` (:meth:`forward`). At ``width=64``:
    ``512, 256, 256, 128, 64, 64, 64``, the original's. He-normal init, as the original.

    Args:
        z_dim: length of the noise vector.
        out_channels: image channels (3 RGB, 1 grey).
        with_r: add the radial coordinate channel.
        width: base channel count ``w``.
        size: image side ``s`` (any positive integer works here; the registered models use
            multiples of 16 to match their discriminator).

    Shape:
        - Input: :math:`(N, z_{dim})`.
        - Output: :math:`(N, C_{out}, s, s)` in ``[-1, 1]``.
    """

    def __init__(self, z_dim: int = CLEVR_Z_DIM, out_channels: int = 3, with_r: bool = False,
                 width: int = BASE_WIDTH, size: int = IMAGE_SIZE) -> None:
        super().__init__()
        self.z_dim = z_dim
        w = width
        self.coordconv = TiledCoordConv2d(z_dim, 8 * w, size, with_r=with_r)
        self.body = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.Conv2d(8 * w, 4 * w, 1), nn.ReLU(inplace=True),
            nn.Conv2d(4 * w, 4 * w, 1), nn.ReLU(inplace=True),
            nn.Conv2d(4 * w, 2 * w, 1), nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, w, 1), nn.ReLU(inplace=True),
            nn.Conv2d(w, w, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w, w, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w, out_channels, 1),
        )  # fmt: skip
        he_normal_(self)

    def unbounded(self, z: Tensor) -> Tensor:
        """The last convolution's output, before ``tanh``: what the original's discriminator saw."""
        return self.body(self.coordconv(z))

    def forward(self, z: Tensor) -> Tensor:
        return torch.tanh(self.unbounded(z))

    def l2_parameters(self) -> list[nn.Parameter]:
        """The kernels (not the biases) of all eight convolutions, the first one's including its
        coordinate channels: the tensors the original decayed with ``kernel_regularizer=l2reg(l2)``."""
        return [self.coordconv.weight] + [m.weight for m in self.body if isinstance(m, nn.Conv2d)]


class DCGANDiscriminator(nn.Module):
    r"""DCGAN discriminator, optionally with coordinate channels on its input.

    Four stride-2 ``5x5`` convolutions of width ``w, 2w, 4w, 8w`` (``64..512`` at ``width=64``) with
    leaky ReLU (slope 0.2), BatchNorm on all but the first, then a dense layer from
    ``(8w, s/16, s/16)`` to one logit. With ``coords=True`` the first convolution is a
    :class:`CoordConv2d` (the original's ``coords_in_d``: AddCoords on the input image).
    Glorot-uniform init (the ``tf.layers`` defaults); no regulariser in the original.

    Args:
        in_channels: image channels (3 RGB, 1 grey).
        coords: AddCoords on the input.
        with_r: add the radial coordinate channel (with ``coords`` only).
        width: base channel count ``w``.
        size: image side ``s``, a multiple of 16.

    Shape:
        - Input: :math:`(N, C_{in}, s, s)`.
        - Output: :math:`(N, 1)` logits (real: positive).
    """

    def __init__(self, in_channels: int = 3, coords: bool = False, with_r: bool = False, width: int = BASE_WIDTH,
                 size: int = IMAGE_SIZE) -> None:
        super().__init__()
        w = width
        first: nn.Module
        if coords:
            first = CoordConv2d(in_channels, w, 5, stride=2, padding=2, with_r=with_r)
        else:
            first = nn.Conv2d(in_channels, w, 5, stride=2, padding=2)
        lrelu = nn.LeakyReLU
        self.features = nn.Sequential(
            first, lrelu(0.2, inplace=True),
            nn.Conv2d(w, 2 * w, 5, stride=2, padding=2), nn.BatchNorm2d(2 * w), lrelu(0.2, inplace=True),
            nn.Conv2d(2 * w, 4 * w, 5, stride=2, padding=2), nn.BatchNorm2d(4 * w), lrelu(0.2, inplace=True),
            nn.Conv2d(4 * w, 8 * w, 5, stride=2, padding=2), nn.BatchNorm2d(8 * w), lrelu(0.2, inplace=True),
            nn.Flatten(),
        )  # fmt: skip
        self.classifier = nn.Linear(8 * w * (size // SIZE_STEP) ** 2, 1)
        glorot_uniform_(self)

    def forward(self, image: Tensor) -> Tensor:
        return self.classifier(self.features(image))


class GANPair(nn.Module):
    r"""A generator and a discriminator trained together; ``model(z)`` runs the generator.

    Attributes:
        generator: ``(N, z_dim)`` noise to ``(N, channels, image_size, image_size)`` images in ``[-1, 1]``.
        discriminator: such images to ``(N, 1)`` logits.
        z_dim: length of the noise vector.
        image_size: side of the square images, in pixels.
        channels: image channels: 1 (grey, the simple GANs) or 3 (RGB, the Sort-of-Clevr GANs).

    Shape:
        - Input: :math:`(N, z_{dim})` noise, uniform in ``[-1, 1]`` (:meth:`sample_noise`).
        - Output: :math:`(N, \text{channels}, \text{image\_size}, \text{image\_size})` in ``[-1, 1]``.
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, z_dim: int, *, image_size: int = IMAGE_SIZE,
                 channels: int = 3) -> None:
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator
        self.z_dim = z_dim
        self.image_size = image_size
        self.channels = channels

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

    def l2_parameters(self) -> list[nn.Parameter]:
        """The tensors the original regularised with ``l2 * sum(w ** 2)`` (added to the generator's
        loss): the CoordConv generator's convolution kernels, not its biases; an empty list for the
        DCGAN generator. Nothing of the discriminator."""
        own = getattr(self.generator, "l2_parameters", None)
        return list(own()) if own is not None else []

    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, image_size={self.image_size}, channels={self.channels}"


def _build(name: str, *, channels: int, coords_in_g: bool, coords_in_d: bool, z_dim: int, width: int, size: int,
           with_r: bool = False) -> GANPair:
    """The original's ``CoordConvGAN(coords_in_g, coords_in_d, cout=channels)``, validated."""
    z_dim = check_positive_int(name, "z_dim", z_dim)
    width = check_positive_int(name, "width", width)
    size = check_gan_size(name, size)
    if coords_in_g:
        generator: nn.Module = CoordConvGenerator(z_dim, channels, with_r=with_r, width=width, size=size)
    else:
        generator = DCGANGenerator(z_dim, channels, width=width, size=size)
    discriminator = DCGANDiscriminator(channels, coords=coords_in_d, with_r=with_r and coords_in_d, width=width,
                                       size=size)
    return GANPair(generator, discriminator, z_dim, image_size=size, channels=channels)


_SIMPLE = dict(task="gan", dataset="not-so-clevr", input_shape=(SIMPLE_Z_DIM,), output_shape=(1, IMAGE_SIZE, IMAGE_SIZE))
_CLEVR = dict(task="gan", dataset="sort-of-clevr", input_shape=(CLEVR_Z_DIM,), output_shape=(3, IMAGE_SIZE, IMAGE_SIZE))


@register_model(**_SIMPLE)
def simple_gan(*, z_dim: int = SIMPLE_Z_DIM, width: int = BASE_WIDTH, size: int = IMAGE_SIZE) -> GANPair:
    """DCGAN generator and plain discriminator for grey Not-so-Clevr squares, without coordinates."""
    return _build("simple_gan", channels=1, coords_in_g=False, coords_in_d=False, z_dim=z_dim, width=width, size=size)


@register_model(**_SIMPLE)
def simple_coordconv_in_g(*, z_dim: int = SIMPLE_Z_DIM, width: int = BASE_WIDTH, size: int = IMAGE_SIZE,
                          with_r: bool = False) -> GANPair:
    """CoordConv generator and plain discriminator for grey Not-so-Clevr squares."""
    return _build("simple_coordconv_in_g", channels=1, coords_in_g=True, coords_in_d=False, z_dim=z_dim, width=width,
                  size=size, with_r=with_r)


@register_model(**_SIMPLE)
def simple_coordconv_in_gd(*, z_dim: int = SIMPLE_Z_DIM, width: int = BASE_WIDTH, size: int = IMAGE_SIZE,
                           with_r: bool = False) -> GANPair:
    """CoordConv generator and a discriminator with coordinate inputs, for grey Not-so-Clevr squares."""
    return _build("simple_coordconv_in_gd", channels=1, coords_in_g=True, coords_in_d=True, z_dim=z_dim, width=width,
                  size=size, with_r=with_r)


@register_model(**_CLEVR)
def clevr_gan(*, z_dim: int = CLEVR_Z_DIM, width: int = BASE_WIDTH, size: int = IMAGE_SIZE) -> GANPair:
    """DCGAN-64 generator and discriminator for Sort-of-Clevr, without coordinates."""
    return _build("clevr_gan", channels=3, coords_in_g=False, coords_in_d=False, z_dim=z_dim, width=width, size=size)


@register_model(**_CLEVR)
def clevr_coordconv_in_g(*, z_dim: int = CLEVR_Z_DIM, width: int = BASE_WIDTH, size: int = IMAGE_SIZE,
                         with_r: bool = False) -> GANPair:
    """CoordConv generator and plain discriminator, for Sort-of-Clevr."""
    return _build("clevr_coordconv_in_g", channels=3, coords_in_g=True, coords_in_d=False, z_dim=z_dim, width=width,
                  size=size, with_r=with_r)


@register_model(**_CLEVR)
def clevr_coordconv_in_gd(*, z_dim: int = CLEVR_Z_DIM, width: int = BASE_WIDTH, size: int = IMAGE_SIZE,
                          with_r: bool = False) -> GANPair:
    """CoordConv generator and a discriminator with coordinate inputs, for Sort-of-Clevr."""
    return _build("clevr_coordconv_in_gd", channels=3, coords_in_g=True, coords_in_d=True, z_dim=z_dim, width=width,
                  size=size, with_r=with_r)
