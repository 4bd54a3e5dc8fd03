"""Architectures: shapes, gradients, parameter counts, hyperparameters, initialisation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from coordconv_data.models import (
    CoordBiasConv2d,
    HyperparameterError,
    CoordConv2d,
    GANPair,
    TiledCoordConv2d,
    coordinate_channels,
    create_model,
    kernel_parameters,
    l2_parameters,
    list_models,
    model_info,
    normalize_coords,
)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv_params(c_in: int, c_out: int, k: int = 1, bias: bool = True) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


def bn_params(c: int) -> int:
    return 2 * c


# Segmentation nets take any multiple of 8; a small non-square size keeps the suite fast.
SMALL_INPUT = {"segmentation": ((3, 32, 48), (4, 32, 48))}
# GANs run at 32x32 and a quarter of the paper's widths here (full size: 4 s per GAN for this test);
# tests/test_models_gans.py checks the default shapes.
SMALL_GAN = {"size": 32, "width": 16}


@pytest.mark.parametrize("name", list_models())
def test_forward_backward_every_model(name):
    torch.manual_seed(0)
    info = model_info(name)
    small = SMALL_GAN if info.task == "gan" else {}
    model = create_model(name, **small)
    model.train()
    in_shape, out_shape = SMALL_INPUT.get(info.task, (info.input_shape, info.output_shape))
    if info.task == "gan":
        out_shape = (info.output_shape[0], small["size"], small["size"])
    x = torch.rand(2, *in_shape) * 2 - 1
    if info.task == "gan":
        assert isinstance(model, GANPair) and model.z_dim == in_shape[0]
        assert (model.channels, model.image_size) == out_shape[:2]
        fake = model.generator(x)
        assert fake.shape == (2, *out_shape)
        assert fake.min() >= -1 and fake.max() <= 1, "generator output must be tanh-bounded"
        logits = model.discriminator(fake)
        assert logits.shape == (2, 1)
        torch.testing.assert_close(model(x), model.generator(x))
        loss = logits.sum() + model.discriminator(torch.rand(2, *out_shape) * 2 - 1).sum()
    else:
        y = model(x)
        assert y.shape == (2, *out_shape)
        assert torch.isfinite(y).all()
        loss = y.square().mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without a gradient: {missing}"


# -------------------------------------------------------------------------------------------------
# parameter counts, computed from the original's layer stacks


def deconv_painter_params(mul: int, fs: int) -> int:
    widths = [2, 64 * mul, 64 * mul, 64 * mul, 32 * mul, 32 * mul, 1]
    total = sum(conv_params(a, b, fs) for a, b in zip(widths[:-1], widths[1:]))
    return total + sum(bn_params(c) for c in widths[1:-1])


def coordconv_painter_params(mul: int) -> int:
    widths = [2 + 2, 32 * mul, 32 * mul, 64 * mul, 64 * mul, 1]
    return sum(conv_params(a, b) for a, b in zip(widths[:-1], widths[1:]))


def test_param_count_coordconv_classification():
    assert coordconv_painter_params(1) == 7553  # "about 7.5k"
    assert n_params(create_model("coordconv_classification")) == 7553
    assert n_params(create_model("coordconv_classification", mul=2)) == coordconv_painter_params(2)


def test_param_count_coordconv_regressor():
    # AddCoords (1 + 2 channels), 1x1 x3 of 8, 3x3 of 8, 3x3 of 2.
    expected = conv_params(3, 8) + 2 * conv_params(8, 8) + conv_params(8, 8, 3) + conv_params(8, 2, 3)
    assert expected == 906  # "about 900"
    assert n_params(create_model("coordconv_regressor")) == 906
    assert n_params(create_model("coordconv_regressor", with_r=True)) == 906 + 8


@pytest.mark.parametrize("mul, fs", [(1, 3), (2, 3), (1, 2), (3, 4)])
def test_param_count_deconv(mul, fs):
    for name in ("deconv_classification", "deconv_rendering"):
        assert n_params(create_model(name, mul=mul, fs=fs)) == deconv_painter_params(mul, fs)


def test_param_count_conv_regressors():
    w = 16
    pooled = (
        conv_params(1, w, 5) + conv_params(w, w) + 4 * conv_params(w, w, 3) + conv_params(w, w)
        + conv_params(w, w, 3) + conv_params(w, 2, 3) + 2 * bn_params(w)
    )  # fmt: skip
    assert n_params(create_model("conv_regressor")) == pooled == 12914
    fc = conv_params(1, w, 3) + 3 * conv_params(w, w, 3) + (w * 8 * 8 * 64 + 64) + (64 * 2 + 2)
    assert n_params(create_model("conv_regressor_fc")) == fc == 72850


def test_param_count_coordconv_rendering():
    painter = conv_params(1, 8, 3) + conv_params(8, 8, 3) + conv_params(8, 16, 3) + conv_params(16, 16, 3) + conv_params(16, 1, 3)
    assert n_params(create_model("coordconv_rendering")) == coordconv_painter_params(1) + painter == 11850


def test_param_count_gans():
    disc = (
        conv_params(3, 64, 5) + conv_params(64, 128, 5) + conv_params(128, 256, 5) + conv_params(256, 512, 5)
        + bn_params(128) + bn_params(256) + bn_params(512) + (512 * 16 + 1)
    )  # fmt: skip
    gen = (
        (256 * 512 * 16 + 512 * 16) + bn_params(512)
        + conv_params(512, 256, 5) + conv_params(256, 128, 5) + conv_params(128, 64, 5) + conv_params(64, 3, 5)
        + bn_params(256) + bn_params(128) + bn_params(64)
    )  # fmt: skip
    gan = create_model("clevr_gan")
    assert (n_params(gan.generator), n_params(gan.discriminator)) == (gen, disc)
    cc_gen = (
        conv_params(258, 512) + conv_params(512, 256) + conv_params(256, 256) + conv_params(256, 128)
        + conv_params(128, 64) + 2 * conv_params(64, 64, 3) + conv_params(64, 3)
    )  # fmt: skip
    cc = create_model("clevr_coordconv_in_gd")
    coord_disc_extra = 2 * 64 * 25
    assert (n_params(cc.generator), n_params(cc.discriminator)) == (cc_gen, disc + coord_disc_extra)


# -------------------------------------------------------------------------------------------------
# hyperparameters


@pytest.mark.parametrize("fs", [1, 2, 3, 4, 5])
def test_fs_sets_deconv_kernels_and_keeps_64x64(fs):
    model = create_model("deconv_classification", fs=fs, mul=2)
    deconvs = [m for m in model.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(deconvs) == 6
    assert all(m.kernel_size == (fs, fs) and m.stride == (2, 2) for m in deconvs)
    assert [m.out_channels for m in deconvs] == [128, 128, 128, 64, 64, 1]
    assert model(torch.zeros(3, 2)).shape == (3, 1, 64, 64)


def test_mul_scales_widths():
    cc = create_model("coordconv_classification", mul=3)
    assert isinstance(cc.coordconv, TiledCoordConv2d) and cc.coordconv.out_channels == 96
    assert [m.out_channels for m in cc.head if isinstance(m, nn.Conv2d)] == [96, 192, 192, 1]
    reg = create_model("conv_regressor", mul=2)
    assert [m.out_channels for m in reg.modules() if isinstance(m, nn.Conv2d)] == [32] * 8 + [2]
    rend = create_model("coordconv_rendering", mul=2, fs=5)
    convs = [m for m in rend.paint if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [16, 16, 32, 32, 1]
    assert all(m.kernel_size == (5, 5) for m in convs)
    # The original keeps the locating stage at 32, 32, 64, 64 whatever mul is.
    assert rend.locate.coordconv.out_channels == 32


@pytest.mark.parametrize("fs", [2, 3])
def test_coordconv_rendering_without_sharpen(fs):
    model = create_model("coordconv_rendering", sharpen=False, fs=fs)
    assert model(torch.zeros(2, 2)).shape == (2, 1, 64, 64)


def test_with_r_adds_radial_channel():
    assert create_model("coordconv_classification", with_r=True).coordconv.weight.shape[1] == 5
    conv = create_model("fcn_vgg9_coordconv", with_r=True).encoder[0][0]
    assert isinstance(conv, CoordConv2d) and conv.conv.in_channels == 6


# -------------------------------------------------------------------------------------------------
# Lanes FCN variants


def _fcn(name: str, seed: int, **hparams):
    torch.manual_seed(seed)
    return create_model(name, **{"init": "comparable", **hparams})


def test_fcn_variants_share_identical_initial_weights():
    plain = _fcn("fcn_vgg9", 7).state_dict()
    bias = _fcn("fcn_vgg9_coordbias", 7).state_dict()
    coord = _fcn("fcn_vgg9_coordconv", 7).state_dict()

    assert set(bias) - set(plain) == {f"encoder.{b}.{i}.coord_weight" for b in range(3) for i in (0, 2)}
    for key, value in plain.items():
        torch.testing.assert_close(bias[key], value, rtol=0, atol=0, msg=key)
        if key.startswith("encoder."):
            block, idx, leaf = key.split(".")[1:]
            shared = coord[f"encoder.{block}.{idx}.conv.{leaf}"]
            if leaf == "weight":
                shared = shared[:, : value.shape[1]]
            torch.testing.assert_close(shared, value, rtol=0, atol=0, msg=key)
        else:
            torch.testing.assert_close(coord[key], value, rtol=0, atol=0, msg=key)
    for key, value in bias.items():
        if key.endswith("coord_weight"):
            assert torch.count_nonzero(value) == 0
    # The coordinate slices of CoordConv are drawn too (not zero), at the same scale.
    w = coord["encoder.1.0.conv.weight"]
    assert torch.count_nonzero(w[:, 64:]) > 0
    assert 0.5 < w[:, 64:].std() / w[:, :64].std() < 2


def test_fcn_init_depends_on_seed_and_coordbias_starts_as_plain():
    a, b = _fcn("fcn_vgg9", 1), _fcn("fcn_vgg9", 2)
    assert not torch.equal(a.encoder[0][0].weight, b.encoder[0][0].weight)
    plain, coordbias = _fcn("fcn_vgg9", 3), _fcn("fcn_vgg9_coordbias", 3)
    assert isinstance(coordbias.encoder[0][0], CoordBiasConv2d)
    x = torch.rand(2, 3, 16, 24)
    torch.testing.assert_close(coordbias(x), plain(x), rtol=0, atol=0)


def _encoder_convs(model):
    return [m for block in model.encoder for m in block if not isinstance(m, (nn.ReLU, nn.MaxPool2d))]


def test_fcn_study_init_is_the_studys():
    """init="study" (the default): torchvision VGG's init on the plain encoder, torch's defaults on the
    coordinate-bias encoder with xy_bias U(+-1/sqrt(fan_in)), torch's defaults on the decoder."""
    torch.manual_seed(0)
    plain, bias, coord = (create_model(n) for n in ("fcn_vgg9", "fcn_vgg9_coordbias", "fcn_vgg9_coordconv"))
    for conv in _encoder_convs(plain):  # kaiming normal, fan_out, zero bias
        fan_out = conv.weight.shape[0] * 9
        assert 0.8 < float(conv.weight.detach().std()) / math.sqrt(2 / fan_out) < 1.2
        assert torch.count_nonzero(conv.bias) == 0
    for conv in _encoder_convs(coord):
        assert torch.count_nonzero(conv.conv.bias) == 0
    for conv in _encoder_convs(bias):
        assert isinstance(conv, CoordBiasConv2d) and conv.coord_weight.shape == (conv.out_channels, 2)
        bound = 1 / math.sqrt(conv.in_channels * 9)  # torch's default conv bounds: kaiming_uniform(a=sqrt(5))
        for p in (conv.weight, conv.bias, conv.coord_weight):
            assert float(p.detach().abs().max()) <= bound and float(p.detach().abs().max()) > 0.8 * bound
    for m in (plain, bias):  # the decoder keeps torch's defaults: non-zero biases
        assert torch.count_nonzero(m.deconv1.bias) > 0 and torch.count_nonzero(m.classifier.bias) > 0


