"""Not-so-Clevr: the paper's samples, splits and order, in both layouts."""

import h5py
import numpy as np
import pytest

from coordconv_data.generate import not_so_clevr as nsc
from coordconv_data.store import read_split, summarize


def reference_original(split: str) -> dict[str, np.ndarray]:
    """The original generator's arrays, rebuilt independently from DESIGN.md's facts.

    Loops and painted squares on purpose: nothing here shares code with the generator.
    """
    samples = []
    for x in range(4, 60):  # outer loop
        for y in range(4, 60):  # inner loop
            image = np.zeros((64, 64, 3))
            image[y - 4 : y + 5, x - 4 : x + 5, :] = 128
            onehot = np.zeros((64, 64, 1))
            onehot[y, x, 0] = 1.0
            loc = np.array((x, y))
            samples.append({
                "image": image,
                "imagegray": image.mean(-1)[:, :, np.newaxis],
                "onehots": onehot,
                "locations": loc,
                "normalized_locations": loc / float(64),
            })
    rs = np.random.RandomState(20202)
    train, val = [], []
    for s in samples:
        if split == "uniform":
            is_val = rs.random_sample() < 0.25
        else:
            is_val = s["normalized_locations"][0] > 0.5 and s["normalized_locations"][1] > 0.5
        (val if is_val else train).append(s)
    out = {}
    for prefix, members in (("train", train), ("val", val)):
        order = np.random.RandomState(10101).permutation(len(members))
        for field in samples[0]:
            out[f"{prefix}_{field}"] = np.array([m[field] for m in members])[order]
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("nsc")
    out = {}
    for split in nsc.SPLITS:
        for layout in ("native", "original"):
            p = d / f"{split}_{layout}.h5"
            nsc.write_file(nsc.NotSoClevrSpec(split=split), p, layout=layout)
            out[split, layout] = p
    return out


@pytest.mark.parametrize("split,train,test", [("uniform", 2368, 768), ("quadrant", 2407, 729)])
def test_split_sizes(files, split, train, test):
    assert summarize(files[split, "native"]).lengths == {"train": train, "test": test}
    assert summarize(files[split, "original"]).lengths == {"train": train, "test": test}


@pytest.mark.parametrize("split", nsc.SPLITS)
def test_splits_are_disjoint_and_cover_every_position(files, split):
    tr = read_split(files[split, "native"], "train")["locations"]
    te = read_split(files[split, "native"], "test")["locations"]
    train_set = {tuple(v) for v in tr}
    test_set = {tuple(v) for v in te}
    assert len(train_set) == len(tr) and len(test_set) == len(te)
    assert not train_set & test_set
    assert train_set | test_set == {(x, y) for x in range(4, 60) for y in range(4, 60)}


def test_quadrant_test_set_is_exactly_the_bottom_right_quadrant(files):
    te = read_split(files["quadrant", "native"], "test")["locations"]
    assert {tuple(v) for v in te} == {(x, y) for x in range(33, 60) for y in range(33, 60)}


def test_conv_rendering_equals_painted_squares():
    locations = nsc.sweep_locations()
    masks = nsc.render_squares(nsc.onehot_maps(locations, 64), 9)
    painted = np.zeros_like(masks)
    for i, (x, y) in enumerate(locations):
        painted[i, y - 4 : y + 5, x - 4 : x + 5] = 1
    np.testing.assert_array_equal(masks, painted)


def test_rendering_of_overlapping_neighbours_stays_separate():
    # Centres on the canvas border: the stacked convolution must not leak into the next map.
    onehots = np.zeros((3, 16, 16), np.uint8)
    onehots[0, 15, 0] = onehots[1, 0, 15] = onehots[2, 15, 15] = 1
    masks = nsc.render_squares(onehots, 5)
    assert masks[0, 13:, :3].all() and masks[0].sum() == 9
    assert masks[1, :3, 13:].all() and masks[1].sum() == 9
    assert masks[2].sum() == 9


@pytest.mark.parametrize("split", nsc.SPLITS)
def test_original_layout_equals_independent_implementation(files, split):
    expected = reference_original(split)
    with h5py.File(files[split, "original"]) as f:
        keys = [k for k in f.keys()]
        assert sorted(keys) == sorted(expected)
        for key, want in expected.items():
            got = f[key][...]
            assert got.dtype == want.dtype, key
            assert got.shape == want.shape, key
            np.testing.assert_array_equal(got, want, err_msg=key)


@pytest.mark.parametrize("split", nsc.SPLITS)
def test_native_and_original_layouts_hold_the_same_samples_in_order(files, split):
    for ours, theirs in (("train", "train"), ("test", "val")):
        native = read_split(files[split, "native"], ours)
        with h5py.File(files[split, "original"]) as f:
            np.testing.assert_array_equal(native["locations"], f[f"{theirs}_locations"][...])
            np.testing.assert_array_equal(native["images"][..., 0] == 255, f[f"{theirs}_imagegray"][..., 0] == 128)
            np.testing.assert_array_equal(native["onehots"], f[f"{theirs}_onehots"][...].astype(np.uint8))
        assert native["images"].dtype == np.uint8 and set(np.unique(native["images"])) == {0, 255}
        assert (native["images"] == 255).sum(axis=(1, 2, 3)).tolist() == [81] * len(native["images"])


def test_onehot_marks_the_centre(files):
    d = read_split(files["uniform", "native"], "train")
    n = len(d["locations"])
    assert d["onehots"].reshape(n, -1).sum(1).tolist() == [1] * n
    ys, xs = np.nonzero(d["onehots"][..., 0])[1:]
    np.testing.assert_array_equal(np.stack([xs, ys], 1), d["locations"])


def test_same_options_same_file_and_seed_changes_uniform_only(tmp_path, files):
    nsc.write_file(nsc.NotSoClevrSpec("uniform"), tmp_path / "u.h5")
    assert (tmp_path / "u.h5").read_bytes() == files["uniform", "native"].read_bytes()
    nsc.write_file(nsc.NotSoClevrSpec("uniform", seed=7), tmp_path / "u7.h5")
    nsc.write_file(nsc.NotSoClevrSpec("quadrant", seed=7), tmp_path / "q7.h5")
    a = read_split(tmp_path / "u7.h5", "test")["locations"]
    b = read_split(files["uniform", "native"], "test")["locations"]
    assert {tuple(v) for v in a} != {tuple(v) for v in b}
    for split in ("train", "test"):
        for name, arr in read_split(tmp_path / "q7.h5", split).items():
            np.testing.assert_array_equal(arr, read_split(files["quadrant", "native"], split)[name])
    assert summarize(tmp_path / "u7.h5").seed == 7


def test_spec_validates():
    with pytest.raises(ValueError, match="unknown split"):
        nsc.NotSoClevrSpec(split="diagonal")
    with pytest.raises(ValueError, match="odd"):
        nsc.NotSoClevrSpec(square=8)
