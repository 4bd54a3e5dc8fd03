"""Latent walks (norm-corrected as the original's util.interpolate) and the motion measure: every kind
of synthetic walk (slide, fade, cross-fade, teleport, jitter, vanish, still) gets its label."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from coordconv_data import geometry as geo
from coordconv_data.errors import InvalidParameter
from coordconv_data.generate import sort_of_clevr as soc
from coordconv_data.walks import walk_latents, walk_motion

WHITE, BLUE, RED = (255, 255, 255), (0, 0, 255), (255, 0, 0)
SQUARE_SCENE = geo.SceneSpec.not_so_clevr()


def grey_square(x, y, level=1.0, canvas=None):
    canvas = np.zeros((64, 64, 1), np.uint8) if canvas is None else canvas
    if level > 0:
        cv2.rectangle(canvas, (x - 4, y - 4), (x + 4, y + 4), int(round(255 * level)), -1)
    return canvas


# -- the motion measure -------------------------------------------------------------------------------

STEPS = 10
T = np.linspace(0, 1, STEPS)


def walk(frames) -> np.ndarray:
    return np.stack(list(frames))


def synthetic_walks() -> dict[str, tuple[np.ndarray, str]]:
    """Every kind of walk a GAN might draw, with the label it must get (one grey 9x9 square, 10 steps)."""
    rng = np.random.default_rng(3)
    jitter = np.cumsum(rng.integers(-1, 2, size=(STEPS, 2)), axis=0)
    teleports = rng.integers(6, 58, size=(STEPS, 2))
    return {
        "slide": (walk(grey_square(8 + 5 * s, 30) for s in range(STEPS)), "slide"),
        "diagonal slide": (walk(grey_square(8 + 5 * s, 10 + 4 * s) for s in range(STEPS)), "slide"),
        "uneven slide": (walk(grey_square(int(8 + 45 * t**1.5), 30) for t in T), "slide"),
        "fade out and in": (walk(grey_square(30, 30, level=abs(1 - 2 * t)) for t in T), "fade"),
        "dim and back": (walk(grey_square(30, 30, level=1 - 0.6 * math.sin(math.pi * t)) for t in T), "fade"),
        "cross-fade": (walk(grey_square(48, 45, level=t, canvas=grey_square(15, 15, level=1 - t)) for t in T), "fade"),
        "out, gap, in elsewhere": (walk(grey_square(48, 45, level=max(0, 2 * t - 1), canvas=grey_square(
            15, 15, level=max(0, 1 - 2 * t))) for t in T), "fade"),
        "teleport every step": (walk(grey_square(int(x), int(y)) for x, y in teleports), "teleport"),
        "one jump": (walk(grey_square(15 if t < 0.5 else 48, 20) for t in T), "teleport"),
        "jitter": (walk(grey_square(30 + int(dx), 30 + int(dy)) for dx, dy in jitter), "jitter"),
        "vanish": (walk(grey_square(30, 30, level=1.0 if t < 0.5 else 0.0) for t in T), "fade"),
        "appear": (walk(grey_square(40, 20, level=0.0 if t < 0.3 else 1.0) for t in T), "fade"),
        "still": (walk(grey_square(30, 30) for _ in T), "still"),
        "nothing": (np.zeros((STEPS, 64, 64, 1), np.uint8), "absent"),
    }


@pytest.mark.parametrize("name", list(synthetic_walks()))
def test_every_kind_of_walk_gets_its_label(name):
    images, want = synthetic_walks()[name]
    m = walk_motion(images, STEPS, SQUARE_SCENE)
    assert m.labels.tolist() == [[want]], (name, m.straightness, m.longest_step, m.mass_dip)


def test_walks_are_labelled_one_by_one_and_counted():
    walks = synthetic_walks()
    m = walk_motion(np.concatenate([images for images, _ in walks.values()]), STEPS, SQUARE_SCENE)
    assert m.labels[:, 0].tolist() == [want for _, want in walks.values()]
    d = m.as_dict()
    assert (d["walks"], d["objects"], d["slide"], d["fade"], d["teleport"], d["jitter"], d["still"], d["absent"]) == \
        (14, 14, 3, 6, 2, 1, 1, 1)
    assert d["slide_fraction"] == pytest.approx(3 / 13) and d["moving"] == 6


def test_a_slide_is_straight_and_even_and_teleports_are_not():
    walks = synthetic_walks()
    slide = walk_motion(walks["slide"][0], STEPS, SQUARE_SCENE)
    assert slide.straightness[0, 0] == 1.0 and slide.longest_step[0, 0] == pytest.approx(1 / 9)
    assert slide.mass_dip[0, 0] == 1.0 and slide.travel[0, 0] == 45.0 and slide.fitted.all()
    assert slide.centers[0, :, 0].tolist() == [[8.0 + 5 * s, 30.0] for s in range(STEPS)]
    # A new random place every step: the jumps are as even on average as a slide's steps (what a
    # largest-jump-over-path ratio alone measured), but the path is long and crooked.
    tele = walk_motion(walks["teleport every step"][0], STEPS, SQUARE_SCENE)
    assert tele.straightness[0, 0] < 0.3 and tele.mass_dip[0, 0] == 1.0
    cross = walk_motion(walks["cross-fade"][0], STEPS, SQUARE_SCENE)
    assert cross.mass_dip[0, 0] < 0.6  # the heaviest square is about half-faded where they cross


def test_sort_of_clevr_objects_are_measured_per_colour():
    steps = 8
    scene = geo.SceneSpec.from_spec(soc.SortOfClevrSpec())  # blue then red, radius 10, white background
    images = np.full((steps, 64, 64, 3), 255, np.uint8)
    for s in range(steps):
        cv2.rectangle(images[s], (12 + 5 * s - 10, 15 - 10), (12 + 5 * s + 10, 15 + 10), BLUE, -1)  # moves right
        level = abs(1 - 2 * s / (steps - 1))  # red fades out, then in at another place
        colour = tuple(int(round(255 - level * (255 - c))) for c in RED)
        cv2.circle(images[s], (15, 48) if s < steps / 2 else (48, 48), 10, colour, -1)
    m = walk_motion(images, steps, scene)
    assert m.names == ("blue", "red") and m.labels.tolist() == [["slide", "fade"]]
    assert m.longest_step[0, 0] == pytest.approx(1 / 7) and m.mass_dip[0, 1] < 0.2
    assert m.as_dict()["objects"] == 2


def test_occluded_object_keeps_its_fitted_centre():
    scene = geo.SceneSpec.from_spec(soc.SortOfClevrSpec())
    # Centres 20 px apart, the generator's least distance: red covers blue's right column.
    image = soc.render(np.array([[[20, 30], [40, 30]]]), np.array([[soc.SQUARE, soc.SQUARE]]),
                       np.array([[0, 1]], np.uint8), size=64, radius=10, palette_rgb=[BLUE, RED], background=WHITE)
    m = walk_motion(np.concatenate([image, image]), 2, scene)
    assert m.fitted.all()
    assert m.centers[0, 0].tolist() == [[20.0, 30.0], [40.0, 30.0]]  # blue's visible part has its centroid at 19.5
    assert m.mass[0, 0].tolist() == [21.0 * 20, 441.0]


def test_walk_motion_validates():
    images = np.stack([grey_square(30, 30)] * 6)
    with pytest.raises(ValueError, match="multiple of steps=4"):
        walk_motion(images, 4, SQUARE_SCENE)
    with pytest.raises(InvalidParameter, match="steps must be an integer of at least 2") as e:
        walk_motion(images, 1, SQUARE_SCENE)
    assert e.value.field == "steps"
    with pytest.raises(ValueError, match="uint8"):
        walk_motion(images.astype(np.float32), 3, SQUARE_SCENE)
    with pytest.raises(ValueError, match="min_travel"):
        walk_motion(images, 3, SQUARE_SCENE, min_travel=-1)


def test_generated_floats_through_to_uint8():
    # A generator's (N, 1, H, W) output at the original's scale (square 0.502) measured as grey 128.
    steps = 6
    images = np.stack([grey_square(10 + 8 * s, 20, level=128 / 255) for s in range(steps)])
    floats = images.transpose(0, 3, 1, 2).astype(np.float32) / 255
    m = walk_motion(geo.to_uint8(floats, (0, 1)), steps, geo.SceneSpec.not_so_clevr(value=128))
    assert m.labels.tolist() == [["slide"]] and m.longest_step[0, 0] == pytest.approx(1 / 5) and m.mass_dip[0, 0] == 1.0


# -- latent walks -------------------------------------------------------------------------------------

def reference_walk(a, b, steps, norm):
    """The definition, point by point in float64."""
    out = []
    for t in np.linspace(0, 1, steps):
        z = (1 - t) * a + t * b
        if norm:
            z = z * ((1 - t) * np.linalg.norm(a) + t * np.linalg.norm(b)) / np.linalg.norm(z)
        out.append(z)
    return np.stack(out)


@pytest.mark.parametrize("path", ["norm", "linear"])
def test_walk_latents_shape_order_and_ends(path):
    g = torch.Generator().manual_seed(0)
    ends = torch.rand(3, 2, 16, generator=g, dtype=torch.float64) * 2 - 1
    z = walk_latents(ends, 7, path)
    assert z.shape == (21, 16) and z.dtype == torch.float64
    walks = z.view(3, 7, 16)
    assert torch.equal(walks[:, 0], ends[:, 0]) and torch.equal(walks[:, -1], ends[:, 1])
    for r in range(3):
        expected = reference_walk(ends[r, 0].numpy(), ends[r, 1].numpy(), 7, path == "norm")
        np.testing.assert_allclose(walks[r].numpy(), expected, rtol=1e-12, atol=1e-12)
    assert torch.equal(walk_latents(ends, 2, path), ends.reshape(6, 16))


def test_norm_walks_keep_the_interpolated_norm_and_linear_ones_dip():
    g = torch.Generator().manual_seed(1)
    ends = torch.rand(64, 2, 256, generator=g) * 2 - 1  # the clevr GANs' prior and z_dim
    steps = 11
    t = torch.linspace(0, 1, steps).view(1, steps)
    r0, r1 = ends[:, 0].norm(dim=-1, keepdim=True), ends[:, 1].norm(dim=-1, keepdim=True)
    target = (1 - t) * r0 + t * r1
    norm = walk_latents(ends, steps).view(64, steps, 256)
    torch.testing.assert_close(norm.norm(dim=-1), target, rtol=1e-5, atol=0)
    assert torch.equal(norm.norm(dim=-1)[:, 0], r0[:, 0]) and torch.equal(norm.norm(dim=-1)[:, -1], r1[:, 0])
    linear = walk_latents(ends, steps, "linear").view(64, steps, 256)
    # Same directions, smaller norms: about sqrt(1/2) of the ends' mid-path for uniform z.
    cos = torch.nn.functional.cosine_similarity(norm, linear, dim=-1)
    torch.testing.assert_close(cos, torch.ones_like(cos))
    ratio = (linear.norm(dim=-1) / target)[:, steps // 2]
    assert 0.66 < ratio.mean().item() < 0.75 and ratio.max().item() < 0.8
    assert (linear.norm(dim=-1) <= target + 1e-5).all()


def test_walk_latents_zero_midpoint_and_validation():
    a = torch.ones(1, 4)
    z = walk_latents(torch.stack([a, -a], dim=1), 3).view(3, 4)
    assert torch.equal(z[1], torch.zeros(4))  # opposite ends of equal norm: 0 stays 0, no NaN
    ends = torch.zeros(2, 2, 5)
    for call, field in [(lambda: walk_latents(ends, 1), "steps"), (lambda: walk_latents(ends, 2.5), "steps"),
                        (lambda: walk_latents(ends, 4, "slerp"), "path")]:
        with pytest.raises(InvalidParameter) as e:
            call()
        assert e.value.field == field and "\n" not in str(e.value)
    for bad in (torch.zeros(2, 3, 5), torch.zeros(2, 5), torch.zeros(2, 2, 5, dtype=torch.long), np.zeros((2, 2, 5))):
        with pytest.raises(ValueError, match=r"\(rows, 2, z_dim\)"):
            walk_latents(bad, 4)


def test_the_measure_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, coordconv_data.walks; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == ["False"]
