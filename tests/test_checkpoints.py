"""Checkpoints and config.json that load safely but hold the wrong content are one line naming the file
and what is wrong, on every path that loads one: --resume, evaluate, interpolate, reproduce, Python."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import assert_one_line_error
from coordconv_data.cli import main
from coordconv_data.generate.sort_of_clevr import SortOfClevrSpec
from coordconv_data.generate.sort_of_clevr import write_file as write_soc
from coordconv_data.train import TrainError, load_checkpoint, load_run_model, resume
from coordconv_data.train.run import RunDir

TINY = ["--batch-size", "8", "--eval-samples", "4", "--width", "4", "--z-dim", "8", "-q"]


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory) -> Path:
    from click.testing import CliRunner

    d = tmp_path_factory.mktemp("ck")
    write_soc(SortOfClevrSpec(n=20, seed=5), d / "soc.h5")
    run = d / "run"
    r = CliRunner().invoke(main, ["train", "--arch", "clevr_gan", "--data", str(d / "soc.h5"), "--epochs", "1",
                                  "--out", str(run), *TINY])
    assert r.exit_code == 0, r.output
    return run


def _first_weight(ck):
    return next(k for k, v in ck["model"].items() if v.dim() > 1)


def _misshaped(ck):
    k = _first_weight(ck)
    ck["model"][k] = ck["model"][k][..., :1]


def _renamed(ck):
    k = _first_weight(ck)
    ck["model"]["elsewhere." + k] = ck["model"].pop(k)


def _nan(ck):
    k = _first_weight(ck)
    ck["model"][k] = ck["model"][k].clone().fill_(float("nan"))


def _no_epoch(ck):
    del ck["epoch"]


def _negative_epoch(ck):
    ck["epoch"] = -3


def _text_epoch(ck):
    ck["epoch"] = "one"


def _model_list(ck):
    ck["model"] = [1, 2]


def _history_dict(ck):
    ck["history"] = {"epoch": 1}


def _history_text_values(ck):
    ck["history"] = [{**r, "seconds": "slow"} for r in ck["history"]]


def _optimizer_misshaped(ck):
    state = next(iter(ck["optimizers"].values()))["state"]
    entry = state[next(iter(state))]
    entry["exp_avg"] = entry["exp_avg"].reshape(-1)[:1].clone()


def _optimizer_missing(ck):
    del ck["optimizers"]


def _optimizer_groups(ck):
    next(iter(ck["optimizers"].values()))["param_groups"] = []


def _best_epoch(ck):
    ck["best_epoch"] = 7


# (damage, where it matters: "weights" for every loader, "resume" for last.pt only; what the line says)
CHECKPOINTS = [
    (_misshaped, "weights", "do not fit clevr_gan"),
    (_renamed, "weights", "do not fit clevr_gan"),
    (_nan, "weights", "NaN or infinite"),
    (_no_epoch, "weights", "its epoch is None"),
    (_negative_epoch, "weights", "its epoch is -3"),
    (_text_epoch, "weights", "its epoch is 'one'"),
    (_model_list, "weights", "not a table of named tensors"),
    (_history_dict, "resume", "its history is not a list"),
    (_history_text_values, "resume", "its history is not a list"),
    (_optimizer_misshaped, "resume", "optimizer state 'exp_avg'"),
    (_optimizer_missing, "resume", "optimizer state is not a table"),
    (_optimizer_groups, "resume", "other parameter groups"),
    (_best_epoch, "resume", "its best_epoch is 7"),
]


def planted(gan_run: Path, tmp_path: Path, damage, names: tuple[str, ...]) -> Path:
    run = tmp_path / "run"
    shutil.copytree(gan_run, run)
    for name in names:
        ck = torch.load(gan_run / name, weights_only=True)
        damage(ck)
        torch.save(ck, run / name)
    return run


@pytest.mark.parametrize("damage,scope,fragment", CHECKPOINTS, ids=[c[0].__name__.strip("_") for c in CHECKPOINTS])
def test_a_malformed_checkpoint_is_one_line_on_every_load_path(runner, gan_run, tmp_path, damage, scope, fragment):
    run = planted(gan_run, tmp_path, damage, ("best.pt", "last.pt") if scope == "weights" else ("last.pt",))
    paths = [(["train", "--resume", str(run), "--epochs", "2", "-q"], "last.pt")]
    if scope == "weights":
        paths += [(["evaluate", str(run)], "best.pt"), (["evaluate", str(run), "--checkpoint", "last"], "last.pt"),
                  (["interpolate", str(run), "--out", str(tmp_path / "i.png")], "best.pt")]
    for command, name in paths:
        result = runner.invoke(main, command)
        assert_one_line_error(result, str(run / name), fragment)
        assert result.exit_code == 1
    assert not (tmp_path / "i.png").exists()
    with pytest.raises(TrainError, match=fragment):  # the Python loaders
        resume(run, {"epochs": 2}) if scope == "resume" else load_run_model(run)
    if scope == "resume":
        load_run_model(run)  # best.pt's weights are what evaluate needs; they are fine
    else:
        with pytest.raises(TrainError, match=fragment):
            load_checkpoint(run / "best.pt") if damage not in (_misshaped, _renamed, _nan) else load_run_model(run, "last")
    assert json.loads((run / "config.json").read_text()) == json.loads((gan_run / "config.json").read_text())


def _options_list(raw):
    raw["options"] = [1, 2]


def _epochs_text(raw):
    raw["options"]["epochs"] = "ten"


def _width_negative(raw):
    raw["options"]["hparams"]["width"] = -4


def _hparams_list(raw):
    raw["options"]["hparams"] = [4]


def _data_text(raw):
    raw["data"] = "somewhere.h5"


CONFIGS = [
    (_options_list, "its 'options' is [1, 2], not a table of options"),
    (_epochs_text, "option 'epochs' is 'ten'"),
    (_width_negative, "option width: "),
    (_hparams_list, "option 'hparams' is [4]"),
    (_data_text, "its 'data' is 'somewhere.h5'"),
]


@pytest.mark.parametrize("damage,fragment", CONFIGS, ids=[c[0].__name__.strip("_") for c in CONFIGS])
def test_a_malformed_config_is_one_line_on_every_load_path(runner, gan_run, tmp_path, damage, fragment):
    run = tmp_path / "run"
    shutil.copytree(gan_run, run)
    raw = json.loads((run / "config.json").read_text())
    damage(raw)
    (run / "config.json").write_text(json.dumps(raw))
    for command in (["train", "--resume", str(run), "--epochs", "2", "-q"], ["evaluate", str(run)],
                    ["interpolate", str(run), "--out", str(tmp_path / "i.png")]):
        result = runner.invoke(main, command)
        assert_one_line_error(result, str(run / "config.json"), fragment)
        assert result.exit_code == 1
    with pytest.raises(TrainError, match="config.json"):
        RunDir.read_only(run).options()


def test_reproduce_refuses_a_malformed_config_in_one_line(runner, tmp_path, monkeypatch):
    """reproduce reads each existing run folder's config.json before reusing or resuming it."""
    from coordconv_data.train import reproduce as rep

    out = tmp_path / "rep"
    first = rep.planned(["simple-gans"], "tiny", 1)[0][1][0][0]
    folder = out / "runs" / "tiny" / first.folder("simple-gans", 0)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"format": "coordconv_data-run-1", "options": {
        "arch": first.arch, "epochs": "ten"}}))
    (folder / "last.pt").write_bytes(b"")
    monkeypatch.setattr(rep, "_data_path", lambda out, spec, say: tmp_path / "unused.h5")
    result = runner.invoke(main, ["reproduce", "simple-gans", "--budget", "tiny", "--seeds", "1", "--out", str(out)])
    assert_one_line_error(result, str(folder / "config.json"), "option 'epochs' is 'ten'")
