"""Sort-of-Clevr: the paper's shapes exactly, the placement rules, files that rebuild and reproduce."""

import json

import cv2
import h5py
import numpy as np
import pytest

from conftest import assert_one_line_error
from coordconv_data.cli import main
from coordconv_data.generate import sort_of_clevr as soc
from coordconv_data.generate.chunks import ChunkAssembler, ChunkCodec
from coordconv_data.kinds import SORT_OF_CLEVR
from coordconv_data.store import DatasetWriter, read_split, summarize

PAPER_COLORS = {0: (0, 0, 255), 1: (255, 0, 0)}  # blue, red in RGB


def draw_reference(centers, shapes, colors, size, radius, background, palette):
    """Independent reference: one OpenCV call per object, as the original generator drew them."""
    img = np.empty((size, size, 3), np.uint8)
    img[:] = background
    for (x, y), shape, color in zip(centers, shapes, colors):
        rgb = tuple(int(v) for v in palette[int(color)])
        x, y = int(x), int(y)
        if shape == soc.SQUARE:
            cv2.rectangle(img, (x - radius, y - radius), (x + radius, y + radius), rgb, -1)
        else:
            cv2.circle(img, (x, y), radius, rgb, -1)
    return img


@pytest.fixture(scope="module")
def paper_split():
    spec = soc.SortOfClevrSpec(n=3000, test_fraction=0, seed=7)
    return spec, soc.generate(spec, "train")


def test_defaults_are_the_papers():
    spec = soc.SortOfClevrSpec()
    assert (spec.n, spec.size, spec.objects, spec.object_size, spec.radius, spec.min_distance) == (
        50000, 64, 2, 21, 10, 20)
    assert spec.center_range == (10, 53)  # randint(10, 64 - 10)
    assert spec.background == (255, 255, 255)
    assert spec.palette() == [("blue", (0, 0, 255)), ("red", (255, 0, 0))]
    assert (spec.n_train, spec.n_test) == (45000, 5000)


def test_relational_networks_variant_scales():
    spec = soc.SortOfClevrSpec(size=75, objects=6, object_size=11)
    assert spec.min_distance == 10 and spec.center_range == (5, 69)  # randint(5, 75 - 5)
    assert [n for n, _ in spec.palette()] == ["blue", "red", "green", "orange", "gray", "yellow"]
    assert len({rgb for _, rgb in spec.palette()}) == 6
    scaled = soc.SortOfClevrSpec(size=128)
    assert scaled.object_size == 41 and scaled.min_distance == 40 and scaled.center_range == (20, 107)


@pytest.mark.parametrize("radius", range(0, 16))
def test_templates_are_opencvs_shapes(radius):
    square = soc.shape_template(soc.SQUARE, radius)
    assert square.shape == (2 * radius + 1, 2 * radius + 1) and square.all()  # corners inclusive
    circle = soc.shape_template(soc.CIRCLE, radius)
    ref = np.zeros((2 * radius + 1, 2 * radius + 1), np.uint8)
    cv2.circle(ref, (radius, radius), radius, 1, -1)
    np.testing.assert_array_equal(circle, ref.astype(bool))


def test_a_square_covers_exactly_its_21x21_pixels():
    img = soc.render(np.array([[[30, 40]]]), np.array([[soc.SQUARE]], np.uint8), np.array([[1]], np.uint8),
                     size=64, radius=10, palette_rgb=[(0, 0, 255), (255, 0, 0)], background=(255, 255, 255))[0]
    red = (img == (255, 0, 0)).all(-1)
    ys, xs = np.nonzero(red)
    assert red.sum() == 21 * 21
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (20, 40, 30, 50)
    ref = np.full((64, 64, 3), 255, np.uint8)
    cv2.rectangle(ref, (20, 30), (40, 50), (255, 0, 0), -1)
    np.testing.assert_array_equal(img, ref)


@pytest.mark.parametrize("kwargs", [{}, {"size": 75, "objects": 6, "object_size": 11},
                                    {"size": 40, "objects": 3, "object_size": 9, "min_distance": 6,
                                     "background": (0, 0, 0)}])