def test_fcn_study_per_input_coord_bias_sums_over_inputs():
    torch.manual_seed(0)
    model = create_model("fcn_vgg9_coordbias", per_input=True)
    conv = model.encoder[1][0]
    assert conv.coord_weight.shape == (128, 64, 2)
    torch.testing.assert_close(conv.per_filter_weight(), conv.coord_weight.sum(1))
    x = torch.randn(1, 64, 8, 8)
    plain = nn.Conv2d(64, 128, 3, padding=1)
    plain.load_state_dict({k: v for k, v in conv.state_dict().items() if k != "coord_weight"})
    ramp = torch.arange(8.0) / 7
    cw = conv.coord_weight.detach().sum(1)
    expected = plain(x) + cw[:, 0, None, None] * ramp + cw[:, 1, None, None] * ramp[:, None]
    torch.testing.assert_close(conv(x), expected)


def test_fcn_init_is_checked():
    with pytest.raises(HyperparameterError, match="init must be one of study, comparable"):
        create_model("fcn_vgg9", init="kaiming")


def test_fcn_rejects_sizes_not_multiple_of_8():
    with pytest.raises(ValueError, match="multiples of 8"):
        create_model("fcn_vgg9")(torch.zeros(1, 3, 20, 24))
    assert create_model("fcn_vgg9", num_classes=6)(torch.zeros(1, 3, 8, 16)).shape == (1, 6, 8, 16)


