"""coorddata export: Parquet (Hugging Face datasets) and WebDataset folders with a dataset card and SHA256SUMS,
round trips exact for every kind through datasets and webdataset, --verify naming a corrupted file."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import assert_one_line_error
from coordconv_data.cli import main
from coordconv_data.export import hash_file
from coordconv_data.kinds import KINDS, get_kind
from coordconv_data.store import read_split, summarize

KIND_NAMES = sorted(KINDS)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A small native file of every kind, made by its own command (so its card's command must remake it)."""
    from click.testing import CliRunner

    d = tmp_path_factory.mktemp("export")
    commands = {"not-so-clevr": ["not-so-clevr", "--split", "uniform", "--out", str(d / "nsc.h5")],
                "sort-of-clevr": ["sort-of-clevr", "--n", "60", "--seed", "5", "--out", str(d / "soc.h5")],
                "lanes": ["lanes", "--n", "12", "--test-n", "5", "--size", "32", "--seed", "3", "--out", str(d / "lanes.h5")]}
    out = {}
    for kind, args in commands.items():
        r = CliRunner().invoke(main, [*args, "-q", "--workers", "1"] if kind != "not-so-clevr" else [*args, "-q"])
        assert r.exit_code == 0, r.output
        out[kind] = Path(args[args.index("--out") + 1])
    return out


def _export(runner, file: Path, out: Path, fmt: str, *extra: str):
    return runner.invoke(main, ["export", str(file), "--format", fmt, "--out", str(out), *extra])


def _expected(file: Path) -> dict[str, dict[str, np.ndarray]]:
    """Each split's fields as the kind's columns name them, read from the HDF5 file."""
    summary = summarize(file)
    columns = get_kind(summary.kind).columns(summary.attrs)
    out = {}
    for split in summary.splits:
        arrays = read_split(file, split)
        out[split] = {c.name: (arrays[c.array][..., 0] if c.image and arrays[c.array].ndim == 4
                               and arrays[c.array].shape[-1] == 1 else arrays[c.array]) for c in columns}
    return out


def _card(folder: Path) -> tuple[dict, str]:
    text = (folder / "README.md").read_text()
    _, header, body = text.split("---\n", 2)
    return yaml.safe_load(header), body


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_parquet_round_trip_through_datasets(runner, files, tmp_path, kind):
    datasets = pytest.importorskip("datasets")
    cache = str(tmp_path / "cache")  # datasets' cache, kept in the test's folder
    out = tmp_path / "pq"
    r = _export(runner, files[kind], out, "parquet")
    assert r.exit_code == 0, r.output
    assert f"wrote {out}: parquet" in r.output
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "SHA256SUMS", "test", "train"]
    expected = _expected(files[kind])
    data = datasets.load_dataset("parquet", data_dir=str(out), cache_dir=cache)
    assert sorted(data) == sorted(expected)
    columns = get_kind(kind).columns(summarize(files[kind]).attrs)
    for split, want in expected.items():
        ds = data[split]
        assert ds.num_rows == len(next(iter(want.values())))
        for c in columns:  # the right features: images as Image, class ids as ClassLabel with their names
            feature = ds.features[c.name]
            if c.image:
                assert isinstance(feature, datasets.Image)
            elif c.names:
                assert feature.feature.names == list(c.names)
        rows = ds.with_format("python")
        for c in columns:  # exact: every pixel and every number
            values = rows[c.name]
            got = np.stack([np.asarray(im) for im in values]) if c.image else np.asarray(values)
            assert got.shape == want[c.name].shape, c.name
            assert np.array_equal(got, want[c.name]), (split, c.name)
            leaf = ds.features[c.name]
            while hasattr(leaf, "feature"):
                leaf = leaf.feature
            if not c.image and not c.names:  # typed as the file's array
                assert leaf.dtype == want[c.name].dtype.name, c.name
    # The card's YAML header describes the same features and splits for the Hub, and loading the folder
    # by its card (configs) gives the same dataset.
    header, _ = _card(out)
    info = datasets.DatasetInfo._from_yaml_dict(dict(header["dataset_info"]))
    assert info.features == data["train"].features
    assert {s.name: s.num_examples for s in info.splits.values()} == {s: d.num_rows for s, d in data.items()}
    by_card = datasets.load_dataset(str(out), cache_dir=cache)
    assert by_card["train"].features == data["train"].features and sorted(by_card) == sorted(data)
    assert [c["path"] for c in header["configs"][0]["data_files"]] == [f"{s}/*.parquet" for s in ("train", "test")]


