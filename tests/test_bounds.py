"""Sizes have bounds checked before anything is allocated, and the Python API's misuses are the right
exception with a clear message."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import assert_one_line_error
from coordconv_data import CoordBiasConv2d, CoordConv2d, NotSoClevr, create_model, list_models
from coordconv_data.cli import main
from coordconv_data.errors import InvalidParameter
from coordconv_data.generate.lanes import MAX_SCALE, LanesSpec
from coordconv_data.generate.not_so_clevr import NotSoClevrSpec
from coordconv_data.generate.not_so_clevr import write_file as write_nsc
from coordconv_data.kinds import LANES, NOT_SO_CLEVR
from coordconv_data.models import HyperparameterError, TiledCoordConv2d
from coordconv_data.models.registry import parameter_count

# -- sizes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args,option", [
    (["--arch", "clevr_gan", "--width", "1000000"], "--width"),
    (["--arch", "coordconv_classification", "--mul", "1000000"], "--mul"),
    (["--arch", "simple_gan", "--z-dim", "1000000000"], "--z-dim"),
    (["--arch", "clevr_gan", "--image-size", "16384"], "--image-size"),
])
def test_a_model_too_large_for_this_machine_is_refused_before_anything_is_allocated(runner, tmp_path, args, option):
    result = runner.invoke(main, ["train", *args, "--data", str(tmp_path / "none.h5"), "--out", str(tmp_path / "r")])
    assert_one_line_error(result, option, "numbers, about", "this machine's memory is")
    assert result.exit_code == 2 and not (tmp_path / "r").exists()


def test_create_model_counts_before_it_builds():
    with pytest.raises(HyperparameterError, match=r"width 1000000 makes .* as float32; this machine's memory is") as e:
        create_model("clevr_gan", width=10**6)  # 2e15 numbers: never allocated (it would be a RuntimeError)
    assert e.value.field == "width"
    assert parameter_count("clevr_gan", width=10**6) > 10**15  # counted on the meta device
    assert parameter_count("clevr_gan") == sum(p.numel() for p in create_model("clevr_gan").parameters()) + sum(
        b.numel() for b in create_model("clevr_gan").buffers())


def test_training_needs_room_for_gradients_and_optimizer_state(runner, tmp_path, monkeypatch):
    """A model whose weights fit but whose training (4 copies with Adam) does not is refused too."""
    from coordconv_data import resources

    weights = parameter_count("deconv_classification", mul=2, fs=3) * 4
    monkeypatch.setattr(resources, "memory_bytes", lambda: weights * 3)
    result = runner.invoke(main, ["train", "--arch", "deconv_classification", "--data", str(tmp_path / "none.h5"),
                                  "--out", str(tmp_path / "r")])
    assert_one_line_error(result, "to train with adam (weights, gradients and Adam's two moments)",
                          "this machine's memory is")
    assert result.exit_code == 2


@pytest.mark.parametrize("args,fragments", [
    (["train", "--arch", "deconv_classification", "--fs", "1000"], ("--fs", "1..64", "no kernel wider than the canvas")),
    (["lanes", "--scale", "1e300"], ("--scale", f"at most {MAX_SCALE}")),
])
def test_options_have_bounds(runner, tmp_path, args, fragments):
    result = runner.invoke(main, [*args, "--out", str(tmp_path / "x")])
    assert_one_line_error(result, *fragments)
    assert result.exit_code == 2 and not (tmp_path / "x").exists()


def test_the_largest_noise_cell_still_generates():
    spec = LanesSpec(n=2, test_n=0, size=32, scale=MAX_SCALE)
    assert LANES.generator.generate(spec, "train")["images"].shape == (2, 32, 32, 3)
    with pytest.raises(InvalidParameter, match="scale"):
        LanesSpec(scale=MAX_SCALE * 2.0)


# -- the Python API ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    p = tmp_path_factory.mktemp("nsc") / "q.h5"
    write_nsc(NotSoClevrSpec(split="quadrant"), p)
    return NotSoClevr(p, "test", generate=False)


def test_dataset_indices_are_integers_in_range(dataset):
    n = len(dataset)
    assert torch.equal(dataset[np.int64(3)][0], dataset[3][0]) and torch.equal(dataset[-1][0], dataset[n - 1][0])
    assert torch.equal(dataset[torch.tensor(5)][0], dataset[5][0])
    for bad in (1.5, "1", None, True, np.float64(2.0), torch.tensor(1.0)):
        with pytest.raises(TypeError, match="NotSoClevr indices must be integers"):
            dataset[bad]
    for bad in (10**20, n, -n - 1, -(10**20)):
        with pytest.raises(IndexError, match=f"out of range for NotSoClevr of {n} samples"):
            dataset[bad]
    with pytest.raises(IndexError):
        dataset.__getitems__([0, 10**20])
    with pytest.raises(TypeError):
        dataset.__getitems__([0, 1.5])
    assert len(dataset.__getitems__(np.array([0, 1, -1]))) == 3
    assert sum(1 for _ in dataset) == n  # iteration by index ends at the IndexError


def test_unknown_tasks_and_datasets_are_errors():
    with pytest.raises(ValueError, match="task must be one of classification, .*, got 'bogus'"):
        list_models(task="bogus")
    with pytest.raises(ValueError, match="dataset must be one of"):
        list_models(dataset="mnist")
    with pytest.raises(TypeError, match="pattern must be a string"):
        list_models(3)
    assert list_models(task="gan") and list_models("fcn_*", dataset="lanes")


@pytest.mark.parametrize("make,error,fragment", [
    (lambda: CoordConv2d(-1, 4, 3), ValueError, "in_channels must be at least 1, got -1"),
    (lambda: CoordConv2d(0, 4, 3), ValueError, "in_channels must be at least 1, got 0"),
    (lambda: CoordConv2d(2, 0, 3), ValueError, "out_channels must be at least 1, got 0"),
    (lambda: CoordConv2d(2.5, 4, 3), TypeError, "in_channels must be an integer"),
    (lambda: CoordConv2d(True, 4, 3), TypeError, "in_channels must be an integer"),
    (lambda: CoordBiasConv2d(-1, 4, 3), ValueError, "in_channels must be at least 1"),
    (lambda: TiledCoordConv2d(2, -4, 8), ValueError, "out_channels must be at least 1"),
])
def test_layers_refuse_impossible_channel_counts(make, error, fragment):
    with pytest.raises(error, match=fragment):
        make()
    assert CoordConv2d(1, 4, 3)(torch.zeros(1, 1, 8, 8)).shape == (1, 4, 6, 6)


def test_spec_from_params_names_an_unknown_parameter():
    params = NotSoClevrSpec(split="uniform").params()
    assert NOT_SO_CLEVR.spec_from_params(params) == NotSoClevrSpec(split="uniform")
    assert NOT_SO_CLEVR.spec_from_params({"split": "quadrant"}) == NotSoClevrSpec(split="quadrant")  # defaults fill in
    with pytest.raises(InvalidParameter, match="params has 'colour', which a not-so-clevr spec does not take") as e:
        NOT_SO_CLEVR.spec_from_params({**params, "colour": "red"})
    assert e.value.field == "colour"
    with pytest.raises(InvalidParameter, match="params must be a mapping"):
        LANES.spec_from_params([1, 2])
