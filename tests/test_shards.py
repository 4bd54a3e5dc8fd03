"""Shards (--shard K/N) and coorddata merge: the merged file is the one-machine file, array for array.

For each kind whose size can grow, shards 0..N-1 (N in 1, 3, 7: with 7, some shards hold no sample of
a split) merged with virtual arrays and with --copy equal the file one machine writes from the same
options; the copy is that file byte for byte. A set with a shard missing, twice, or of another
dataset (each kind) is refused in one line naming it; a merged file whose shard is gone or changed is one line
naming the shard wherever it is opened (info, preview, the datasets, train).
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import assert_one_line_error
from coordconv_data.cli import main
from coordconv_data.generate import lanes as lanes_gen
from coordconv_data.generate import sort_of_clevr as soc_gen
from coordconv_data.generate.shards import Shard, parse_shard, shard_file_name
from coordconv_data.kinds.base import MalformedFile
from coordconv_data.merge import merge_shards
from coordconv_data.store import StoreError, check_content, summarize

LANES_OPTIONS = ["--n", "300", "--test-n", "130", "--size", "32"]  # 5 + 3 blocks of 64
LANES_SPEC = lanes_gen.LanesSpec(n=300, test_n=130, size=32)
# Sort-of-Clevr's blocks are 1024 images by default: a spec of the API with blocks of 64, so that 7
# shards hold 0, 1 or 2 blocks of each split.
SOC_SPEC = soc_gen.SortOfClevrSpec(n=700, size=32, block_size=64)
MERGE_ONLY = {"virtual_sources", "shards"}  # a virtual merge's own attributes


def assert_same_arrays(merged: Path, whole: Path) -> None:
    """Every array of ``whole`` is in ``merged`` with the same dtype, shape and values; the root
    attributes agree but for the merge's own."""
    with h5py.File(merged, "r") as f, h5py.File(whole, "r") as g:
        names_f, names_g = [], []
        f.visititems(lambda n, o: names_f.append(n) if isinstance(o, h5py.Dataset) else None)
        g.visititems(lambda n, o: names_g.append(n) if isinstance(o, h5py.Dataset) else None)
        assert sorted(names_f) == sorted(names_g)
        for name in names_g:
            a, b = f[name], g[name]
            assert a.dtype == b.dtype and a.shape == b.shape, name
            assert np.array_equal(a[...], b[...]), name
        attrs_f = {k: str(v) for k, v in f.attrs.items() if k not in MERGE_ONLY}
        attrs_g = {k: str(v) for k, v in g.attrs.items()}
        assert attrs_f == attrs_g


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The one-machine files."""
    d = tmp_path_factory.mktemp("whole")
    lanes_gen.write_file(LANES_SPEC, d / "lanes.h5", workers=2)
    soc_gen.write_file(SOC_SPEC, d / "sort_of_clevr.h5", workers=2)
    return {"lanes": d / "lanes.h5", "sort-of-clevr": d / "sort_of_clevr.h5"}


def write_shards(kind: str, count: int, folder: Path, runner) -> list[Path]:
    """Shards 0..count-1: Lanes through the command line as a job array runs it, Sort-of-Clevr through
    the API (its spec has small blocks), one with two worker processes."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        workers = "2" if k == 1 else "1"
        if kind == "lanes":
            r = runner.invoke(main, ["lanes", *LANES_OPTIONS, "--shard", f"{k}/{count}", "--out", f"{folder}/",
                                     "--workers", workers, "-q"])
            assert r.exit_code == 0, r.output
            paths.append(folder / shard_file_name("lanes.h5", Shard(k, count)))
        else:
            p = folder / shard_file_name("sort_of_clevr.h5", Shard(k, count))
            soc_gen.write_file(SOC_SPEC, p, shard=Shard(k, count), workers=int(workers))
            paths.append(p)
    return paths


