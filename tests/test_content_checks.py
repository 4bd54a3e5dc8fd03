"""Files are checked all the way down: attribute types, links, what a kind's arrays must agree on, and
every value a run will use, before its first step."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from conftest import assert_one_line_error
from coordconv_data.cli import main
from coordconv_data.generate import lanes
from coordconv_data.generate import not_so_clevr as nsc
from coordconv_data.generate import sort_of_clevr as soc
from coordconv_data.kinds import base
from coordconv_data.store import MalformedFile, StoreError, check_content, summarize


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    d = tmp_path_factory.mktemp("good")
    paths = {"nsc": d / "nsc.h5", "nsc-original": d / "nsc_o.h5", "lanes": d / "lanes.h5", "soc": d / "soc.h5"}
    nsc.write_file(nsc.NotSoClevrSpec(split="quadrant"), paths["nsc"])
    nsc.write_file(nsc.NotSoClevrSpec(split="uniform"), paths["nsc-original"], layout="original")
    lanes.write_file(lanes.LanesSpec(n=40, test_n=8, size=32, seed=1), paths["lanes"])
    soc.write_file(soc.SortOfClevrSpec(n=40, seed=1), paths["soc"])
    return paths


def damaged(good, tmp_path, name, damage):
    p = tmp_path / f"bad_{name}.h5"
    shutil.copy(good[name], p)
    with h5py.File(p, "a") as f:
        damage(f)
    return p


def test_good_files_pass_every_check(good):
    for p in good.values():
        assert check_content(summarize(p)).content_checked


# -- attributes ----------------------------------------------------------------------------------------

ATTRIBUTES = [
    ("nsc", "dataset", np.array([1, 2]), "attribute 'dataset' is [1, 2]; it must be text"),
    ("nsc", "layout", np.array([3, 4]), "attribute 'layout' is [3, 4]; it must be text"),
    ("nsc", "canvas_size", "sixty-four", "attribute 'canvas_size' is 'sixty-four'; it must be an integer in 2..4096"),
    ("nsc", "schema_version", "1", "attribute 'schema_version' is '1'; it must be an integer"),
    ("nsc", "params", "{not json", "attribute 'params' is '{not json'; it must be valid JSON text"),
    ("nsc", "seed", 1.5, "attribute 'seed' is 1.5; it must be an integer"),
    ("soc", "background", "white", "attribute 'background' is 'white'; it must be a list of 3 integers in 0..255"),
    ("soc", "object_size", np.array([21, 21]), "attribute 'object_size' is [21, 21]; it must be an integer"),
    ("lanes", "class_names", np.array([1, 2, 3, 4]), "attribute 'class_names' is [1, 2, 3, 4]; it must be JSON text"),
]


@pytest.mark.parametrize("name,attr,value,message", ATTRIBUTES, ids=[a[1] for a in ATTRIBUTES])
def test_an_attribute_of_the_wrong_type_is_one_line(runner, good, tmp_path, name, attr, value, message):
    p = damaged(good, tmp_path, name, lambda f: f.attrs.__setitem__(attr, value))
    with pytest.raises(MalformedFile) as e:
        summarize(p)
    assert message in str(e.value) and "\n" not in str(e.value)
    for command in (["info", str(p)], ["preview", str(p), "--out", str(tmp_path / "p.png")]):
        assert_one_line_error(runner.invoke(main, command), message)


def test_a_long_attribute_is_cut_in_messages(good, tmp_path):
    p = damaged(good, tmp_path, "nsc", lambda f: f.attrs.__setitem__("canvas_size", "x" * 60_000))
    with pytest.raises(MalformedFile) as e:
        summarize(p)
    assert len(str(e.value)) < 400


# -- links ---------------------------------------------------------------------------------------------

def test_an_external_link_is_refused(good, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(good["nsc"], elsewhere / "q.h5")

    def link(f):
        del f["train/locations"]
        f["train/locations"] = h5py.ExternalLink("elsewhere/q.h5", "/train/locations")

    p = damaged(good, tmp_path, "nsc", link)
    with pytest.raises(MalformedFile, match="'train/locations' is an external link to elsewhere/q.h5:/train/locations"):
        summarize(p)


def _virtual(f, source: str):
    """Replace train/locations by a virtual array mapping ``source``'s train/locations."""
    shape, dtype = f["train/locations"].shape, f["train/locations"].dtype
    layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
    layout[...] = h5py.VirtualSource(source, "train/locations", shape=shape)
    del f["train/locations"]
    f.create_virtual_dataset("train/locations", layout)


