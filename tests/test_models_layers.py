"""Layers: coordinate channels, CoordConv, coordinate-bias convolution, tiled CoordConv."""

from __future__ import annotations

import doctest
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import coordconv_data.models as M
from coordconv_data.models import (
    AddCoords,
    CoordBiasConv2d,
    CoordConv1d,
    CoordConv2d,
    CoordConv3d,
    TiledCoordConv2d,
    coordinate_channels,
    denormalize_coords,
    normalize_coords,
)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")


def ramp(n: int, dtype=torch.float64) -> torch.Tensor:
    """Reference coordinates of an axis, written independently of the implementation."""
    return torch.tensor([i / (n - 1) * 2 - 1 if n > 1 else 0.0 for i in range(n)], dtype=dtype)


# --------------------------------------------------------------------------------------------------
# AddCoords


@pytest.mark.parametrize("h, w", [(4, 5), (5, 4), (3, 3), (1, 7), (7, 1), (1, 1), (2, 64)])
def test_addcoords_rank2_values_order_and_range(h, w):
    x = torch.randn(2, 3, h, w, dtype=torch.float64)
    out = AddCoords(rank=2)(x)
    assert out.shape == (2, 5, h, w)
    assert torch.equal(out[:, :3], x), "input channels must come first, unchanged"
    xx, yy = out[:, 3], out[:, 4]
    # x is the column index (varies along W, constant down a column), y the row index.
    torch.testing.assert_close(xx, ramp(w).view(1, 1, w).expand(2, h, w))
    torch.testing.assert_close(yy, ramp(h).view(1, h, 1).expand(2, h, w))
    assert torch.isfinite(out).all()
    assert out[:, 3:].min() >= -1 and out[:, 3:].max() <= 1
    if w > 1:
        assert xx[0, 0, 0] == -1 and xx[0, 0, -1] == 1
    if h > 1:
        assert yy[0, 0, 0] == -1 and yy[0, -1, 0] == 1


def test_addcoords_non_square_uses_each_axis_own_length():
    # The TensorFlow original divided the column index by (rows - 1): on 2x5 the last column
    # would be 4 / 1 * 2 - 1 = 7.
    out = AddCoords()(torch.zeros(1, 1, 2, 5))
    assert out[0, 1, 0].tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert out[0, 2, :, 0].tolist() == [-1.0, 1.0]


def test_addcoords_rank1():
    x = torch.randn(2, 3, 6)
    out = AddCoords(rank=1, with_r=True)(x)
    assert out.shape == (2, 5, 6)
    torch.testing.assert_close(out[:, 3], ramp(6, torch.float32).expand(2, 6))
    torch.testing.assert_close(out[:, 4], ramp(6, torch.float32).abs().expand(2, 6))


def test_addcoords_rank3_order_is_x_y_z():
    d, h, w = 3, 4, 5
    out = AddCoords(rank=3, with_r=True)(torch.zeros(2, 1, d, h, w, dtype=torch.float64))
    assert out.shape == (2, 5, d, h, w)
    xx, yy, zz, rr = out[0, 1], out[0, 2], out[0, 3], out[0, 4]
    torch.testing.assert_close(xx, ramp(w).view(1, 1, w).expand(d, h, w))
    torch.testing.assert_close(yy, ramp(h).view(1, h, 1).expand(d, h, w))
    torch.testing.assert_close(zz, ramp(d).view(d, 1, 1).expand(d, h, w))
    torch.testing.assert_close(rr, (xx**2 + yy**2 + zz**2).sqrt())


def test_addcoords_r_is_distance_from_centre():
    out = AddCoords(with_r=True)(torch.zeros(1, 1, 5, 7, dtype=torch.float64))
    rr = out[0, 3]
    torch.testing.assert_close(rr, (out[0, 1] ** 2 + out[0, 2] ** 2).sqrt())
    assert rr[2, 3] == 0, "the centre pixel has r = 0"
    assert rr.argmin() == 2 * 7 + 3
    torch.testing.assert_close(rr[0, 0], torch.tensor(math.sqrt(2), dtype=torch.float64))
    torch.testing.assert_close(rr[-1, -1], torch.tensor(math.sqrt(2), dtype=torch.float64))
    # A (0.5, 0.5)-centred radius would not be symmetric under flips.
    torch.testing.assert_close(rr, rr.flip(0))
    torch.testing.assert_close(rr, rr.flip(1))