# -------------------------------------------------------------------------------------------------
# Not-so-Clevr contracts


def test_classification_input_scale_matches_coordinate_channels():
    # The contract: a normalised location equals the coordinate channels' value at that pixel, so
    # the per-pixel network only has to compare its two input pairs.
    locs = torch.tensor([[4, 59], [33, 10]])
    v = normalize_coords(locs, 64)
    model = create_model("coordconv_classification")
    xx, yy = coordinate_channels((64, 64))
    for (x, y), (vx, vy) in zip(locs.tolist(), v.tolist()):
        assert (vx, vy) == (xx[y, x].item(), yy[y, x].item())
    assert model(v).shape == (2, 1, 64, 64)


def test_coordconv_regressor_max_pool_starts_at_the_hot_pixel():
    # The init zeroes the coordinate weights of the first layer so that the max-pool winner, the
    # only pixel the gradient reaches, is next to the one-hot pixel rather than on the border.
    locs = torch.tensor([[4, 4], [59, 10], [30, 33], [12, 59]])
    img = torch.zeros(len(locs), 1, 64, 64)
    img[torch.arange(len(locs)), 0, locs[:, 1], locs[:, 0]] = 1
    for seed in range(3):
        torch.manual_seed(seed)
        model = create_model("coordconv_regressor")
        assert torch.count_nonzero(model.coordconv.conv.weight[:, 1:]) == 0
        with torch.no_grad():
            winner = model.features(model.coordconv(img)).flatten(2).argmax(2)  # (N, 2)
        rows, cols = winner // 64, winner % 64
        assert ((cols - locs[:, [0]]).abs() <= 2).all() and ((rows - locs[:, [1]]).abs() <= 2).all()