def test_a_virtual_array_maps_only_the_files_its_records_name_beside_it(good, tmp_path):
    shutil.copy(good["nsc"], tmp_path / "part.h5")
    unnamed = damaged(good, tmp_path, "nsc", lambda f: _virtual(f, "part.h5"))
    with pytest.raises(MalformedFile, match="virtual array 'train/locations' maps 'part.h5'"):
        summarize(unnamed)

    def named(f):
        _virtual(f, "part.h5")
        f.attrs["virtual_sources"] = '["part.h5"]'

    p = tmp_path / "named.h5"
    shutil.copy(damaged(good, tmp_path, "nsc", named), p)
    assert check_content(summarize(p)).lengths["train"] == 2407  # named, beside it: read through

    def elsewhere(f):
        _virtual(f, "../part.h5")
        f.attrs["virtual_sources"] = '["../part.h5"]'

    with pytest.raises(MalformedFile, match="virtual_sources"):
        summarize(damaged(good, tmp_path, "nsc", elsewhere))


# -- what a kind's arrays must agree on -----------------------------------------------------------------

def _shuffle_locations(f):
    loc = f["train/locations"][...]
    f["train/locations"][...] = loc[np.random.default_rng(0).permutation(len(loc))]


def _move_one_square(f):
    loc = f["train/locations"][...]
    loc[1500] = loc[1500] + (1, 0)  # one location off by a pixel, in the middle of the split
    f["train/locations"][...] = loc


def _original_onehot(f):
    hot = f["val_onehots"][5]
    hot[...] = 0
    hot[10, 10] = 1
    f["val_onehots"][5] = hot


def _all_ones(f):
    f["train/masks"][...] = 1


def _soc_same_colour(f):
    colors = f["train/colors"][...]
    colors[7] = colors[7, 0]
    f["train/colors"][...] = colors


def _lanes_class(f):
    classes = f["test/classes"][...]
    classes[2, 1] = (classes[2, 1] + 1) % 4
    f["test/classes"][...] = classes


CONSISTENCY = [
    ("nsc", _shuffle_locations, True, ["sample 0 of split 'train'", "not the 9x9 square centred on its location"]),
    ("nsc", _move_one_square, False, ["sample 1500 of split 'train'", "centred on its location"]),
    ("nsc-original", _original_onehot, True, ["sample 5 of split 'test'", "'val_onehots' does not mark"]),
    ("lanes", _all_ones, True, ["the mask of sample 0 of split 'train'", "is class 1, its circles make it 0"]),
    ("soc", _soc_same_colour, True, ["sample 7 of split 'train' has two", "distinct colours"]),
    ("lanes", _lanes_class, True, ["circle 1 of sample 2 of split 'test'", "test/classes"]),
]


@pytest.mark.parametrize("name,damage,on_opening,fragments", CONSISTENCY, ids=[c[1].__name__.strip("_") for c in CONSISTENCY])
def test_what_a_kinds_arrays_must_agree_on_is_checked(good, tmp_path, name, damage, on_opening, fragments):
    """On opening (a few samples) when the damage is there; on every sample before a run (check_content)."""
    p = damaged(good, tmp_path, name, damage)
    if on_opening:
        with pytest.raises(MalformedFile) as e:
            summarize(p)
    else:
        summary = summarize(p)  # the sample taken on opening does not reach it ...
        with pytest.raises(MalformedFile) as e:
            check_content(summary)  # ... every sample does
    for fragment in fragments:
        assert fragment in str(e.value), str(e.value)