@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (4, 1)])
def test_addcoords_size_one_axes_give_zero(shape):
    out = AddCoords(with_r=True)(torch.zeros(1, 2, *shape))
    assert torch.isfinite(out).all()
    if shape[1] == 1:
        assert (out[:, 2] == 0).all()
    if shape[0] == 1:
        assert (out[:, 3] == 0).all()
    assert AddCoords(rank=3)(torch.zeros(1, 1, 1, 1, 1)).abs().sum() == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_addcoords_follows_dtype_and_device(dtype):
    x = torch.zeros(2, 1, 3, 4, dtype=dtype)
    out = AddCoords(with_r=True)(x)
    assert out.dtype == dtype and out.device == x.device
    # The meta device has no storage: anything built on the CPU would fail to concatenate.
    meta = AddCoords(with_r=True)(torch.empty(2, 1, 3, 4, device="meta", dtype=dtype))
    assert meta.device.type == "meta" and meta.dtype == dtype and meta.shape == (2, 4, 3, 4)


@cuda
def test_layers_on_cuda():
    x = torch.randn(2, 3, 5, 6, device="cuda")
    out = AddCoords(with_r=True)(x)
    assert out.device == x.device
    torch.testing.assert_close(out.cpu(), AddCoords(with_r=True)(x.cpu()))
    for layer in (CoordConv2d(3, 4, 3, padding=1), CoordBiasConv2d(3, 4, 3, padding=1)):
        layer = layer.cuda()
        assert layer(x).device == x.device
    assert TiledCoordConv2d(2, 4, 8).cuda()(torch.zeros(2, 2, device="cuda")).device == x.device


def test_addcoords_unbatched_and_errors():
    out = AddCoords()(torch.zeros(3, 4, 5))
    assert out.shape == (5, 4, 5)
    torch.testing.assert_close(out[3], ramp(5, torch.float32).expand(4, 5))
    with pytest.raises(ValueError, match="4-D batched"):
        AddCoords()(torch.zeros(5))
    with pytest.raises(TypeError, match="floating point"):
        AddCoords()(torch.zeros(1, 1, 2, 2, dtype=torch.int64))
    with pytest.raises(ValueError):
        AddCoords(rank=4)


def test_coordinate_channels_matches_addcoords():
    cc = coordinate_channels((3, 4), with_r=True, dtype=torch.float64)
    out = AddCoords(with_r=True)(torch.zeros(1, 0, 3, 4, dtype=torch.float64))
    torch.testing.assert_close(cc, out[0])


def test_normalize_coords_matches_channel_value_at_pixel():
    h, w = 5, 9
    out = AddCoords()(torch.zeros(1, 0, h, w, dtype=torch.float64))[0]
    locs = torch.tensor([[x, y] for x in range(w) for y in range(h)])
    v = normalize_coords(locs, (w, h)).to(torch.float64)
    for (x, y), (vx, vy) in zip(locs.tolist(), v.tolist()):
        assert vx == pytest.approx(out[0, y, x].item())
        assert vy == pytest.approx(out[1, y, x].item())
    torch.testing.assert_close(denormalize_coords(v, (w, h)), locs.to(torch.float64))
    assert normalize_coords(torch.tensor([0.0, 3.0]), (1, 7)).tolist() == [0.0, 0.0]
    assert normalize_coords(torch.tensor([[0, 63]]), 64).tolist() == [[-1.0, 1.0]]


# --------------------------------------------------------------------------------------------------
# CoordConvNd