def test_regressor_outputs_can_be_negative():
    # Targets are in [-1, 1]; the original's final ReLU would have clamped them at 0.
    torch.manual_seed(0)
    model = create_model("conv_regressor")
    with torch.no_grad():
        last = model.features[-1]
        last.weight.zero_()
        last.bias.fill_(-0.5)
    torch.testing.assert_close(model(torch.rand(2, 1, 64, 64)), torch.full((2, 2), -0.5))


def test_gan_noise_prior():
    gan = create_model("clevr_gan", z_dim=16)
    z = gan.sample_noise(1000, generator=torch.Generator().manual_seed(0))
    assert z.shape == (1000, 16) and z.min() >= -1 and z.max() <= 1 and z.min() < -0.9
    assert gan(z[:2]).shape == (2, 3, 64, 64)


# -------------------------------------------------------------------------------------------------
# --l2: which kernels the original regularised


def _is_kernel_name(name: str) -> bool:
    # Conv / transposed conv / dense / tiled CoordConv weights; BatchNorm weights are not kernels.
    return name.endswith("weight")


@pytest.mark.parametrize("name", list_models())
def test_l2_parameters_are_kernels_only(name):
    info = model_info(name)
    model = create_model(name, **(SMALL_GAN if info.task == "gan" else {}))
    params = l2_parameters(model)
    named = {id(p): n for n, p in model.named_parameters()}
    assert len({id(p) for p in params}) == len(params) and all(id(p) in named for p in params)
    chosen = {named[id(p)] for p in params}
    norms = {f"{n}.{leaf}" for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
             for leaf in ("weight", "bias")}
    assert not chosen & norms and all(_is_kernel_name(n) and "coord_weight" not in n for n in chosen)
    if info.task == "gan":
        assert chosen == {named[id(p)] for p in model.l2_parameters()}
    elif name == "conv_regressor_fc":
        # The original's big_conv: Conv2D layers with kernel_regularizer, Dense(64) and Dense(2) without.
        assert sorted(chosen) == [f"features.{i}.weight" for i in (0, 3, 6, 9)]
    else:
        # Every other supervised arch regularised every kernel: all weights but BatchNorm's.
        every = {n for n in named.values() if _is_kernel_name(n) and "coord_weight" not in n} - norms
        assert chosen == every


def test_l2_parameters_include_the_tiled_first_layer():
    model = create_model("coordconv_classification")
    assert model.coordconv.weight in kernel_parameters(model)
    assert sum(p.numel() for p in kernel_parameters(model)) == 7553 - (32 + 32 + 64 + 64 + 1)
