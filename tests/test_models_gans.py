"""The six GANs of the original: shapes at several sizes and widths, parameter counts against the
original's layer stacks, the regularised kernels, and one-line errors for bad hyperparameters."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from coordconv_data.errors import CoordDataError
from coordconv_data.models import (
    CoordConvGenerator,
    DCGANDiscriminator,
    DCGANGenerator,
    GANPair,
    HyperparameterError,
    TiledCoordConv2d,
    create_model,
    list_models,
    model_info,
)

# name -> (channels, dataset, CoordConv generator, coordinates in the discriminator, default z_dim)
GANS = {
    "simple_gan": (1, "not-so-clevr", False, False, 10),
    "simple_coordconv_in_g": (1, "not-so-clevr", True, False, 10),
    "simple_coordconv_in_gd": (1, "not-so-clevr", True, True, 10),
    "clevr_gan": (3, "sort-of-clevr", False, False, 256),
    "clevr_coordconv_in_g": (3, "sort-of-clevr", True, False, 256),
    "clevr_coordconv_in_gd": (3, "sort-of-clevr", True, True, 256),
}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv(c_in: int, c_out: int, k: int = 1) -> int:
    return c_in * c_out * k * k + c_out


def expected_counts(channels: int, coords_g: bool, coords_d: bool, z_dim: int, width: int, size: int,
                    with_r: bool = False) -> tuple[int, int]:
    """Parameters of the original's CoordConvGAN generator and discriminator, widths scaled by width/64."""
    w, s, r = width, size // 16, int(with_r)
    if coords_g:
        widths = [z_dim + 2 + r, 8 * w, 4 * w, 4 * w, 2 * w, w]
        gen = sum(conv(a, b) for a, b in zip(widths[:-1], widths[1:])) + 2 * conv(w, w, 3) + conv(w, channels)
    else:
        gen = (z_dim * 8 * w * s * s + 8 * w * s * s) + 2 * 8 * w
        for a, b in [(8 * w, 4 * w), (4 * w, 2 * w), (2 * w, w)]:
            gen += conv(a, b, 5) + 2 * b
        gen += conv(w, channels, 5)
    first = channels + (2 + r if coords_d else 0)
    disc = conv(first, w, 5)
    for a, b in [(w, 2 * w), (2 * w, 4 * w), (4 * w, 8 * w)]:
        disc += conv(a, b, 5) + 2 * b
    disc += 8 * w * s * s + 1
    return gen, disc


def test_the_six_archs_are_registered_with_their_data_and_shapes():
    assert sorted(GANS) == list_models(task="gan")
    for name, (channels, dataset, _, _, z_dim) in GANS.items():
        info = model_info(name)
        assert (info.dataset, info.input_shape, info.output_shape) == (dataset, (z_dim,), (channels, 64, 64))
        assert info.hparams["z_dim"] == z_dim and info.hparams["width"] == 64 and info.hparams["size"] == 64
        assert ("with_r" in info.hparams) == name.endswith(("_in_g", "_in_gd"))


@pytest.mark.parametrize("name", sorted(GANS))
def test_structure_follows_the_original(name):
    channels, _, coords_g, coords_d, z_dim = GANS[name]
    model = create_model(name, width=8, size=32)
    assert isinstance(model, GANPair)
    assert (model.z_dim, model.channels, model.image_size) == (z_dim, channels, 32)
    assert isinstance(model.generator, CoordConvGenerator if coords_g else DCGANGenerator)
    assert isinstance(model.discriminator, DCGANDiscriminator)
    first = model.discriminator.features[0]
    assert (type(first).__name__ == "CoordConv2d") == coords_d
    # Every width is the paper's times width / 64.
    d_convs = [m for m in model.discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in d_convs] == [8, 16, 32, 64]
    assert d_convs[0].in_channels == channels + (2 if coords_d else 0)
    if coords_g:
        assert model.generator.coordconv.out_channels == 64
        assert [m.out_channels for m in model.generator.body if isinstance(m, nn.Conv2d)] == [32, 32, 16, 8, 8, 8, channels]
    else:
        assert model.generator.project.out_features == 64 * 2 * 2
        ups = [m for m in model.generator.body if isinstance(m, nn.ConvTranspose2d)]
        assert [m.out_channels for m in ups] == [32, 16, 8, channels]


