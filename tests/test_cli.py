"""The coorddata command line, as a user meets it."""

import json
import os
import re
import subprocess
import sys

import cv2
import h5py
import numpy as np
import pytest

from conftest import assert_one_line_error
from coordconv_data import __version__
from coordconv_data.cli import main
from coordconv_data.store import read_split


def all_commands(group=main, prefix=()):
    for name, cmd in group.commands.items():
        yield prefix + (name,), cmd
        if hasattr(cmd, "commands"):
            yield from all_commands(cmd, prefix + (name,))


@pytest.mark.parametrize("path,cmd", list(all_commands()), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_command_has_help(runner, path, cmd):
    assert cmd.help and len(cmd.help.strip()) > 20
    result = runner.invoke(main, [*path, "--help"])
    assert result.exit_code == 0
    assert "Usage: " in result.output
    for param in cmd.params:
        if param.param_type_name == "option" and not getattr(param, "hidden", False):
            assert param.help, f"{' '.join(path)} {param.opts} has no help text"


def test_version(runner):
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_python_dash_m_and_help_without_torch():
    code = (
        "import sys, runpy; sys.argv = ['coorddata', '--help'];\n"
        "try:\n runpy.run_module('coordconv_data', run_name='__main__')\n"
        "except SystemExit as e:\n assert e.code in (0, None)\n"
        "assert 'torch' not in sys.modules, 'coorddata --help imported torch'\n"
        "print('OK')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage: coorddata" in out.stdout and out.stdout.strip().endswith("OK")


def test_not_so_clevr_both_default_names(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["not-so-clevr"])
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(".")) == ["not_so_clevr_quadrant.h5", "not_so_clevr_uniform.h5"]
    assert "train 2407, test 729" in result.output
    result = runner.invoke(main, ["not-so-clevr", "--split", "quadrant", "--quiet", "--force"])
    assert result.exit_code == 0 and result.output == ""


def test_not_so_clevr_out_file_and_folder(runner, tmp_path):
    result = runner.invoke(main, ["not-so-clevr", "--split", "uniform", "--out", str(tmp_path / "u.h5"), "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "u.h5").exists()
    (tmp_path / "both").mkdir()
    result = runner.invoke(main, ["not-so-clevr", "--out", str(tmp_path / "both"), "-q"])
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path / "both")) == ["not_so_clevr_quadrant.h5", "not_so_clevr_uniform.h5"]


def test_original_layout_from_cli(runner, tmp_path):
    out = tmp_path / "rectangle_4_quadrant.h5"
    result = runner.invoke(main, ["not-so-clevr", "--split", "quadrant", "--layout", "original", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with h5py.File(out) as f:
        assert f["val_image"].shape == (729, 64, 64, 3) and f["val_image"].dtype == np.float64
        assert f["train_locations"].dtype == np.int64


def test_seed_option(runner, tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    runner.invoke(main, ["not-so-clevr", "--split", "uniform", "--out", str(a), "--seed", "1"])
    runner.invoke(main, ["not-so-clevr", "--split", "uniform", "--out", str(b), "--seed", "1"])
    assert a.read_bytes() == b.read_bytes()
    assert json.loads(runner.invoke(main, ["info", str(a), "--json"]).output)["seed"] == 1


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["not-so-clevr", "--split", "diagonal"], ["'diagonal' is not one of", "uniform"]),
        (["not-so-clevr", "--layout", "tf"], ["--layout"]),
        (["not-so-clevr", "--seed", "-1"], ["--seed"]),
        (["info", "missing.h5"], ["missing.h5: no such file"]),
        (["preview", "missing.h5"], ["missing.h5: no such file"]),
        (["preview", "data.h5", "--n", "0"], ["--n"]),
    ],
)
def test_bad_input_is_one_clear_line(runner, tmp_path, monkeypatch, args, fragments):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(runner.invoke(main, args), *fragments)


def test_existing_output_needs_force_and_is_untouched(runner, tmp_path):
    p = tmp_path / "q.h5"
    p.write_bytes(b"keep me")
    result = runner.invoke(main, ["not-so-clevr", "--split", "quadrant", "--out", str(p)])
    assert_one_line_error(result, "already exists", "--force")
    assert p.read_bytes() == b"keep me"
    # With both splits, one existing file stops the run before the other is written.
    (tmp_path / "not_so_clevr_quadrant.h5").write_bytes(b"keep me too")
    result = runner.invoke(main, ["not-so-clevr", "--out", str(tmp_path)])
    assert_one_line_error(result, "not_so_clevr_quadrant.h5 already exists")
    assert not (tmp_path / "not_so_clevr_uniform.h5").exists()


def test_out_makes_missing_folders_and_refuses_unwritable_ones(runner, tmp_path):
    result = runner.invoke(main, ["not-so-clevr", "--split", "uniform", "--out", str(tmp_path / "no" / "u.h5"), "-q"])
    assert result.exit_code == 0 and (tmp_path / "no" / "u.h5").exists()
    result = runner.invoke(main, ["not-so-clevr", "--out", str(tmp_path / "new" / "folder"), "-q"])
    assert result.exit_code == 0
    assert sorted(os.listdir(tmp_path / "new" / "folder")) == ["not_so_clevr_quadrant.h5", "not_so_clevr_uniform.h5"]
    # one split into a folder named with a trailing slash
    result = runner.invoke(main, ["not-so-clevr", "--split", "quadrant", "--out", str(tmp_path / "q") + "/", "-q"])
    assert result.exit_code == 0 and (tmp_path / "q" / "not_so_clevr_quadrant.h5").exists()
    for args in (["lanes", "--n", "2", "--size", "32", "--workers", "1"], ["sort-of-clevr", "--n", "3", "--workers", "1"]):
        out = tmp_path / "deep" / args[0] / "x.h5"
        assert runner.invoke(main, [*args, "--out", str(out), "-q"]).exit_code == 0 and out.exists()
    assert runner.invoke(main, ["preview", str(out), "--out", str(tmp_path / "pics" / "p.png"), "-q"]).exit_code == 0
    assert (tmp_path / "pics" / "p.png").exists()
    # a failed run leaves no folder it made
    bad = tmp_path / "never" / "made" / "x.h5"
    assert_one_line_error(runner.invoke(main, ["sort-of-clevr", "--objects", "6", "--min-distance", "30",
                                               "--out", str(bad)]), "cannot place")
    assert not (tmp_path / "never").exists()
    (tmp_path / "afile").write_text("x")
    assert_one_line_error(runner.invoke(main, ["lanes", "--out", str(tmp_path / "afile" / "x.h5")]), "afile is a file")
    assert_one_line_error(runner.invoke(main, ["not-so-clevr", "--out", str(tmp_path / "x.h5")]), "give a folder")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        # root ignores permission bits; /proc refuses new files even to root
        target = locked if os.geteuid() != 0 else "/proc"
        result = runner.invoke(main, ["not-so-clevr", "--split", "uniform", "--out", f"{target}/u.h5"])
        assert_one_line_error(result)
        assert "writ" in result.output
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("command", ["info", "preview"])
def test_info_and_preview_reject_non_data_files(runner, tmp_path, command):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    assert_one_line_error(runner.invoke(main, [command, str(text)]), "not an HDF5 file")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.arange(3)
    assert_one_line_error(runner.invoke(main, [command, str(other)]), "not a coordconv_data dataset")
    alien = tmp_path / "alien.h5"
    with h5py.File(alien, "w") as f:
        f.attrs["dataset"] = "imagenet"
    assert_one_line_error(runner.invoke(main, [command, str(alien)]), "'imagenet'")


@pytest.fixture(scope="module")
def quadrant_file(tmp_path_factory):
    from click.testing import CliRunner

    p = tmp_path_factory.mktemp("cli") / "q.h5"
    assert CliRunner().invoke(main, ["not-so-clevr", "--split", "quadrant", "--out", str(p)]).exit_code == 0
    return p


def test_info_text_and_json(runner, quadrant_file):
    text = runner.invoke(main, ["info", str(quadrant_file)])
    assert text.exit_code == 0
    for fragment in ("not-so-clevr", "train 2407, test 729", "train/images", "gzip", "chunks 64x64x64x1"):
        assert fragment in text.output
    d = json.loads(runner.invoke(main, ["info", str(quadrant_file), "--json"]).output)
    assert d["dataset"] == "not-so-clevr" and d["splits"] == {"train": 2407, "test": 729}
    assert d["params"]["split"] == "quadrant"
    arrays = {a["name"]: a for a in d["arrays"]}
    assert arrays["train/images"]["shape"] == [2407, 64, 64, 1]
    assert arrays["train/images"]["chunks"][0] > 1 and arrays["train/images"]["compression"] == "gzip"
    assert d["statistics"]["test"]["x_range"] == [33, 59]
    assert d["file_bytes"] == quadrant_file.stat().st_size


def test_info_reads_original_layout_and_original_script_files(runner, tmp_path):
    ours = tmp_path / "o.h5"
    runner.invoke(main, ["not-so-clevr", "--split", "uniform", "--layout", "original", "--out", str(ours)])
    d = json.loads(runner.invoke(main, ["info", str(ours), "--json"]).output)
    assert d["layout"] == "original" and d["splits"] == {"train": 2368, "test": 768}
    # A file as the original script wrote it: the same keys, no attributes at all.
    bare = tmp_path / "rectangle_4_uniform.h5"
    with h5py.File(ours) as src, h5py.File(bare, "w") as dst:
        for k in src:
            dst[k] = src[k][:10] if k.startswith("val") else src[k][:20]
    d = json.loads(runner.invoke(main, ["info", str(bare), "--json"]).output)
    assert d["dataset"] == "not-so-clevr" and d["layout"] == "original" and d["splits"] == {"train": 20, "test": 10}


def test_preview_draws_the_samples_with_centres(runner, quadrant_file, tmp_path):
    out = tmp_path / "grid.png"
    result = runner.invoke(main, ["preview", str(quadrant_file), "--out", str(out), "--split", "test", "--n", "4"])
    assert result.exit_code == 0, result.output
    img = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    scale, gap = 4, 4
    assert img.shape == (2 * 256 + 3 * gap, 2 * 256 + 3 * gap, 3)
    locs = read_split(quadrant_file, "test", stop=4)["locations"]
    for i, (x, y) in enumerate(locs):
        r, c = divmod(i, 2)
        oy, ox = gap + r * (256 + gap), gap + c * (256 + gap)
        centre = img[oy + y * scale + 1, ox + x * scale + 1]
        assert tuple(centre) == (255, 64, 64)  # the centre mark
        assert tuple(img[oy + (y + 3) * scale + 1, ox + (x + 3) * scale + 1]) == (255, 255, 255)  # the square
        assert tuple(img[oy + (y + 6) * scale + 1, ox + (x - 6) * scale + 1]) == (0, 0, 0)  # background
    # refuses to overwrite without --force
    assert_one_line_error(runner.invoke(main, ["preview", str(quadrant_file), "--out", str(out)]), "--force")
    assert runner.invoke(main, ["preview", str(quadrant_file), "--out", str(out), "--force"]).exit_code == 0


def test_info_shows_only_the_parameters_that_apply(runner, quadrant_file, tmp_path):
    d = json.loads(runner.invoke(main, ["info", str(quadrant_file), "--json"]).output)
    assert d["params"]["split"] == "quadrant" and "seed" not in d["params"] and "test_fraction" not in d["params"]
    assert d["seed"] is None
    text = runner.invoke(main, ["info", str(quadrant_file)]).output
    assert not re.search(r"\bseed\b", text) and "KiB" in text and " MB" not in text
    u = tmp_path / "u.h5"
    runner.invoke(main, ["not-so-clevr", "--split", "uniform", "--out", str(u), "-q"])
    d = json.loads(runner.invoke(main, ["info", str(u), "--json"]).output)
    assert d["params"]["seed"] == 20202 and d["params"]["test_fraction"] == 0.25 and d["seed"] == 20202


@pytest.mark.parametrize("ext,magic", [(".png", b"\x89PNG"), (".jpg", b"\xff\xd8\xff"), (".bmp", b"BM"),
                                       (".tiff", b"II*\x00")])
def test_preview_writes_the_format_its_extension_names(runner, quadrant_file, tmp_path, ext, magic):
    out = tmp_path / f"grid{ext}"
    assert runner.invoke(main, ["preview", str(quadrant_file), "--out", str(out), "--n", "2"]).exit_code == 0
    assert out.read_bytes()[: len(magic)] == magic


@pytest.mark.parametrize("name", ["grid.gif", "grid", "grid.h5"])
def test_preview_refuses_formats_it_cannot_write(runner, quadrant_file, tmp_path, name):
    result = runner.invoke(main, ["preview", str(quadrant_file), "--out", str(tmp_path / name)])
    assert_one_line_error(result, "--out", ".png")
    assert result.exit_code == 2 and os.listdir(tmp_path) == []


def test_lanes_preview_has_outlines_and_a_legend(runner, tmp_path):
    from coordconv_data.kinds import LANES

    data = tmp_path / "l.h5"
    assert runner.invoke(main, ["lanes", "--n", "4", "--size", "64", "--out", str(data), "--workers", "1",
                                "-q"]).exit_code == 0
    out = tmp_path / "p.png"
    assert runner.invoke(main, ["preview", str(data), "--out", str(out), "--n", "4", "-q"]).exit_code == 0
    img = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    tiles_h = 2 * 256 + 3 * 4
    assert img.shape[0] > tiles_h  # the legend strip below the grid
    legend = img[tiles_h:]
    for color in LANES.class_colors[1:]:
        assert (legend == color).all(-1).sum() >= 100, color  # each class's swatch
    masks = read_split(data, "train", stop=4)["masks"]
    assert set(np.unique(masks)) <= {0, 1, 2, 3}