def test_rendering_equals_drawing_each_object_with_opencv(kwargs):
    spec = soc.SortOfClevrSpec(n=400, seed=3, **kwargs)
    data = soc.generate(spec, "train")
    palette = [rgb for _, rgb in spec.palette()]
    for i in range(len(data["images"])):
        ref = draw_reference(data["centers"][i], data["shapes"][i], data["colors"][i], spec.size, spec.radius,
                             spec.background, palette)
        np.testing.assert_array_equal(data["images"][i], ref, err_msg=f"sample {i}")


def test_each_image_holds_its_objects_and_only_palette_colours(paper_split):
    spec, data = paper_split
    images, centers, shapes, colors = data["images"], data["centers"], data["shapes"], data["colors"]
    assert images.shape == (3000, 64, 64, 3) and images.dtype == np.uint8
    assert colors.shape == shapes.shape == (3000, 2) and centers.shape == (3000, 2, 2)
    # every pixel is the background or a palette colour
    code = lambda rgb: (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    pixels = code(images)
    white, blue, red = (code(np.array(c)) for c in ((255, 255, 255), PAPER_COLORS[0], PAPER_COLORS[1]))
    assert np.isin(pixels, [white, blue, red]).all()
    # exactly K objects of distinct colours in every image: blue first, red second, as the paper drew them
    assert (colors == [0, 1]).all()
    assert (pixels == blue).any(axis=(1, 2)).all() and (pixels == red).any(axis=(1, 2)).all()
    # each object's centre pixel shows its colour: none is hidden by the other
    n = np.arange(3000)
    for k in range(2):
        np.testing.assert_array_equal(images[n, centers[:, k, 1], centers[:, k, 0]],
                                      np.broadcast_to(PAPER_COLORS[k], (3000, 3)))


def test_objects_cover_exactly_their_shapes_where_they_do_not_meet(paper_split):
    spec, data = paper_split
    images, centers, shapes = data["images"], data["centers"], data["shapes"]
    apart = ~soc.pair_overlaps(centers, shapes, spec.radius)
    assert 0.8 < apart.mean() < 0.95  # the paper's 20 px rule lets about 10% of images' objects meet
    for i in np.flatnonzero(apart)[:300]:
        for k in range(2):
            mask = (images[i] == PAPER_COLORS[k]).all(-1)
            expected = np.zeros((64, 64), bool)
            x, y = centers[i, k]
            expected[y - 10 : y + 11, x - 10 : x + 11] = soc.shape_template(int(shapes[i, k]), 10)
            np.testing.assert_array_equal(mask, expected)
            assert mask.sum() == (441 if shapes[i, k] == soc.SQUARE else 317)


def test_centres_in_range_and_apart(paper_split):
    spec, data = paper_split
    c = data["centers"]
    assert c.min() == 10 and c.max() == 53  # the whole range is used, nothing beyond
    d2 = ((c[:, 0] - c[:, 1]) ** 2).sum(-1)
    assert d2.min() >= 20 ** 2
    assert (d2 < 21 ** 2).any()  # the bound is reached, not a stricter one
    # shapes are a fair coin, positions cover the grid
    assert abs(data["shapes"].mean() - 0.5) < 0.03
    assert abs(c.mean() - 31.5) < 0.6


def test_six_objects_keep_every_pairwise_distance():
    spec = soc.SortOfClevrSpec(n=500, size=75, objects=6, object_size=11, seed=1)
    c = soc.generate(spec)["centers"]
    i, j = np.triu_indices(6, 1)
    assert (((c[:, i] - c[:, j]) ** 2).sum(-1) >= 100).all()
    assert c.min() >= 5 and c.max() <= 69


def test_pair_overlaps_matches_pixels():
    rng = np.random.default_rng(0)
    centers = rng.integers(10, 54, size=(2000, 2, 2))
    shapes = rng.integers(0, 2, size=(2000, 2)).astype(np.uint8)
    colors = np.tile(np.arange(2, dtype=np.uint8), (2000, 1))
    first = soc.render_index_map(centers[:, :1], shapes[:, :1], colors[:, :1], size=64, radius=10) > 0
    second = soc.render_index_map(centers[:, 1:], shapes[:, 1:], colors[:, 1:], size=64, radius=10) > 0
    np.testing.assert_array_equal(soc.pair_overlaps(centers, shapes, 10), (first & second).any(axis=(1, 2)))


def test_streams_seeds_and_block_sizes():
    spec = soc.SortOfClevrSpec(n=300, seed=1)
    train, test = soc.generate(spec, "train"), soc.generate(spec, "test")
    assert len(train["images"]) == 270 and len(test["images"]) == 30
    assert not np.array_equal(train["centers"][:30], test["centers"])
    again = soc.generate(soc.SortOfClevrSpec(n=300, seed=1), "train")
    assert all(np.array_equal(train[k], again[k]) for k in train)
    other = soc.generate(soc.SortOfClevrSpec(n=300, seed=2), "train")
    assert not np.array_equal(train["centers"], other["centers"])


def test_placement_is_bounded():
    # Clearly impossible: refused before any work.
    with pytest.raises(soc.PlacementError, match="at most 25.8 px apart"):
        soc.SortOfClevrSpec(objects=6, min_distance=26)
    with pytest.raises(soc.PlacementError, match="lower objects"):
        soc.SortOfClevrSpec(objects=2, size=64, object_size=63)  # a single centre position
    # Possible in principle, hopeless for rejection sampling: fails after the bounded tries.
    spec = soc.SortOfClevrSpec(n=10, objects=6, min_distance=25, max_restarts=2, max_rounds=20)
    with pytest.raises(soc.PlacementError, match="could not place 6 objects"):
        soc.place_centers(spec, np.random.default_rng(0), 10)


@pytest.mark.parametrize("bad", [{"n": 0}, {"objects": 0}, {"objects": 7}, {"test_fraction": 1.0},
                                 {"test_fraction": -0.1}, {"object_size": 20}, {"object_size": 65},
                                 {"min_distance": -1}, {"background": (0, 0, 255)}, {"background": (0, 0, 256)}])
def test_spec_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        soc.SortOfClevrSpec(**bad)


@pytest.mark.parametrize("text,rgb", [("white", (255, 255, 255)), ("black", (0, 0, 0)), ("10, 20,30", (10, 20, 30)),
                                      ("Gray", (128, 128, 128))])
def test_parse_color(text, rgb):
    assert soc.parse_color(text) == rgb


@pytest.mark.parametrize("text", ["purple", "1,2", "1,2,300", ""])
def test_parse_color_rejects(text):
    with pytest.raises(ValueError):
        soc.parse_color(text)


# -- chunks encoded in workers ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,level,shuffle,divisor", [("uint8", 3, False, None), ("uint8", None, False, None),
                                                         ("float32", 3, True, 127.5), ("int64", 1, True, None)])
