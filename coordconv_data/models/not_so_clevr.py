"""The paper's Not-so-Clevr networks: coordinate classification, rendering and regression.

Layer stacks follow ``model_builders.py`` of uber-research/CoordConv (``CoordConvPainter``,
``DeconvPainter``, ``CoordConvImagePainter``, ``ConvRegressor``); what differs, and why:

* Locations in and out use the ``[-1, 1]`` convention of
  :func:`~coordconv_data.models.coords.normalize_coords` (the value of the matching coordinate
  channel at that pixel). The original fed raw integer pixel indices ``0..63`` next to coordinate
  channels in ``[-1, 1]``; the small classifier converges in a few epochs on scaled inputs and never
  on raw ones (DESIGN notes), and the regressors predicted ``loc / 64``.
* Rendering models output logits for a 0/1 mask. The original divided the 0/128 target images by 255,
  so the target was 0/0.502 and the IoU (of ``sigmoid > 0.5`` against that target) could not pass 0.5.
* Its ``AddCoords`` divided the column index by ``x_dim - 1`` (the number of rows) and vice versa;
  harmless at 64x64, wrong elsewhere. Ours normalises each axis by its own length.
* TensorFlow's ``'same'`` padding for stride 2 is asymmetric (one pixel more after than before);
  torch pads symmetrically. Output sizes are the same; the sampling grid is shifted by one pixel,
  which no result depends on.
* Initialisation: He-normal kernels and zero biases, as the original's ``he_normal``; dense layers
  that the original left at the ``tf.layers`` default get Glorot-uniform.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from .coords import CoordConv2d
from .registry import check_int_range, check_positive_int, register_model
from .tiled import TiledCoordConv2d
from .weight_init import glorot_uniform_, he_normal_

__all__ = [
    "CoordConvPainter",
    "DeconvPainter",
    "CoordConvImagePainter",
    "ConvRegressor",
    "ConvRegressorFC",
    "CoordConvRegressor",
]

IMAGE_SIZE = 64


def _deconv2x(in_channels: int, out_channels: int, fs: int) -> nn.ConvTranspose2d:
    # TF's 'same' stride-2 transposed conv doubles the size for any kernel size; torch needs this
    # padding / output_padding pair to do the same for odd and even fs alike.
    return nn.ConvTranspose2d(in_channels, out_channels, fs, stride=2, padding=(fs - 1) // 2, output_padding=fs % 2)


class CoordConvPainter(nn.Module):
    r"""Coordinate classifier: ``(x, y)`` tiled over the canvas, CoordConv, 1x1 convolutions.

    The ``(x, y)`` input is tiled over ``size x size``, :class:`AddCoords` appends the coordinate
    channels, and 1x1 convolutions of width ``32, 32, 64, 64`` (times ``mul``) with ReLU map every
    pixel to one logit. Each pixel only has to compare the input location with its own coordinates,
    which is why this tiny network (7,553 parameters at ``mul=1``) solves the task exactly. The tile,
    AddCoords and first convolution run as one :class:`TiledCoordConv2d` (same parameters, no tiled
    tensor).

    Args:
        mul: width multiplier.
        with_r: add the radial coordinate channel.
        size: canvas size.

    Shape:
        - Input: :math:`(N, 2)` ``(x, y)`` in ``[-1, 1]`` (:func:`normalize_coords`).
        - Output: :math:`(N, 1, \text{size}, \text{size})` logits; the target pixel ``(x, y)`` is at
          row ``y``, column ``x``.
    """

    def __init__(self, mul: int = 1, with_r: bool = False, size: int = IMAGE_SIZE) -> None:
        super().__init__()
        widths = (32 * mul, 32 * mul, 64 * mul, 64 * mul)
        self.coordconv = TiledCoordConv2d(2, widths[0], size, with_r=with_r)
        layers: list[nn.Module] = [nn.ReLU(inplace=True)]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(widths[-1], 1, 1))
        self.head = nn.Sequential(*layers)
        he_normal_(self)

    def forward(self, coords: Tensor) -> Tensor:
        return self.head(self.coordconv(coords))


class DeconvPainter(nn.Module):
    r"""The deconvolution baseline: ``(x, y)`` through six stride-2 transposed convolutions.

    ``(N, 2)`` is viewed as a ``1x1`` map with 2 channels and doubled six times to ``64x64`` by
    ``fs x fs`` transposed convolutions of width ``64, 64, 64, 32, 32`` (times ``mul``), each followed
    by BatchNorm and ReLU, then one to a single channel. The paper's sweeps used ``mul`` in
    ``{1, 2, 3}`` and ``fs`` in ``{2, 3, 4}``.

    Args:
        mul: width multiplier.
        fs: kernel size of the transposed convolutions.

    Shape:
        - Input: :math:`(N, 2)` ``(x, y)`` in ``[-1, 1]``.
        - Output: :math:`(N, 1, 64, 64)` logits.
    """

    def __init__(self, mul: int = 1, fs: int = 3) -> None:
        super().__init__()
        widths = (2, 64 * mul, 64 * mul, 64 * mul, 32 * mul, 32 * mul)
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [_deconv2x(c_in, c_out, fs), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        layers.append(_deconv2x(widths[-1], 1, fs))
        self.body = nn.Sequential(*layers)
        he_normal_(self)

    def forward(self, coords: Tensor) -> Tensor:
        return self.body(coords.reshape(-1, 2, 1, 1))


def _same_conv(c_in: int, c_out: int, k: int) -> list[nn.Module]:
    """A stride-1 ``'same'`` convolution, padded as TensorFlow pads even kernels (less before).

    torch's ``padding='same'`` warns for even kernels and copies the input; an explicit pad does not.
    """
    if k % 2:
        return [nn.Conv2d(c_in, c_out, k, padding=k // 2)]
    before, after = (k - 1) // 2, k // 2
    return [nn.ZeroPad2d((before, after, before, after)), nn.Conv2d(c_in, c_out, k)]


class CoordConvImagePainter(nn.Module):
    r"""CoordConv renderer: the coordinate classifier, a softmax over pixels, then a conv painter.

    Stage 1 is :class:`CoordConvPainter` with the original's fixed widths ``32, 32, 64, 64`` (the
    original applies ``mul`` to stage 2 only). Its logits go through a softmax over all pixels (the
    original's "sharpen" step; ``sharpen=False`` is its ``--no_softmax``), and stage 2 paints the
    square around the peak with ``fs x fs`` convolutions of width ``8, 8, 16, 16`` (times ``mul``)
    and ReLU, then one to a single channel. Five ``3x3`` layers see an ``11x11`` neighbourhood, enough
    for the ``9x9`` square. The original's logged runs pass ``-fs 1``, with which stage 2 is
    pointwise and cannot spread the peak into a square; the default here is the original parser's
    ``fs=3``.

    Args:
        mul: width multiplier of the painter stage.
        fs: kernel size of the painter stage.
        with_r: add the radial coordinate channel in stage 1.
        sharpen: softmax over the stage-1 logits before painting.

    Shape:
        - Input: :math:`(N, 2)` ``(x, y)`` in ``[-1, 1]``.
        - Output: :math:`(N, 1, 64, 64)` mask logits (for a 0/1 mask target).
    """

    def __init__(self, mul: int = 1, fs: int = 3, with_r: bool = False, sharpen: bool = True) -> None:
        super().__init__()
        self.locate = CoordConvPainter(mul=1, with_r=with_r)
        self.sharpen = bool(sharpen)
        widths = (1, 8 * mul, 8 * mul, 16 * mul, 16 * mul, 1)
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [*_same_conv(c_in, c_out, fs), nn.ReLU(inplace=True)]
        self.paint = nn.Sequential(*layers[:-1])
        he_normal_(self)

    def forward_stages(self, coords: Tensor) -> tuple[Tensor, Tensor]:
        """The mask logits and stage 1's logits before the softmax (what the original's
        ``--interm_loss`` compares with the one-hot centre)."""
        centre = self.locate(coords)
        peak = torch.softmax(centre.flatten(1), dim=1).view_as(centre) if self.sharpen else centre
        return self.paint(peak), centre

    def forward(self, coords: Tensor) -> Tensor:
        return self.forward_stages(coords)[0]

    def extra_repr(self) -> str:
        return f"sharpen={self.sharpen}"


def _conv(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Conv2d:
    # k // 2 gives TF-'same' output sizes for the odd kernels used here, at stride 1 and 2.
    return nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2)


class ConvRegressor(nn.Module):
    r"""Plain conv regressor: strided convolutions and global average pooling to ``(x, y)``.

    The original's ``big_conv2`` (``ConvRegressor`` type ``conv_quarant``, what its ``train.py`` builds
    for any file without ``uniform`` in its name): eight convolutions of width ``16 * mul`` (a ``5x5``
    and four ``3x3`` of stride 2 take ``64x64`` to ``2x2``) with ReLU, BatchNorm after the second's
    ReLU and before the fifth's, a final ``3x3`` to 2 channels, and the mean over positions. The original also put
    a ReLU on those 2 channels, which only works for its non-negative ``loc / 64`` targets and can die;
    it is left out because our targets are in ``[-1, 1]``.

    Args:
        mul: width multiplier.

    Shape:
        - Input: :math:`(N, 1, 64, 64)`.
        - Output: :math:`(N, 2)` ``(x, y)`` in the ``[-1, 1]`` scale.
    """

    def __init__(self, mul: int = 1) -> None:
        super().__init__()
        w = 16 * mul
        relu = nn.ReLU
        self.features = nn.Sequential(
            _conv(1, w, 5, stride=2), relu(inplace=True),
            _conv(w, w, 1), relu(inplace=True),
            nn.BatchNorm2d(w),
            _conv(w, w, 3), relu(inplace=True),
            _conv(w, w, 3, stride=2), relu(inplace=True),
            _conv(w, w, 3, stride=2), nn.BatchNorm2d(w), relu(inplace=True),
            _conv(w, w, 3, stride=2), relu(inplace=True),
            _conv(w, w, 1), relu(inplace=True),
            _conv(w, w, 3, stride=2), relu(inplace=True),
            _conv(w, 2, 3),
        )  # fmt: skip
        he_normal_(self)

    def forward(self, image: Tensor) -> Tensor:
        return self.features(image).mean(dim=(2, 3))


class ConvRegressorFC(nn.Module):
    r"""Plain conv regressor with a dense head, the original's choice for the uniform split.

    The original's ``big_conv`` (``ConvRegressor`` type ``conv_uniform``): four ``3x3`` convolutions of
    width ``16 * mul`` with ReLU, max-pooling by 2 after the first three, then flatten, a dense layer of
    64 units with ReLU and a dense layer to ``(x, y)``. The dense head ties it to ``64x64`` inputs.
    As in the original, ``--l2`` decays the convolution kernels only (:meth:`l2_parameters`).

    Args:
        mul: width multiplier of the convolutions (the dense layer stays at 64).

    Shape:
        - Input: :math:`(N, 1, 64, 64)`.
        - Output: :math:`(N, 2)` ``(x, y)`` in the ``[-1, 1]`` scale.
    """

    def __init__(self, mul: int = 1) -> None:
        super().__init__()
        w = 16 * mul
        self.features = nn.Sequential(
            _conv(1, w, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            _conv(w, w, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            _conv(w, w, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            _conv(w, w, 3), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(w * (IMAGE_SIZE // 8) ** 2, 64), nn.ReLU(inplace=True), nn.Linear(64, 2)
        )
        he_normal_(self.features)
        glorot_uniform_(self.head)

    def forward(self, image: Tensor) -> Tensor:
        return self.head(self.features(image))

    def l2_parameters(self) -> list[nn.Parameter]:
        """The four convolution kernels: the original's ``big_conv`` regularised its ``Conv2D``
        layers but built its two ``Dense`` layers without ``kernel_regularizer``, so ``--l2``
        never reached the head."""
        return [m.weight for m in self.features if isinstance(m, nn.Conv2d)]


class CoordConvRegressor(nn.Module):
    r"""CoordConv regressor: AddCoords, five linear convolutions, global max pooling.

    The original's ``coordconv_model``: CoordConv with three ``1x1`` convolutions of 8 filters, a
    ``3x3`` of 8 and a ``3x3`` of 2, all ``'same'`` and without activations, then the maximum over
    positions (the original's 64x64 max-pool; taken over the whole map here, so any size works). On a
    one-hot input the maximum can select the coordinate channels at the hot pixel, which is how it
    generalises to the held-out quadrant. 906 parameters (914 with ``with_r``).

    Initialisation: He-normal like the original, except that the first layer's weights on the
    coordinate channels start at zero. The gradient reaches the network only through the pixel that
    wins the max-pool; with He-normal coordinate weights the dense coordinate term usually outweighs
    the single hot pixel, the winner is a border pixel for every sample, and the output is stuck at
    the mean location (measured at init: for 5 of 8 seeds the winner was away from the hot pixel for
    over 97% of samples; seed 0 still had a 21 px mean error after 40 epochs at Adam lr 1e-2, seed 3
    reached 0.02 px in 4). With zero coordinate weights the winner starts next to the hot pixel for
    every sample and seed (12 of 12). Training can still move the winner to the border, more so at
    a high learning rate: after 3 epochs (Adam, batch 32, uniform split) the train error over seeds
    0-5 was 0.1-11.8 px at lr 1e-3 (10.7-43.8 px with He-normal coordinate weights) and 0.2-21.9 px
    at lr 1e-2 with either init. A trainer should use the lower rate, or restarts.

    Args:
        with_r: add the radial coordinate channel.

    Shape:
        - Input: :math:`(N, 1, H, W)` (64x64 in the paper).
        - Output: :math:`(N, 2)` ``(x, y)`` in the ``[-1, 1]`` scale.
    """

    def __init__(self, with_r: bool = False) -> None:
        super().__init__()
        self.coordconv = CoordConv2d(1, 8, 1, with_r=with_r)
        self.features = nn.Sequential(
            nn.Conv2d(8, 8, 1),
            nn.Conv2d(8, 8, 1),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.Conv2d(8, 2, 3, padding=1),
        )
        he_normal_(self)
        with torch.no_grad():
            self.coordconv.conv.weight[:, self.coordconv.in_channels :].zero_()

    def forward(self, image: Tensor) -> Tensor:
        return self.features(self.coordconv(image)).amax(dim=(2, 3))


_NSC = "not-so-clevr"
_COORDS_IN = (2,)
_MAP_OUT = (1, IMAGE_SIZE, IMAGE_SIZE)
_IMAGE_IN = (1, IMAGE_SIZE, IMAGE_SIZE)


@register_model(task="classification", dataset=_NSC, input_shape=_COORDS_IN, output_shape=_MAP_OUT)
def coordconv_classification(*, mul: int = 1, with_r: bool = False) -> CoordConvPainter:
    """CoordConv coordinate classifier, (x, y) -> one-hot logits (7,553 params at mul=1)."""
    return CoordConvPainter(mul=check_positive_int("coordconv_classification", "mul", mul), with_r=with_r)


@register_model(task="classification", dataset=_NSC, input_shape=_COORDS_IN, output_shape=_MAP_OUT)
def deconv_classification(*, mul: int = 1, fs: int = 3) -> DeconvPainter:
    """Deconvolution coordinate classifier, (x, y) -> one-hot logits (the paper's baseline)."""
    name = "deconv_classification"
    return DeconvPainter(mul=check_positive_int(name, "mul", mul), fs=check_int_range(name, "fs", fs, 1, IMAGE_SIZE, " (no kernel wider than the canvas)"))


@register_model(task="rendering", dataset=_NSC, input_shape=_COORDS_IN, output_shape=_MAP_OUT)
def coordconv_rendering(*, mul: int = 1, fs: int = 3, with_r: bool = False, sharpen: bool = True) -> CoordConvImagePainter:
    """CoordConv renderer, (x, y) -> square mask logits (classifier, softmax, conv painter)."""
    name = "coordconv_rendering"
    return CoordConvImagePainter(
        mul=check_positive_int(name, "mul", mul), fs=check_int_range(name, "fs", fs, 1, IMAGE_SIZE, " (no kernel wider than the canvas)"), with_r=with_r, sharpen=sharpen
    )


@register_model(task="rendering", dataset=_NSC, input_shape=_COORDS_IN, output_shape=_MAP_OUT)
def deconv_rendering(*, mul: int = 1, fs: int = 3) -> DeconvPainter:
    """Deconvolution renderer, (x, y) -> square mask logits (the DeconvPainter stack)."""
    name = "deconv_rendering"
    return DeconvPainter(mul=check_positive_int(name, "mul", mul), fs=check_int_range(name, "fs", fs, 1, IMAGE_SIZE, " (no kernel wider than the canvas)"))


@register_model(task="regression", dataset=_NSC, input_shape=_IMAGE_IN, output_shape=(2,))
def conv_regressor(*, mul: int = 1) -> ConvRegressor:
    """Plain conv regressor, image -> (x, y), strided convs and global average pooling."""
    return ConvRegressor(mul=check_positive_int("conv_regressor", "mul", mul))


@register_model(task="regression", dataset=_NSC, input_shape=_IMAGE_IN, output_shape=(2,))
def conv_regressor_fc(*, mul: int = 1) -> ConvRegressorFC:
    """Plain conv regressor with a dense head, image -> (x, y) (the original's uniform-split model)."""
    return ConvRegressorFC(mul=check_positive_int("conv_regressor_fc", "mul", mul))


@register_model(task="regression", dataset=_NSC, input_shape=_IMAGE_IN, output_shape=(2,))
def coordconv_regressor(*, with_r: bool = False) -> CoordConvRegressor:
    """CoordConv regressor, image -> (x, y), five linear convs and global max pooling (906 params)."""
    return CoordConvRegressor(with_r=with_r)
