"""Files are validated by content on opening: a malformed array is one line naming it, everywhere."""

import importlib
import inspect
import pkgutil
import shutil

import h5py
import numpy as np
import pytest

import coordconv_data
from conftest import assert_one_line_error
from coordconv_data.cli import main
from coordconv_data.errors import CoordDataError
from coordconv_data.generate import lanes
from coordconv_data.generate import not_so_clevr as nsc
from coordconv_data.generate import sort_of_clevr as soc
from coordconv_data.kinds import KINDS, LANES, NOT_SO_CLEVR, SORT_OF_CLEVR, get_kind
from coordconv_data.store import StoreError, read_split, summarize


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    d = tmp_path_factory.mktemp("good")
    paths = {"nsc": d / "nsc.h5", "nsc-original": d / "nsc_o.h5", "lanes": d / "lanes.h5", "soc": d / "soc.h5",
             "soc-original": d / "soc_o.h5"}
    nsc.write_file(nsc.NotSoClevrSpec(split="quadrant"), paths["nsc"])
    nsc.write_file(nsc.NotSoClevrSpec(split="quadrant"), paths["nsc-original"], layout="original")
    lanes.write_file(lanes.LanesSpec(n=12, test_n=4, size=32, seed=1), paths["lanes"])
    soc.write_file(soc.SortOfClevrSpec(n=20, seed=1), paths["soc"])
    soc.write_file(soc.SortOfClevrSpec(n=20, seed=1), paths["soc-original"], layout="original")
    return paths


def replace(path, key, data):
    with h5py.File(path, "a") as f:
        del f[key]
        f[key] = data


def _locations_3(p):
    loc = read_split(p, "train")["locations"]
    replace(p, "train/locations", np.concatenate([loc, loc[:, :1]], axis=1))


def _location_outside(p):
    with h5py.File(p, "a") as f:
        f["train/locations"][7] = (5000, -3)


def _float_images(p):
    replace(p, "train/images", read_split(p, "train")["images"].astype(np.float32))


def _lanes_one_channel(p):
    replace(p, "train/images", read_split(p, "train")["images"][..., :1])


def _lanes_float_images(p):
    replace(p, "test/images", read_split(p, "test")["images"].astype(np.float64))


def _mask_class_9(p):
    with h5py.File(p, "a") as f:
        f["train/masks"][5, 3, 3] = 9


def _soc_colour_10(p):
    with h5py.File(p, "a") as f:
        f["test/colors"][1, 0] = 10


def _soc_centre_outside(p):
    with h5py.File(p, "a") as f:
        f["train/centers"][2, 1] = (64, 3)


def _original_nan(p):
    with h5py.File(p, "a") as f:
        f["val_normalized_locations"][4, 0] = np.nan


def _original_x_range(p):
    with h5py.File(p, "a") as f:
        f["train_x"][3, 0, 0, 0] = 2.0


def _lanes_radius_0(p):
    with h5py.File(p, "a") as f:
        f["train/radii"][0, 0] = 0


def _lanes_short_masks(p):
    replace(p, "train/masks", read_split(p, "train")["masks"][:, :16])


MALFORMED = [
    ("nsc", _locations_3, ["train/locations", "(2407, 3)", "(N, 2)"]),
    ("nsc", _location_outside, ["train/locations", "5000", "sample 7", "0..63"]),
    ("nsc", _float_images, ["train/images", "float32", "uint8"]),
    ("lanes", _lanes_one_channel, ["train/images", "(12, 32, 32, 1)", "(N, S, S, 3)"]),
    ("lanes", _lanes_float_images, ["test/images", "float64"]),
    ("lanes", _mask_class_9, ["train/masks", "holds 9", "sample 5", "0..3"]),
    ("lanes", _lanes_radius_0, ["train/radii", "holds 0"]),
    ("lanes", _lanes_short_masks, ["train/masks", "S = 32"]),
    ("soc", _soc_colour_10, ["test/colors", "holds 10", "0..1"]),
    ("soc", _soc_centre_outside, ["train/centers", "holds 64", "0..63"]),
    ("nsc-original", _original_nan, ["val_normalized_locations", "nan"]),
    ("soc-original", _original_x_range, ["train_x", "holds 2", "-1..1"]),
]


@pytest.fixture(params=MALFORMED, ids=[m[1].__name__.strip("_") for m in MALFORMED])
def malformed(request, good, tmp_path):
    name, damage, fragments = request.param
    p = tmp_path / f"bad_{name}.h5"
    shutil.copy(good[name], p)
    damage(p)
    return p, fragments


def test_good_files_validate(good):
    for p in good.values():
        s = summarize(p)
        assert s.lengths and all(v >= 0 for v in s.lengths.values())


def test_malformed_file_is_one_line_in_the_library(malformed):
    p, fragments = malformed
    with pytest.raises(StoreError) as e:
        summarize(p)
    assert "\n" not in str(e.value)
    for fragment in fragments:
        assert fragment in str(e.value)
    with pytest.raises(StoreError):
        read_split(p, "train")


@pytest.mark.parametrize("command", ["info", "preview"])
def test_malformed_file_is_one_line_in_the_cli(runner, malformed, command, tmp_path):
    p, fragments = malformed
    out = tmp_path / "pic.png"
    args = [command, str(p)] + (["--out", str(out)] if command == "preview" else [])
    result = runner.invoke(main, args)
    assert_one_line_error(result, *fragments)
    assert result.exit_code == 1
    assert not out.exists()