@pytest.mark.parametrize(
    "cls, rank, spatial", [(CoordConv1d, 1, (9,)), (CoordConv2d, 2, (6, 7)), (CoordConv3d, 3, (4, 5, 6))]
)
@pytest.mark.parametrize("with_r", [False, True])
def test_coordconv_is_addcoords_then_one_conv(cls, rank, spatial, with_r):
    torch.manual_seed(0)
    layer = cls(3, 5, 3, stride=1, padding=1, with_r=with_r)
    extra = rank + int(with_r)
    assert layer.in_channels == 3 and layer.out_channels == 5
    assert layer.conv.in_channels == 3 + extra
    # Exactly the inner conv's parameters: nothing dead.
    assert [n for n, _ in layer.named_parameters()] == ["conv.weight", "conv.bias"]
    assert sum(1 for m in layer.modules() if isinstance(m, nn.modules.conv._ConvNd)) == 1
    x = torch.randn(2, 3, *spatial)
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[rank]
    expected = conv(AddCoords(rank, with_r)(x), layer.conv.weight, layer.conv.bias, padding=1)
    torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(padding="same", padding_mode="reflect"),
        dict(padding=2, padding_mode="circular", stride=2),
        dict(padding=(1, 0), padding_mode="replicate", dilation=2),
        dict(padding="valid", bias=False),
    ],
)
def test_coordconv_equals_concatenation_for_every_padding(kwargs):
    torch.manual_seed(0)
    layer = CoordConv2d(3, 4, 3, with_r=True, dtype=torch.float64, **kwargs)
    reference = nn.Conv2d(6, 4, 3, dtype=torch.float64, **kwargs)
    reference.load_state_dict(layer.conv.state_dict())
    x = torch.randn(2, 3, 9, 10, dtype=torch.float64)
    torch.testing.assert_close(layer(x), reference(AddCoords(with_r=True)(x)))
    torch.testing.assert_close(layer(x[0]), reference(AddCoords(with_r=True)(x[0])))


def test_coordconv_passes_conv_arguments():
    layer = CoordConv2d(2, 4, (3, 5), stride=2, padding="valid", dilation=(1, 2), bias=False, padding_mode="zeros")
    assert layer.conv.bias is None and layer.conv.stride == (2, 2) and layer.conv.dilation == (1, 2)
    assert layer(torch.randn(1, 2, 11, 13)).shape == (1, 4, 5, 3)
    same = CoordConv2d(2, 4, 3, padding="same", padding_mode="reflect", dtype=torch.float64)
    assert same.conv.weight.dtype == torch.float64
    assert same(torch.randn(1, 2, 6, 7, dtype=torch.float64)).shape == (1, 4, 6, 7)
    with pytest.raises(ValueError, match="groups=1"):
        CoordConv2d(4, 4, 3, groups=2)


# --------------------------------------------------------------------------------------------------
# CoordBiasConv2d