@pytest.mark.parametrize("kind", ["lanes", "sort-of-clevr"])
@pytest.mark.parametrize("count", [1, 3, 7])
def test_shards_merged_equal_the_one_machine_file(whole, tmp_path, runner, kind, count):
    paths = write_shards(kind, count, tmp_path / "shards", runner)
    covered = {"train": 0, "test": 0}
    with h5py.File(whole[kind], "r") as g:
        for k, p in enumerate(paths):  # each shard: its contiguous share, those samples of the whole file
            s = summarize(p)
            assert (s.attrs["shard_index"], s.attrs["shard_count"]) == (k, count)
            assert s.params == json.loads(g.attrs["params"])  # the whole dataset's parameters
            ranges = json.loads(s.attrs["shard_ranges"])
            with h5py.File(p, "r") as f:
                for split, (a, b) in ranges.items():
                    assert a == covered[split]  # contiguous, in order
                    covered[split] = b
                    for name in f[split]:
                        assert np.array_equal(f[split][name][...], g[split][name][a:b]), (k, split, name)
        assert covered == {split: g[split]["images"].shape[0] for split in ("train", "test")}
    virtual = tmp_path / "merged.h5"
    r = runner.invoke(main, ["merge", *map(str, reversed(paths)), "--out", str(virtual)])  # any order
    assert r.exit_code == 0, r.output
    assert f"from {count} shards (virtual arrays" in r.output
    assert_same_arrays(virtual, whole[kind])
    assert virtual.stat().st_size < whole[kind].stat().st_size / 4  # nothing copied
    check_content(summarize(virtual))  # every value, read through the shards
    copied = tmp_path / "copied.h5"
    r = runner.invoke(main, ["merge", *map(str, paths), "--out", str(copied), "--copy", "--workers", "2", "-q"])
    assert r.exit_code == 0, r.output
    assert filecmp.cmp(copied, whole[kind], shallow=False)  # the one-machine file, byte for byte


def test_a_merged_file_is_read_wherever_it_is_opened_from(whole, tmp_path, runner, monkeypatch):
    paths = write_shards("lanes", 3, tmp_path / "data" / "lanes-shards", runner)
    merged = tmp_path / "data" / "lanes.h5"
    assert merge_shards(paths, merged).lengths == {"train": 300, "test": 130}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the shards are found beside the merged file, not the working folder
    assert_same_arrays(merged, whole["lanes"])
    moved = tmp_path / "moved"
    shutil.move(str(tmp_path / "data"), moved)  # the folder moves whole: still one file
    assert_same_arrays(moved / "lanes.h5", whole["lanes"])


def test_info_shows_a_shard_and_a_merge(whole, tmp_path, runner):
    paths = write_shards("lanes", 3, tmp_path / "shards", runner)
    r = runner.invoke(main, ["info", str(paths[2])])
    assert r.exit_code == 0, r.output
    assert "params: block_size=64, circles=3" in r.output and "n=300" in r.output and "test_n=130" in r.output
    assert "shard: 2 of 3 (0..2): train samples 192..299 of 300, test samples 128..129 of 130" in r.output
    assert "splits: train 108, test 2" in r.output
    d = json.loads(runner.invoke(main, ["info", "--json", str(paths[0])]).output)
    assert d["shard"]["index"] == 0 and d["shard"]["count"] == 3
    assert d["shard"]["ranges"] == {"train": [0, 64], "test": [0, 64]}
    assert d["shard"]["digest"].startswith("sha256:")
    merged = tmp_path / "lanes.h5"
    assert runner.invoke(main, ["merge", *map(str, paths), "--out", str(merged), "-q"]).exit_code == 0
    r = runner.invoke(main, ["info", str(merged)])
    assert "merged: virtual arrays over 3 shards in shards/" in r.output
    assert "splits: train 300, test 130" in r.output and "chunks virtual" in r.output