def test_malformed_file_is_one_line_in_the_datasets(malformed):
    pytest.importorskip("torch")
    from coordconv_data.datasets import dataset_class
    from coordconv_data.store import summarize

    p, fragments = malformed
    split = "test" if "test/" in fragments[0] or "val_" in fragments[0] else "train"
    with h5py.File(p, "r") as f:
        kind = f.attrs.get("dataset") or "not-so-clevr"
    kind = kind.decode() if isinstance(kind, bytes) else kind
    with pytest.raises(StoreError) as e:
        dataset_class(kind)(p, split, generate=False)
    assert "\n" not in str(e.value) and fragments[0] in str(e.value)


def test_train_refuses_a_malformed_file_before_any_work(runner, good, tmp_path):
    pytest.importorskip("torch")
    p = tmp_path / "bad.h5"
    shutil.copy(good["nsc"], p)
    _location_outside(p)
    result = runner.invoke(main, ["train", "--arch", "coordconv_classification", "--data", str(p), "--epochs", "1",
                                  "--out", str(tmp_path / "run"), "-q"])
    assert_one_line_error(result, "train/locations", "5000")
    assert not (tmp_path / "run" / "last.pt").exists()


def test_large_arrays_are_checked_by_a_bounded_sample(tmp_path, monkeypatch):
    """Over FULL_SCAN_BYTES an array is sampled by whole chunks spread over it, first and last included."""
    from coordconv_data.kinds import base

    monkeypatch.setattr(base, "FULL_SCAN_BYTES", 64 * 1024)
    monkeypatch.setattr(base, "SAMPLE_BYTES", 4 * 64 * 32 * 32)
    p = tmp_path / "l.h5"
    lanes.write_file(lanes.LanesSpec(n=300, test_n=0, size=32, seed=2), p)
    summarize(p)
    with h5py.File(p, "a") as f:
        chunk_rows = f["train/masks"].chunks[0]
        f["train/masks"][299, 0, 0] = 7  # in the last chunk: always sampled
    with pytest.raises(StoreError, match="holds 7 at sample 299"):
        summarize(p)
    assert chunk_rows < 300


def test_every_kind_is_one_object_with_everything():
    assert set(KINDS) == {"not-so-clevr", "sort-of-clevr", "lanes"}
    for kind in KINDS.values():
        assert kind is get_kind(kind.name)
        gen = kind.generator
        for entry in ("Spec", "generate", "write_file", "rebuild", "estimate_bytes"):
            assert callable(getattr(gen, entry)), (kind.name, entry)
        params = inspect.signature(gen.write_file).parameters
        assert list(params)[:2] == ["spec", "path"]
        assert {"layout", "workers", "force", "progress"} <= set(params)
        assert all(params[k].kind is inspect.Parameter.KEYWORD_ONLY for k in ("layout", "workers", "force", "progress"))
        assert list(inspect.signature(gen.generate).parameters) == ["spec", "split"]
        assert list(inspect.signature(gen.rebuild).parameters) == ["spec", "arrays"]
        assert "native" in kind.layouts
    assert LANES.class_names == lanes.CLASS_NAMES and len(LANES.class_colors) == len(LANES.class_names)
    assert NOT_SO_CLEVR.display_params({"split": "quadrant", "seed": 1, "test_fraction": 0.25}) == {"split": "quadrant"}
    assert SORT_OF_CLEVR.palette({"palette": '[{"name": "blue", "rgb": [0, 0, 255]}]'}) == [("blue", (0, 0, 255))]
    with pytest.raises(StoreError, match="unknown dataset kind 'mnist'"):
        get_kind("mnist")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_generate_rebuild_and_file_agree(kind, tmp_path):
    k = get_kind(kind)
    spec = {"not-so-clevr": lambda: nsc.NotSoClevrSpec(split="uniform", seed=3),
            "sort-of-clevr": lambda: soc.SortOfClevrSpec(n=30, seed=3),
            "lanes": lambda: lanes.LanesSpec(n=9, test_n=3, size=32, seed=3)}[kind]()
    p = tmp_path / "f.h5"
    counts = k.generator.write_file(spec, p, layout="native", workers=1, force=False, progress=None)
    s = summarize(p, kind)
    assert s.lengths == counts
    assert k.spec_from_params(s.params).params() == spec.params()  # the file alone says how to regenerate it
    assert p.stat().st_size <= k.generator.estimate_bytes(spec, "native") * 3 + 2**20
    for split in ("train", "test"):
        stored = read_split(p, split)
        made = k.generator.generate(spec, split)
        assert set(made) <= set(stored)
        for name, array in made.items():
            np.testing.assert_array_equal(array, stored[name], err_msg=name)
        for name, array in k.generator.rebuild(spec, stored).items():
            np.testing.assert_array_equal(array, stored[name], err_msg=name)


def test_every_error_class_derives_from_the_one_base():
    """Every exception class defined in the package is a CoordDataError."""
    skip = ()
    found = []
    for info in pkgutil.walk_packages(coordconv_data.__path__, "coordconv_data."):
        if info.name.startswith(skip) or info.name == "coordconv_data.__main__":
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found.append(obj)
                if obj.__name__ == "Interrupted":  # SIGTERM/SIGHUP, raised like KeyboardInterrupt
                    assert issubclass(obj, BaseException) and not issubclass(obj, Exception)
                    continue
                assert issubclass(obj, CoordDataError), f"{module.__name__}.{obj.__name__}"
    names = {c.__name__ for c in found}
    assert {"StoreError", "DiskFull", "NotEnoughSpace", "MalformedFile", "PlacementError", "InvalidParameter"} <= names
