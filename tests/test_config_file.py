"""coorddata train --config FILE (YAML or JSON, a run's config.json too) and --print-config."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import assert_one_line_error
from coordconv_data.cli import main
from coordconv_data.train import TrainConfig, resolve
from coordconv_data.train.configfile import printable_options, read_config_file, to_yaml

from test_train import shrink


@pytest.fixture(scope="module")
def nsc(tmp_path_factory) -> Path:
    from coordconv_data.generate.not_so_clevr import NotSoClevrSpec
    from coordconv_data.generate.not_so_clevr import write_file as write_nsc

    d = tmp_path_factory.mktemp("config")
    write_nsc(NotSoClevrSpec(split="quadrant"), d / "full.h5")
    return shrink(d / "full.h5", d / "nsc.h5", 64, 32)


def _train(runner, *args):
    return runner.invoke(main, ["train", *map(str, args)])


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]


def _options(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())["options"]


def _printed(runner, *args) -> dict:
    r = _train(runner, *args, "--print-config")
    assert r.exit_code == 0, r.output
    return yaml.safe_load(r.output)


def test_a_runs_config_json_repeats_the_run_and_varies_its_seed(runner, nsc, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    r = _train(runner, "--arch", "coordconv_classification", "--data", nsc, "--epochs", 2, "--batch-size", 8,
               "--lr", 0.002, "--mul", 1, "--seed", 5, "--out", a, "-q")
    assert r.exit_code == 0, r.output
    r = _train(runner, "--config", a / "config.json", "--out", b, "-q")
    assert r.exit_code == 0, r.output
    assert _rows(a) == _rows(b)  # the same run again: identical metrics on the CPU
    wa = torch.load(a / "last.pt", weights_only=True)["model"]
    wb = torch.load(b / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert {k: v for k, v in _options(a).items() if k != "out"} == {k: v for k, v in _options(b).items() if k != "out"}

    r = _train(runner, "--config", a / "config.json", "--seed", 3, "--epochs", 1, "--out", c, "-q")
    assert r.exit_code == 0, r.output
    oa, oc = _options(a), _options(c)
    assert oc["seed"] == 3 and oc["epochs"] == 1 and oc["out"] == str(c)
    assert {k: v for k, v in oa.items() if k not in ("seed", "epochs", "out")} == \
           {k: v for k, v in oc.items() if k not in ("seed", "epochs", "out")}
    assert _rows(c)[0] != _rows(a)[0]  # another seed, another run


def test_yaml_file_with_command_line_overrides(runner, nsc, tmp_path):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(f"# my experiment\narch: coordconv_regressor\ndata: {nsc}\nepochs: 7\nlr: 1e-3\nbatch-size: 32\n"
                   "l2: 0\nlr_policy: step\nhparams:\n  with_r: yes\n")
    shown = _printed(runner, "--config", cfg, "--epochs", 2, "--l2", 0.5)
    assert shown["arch"] == "coordconv_regressor" and shown["data"] == str(nsc)
    assert shown["epochs"] == 2 and shown["l2"] == 0.5  # the command line wins
    assert shown["lr"] == 0.001 and isinstance(shown["lr"], float)  # YAML 1.1 reads 1e-3 as text: converted
    assert shown["batch_size"] == 32 and shown["lr_policy"] == "step" and shown["hparams"] == {"with_r": True}
    # The printed file is a config file: training from it is the run it describes.
    printed = tmp_path / "printed.yaml"
    printed.write_text(_train(runner, "--config", cfg, "--epochs", 1, "--print-config").output)
    r = _train(runner, "--config", printed, "--out", tmp_path / "run", "-q")
    assert r.exit_code == 0, r.output
    options = _options(tmp_path / "run")
    assert options["epochs"] == 1 and options["lr"] == 0.001 and options["hparams"] == {"with_r": True}
    assert options["lr_policy"] == "step" and options["data"] == str(nsc)


def test_print_config_is_the_arch_recipe_as_yaml(runner):
    shown = _printed(runner, "--arch", "coordconv_regressor")
    assert shown == printable_options(resolve(TrainConfig(arch="coordconv_regressor")))
    assert shown["lr"] == 0.001 and shown["batch_size"] == 256 and shown["epochs"] == 100
    assert shown["l2"] == 1e-05 and isinstance(shown["l2"], float)  # written 1.0e-05: a number to every YAML reader
    assert shown["data"] is None and shown["out"] is None and shown["logger"] == "csv"
    assert "lr2" not in shown and "interm_loss" not in shown  # options the arch does not take
    gan = _printed(runner, "--arch", "clevr_gan", "--width", 8, "--image-size", 32)
    assert gan["hparams"] == {"z_dim": 256, "width": 8, "size": 32} and gan["lr2"] == 0.0005


@pytest.mark.parametrize("text,fragments", [
    ("arch: coordconv_regressor\nlrr: 0.1\n", ("--config", "unknown key 'lrr'", "did you mean lr")),
    ("arch: coordconv_regressor\nbanana: 1\n", ("--config", "unknown key 'banana'", "known:", "batch_size")),
    ("arch: coordconv_regressor\nepochs: ten\n", ("--config", "epochs must be a whole number", "'ten'")),
    ("arch: coordconv_regressor\nopt: rmsprop\n", ("--config", "opt must be one of adam, sgd")),
    ("arch: coordconv_regressor\nhparams: 3\n", ("--config", "hparams must be a mapping")),
    ("- arch\n- epochs\n", ("--config", "must hold a mapping")),
    ("arch: [unclosed\n", ("--config", "not valid YAML", "line")),
    ("arch: coordconv_regressor\nhparams:\n  mull: 2\n", ("coordconv_regressor does not take mull",)),
])
def test_config_mistakes_are_one_line(runner, tmp_path, text, fragments):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    r = _train(runner, "--config", cfg)
    assert r.exit_code == 2, r.output
    assert_one_line_error(r, *fragments)
    assert not (tmp_path / "runs").exists()


def test_config_refusals(runner, tmp_path):
    assert_one_line_error(_train(runner, "--config", tmp_path / "nope.yaml"), "nope.yaml", "no such file")
    (tmp_path / "c.json").write_text('{"arch": "coordconv_regressor",}')
    assert_one_line_error(_train(runner, "--config", tmp_path / "c.json"), "c.json", "not valid JSON")
    (tmp_path / "empty.yaml").write_text("")
    assert_one_line_error(_train(runner, "--config", tmp_path / "empty.yaml"), "--arch")
    assert_one_line_error(_train(runner, "--resume", tmp_path, "--config", tmp_path / "c.json"), "--config", "new run")


def test_json_needs_no_yaml_parser(runner, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if PyYAML were not installed
    (tmp_path / "c.json").write_text(json.dumps({"arch": "coordconv_rendering", "epochs": 3, "hparams": {"mul": 2}}))
    r = _train(runner, "--config", tmp_path / "c.json", "--print-config")
    assert r.exit_code == 0, r.output
    assert "epochs: 3\n" in r.output and "  mul: 2\n" in r.output
    (tmp_path / "c.yaml").write_text("arch: coordconv_rendering\n")
    assert_one_line_error(_train(runner, "--config", tmp_path / "c.yaml"), "PyYAML", "JSON")


def test_the_yaml_writer_round_trips_values(tmp_path):
    options = {"arch": "x", "data": "/a b/c.h5", "lr": 1e-05, "l2": 0.0, "ratio": 2.5e20, "flag": False, "n": 3,
               "word": "yes", "num": "12", "none": None, "hparams": {"z_dim": 10, "init": "study"}}
    text = to_yaml(options, comments={"data": "a file"}, header="made by a test")
    assert yaml.safe_load(text) == options
    p = tmp_path / "c.yaml"
    p.write_text(to_yaml({"arch": "coordconv_regressor", "lr": 1e-05, "seed": 2**63 - 1, "with_r": True}))
    assert read_config_file(p) == {"arch": "coordconv_regressor", "lr": 1e-05, "seed": 2**63 - 1,
                                   "hparams": {"with_r": True}}