def test_a_set_with_a_shard_missing_twice_or_foreign_is_refused(tmp_path, runner):
    paths = write_shards("lanes", 3, tmp_path / "shards", runner)
    out = ["--out", str(tmp_path / "m.h5")]
    r = runner.invoke(main, ["merge", str(paths[0]), str(paths[2]), *out])
    assert_one_line_error(r, "shard 1 of 3 is missing", "every shard 0..2", "lanes-00001-of-00003.h5")
    assert r.exit_code == 1
    twin = tmp_path / "shards" / "twin.h5"
    shutil.copy(paths[1], twin)
    r = runner.invoke(main, ["merge", *map(str, paths), str(twin), *out])
    assert_one_line_error(r, "are both shard 1 of 3", "twin.h5")
    r = runner.invoke(main, ["merge", *map(str, paths), str(paths[0]), *out])
    assert_one_line_error(r, "is given twice")
    assert r.exit_code == 2
    other = tmp_path / "other"
    r = runner.invoke(main, ["lanes", *LANES_OPTIONS, "--seed", "5", "--shard", "1/3", "--out", f"{other}/", "-q"])
    assert r.exit_code == 0, r.output
    foreign = other / shard_file_name("lanes.h5", Shard(1, 3))
    r = runner.invoke(main, ["merge", str(paths[0]), str(foreign), str(paths[2]), *out])
    assert_one_line_error(r, str(foreign), "not a shard of the dataset of", "parameter seed is 5, not 0")
    three = tmp_path / "three"
    for k in range(4):
        runner.invoke(main, ["lanes", *LANES_OPTIONS, "--shard", f"{k}/4", "--out", f"{three}/", "-q"])
    r = runner.invoke(main, ["merge", *map(str, paths[:2]), str(three / shard_file_name("lanes.h5", Shard(2, 4))), *out])
    assert_one_line_error(r, "one of 4 shards, not 3")
    soc = tmp_path / "soc.h5"
    soc_gen.write_file(SOC_SPEC, soc, shard=Shard(2, 3))
    r = runner.invoke(main, ["merge", *map(str, paths[:2]), str(soc), *out])
    assert_one_line_error(r, "holds sort-of-clevr data, not lanes")
    whole_file = tmp_path / "whole.h5"
    lanes_gen.write_file(LANES_SPEC, whole_file)
    r = runner.invoke(main, ["merge", *map(str, paths[:2]), str(whole_file), *out])
    assert_one_line_error(r, "is not a shard")
    assert not (tmp_path / "m.h5").exists()


def test_a_sort_of_clevr_set_with_a_shard_missing_twice_or_foreign_is_refused(tmp_path, runner):
    paths = write_shards("sort-of-clevr", 3, tmp_path / "shards", runner)
    out = ["--out", str(tmp_path / "m.h5")]
    r = runner.invoke(main, ["merge", str(paths[0]), str(paths[1]), *out])
    assert_one_line_error(r, "shard 2 of 3 is missing", "sort_of_clevr-00002-of-00003.h5")
    twin = tmp_path / "shards" / "twin.h5"
    shutil.copy(paths[0], twin)
    r = runner.invoke(main, ["merge", str(twin), *map(str, paths), *out])
    assert_one_line_error(r, "are both shard 0 of 3", "twin.h5")
    foreign = tmp_path / "other" / "s.h5"
    foreign.parent.mkdir()
    soc_gen.write_file(soc_gen.SortOfClevrSpec(n=700, size=32, block_size=64, objects=3), foreign, shard=Shard(1, 3))
    r = runner.invoke(main, ["merge", str(paths[0]), str(foreign), str(paths[2]), *out])
    assert_one_line_error(r, str(foreign), "not a shard of the dataset of", "parameter objects is 3, not 2")
    assert not (tmp_path / "m.h5").exists()


def test_a_missing_or_changed_shard_is_one_line_where_the_merged_file_is_opened(tmp_path, runner):
    paths = write_shards("lanes", 3, tmp_path / "shards", runner)
    merged = tmp_path / "lanes.h5"
    assert runner.invoke(main, ["merge", *map(str, paths), "--out", str(merged), "-q"]).exit_code == 0
    aside = tmp_path / "aside.h5"
    shutil.move(paths[1], aside)
    opened = {
        "info": ["info", str(merged)],
        "preview": ["preview", str(merged), "--out", str(tmp_path / "p.png")],
        "train": ["train", "--arch", "fcn_vgg9", "--data", str(merged), "--epochs", "1", "--batch-size", "8",
                  "--out", str(tmp_path / "run"), "-q"],
    }
    for name, args in opened.items():
        assert_one_line_error(runner.invoke(main, args), "shards/lanes-00001-of-00003.h5 is missing", "merge them again")
    from coordconv_data.datasets import Lanes

    with pytest.raises(StoreError, match="shard shards/lanes-00001-of-00003.h5 is missing"):
        Lanes(merged)
    # changed: the same name now holds another dataset's shard 1 of 3
    r = runner.invoke(main, ["lanes", *LANES_OPTIONS, "--seed", "9", "--shard", "1/3", "--out", str(paths[1]), "-q"])
    assert r.exit_code == 0, r.output
    for name, args in opened.items():
        assert_one_line_error(runner.invoke(main, args), "lanes-00001-of-00003.h5 changed since it was merged",
                              "its parameters differ")
    # changed in place: its content digest no longer the one merged (a rewrite of the right spec is equal)
    shutil.copy(aside, paths[1])
    with h5py.File(paths[1], "r+") as f:
        f.attrs["shard_digest"] = "sha256:" + "0" * 64
    assert_one_line_error(runner.invoke(main, opened["info"]), "changed since it was merged",
                          "its content digest differs")
    shutil.copy(aside, paths[1])  # restored: read again
    assert runner.invoke(main, opened["info"]).exit_code == 0
    assert runner.invoke(main, opened["train"]).exit_code == 0