@pytest.mark.parametrize("name", sorted(GANS))
@pytest.mark.parametrize("width, size", [(64, 64), (16, 64), (8, 32), (4, 16), (1, 48)])
def test_parameter_counts_are_the_originals_scaled(name, width, size):
    channels, _, coords_g, coords_d, z_dim = GANS[name]
    model = create_model(name, width=width, size=size)
    gen, disc = expected_counts(channels, coords_g, coords_d, z_dim, width, size)
    assert (n_params(model.generator), n_params(model.discriminator)) == (gen, disc)


def test_paper_parameter_counts():
    # At the defaults (width 64, 64x64): the counts of the original's layer stacks, generator and
    # discriminator (test_models_archs.py derives the clevr ones layer by layer too).
    counts = {name: [n_params(m) for m in create_model(name).children()] for name in GANS}
    assert counts == {
        "simple_gan": [4394881, 4313345],
        "simple_coordconv_in_g": [318849, 4313345],
        "simple_coordconv_in_gd": [318849, 4316545],
        "clevr_gan": [6413315, 4316545],
        "clevr_coordconv_in_g": [444931, 4316545],
        "clevr_coordconv_in_gd": [444931, 4319745],
    }


@pytest.mark.parametrize("name", sorted(GANS))
def test_small_gan_runs_forward_and_backward(name):
    torch.manual_seed(0)
    channels = GANS[name][0]
    model = create_model(name, size=16, width=4, z_dim=5).train()
    z = model.sample_noise(3)
    fake = model.generator(z)
    assert fake.shape == (3, channels, 16, 16) and fake.abs().max() <= 1
    d_fake = model.discriminator(model.fakes_for_discriminator(z))
    d_real = model.discriminator(torch.rand(3, channels, 16, 16))
    assert d_fake.shape == d_real.shape == (3, 1)
    (d_fake.sum() - d_real.sum()).backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", sorted(GANS))
def test_small_gan_trains_a_few_iterations(name):
    # One D step then two G steps on the same z, as the original; losses stay finite and weights move.
    torch.manual_seed(1)
    channels = GANS[name][0]
    model = create_model(name, size=16, width=4, z_dim=6)
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=1e-3, betas=(0.9, 0.99))
    opt_g = torch.optim.Adam(model.generator.parameters(), lr=1e-3, betas=(0.9, 0.99))
    before = [p.detach().clone() for p in model.parameters()]
    real = torch.rand(4, channels, 16, 16) * 0.5
    for _ in range(3):
        z = model.sample_noise(4)
        d_real, d_fake = model.discriminator(real), model.discriminator(model.fakes_for_discriminator(z).detach())
        d_loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
            F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        for _ in range(2):
            logits = model.discriminator(model.fakes_for_discriminator(z))
            g_loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
            g_loss = g_loss + 1e-3 * sum(w.square().sum() for w in model.l2_parameters())
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
        assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    kernels = [(n, m.weight) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear,
                                                                              TiledCoordConv2d))]
    start = dict(zip((n for n, _ in model.named_parameters()), before))
    assert all(not torch.equal(start[f"{n}.weight"], w) for n, w in kernels)


@pytest.mark.parametrize("size", [16, 32, 48, 64, 80])
def test_shapes_at_several_sizes(size):
    for name in ("simple_coordconv_in_gd", "clevr_gan"):
        channels = GANS[name][0]
        model = create_model(name, size=size, width=2).eval()
        with torch.no_grad():
            fake = model(model.sample_noise(2))
            assert fake.shape == (2, channels, size, size)
            assert model.discriminator(fake).shape == (2, 1)
            assert model.fakes_for_discriminator(model.sample_noise(2)).shape == (2, channels, size, size)


