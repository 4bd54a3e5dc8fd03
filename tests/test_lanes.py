"""Lanes: position-dependent classes, overwrite order, exact rebuild, determinism, CLI errors."""

import json

import cv2
import h5py
import noise
import numpy as np
import pytest

from conftest import assert_one_line_error
from coordconv_data.cli import main
from coordconv_data.generate import lanes
from coordconv_data.store import read_split, summarize

YELLOW_RGB, RED_RGB = (255, 255, 0), (255, 0, 0)


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    spec = lanes.LanesSpec(n=40, test_n=12, size=64, seed=3, block_size=16)
    path = tmp_path_factory.mktemp("lanes") / "l.h5"
    lanes.write_file(spec, path)
    return spec, path


def test_schema_and_counts(small_file):
    spec, path = small_file
    s = summarize(path, "lanes")
    assert s.lengths == {"train": 40, "test": 12}
    assert s.params["scale"] == 16.0 and s.params["octaves"] == 1
    assert json.loads(s.attrs["class_names"]) == list(lanes.CLASS_NAMES)
    assert s.attrs["channel_order"] == "RGB"
    d = read_split(path, "train")
    assert d["images"].shape == (40, 64, 64, 3) and d["images"].dtype == np.uint8
    assert d["masks"].shape == (40, 64, 64) and d["masks"].dtype == np.uint8
    assert d["centers"].shape == (40, 3, 2) and d["radii"].shape == (40, 3)


def test_circle_parameters_follow_the_study(small_file):
    spec, path = small_file
    d = read_split(path, "train")
    s = spec.size
    r, cx, cy = d["radii"], d["centers"][..., 0], d["centers"][..., 1]
    assert r.min() >= int(s / 12) and r.max() <= int(s / 12 + s / 8)
    assert (cy >= r).all() and (cy < s).all()
    left = cx < s // 2 + r  # side 0 centres lie in r..s/2-r, side 1 centres in s/2+r..s-r
    assert ((cx >= r) & (cx <= s - r)).all()
    assert left.any() and (~left).any()
    np.testing.assert_array_equal(d["classes"], lanes.circle_classes(d["colors"], d["centers"], s))


def test_mask_classes_match_colours_and_positions(small_file):
    spec, path = small_file
    d = read_split(path, "train")
    img, mask = d["images"], d["masks"]
    yellow = (img == YELLOW_RGB).all(-1)
    red = (img == RED_RGB).all(-1)
    assert yellow[(mask == 1) | (mask == 2)].all()
    assert red[mask == 3].all()
    for i in range(len(img)):
        owners = lanes.owner_maps(d["centers"][i : i + 1], d["radii"][i : i + 1], spec.size)[0]
        for k in range(spec.circles):
            on_top = owners == k + 1
            if not on_top.any():
                continue
            x, y = d["centers"][i, k]
            if d["colors"][i, k] == lanes.YELLOW:
                want = 1 if x > spec.size // 2 else 2
            else:
                want = 3 if y > spec.size // 2 else 0
            assert (mask[i][on_top] == want).all()
        # Every circle pixel is painted; every background pixel is dim noise.
        assert (mask[i][owners == 0] == 0).all()
        assert img[i][owners == 0].max() <= round(255 * spec.intensity)


def test_later_circles_overwrite_earlier_ones():
    size = 64
    background = np.zeros((1, size, size, 3), np.uint8)
    # A yellow circle on the right (class 1), then a red one in the top half (class 0) over it.
    circles = {
        "colors": np.array([[lanes.YELLOW, lanes.RED]], np.uint8),
        "radii": np.array([[10, 6]], np.int32),
        "centers": np.array([[[45, 20], [45, 20]]], np.int32),
    }
    circles["classes"] = lanes.circle_classes(circles["colors"], circles["centers"], size)
    assert circles["classes"].tolist() == [[1, 0]]
    img, mask = lanes.compose(background, circles, size)
    assert tuple(img[0, 20, 45]) == RED_RGB and mask[0, 20, 45] == 0  # the later red wins
    assert tuple(img[0, 20, 45 + 8]) == YELLOW_RGB and mask[0, 20, 45 + 8] == 1  # yellow ring remains
    # Reversed order: the yellow one is on top everywhere it covers.
    flipped = {k: v[:, ::-1].copy() for k, v in circles.items()}
    img, mask = lanes.compose(background, flipped, size)
    assert tuple(img[0, 20, 45]) == YELLOW_RGB and mask[0, 20, 45] == 1