def coord_term_reference(cw: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """b[o,0] * j/(W-1) + b[o,1] * i/(H-1), element by element."""
    out = torch.zeros(cw.shape[0], h, w, dtype=cw.dtype)
    for o in range(cw.shape[0]):
        for i in range(h):
            for j in range(w):
                rx = j / (w - 1) if w > 1 else 0.0
                ry = i / (h - 1) if h > 1 else 0.0
                out[o, i, j] = cw[o, 0] * rx + cw[o, 1] * ry
    return out


CASES = [
    dict(stride=1, padding=0),
    dict(stride=2, padding=1),
    dict(stride=(1, 2), padding=(2, 0)),
    dict(stride=1, padding="same"),
    dict(stride=1, padding="same", dilation=2),
    dict(stride=2, padding="valid", dilation=(2, 1)),
    dict(stride=1, padding=1, groups=2),
    dict(stride=1, padding=1, groups=4, bias=False),
    dict(stride=2, padding=1, bias=False),
    dict(stride=1, padding=1, padding_mode="reflect"),
    dict(stride=1, padding=2, padding_mode="replicate", dilation=2),
    dict(stride=2, padding=1, padding_mode="circular", groups=2),
    dict(stride=1, padding="same", padding_mode="reflect", kernel_size=(2, 3)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_coordbias_equals_conv_plus_closed_form(case):
    torch.manual_seed(0)
    case = dict(case)
    k = case.pop("kernel_size", 3)
    layer = CoordBiasConv2d(4, 8, k, dtype=torch.float64, **case)
    with torch.no_grad():
        layer.coord_weight.normal_()
    x = torch.randn(2, 4, 9, 11, dtype=torch.float64)
    out = layer(x)
    plain = nn.Conv2d(4, 8, k, dtype=torch.float64, **case)
    plain.load_state_dict({k: v for k, v in layer.state_dict().items() if k != "coord_weight"})
    base = plain(x)
    if case.get("padding_mode", "zeros") == "zeros":
        p = case["padding"]
        base_f = F.conv2d(x, layer.weight, layer.bias, case["stride"], p, case.get("dilation", 1), case.get("groups", 1))
        torch.testing.assert_close(base, base_f)
    h, w = base.shape[-2:]
    torch.testing.assert_close(out, base + coord_term_reference(layer.coord_weight.detach(), h, w))


def test_coordbias_zero_coord_weight_equals_plain_conv():
    torch.manual_seed(1)
    layer = CoordBiasConv2d(3, 5, 3, padding=1, stride=2)
    assert torch.count_nonzero(layer.coord_weight) == 0, "fresh layers start as the plain conv"
    plain = nn.Conv2d(3, 5, 3, padding=1, stride=2)
    missing = plain.load_state_dict({k: v for k, v in layer.state_dict().items() if k != "coord_weight"})
    assert not missing.missing_keys and not missing.unexpected_keys
    x = torch.randn(2, 3, 8, 10)
    torch.testing.assert_close(layer(x), plain(x), rtol=0, atol=0)
    layer.reset_parameters()
    assert torch.count_nonzero(layer.coord_weight) == 0


def test_coordbias_state_dict_is_conv_plus_coord_weight():
    assert set(CoordBiasConv2d(2, 3, 1).state_dict()) == {"weight", "bias", "coord_weight"}
    assert set(CoordBiasConv2d(2, 3, 1, bias=False).state_dict()) == {"weight", "coord_weight"}
    assert CoordBiasConv2d(2, 3, 1).coord_weight.shape == (3, 2)
    assert isinstance(CoordBiasConv2d(2, 3, 1), nn.Conv2d)


def test_coordbias_study_init_and_per_input():
    torch.manual_seed(0)
    layer = CoordBiasConv2d(6, 4, 3, coord_init="uniform")
    bound = 1 / math.sqrt(6 * 9)
    assert 0.5 * bound < float(layer.coord_weight.detach().abs().max()) <= bound
    grouped = CoordBiasConv2d(6, 4, 3, groups=2, coord_init="uniform", per_input=True)
    assert grouped.coord_weight.shape == (4, 3, 2)
    assert float(grouped.coord_weight.detach().abs().max()) <= 1 / math.sqrt(3 * 9)
    x = torch.randn(2, 6, 5, 7)
    base = F.conv2d(x, grouped.weight, grouped.bias, groups=2)
    torch.testing.assert_close(grouped(x), base + coord_term_reference(grouped.coord_weight.detach().sum(1), 3, 5))
    # Every entry of an (out, in, 2) parameter gets the same gradient: the pair moves `in` times faster under SGD.
    grouped(x).sum().backward()
    g = grouped.coord_weight.grad
    torch.testing.assert_close(g, g[:, :1].expand_as(g))
    with pytest.raises(ValueError, match="coord_init must be one of zeros, uniform"):
        CoordBiasConv2d(2, 2, 1, coord_init="normal")


@pytest.mark.parametrize("size, expected_hw", [((3, 3), (1, 1)), ((3, 7), (1, 5)), ((6, 3), (4, 1))])
def test_coordbias_one_pixel_output_axes(size, expected_hw):
    layer = CoordBiasConv2d(2, 3, 3, bias=False)
    with torch.no_grad():
        layer.coord_weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    x = torch.randn(1, 2, *size)
    out = layer(x)
    assert out.shape[-2:] == expected_hw and torch.isfinite(out).all()
    base = F.conv2d(x, layer.weight)
    torch.testing.assert_close(out, base + coord_term_reference(layer.coord_weight.detach(), *expected_hw))


def test_coordbias_unbatched_and_dtype():
    layer = CoordBiasConv2d(2, 3, 3, padding=1, dtype=torch.float64)
    out = layer(torch.randn(2, 4, 5, dtype=torch.float64))
    assert out.shape == (3, 4, 5) and out.dtype == torch.float64


# --------------------------------------------------------------------------------------------------
# TiledCoordConv2d


@pytest.mark.parametrize("with_r, size", [(False, 8), (True, (5, 7))])
def test_tiled_coordconv_equals_tile_addcoords_conv(with_r, size):
    torch.manual_seed(0)
    layer = TiledCoordConv2d(3, 6, size, with_r=with_r).double()
    v = torch.randn(4, 3, dtype=torch.float64)
    h, w = (size, size) if isinstance(size, int) else size
    tiled = v[:, :, None, None].expand(-1, -1, h, w)
    expected = F.conv2d(AddCoords(2, with_r)(tiled), layer.weight, layer.bias)
    torch.testing.assert_close(layer(v), expected)
    assert layer.weight.shape == (6, 3 + 2 + int(with_r), 1, 1)


# --------------------------------------------------------------------------------------------------
# gradients


def _gradcheck(layer: nn.Module, *inputs: torch.Tensor) -> None:
    layer = layer.double()
    inputs = tuple(t.double().requires_grad_() for t in inputs)
    assert torch.autograd.gradcheck(lambda *xs: layer(*xs), inputs)
    # And with respect to the parameters.
    names, params = zip(*layer.named_parameters())

    def with_params(*ps):
        return torch.func.functional_call(layer, dict(zip(names, ps)), tuple(t.detach() for t in inputs))

    assert torch.autograd.gradcheck(with_params, tuple(p.detach().clone().requires_grad_() for p in params))


@pytest.mark.parametrize(
    "layer, shape",
    [
        (AddCoords(rank=1, with_r=True), (2, 2, 5)),
        (AddCoords(rank=2, with_r=True), (2, 2, 3, 4)),
        (AddCoords(rank=3), (1, 1, 2, 3, 4)),
        (CoordConv1d(2, 3, 3, padding=1, with_r=True), (2, 2, 5)),
        (CoordConv2d(2, 3, 3, stride=2, padding=1), (2, 2, 5, 4)),
        (CoordConv3d(1, 2, 2), (1, 1, 3, 3, 4)),
        (CoordBiasConv2d(2, 3, 3, padding=1), (2, 2, 4, 5)),
        (CoordBiasConv2d(4, 2, 3, stride=2, dilation=2, groups=2, bias=False, padding=2), (1, 4, 6, 5)),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else str(v),
)
def test_gradcheck(layer, shape):
    torch.manual_seed(0)
    if isinstance(layer, CoordBiasConv2d):
        with torch.no_grad():
            layer.coord_weight.normal_()
    if list(layer.parameters()):
        _gradcheck(layer, torch.randn(*shape))
    else:
        assert torch.autograd.gradcheck(layer, (torch.randn(*shape, dtype=torch.float64, requires_grad=True),))


def test_gradcheck_tiled():
    torch.manual_seed(0)
    _gradcheck(TiledCoordConv2d(3, 2, (3, 4), with_r=True), torch.randn(2, 3))


def test_docstring_examples():
    for module in (M.coords, M.coord_bias, M.tiled, M.registry):
        failures, _ = doctest.testmod(module, extraglobs={"torch": torch}, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert failures == 0, module.__name__