@pytest.mark.parametrize("name", sorted(GANS))
def test_default_shapes(name):
    channels = GANS[name][0]
    model = create_model(name).eval()
    assert (model.channels, model.image_size) == (channels, 64)
    with torch.no_grad():
        fake = model(model.sample_noise(1))
        assert fake.shape == (1, channels, 64, 64)
        assert model.discriminator(fake).shape == (1, 1)


@pytest.mark.parametrize("name", sorted(GANS))
def test_l2_parameters_are_the_coordconv_generators_kernels(name):
    _, _, coords_g, _, _ = GANS[name]
    small = dict(size=16, width=4, z_dim=4)
    model = create_model(name, with_r=True, **small) if coords_g else create_model(name, **small)
    params = model.l2_parameters()
    assert all(isinstance(p, nn.Parameter) for p in params)
    if not coords_g:
        assert params == []  # the original regularised no layer of the DCGAN pair
        return
    g = model.generator
    kernels = [g.coordconv.weight] + [m.weight for m in g.body if isinstance(m, nn.Conv2d)]
    assert len(params) == 8 and [id(p) for p in params] == [id(k) for k in kernels]
    # Weights only: no bias, nothing of the discriminator, and every generator kernel is there.
    ids = {id(p) for p in params}
    biases = [m.bias for m in g.modules() if isinstance(m, (nn.Conv2d, TiledCoordConv2d))]
    assert not ids & {id(b) for b in biases}
    assert not ids & {id(p) for p in model.discriminator.parameters()}
    named = {id(p): n for n, p in g.named_parameters()}
    assert sorted(named[id(p)] for p in params) == sorted(n for n in named.values() if n.endswith("weight"))
    assert params[0].shape == (32, 4 + 3, 1, 1)  # z and the x, y, r channels: one kernel, as the original's


def test_fakes_for_discriminator_is_before_tanh_for_the_coordconv_generator():
    torch.manual_seed(0)
    cc = create_model("simple_coordconv_in_g", size=16, width=4).eval()
    z = cc.sample_noise(2) * 50  # large z: outputs beyond [-1, 1] before tanh
    with torch.no_grad():
        raw = cc.fakes_for_discriminator(z)
        torch.testing.assert_close(torch.tanh(raw), cc(z))
    plain = create_model("simple_gan", size=16, width=4).eval()
    with torch.no_grad():
        torch.testing.assert_close(plain.fakes_for_discriminator(z), plain(z))


@pytest.mark.parametrize("name", sorted(GANS))
@pytest.mark.parametrize("hparam, value, fragment", [
    ("size", 0, "size must be a positive multiple of 16"),
    ("size", 8, "size must be a positive multiple of 16"),
    ("size", 24, "size must be a positive multiple of 16"),
    ("size", -16, "size must be a positive multiple of 16"),
    ("size", 32.0, "size must be a positive multiple of 16"),
    ("size", "64", "size must be a positive multiple of 16"),
    ("width", 0, "width must be a positive integer"),
    ("width", -8, "width must be a positive integer"),
    ("width", 1.5, "width must be a positive integer"),
    ("width", True, "width must be a positive integer"),
    ("z_dim", 0, "z_dim must be a positive integer"),
])
def test_bad_hyperparameters_are_one_line_errors(name, hparam, value, fragment):
    with pytest.raises(HyperparameterError) as e:
        create_model(name, **{hparam: value})
    message = str(e.value)
    assert "\n" not in message and fragment in message and repr(value) in message and name in message
    assert isinstance(e.value, CoordDataError) and isinstance(e.value, ValueError)


def test_plain_gans_take_no_with_r():
    with pytest.raises(HyperparameterError, match="does not take 'with_r'"):
        create_model("simple_gan", with_r=True)