@pytest.mark.parametrize("misalign", [0, 3])
def test_chunk_codec_round_trip(tmp_path, dtype, level, shuffle, divisor, misalign):
    rng = np.random.default_rng(1)
    n, rows, block = 203, 4, 16
    raw = rng.integers(0, 256, size=(n, 3, 5), dtype=np.uint8)
    codec = ChunkCodec(rows, (3, 5), dtype, level=level, shuffle=shuffle, divisor=divisor, offset=-1.0 if divisor else 0)
    path = tmp_path / "c.h5"
    with DatasetWriter(path, "not-so-clevr", seed=0, params={}) as w:
        asm = ChunkAssembler(codec.create(w, "x", n + misalign), codec)
        if misalign:  # samples before this stream, as the original layout's train part before its test part
            asm.add(0, codec.split_block(raw[:misalign], 0))
        for start in range(0, n, block):
            asm.add(misalign + start, codec.split_block(raw[start : start + block], misalign))
        asm.close()
    expected = np.concatenate([raw[:misalign], raw]) if misalign else raw
    with h5py.File(path) as f:
        ds = f["x"]
        assert ds.chunks == (rows, 3, 5) and ds.compression == (None if level is None else "gzip")
        assert ds.shuffle == bool(shuffle and level is not None)
        got = ds[...]
    want = (expected / 127.5 - 1).astype(dtype) if divisor else expected.astype(dtype)
    np.testing.assert_array_equal(got, want)