def png(key: str, data: bytes):
    """The WebDataset decoder the dataset card gives: PNGs as arrays, grey ones kept grey."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data))) if key.endswith("png") else None


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_webdataset_round_trip(runner, files, tmp_path, kind):
    wds = pytest.importorskip("webdataset")
    out = tmp_path / "wds"
    r = _export(runner, files[kind], out, "webdataset", "--workers", "2")
    assert r.exit_code == 0, r.output
    expected = _expected(files[kind])
    columns = get_kind(kind).columns(summarize(files[kind]).attrs)
    images = [c for c in columns if c.image]
    for split, want in expected.items():
        shards = sorted(str(p) for p in (out / split).glob("shard-*.tar"))
        samples = list(wds.WebDataset(shards, shardshuffle=False).decode(png))
        n = len(next(iter(want.values())))
        assert [s["__key__"] for s in samples] == [f"{i:06d}" for i in range(n)]
        for c in columns:
            if c.image:
                ext = "png" if c is images[0] else f"{c.name}.png"
                got = np.stack([np.asarray(s[ext]) for s in samples])
            else:
                got = np.asarray([s["json"][c.name] for s in samples])
            assert np.array_equal(got, want[c.name]), (split, c.name)
            assert got.shape == want[c.name].shape
    if kind == "lanes":
        with tarfile.open(shards[0]) as tar:
            assert tar.getnames()[:3] == ["000000.png", "000000.mask.png", "000000.json"]
    header, body = _card(out)
    assert [c["path"] for c in header["configs"][0]["data_files"]] == [f"{s}/*.tar" for s in ("train", "test")]
    assert "NNNNNN.json" in body


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_the_card_remakes_the_file_byte_for_byte(runner, files, tmp_path, kind, monkeypatch):
    out = tmp_path / "card"
    assert _export(runner, files[kind], out, "webdataset").exit_code == 0
    header, body = _card(out)
    assert header["license"] == "mit" and header["size_categories"]
    assert "1807.03247" in body and "An Intriguing Failing of Convolutional Neural Networks" in body
    assert ("github.com/pskugit/custom-conv2d" in body) == (kind == "lanes")
    summary = summarize(files[kind])
    for key, value in get_kind(kind).display_params(summary.params).items():  # the generation parameters
        assert f"| `{key}` | `{json.dumps(value)}` |" in body
    # The card's command, run in an empty folder, writes the file again with the SHA-256 the card states.
    command = re.search(r"^\$ (coorddata (?:not-so-clevr|sort-of-clevr|lanes) .*)$", body, re.M).group(1)
    digest = re.search(r"^([0-9a-f]{64})  ", body, re.M).group(1)
    assert digest == hash_file(files[kind])
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    monkeypatch.chdir(fresh)
    r = runner.invoke(main, shlex.split(command)[1:] + ["-q"])
    assert r.exit_code == 0, r.output
    assert hash_file(fresh / files[kind].name) == digest


def test_the_same_file_exports_to_the_same_bytes(runner, files, tmp_path):
    pytest.importorskip("pyarrow")
    for fmt in ("parquet", "webdataset"):
        assert _export(runner, files["lanes"], tmp_path / f"a-{fmt}", fmt, "--workers", "1").exit_code == 0
        assert _export(runner, files["lanes"], tmp_path / f"b-{fmt}", fmt, "--workers", "2").exit_code == 0
        assert (tmp_path / f"a-{fmt}" / "SHA256SUMS").read_text() == (tmp_path / f"b-{fmt}" / "SHA256SUMS").read_text()


@pytest.mark.parametrize("fmt", ["parquet", "webdataset"])
def test_verify_names_a_corrupted_missing_or_unlisted_file(runner, files, tmp_path, fmt):
    pytest.importorskip("pyarrow")
    out = tmp_path / "x"
    assert _export(runner, files["sort-of-clevr"], out, fmt).exit_code == 0
    r = runner.invoke(main, ["export", "--verify", str(out)])
    assert r.exit_code == 0 and "all 3 files" in r.output and "match SHA256SUMS" in r.output, r.output
    manifest = (out / "SHA256SUMS").read_text()
    assert len(manifest.splitlines()) == 3 and "README.md" in manifest
    data = next((out / "train").iterdir())
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # one bit
    data.write_bytes(bytes(raw))
    r = runner.invoke(main, ["export", "--verify", str(out)])
    assert r.exit_code == 1
    assert_one_line_error(r, str(data), "corrupt", "SHA256SUMS")
    data.unlink()
    assert_one_line_error(runner.invoke(main, ["export", "--verify", str(out)]), str(data), "missing")
    data.write_bytes(bytes(raw))
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))  # repaired
    assert runner.invoke(main, ["export", "--verify", str(out)]).exit_code == 0
    (out / "test" / "notes.txt").write_text("mine")
    assert_one_line_error(runner.invoke(main, ["export", "--verify", str(out)]), "notes.txt", "not listed")
    assert_one_line_error(runner.invoke(main, ["export", "--verify", str(tmp_path)]), "no SHA256SUMS")


def test_export_refusals(runner, files, tmp_path, monkeypatch):
    out = tmp_path / "w"
    assert _export(runner, files["lanes"], out, "webdataset").exit_code == 0
    before = (out / "SHA256SUMS").read_text()
    r = _export(runner, files["lanes"], out, "webdataset")
    assert r.exit_code == 2
    assert_one_line_error(r, "--out", "already exists", "--force")
    r = _export(runner, files["sort-of-clevr"], out, "webdataset", "--force")  # an earlier export is replaced
    assert r.exit_code == 0, r.output
    assert (out / "SHA256SUMS").read_text() != before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("do not lose")
    assert_one_line_error(_export(runner, files["lanes"], mine, "webdataset", "--force"), "--out", "not an export")
    assert (mine / "thesis.tex").read_text() == "do not lose"
    assert_one_line_error(_export(runner, tmp_path / "none.h5", tmp_path / "o", "webdataset"), "none.h5")
    assert_one_line_error(runner.invoke(main, ["export"]), "FILE")
    assert_one_line_error(runner.invoke(main, ["export", str(files["lanes"]), "--verify", str(out)]), "--verify")
    original = tmp_path / "orig.h5"
    assert runner.invoke(main, ["sort-of-clevr", "--n", "20", "--layout", "original", "--out", str(original),
                                "-q"]).exit_code == 0
    assert_one_line_error(_export(runner, original, tmp_path / "o", "webdataset"), "original layout", "--layout")
    assert not (tmp_path / "o").exists()
    # Without pyarrow: Parquet is refused in one line, WebDataset still works.
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    r = _export(runner, files["lanes"], tmp_path / "p", "parquet")
    assert r.exit_code == 1
    assert_one_line_error(r, "pyarrow", "coordconv_data[export]", "--format webdataset")
    assert _export(runner, files["lanes"], tmp_path / "p", "webdataset").exit_code == 0


def test_an_interrupted_export_leaves_nothing(runner, files, tmp_path, monkeypatch):
    import coordconv_data.export as ex

    calls = {"n": 0}
    real = ex._encode_png

    def encode(image, level=ex.PNG_LEVEL):
        calls["n"] += 1
        if calls["n"] == 30:
            raise KeyboardInterrupt
        return real(image, level)

    monkeypatch.setattr(ex, "_encode_png", encode)
    parent = tmp_path / "new" / "deeper"
    r = _export(runner, files["sort-of-clevr"], parent / "e", "webdataset", "--workers", "1")
    assert r.exit_code == 130, r.output
    assert not (tmp_path / "new").exists()  # the folders it made are gone too
    # A temporary folder of an export that was killed outright is removed by the next export beside it.
    monkeypatch.setattr(ex, "_encode_png", real)
    stale = tmp_path / ".e.export-999999-dead.tmp"
    (stale / "train").mkdir(parents=True)
    assert _export(runner, files["sort-of-clevr"], tmp_path / "e", "webdataset").exit_code == 0
    assert not stale.exists()
    assert sorted(os.listdir(tmp_path)) == ["e"]