def test_circles_are_opencv_filled_circles():
    owners = lanes.owner_maps(np.array([[[30, 40]]]), np.array([[13]]), 64)[0]
    expected = cv2.circle(np.zeros((64, 64), np.uint8), (30, 40), 13, 1, -1)
    np.testing.assert_array_equal(owners, expected)


def test_rebuild_from_per_circle_arrays_and_noise_parameters(small_file):
    spec, path = small_file
    for split in ("train", "test"):
        d = read_split(path, split)
        again = lanes.rebuild(spec, d)
        np.testing.assert_array_equal(again["images"], d["images"])
        np.testing.assert_array_equal(again["masks"], d["masks"])
        np.testing.assert_array_equal(lanes.generate(spec, split)["images"], d["images"])


def test_background_is_the_noise_package_pnoise2(small_file):
    """Rebuild one background channel with the reference implementation, pixel by pixel."""
    spec, path = small_file
    d = read_split(path, "test", stop=1)
    scale = spec.noise_scale
    for c in range(3):
        ox, oy = d["noise_offsets"][0, c] * scale
        base = int(d["noise_bases"][0, c])
        field = np.array([[noise.pnoise2((j + ox) / scale, (i + oy) / scale, spec.octaves, spec.persistence,
                                         spec.lacunarity, 1024, 1024, base)
                           for j in range(spec.size)] for i in range(spec.size)], np.float64)
        want = np.rint((field - field.min()) / (field.max() - field.min()) * spec.intensity * 255)
        uncovered = d["masks"][0] == 0
        uncovered &= ~(d["images"][0] == RED_RGB).all(-1)
        got = d["images"][0][..., c].astype(np.float64)
        # float32 arithmetic in the fast path may move a value across a rounding boundary
        assert np.abs(got - want)[uncovered].max() <= 1


def test_same_file_for_any_worker_count(tmp_path):
    spec = lanes.LanesSpec(n=70, test_n=20, size=32, seed=11, block_size=16)
    lanes.write_file(spec, tmp_path / "w1.h5", workers=1)
    lanes.write_file(spec, tmp_path / "w2.h5", workers=2)
    assert (tmp_path / "w1.h5").read_bytes() == (tmp_path / "w2.h5").read_bytes()
    lanes.write_file(lanes.LanesSpec(n=70, test_n=20, size=32, seed=12, block_size=16), tmp_path / "s12.h5")
    a, b = read_split(tmp_path / "w1.h5", "train"), read_split(tmp_path / "s12.h5", "train")
    assert not np.array_equal(a["images"], b["images"])


def test_no_two_backgrounds_alike(small_file):
    # Every colour field of every image is its own noise: no two of the 3 x 40 fields correlate strongly
    # (fields drawn with a shared offset or base, or reused across channels or images, would).
    spec, path = small_file
    d = read_split(path, "train")
    fields = lanes.backgrounds(spec, d["noise_bases"], d["noise_offsets"]).transpose(0, 3, 1, 2).reshape(-1, 64 * 64)
    corr = np.corrcoef(fields.astype(np.float64))
    np.fill_diagonal(corr, 0)
    assert np.abs(corr).max() < 0.9, np.abs(corr).max()


def test_cli_lanes_and_info_and_preview(runner, tmp_path):
    out = tmp_path / "l.h5"
    result = runner.invoke(main, ["lanes", "--n", "10", "--size", "64", "--out", str(out), "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "train 10, test 5" in result.output
    info = json.loads(runner.invoke(main, ["info", str(out), "--json"]).output)
    assert info["dataset"] == "lanes" and info["splits"] == {"train": 10, "test": 5}
    fractions = info["statistics"]["train"]["pixel_fraction"]
    assert set(fractions) == set(lanes.CLASS_NAMES) and abs(sum(fractions.values()) - 1) < 1e-3
    png = tmp_path / "p.png"
    result = runner.invoke(main, ["preview", str(out), "--out", str(png), "--n", "4"])
    assert result.exit_code == 0, result.output
    img = cv2.imread(str(png))
    assert img.shape[0] > 256 and img.shape[1] > 512  # image and mask side by side, 2x2


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--n", "-1"], "--n"),
        (["--circles", "0"], "--circles"),
        (["--size", "8"], "--size"),
        (["--octaves", "0"], "--octaves"),
        (["--intensity", "1.5"], "--intensity"),
        (["--n", "0", "--test-n", "0"], "cannot both be 0"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_cli_rejects_bad_values(runner, tmp_path, args, fragment):
    result = runner.invoke(main, ["lanes", "--out", str(tmp_path / "x.h5"), *args])
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "x.h5").exists()