# -- files --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same request written serially and with two workers, in both layouts.

    Blocks of 256 make several blocks per split; n_train = 630 is not a multiple of the original
    layout's 4-image chunks, so the test part of `train_x` starts inside a chunk that train and test
    share.
    """
    d = tmp_path_factory.mktemp("soc")
    spec = soc.SortOfClevrSpec(n=700, test_fraction=0.1, seed=11, block_size=256)
    out = {}
    for layout in ("native", "original"):
        for workers in (1, 2):
            p = d / f"{layout}{workers}.h5"
            soc.write_file(spec, p, layout=layout, workers=workers)
            out[layout, workers] = p
    return spec, out


def h5_contents(path):
    with h5py.File(path) as f:
        arrays = {}
        f.visititems(lambda n, o: arrays.__setitem__(n, o[...]) if isinstance(o, h5py.Dataset) else None)
        return dict(f.attrs), arrays


@pytest.mark.parametrize("layout", ["native", "original"])
def test_same_file_for_any_worker_count(files, layout):
    spec, paths = files
    a_attrs, a = h5_contents(paths[layout, 1])
    b_attrs, b = h5_contents(paths[layout, 2])
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert json.dumps(a_attrs, default=str, sort_keys=True) == json.dumps(b_attrs, default=str, sort_keys=True)
    assert paths[layout, 1].read_bytes() == paths[layout, 2].read_bytes()


def test_native_file_schema_and_rebuild(files):
    spec, paths = files
    summary = summarize(paths["native", 1], "sort-of-clevr")
    assert summary.lengths == {"train": 630, "test": 70}
    assert summary.params["min_distance"] == 20 and summary.seed == 11
    assert soc.SortOfClevrSpec(**summary.params) == spec  # the file alone says how to regenerate it
    palette = json.loads(summary.attrs["palette"])
    assert palette == [{"name": "blue", "rgb": [0, 0, 255]}, {"name": "red", "rgb": [255, 0, 0]}]
    assert json.loads(summary.attrs["shape_names"]) == ["square", "circle"]
    for split in ("train", "test"):
        arrays = read_split(paths["native", 1], split)
        assert arrays["images"].dtype == np.uint8 and arrays["colors"].dtype == np.uint8
        assert arrays["shapes"].dtype == np.uint8 and arrays["centers"].dtype == np.int64
        np.testing.assert_array_equal(soc.rebuild(SORT_OF_CLEVR.spec_from_params(summary.params), arrays)["images"], arrays["images"])
        direct = soc.generate(spec, split)
        assert all(np.array_equal(direct[k], arrays[k]) for k in direct)
    with h5py.File(paths["native", 1]) as f:
        assert f["train/images"].compression == "gzip" and f["train/images"].chunks[0] > 1


def load_like_the_papers_gan_code(path):
    """What train_gan.py's loader does with the file: `train_x`, the last 10% as test unless a
    `test_x` exists; values used as they are."""
    with h5py.File(path, "r") as ff:
        if "test_x" in ff:
            return np.array(ff["train_x"]), np.array(ff["test_x"])
        cutoff = int(ff["train_x"].shape[0] * 0.9)
        return np.array(ff["train_x"][:cutoff]), np.array(ff["train_x"][cutoff:])


def test_original_layout_is_what_the_gan_code_loads(files):
    spec, paths = files
    train_x, val_x = load_like_the_papers_gan_code(paths["original", 1])
    assert train_x.shape == (630, 64, 64, 3) and val_x.shape == (70, 64, 64, 3)
    assert train_x.dtype == np.float32 and train_x.min() == -1.0 and train_x.max() == 1.0
    native = {s: read_split(paths["native", 1], s) for s in ("train", "test")}
    # the loader's 0.9 cut-off recovers the native split; values are pixel / 127.5 - 1
    np.testing.assert_array_equal(train_x, (native["train"]["images"] / 127.5 - 1).astype(np.float32))
    np.testing.assert_array_equal(val_x, (native["test"]["images"] / 127.5 - 1).astype(np.float32))
    summary = summarize(paths["original", 1])
    assert summary.kind == "sort-of-clevr" and summary.layout == "original"
    assert summary.lengths == {"train": 700}
    arrays = read_split(paths["original", 1], "train")
    np.testing.assert_array_equal(arrays["centers"], np.concatenate([native[s]["centers"] for s in ("train", "test")]))
    pixels = np.rint((arrays["x"].astype(np.float64) + 1) * 127.5).astype(np.uint8)
    np.testing.assert_array_equal(soc.rebuild(SORT_OF_CLEVR.spec_from_params(summary.params), arrays)["images"], pixels)


def test_a_file_of_the_original_script_is_recognised(runner, tmp_path):
    bare = tmp_path / "sort_of_clevr_2objs_10rad_50000imgs_64x.h5"
    images = soc.generate(soc.SortOfClevrSpec(n=20))["images"]
    with h5py.File(bare, "w") as f:
        f["train_x"] = images / 127.5 - 1.0  # float64, as the original stored it
    d = json.loads(runner.invoke(main, ["info", str(bare), "--json"]).output)
    assert d["dataset"] == "sort-of-clevr" and d["layout"] == "original" and d["splits"] == {"train": 18}
    result = runner.invoke(main, ["preview", str(bare), "--out", str(tmp_path / "p.png"), "--n", "4"])
    assert result.exit_code == 0, result.output


# -- command line -------------------------------------------------------------------------------------

def test_cli_default_name_and_summary(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["sort-of-clevr", "--n", "100"])
    assert result.exit_code == 0, result.output
    assert "wrote sort_of_clevr.h5: 100 images (train 90, test 10), 2 objects on 64x64" in result.output
    result = runner.invoke(main, ["sort-of-clevr", "--n", "100", "--force", "--quiet"])
    assert result.exit_code == 0 and result.output == ""


def test_cli_options_reach_the_file(runner, tmp_path):
    out = tmp_path / "rn.h5"
    result = runner.invoke(main, ["sort-of-clevr", "--n", "50", "--size", "75", "--objects", "6", "--object-size", "11",
                                  "--background", "0,0,0", "--seed", "5", "--test-fraction", "0.2", "--out", str(out),
                                  "--workers", "1"])
    assert result.exit_code == 0, result.output
    s = summarize(out)
    assert s.lengths == {"train": 40, "test": 10} and s.seed == 5
    assert (s.params["size"], s.params["objects"], s.params["object_size"], s.params["min_distance"]) == (75, 6, 11, 10)
    arrays = read_split(out, "train")
    assert arrays["images"].shape == (40, 75, 75, 3) and (arrays["images"][:, 0, 0] == 0).all()
    np.testing.assert_array_equal(soc.rebuild(SORT_OF_CLEVR.spec_from_params(s.params), arrays)["images"], arrays["images"])


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["--objects", "0"], ["--objects"]),
        (["--objects", "7"], ["--objects", "1<=x<=6"]),
        (["--test-fraction", "1.5"], ["--test-fraction"]),
        (["--test-fraction", "1"], ["--test-fraction"]),
        (["--n", "0"], ["--n"]),
        (["--object-size", "20"], ["--object-size", "odd"]),
        (["--object-size", "65"], ["--object-size", "raise size"]),
        (["--background", "purple"], ["--background", "purple"]),
        (["--background", "0,0,255"], ["--background", "blue"]),
        (["--layout", "tf"], ["--layout"]),
        (["--workers", "0"], ["--workers"]),
        # clearly impossible: refused up front, naming the options to change
        (["--objects", "6", "--min-distance", "30"], ["'--min-distance'", "cannot place 6 objects", "lower objects, min_distance",
                                                     "raise size"]),
        # possible in principle, hopeless in practice: fails after the bounded tries
        (["--objects", "6", "--min-distance", "25", "--n", "10"], ["'--min-distance'", "could not place 6 objects"]),
    ],
)
def test_cli_bad_values_are_one_clear_line(runner, tmp_path, args, fragments):
    out = tmp_path / "x.h5"
    assert_one_line_error(runner.invoke(main, ["sort-of-clevr", "--out", str(out), *args]), *fragments)
    assert not out.exists() and list(tmp_path.iterdir()) == []  # no partial or temporary file left


def test_cli_refuses_to_overwrite(runner, tmp_path):
    p = tmp_path / "s.h5"
    p.write_bytes(b"keep me")
    assert_one_line_error(runner.invoke(main, ["sort-of-clevr", "--n", "10", "--out", str(p)]), "already exists", "--force")
    assert p.read_bytes() == b"keep me"


def test_info_statistics(runner, files):
    _, paths = files
    d = json.loads(runner.invoke(main, ["info", str(paths["native", 1]), "--json"]).output)
    stats = d["statistics"]["train"]
    assert stats["colors"] == {"blue": 630, "red": 630}
    assert sum(stats["shapes"].values()) == 2 * 630 and set(stats["shapes"]) == {"square", "circle"}
    assert stats["x_range"] == [10, 53] and stats["y_range"] == [10, 53]
    assert stats["min_center_distance"] >= 20
    assert 0 < stats["images_with_overlap"] < 630
    text = runner.invoke(main, ["info", str(paths["original", 1])]).output
    assert "sort-of-clevr (original layout" in text and "train_x" in text and "min_center_distance" in text


def test_preview_marks_objects(runner, files, tmp_path):
    _, paths = files
    out = tmp_path / "grid.png"
    result = runner.invoke(main, ["preview", str(paths["native", 1]), "--out", str(out), "--n", "4"])
    assert result.exit_code == 0, result.output
    img = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    scale, gap = 4, 4
    assert img.shape == (2 * 256 + 3 * gap, 2 * 256 + 3 * gap, 3)
    arrays = read_split(paths["native", 1], "train", stop=4)
    for i in range(4):
        r, c = divmod(i, 2)
        oy, ox = gap + r * (256 + gap), gap + c * (256 + gap)
        for k in range(2):
            x, y = arrays["centers"][i, k]
            assert tuple(img[oy + y * scale + 2, ox + x * scale + 2]) == (0, 0, 0)  # the centre cross
            inside = img[oy + y * scale + 2 + 3 * scale, ox + x * scale + 2 + 3 * scale]
            assert tuple(inside) == PAPER_COLORS[k]  # the object's own colour, enlarged


@pytest.mark.parametrize("layout", ["native", "original"])
@pytest.mark.parametrize("n,fraction", [(1, 0.1), (3, 0.5), (21, 0.3)])
def test_tiny_requests(tmp_path, layout, n, fraction):
    spec = soc.SortOfClevrSpec(n=n, test_fraction=fraction, seed=2)
    p = tmp_path / "t.h5"
    counts = soc.write_file(spec, p, layout=layout)
    assert counts["train"] + counts["test"] == n and counts["train"] >= 1
    s = summarize(p)
    for split, length in s.lengths.items():
        arrays = read_split(p, split)
        images = arrays.get("images")
        if images is None:
            images = np.rint((arrays["x"].astype(np.float64) + 1) * 127.5).astype(np.uint8)
        assert len(images) == length
        np.testing.assert_array_equal(soc.rebuild(SORT_OF_CLEVR.spec_from_params(s.params), arrays)["images"], images)


def test_shapes_equal_the_originals_float64_drawing():
    """The original drew on a float64 canvas of 255s; OpenCV rasterises it the same way."""
    spec = soc.SortOfClevrSpec(n=60, test_fraction=0, seed=4)
    data = soc.generate(spec)
    for i in range(60):
        canvas = np.ones((64, 64, 3)) * 255
        for (x, y), shape, color in zip(data["centers"][i], data["shapes"][i], data["colors"][i]):
            rgb = PAPER_COLORS[int(color)]
            if shape == soc.SQUARE:
                cv2.rectangle(canvas, (int(x) - 10, int(y) - 10), (int(x) + 10, int(y) + 10), rgb, -1)
            else:
                cv2.circle(canvas, (int(x), int(y)), 10, rgb, -1)
        np.testing.assert_array_equal(data["images"][i], canvas.astype(np.uint8))