def test_a_virtual_merge_lives_above_its_shards(tmp_path, runner):
    paths = write_shards("lanes", 3, tmp_path / "a" / "shards", runner)
    (tmp_path / "b").mkdir()
    r = runner.invoke(main, ["merge", *map(str, paths), "--out", str(tmp_path / "b" / "m.h5")])
    assert_one_line_error(r, "is not in the merged file's folder", "--copy")
    assert r.exit_code == 2
    r = runner.invoke(main, ["merge", *map(str, paths), "--out", str(tmp_path / "b" / "m.h5"), "--copy", "-q"])
    assert r.exit_code == 0, r.output
    shutil.rmtree(tmp_path / "a")
    assert summarize(tmp_path / "b" / "m.h5").lengths == {"train": 300, "test": 130}  # self-contained


def test_shard_options_are_checked(runner, tmp_path):
    for value, fragment in (("3/3", "shard index 3 is not in 0..2"), ("1/0", "shard count must be in 1.."),
                            ("two", "shard must be K/N")):
        r = runner.invoke(main, ["lanes", "--n", "10", "--shard", value, "--out", str(tmp_path / "x.h5")])
        assert_one_line_error(r, "--shard", fragment)
        assert r.exit_code == 2
    r = runner.invoke(main, ["sort-of-clevr", "--n", "100", "--shard", "0/2", "--layout", "original",
                             "--out", str(tmp_path / "x.h5")])
    assert_one_line_error(r, "--layout", "native layout only")
    r = runner.invoke(main, ["lanes", "--n", "10", "--shards", "3", "--out", str(tmp_path / "x.h5")])
    assert_one_line_error(r, "--shards N and --dask ADDRESS go together")
    r = runner.invoke(main, ["lanes", "--n", "10", "--shard", "0/3", "--dask", "local", "--shards", "3"])
    assert_one_line_error(r, "give one or the other")
    assert not any(tmp_path.iterdir())
    assert parse_shard(" 2 / 5 ") == Shard(2, 5)


def test_a_shard_file_that_contradicts_its_attributes_is_malformed(tmp_path):
    p = tmp_path / "s.h5"
    lanes_gen.write_file(LANES_SPEC, p, shard=Shard(1, 3))
    with h5py.File(p, "r+") as f:
        f.attrs["shard_ranges"] = json.dumps({"train": [0, 128], "test": [64, 128]})
    with pytest.raises(MalformedFile, match="shard 1 of 3 of its dataset holds"):
        summarize(p)
    with h5py.File(p, "r+") as f:
        del f.attrs["shard_count"]
    with pytest.raises(MalformedFile, match="not 'shard_count'"):
        summarize(p)


def test_an_empty_shard_is_a_valid_shard(tmp_path):
    # 7 shards of 3 test blocks: shard 0 holds no test sample (and, with 5 train blocks, no train one)
    p = tmp_path / "s.h5"
    assert lanes_gen.write_file(LANES_SPEC, p, shard=Shard(0, 7)) == {"train": 0, "test": 0}
    assert summarize(p).lengths == {"train": 0, "test": 0}
    assert os.path.getsize(p) > 0