# -- every value a run uses, before its first step ---------------------------------------------------------

@pytest.fixture
def lanes_with_a_bad_class_in_a_skipped_chunk(tmp_path, monkeypatch):
    """A Lanes file whose mask class 200 sits in a chunk the opening sample skips (the sample made small,
    as it is for a file of a few GiB)."""
    monkeypatch.setattr(base, "FULL_SCAN_BYTES", 16 * 1024)
    monkeypatch.setattr(base, "SAMPLE_BYTES", 4 * 32 * 32)
    p = tmp_path / "lanes.h5"
    lanes.write_file(lanes.LanesSpec(n=400, test_n=8, size=32, seed=3), p)
    with h5py.File(p, "a") as f:
        masks = f["train/masks"]
        sampled = base._sample_slices(masks)
        skipped = next(r for r in range(100, 300) if not any(s.start <= r < s.stop for s in sampled))
        masks[skipped, 5, 5] = 200
    summarize(p)  # opening does not see it
    return p, skipped


def test_a_bad_mask_class_in_a_skipped_chunk_is_refused_before_the_first_step(runner, tmp_path, monkeypatch,
                                                                              lanes_with_a_bad_class_in_a_skipped_chunk):
    from coordconv_data.train import tasks

    p, skipped = lanes_with_a_bad_class_in_a_skipped_chunk
    steps = []
    real = tasks.Segmentation.train_step
    monkeypatch.setattr(tasks.Segmentation, "train_step", lambda *a, **k: steps.append(1) or real(*a, **k))
    result = runner.invoke(main, ["train", "--arch", "fcn_vgg9", "--data", str(p), "--epochs", "1",
                                  "--out", str(tmp_path / "run"), "-q"])
    assert_one_line_error(result, "train/masks", "holds 200", f"sample {skipped}", "0..3")
    assert result.exit_code == 1 and steps == []
    assert not (tmp_path / "run" / "last.pt").exists()


def test_the_dataset_refuses_a_bad_value_it_reads(lanes_with_a_bad_class_in_a_skipped_chunk):
    """A user's own loop over the dataset (in memory, or read per batch) meets the bad class as one line
    naming the sample, not as an IndexError later."""
    pytest.importorskip("torch")
    from coordconv_data.datasets import Lanes

    p, skipped = lanes_with_a_bad_class_in_a_skipped_chunk
    with pytest.raises(MalformedFile, match=f"holds 200 at sample {skipped}"):
        Lanes(p, "all", generate=False)
    per_batch = Lanes(p, "all", generate=False, memory_limit=0)
    assert not per_batch.in_memory
    per_batch[0]  # a good sample reads
    with pytest.raises(MalformedFile, match=f"holds 200 at sample {skipped}"):
        per_batch.__getitems__([skipped - 1, skipped])
    with pytest.raises(StoreError):
        per_batch[skipped]


def test_info_cuts_a_long_attribute(runner, good, tmp_path):
    import json as _json

    p = tmp_path / "long.h5"
    shutil.copy(good["soc"], p)
    with h5py.File(p, "a", libver="latest") as f:  # dense attribute storage: megabytes in one attribute
        params = _json.loads(f.attrs["params"])
        f.attrs["params"] = _json.dumps({**params, "notes": "x" * 5_000_000})
        f.attrs["drawing_order"] = "y" * 5_000_000
    for args in (["info", str(p), "--json"], ["info", str(p)]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output[-500:]
        assert len(result.output) < 20_000 and "MiB in all, cut)" in result.output
    d = _json.loads(runner.invoke(main, ["info", str(p), "--json"]).output)
    assert d["params"]["n"] == 40 and d["attributes"]["drawing_order"].endswith("(4.8 MiB in all, cut)")
