"""The model registry: names, metadata, errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch.nn as nn

from coordconv_data.models import (
    DATASETS,
    TASK_CONTRACTS,
    TASKS,
    HyperparameterError,
    UnknownModelError,
    create_model,
    is_model,
    list_models,
    model_info,
    register_model,
    registry,
)

EXPECTED = {
    "coordconv_classification": ("classification", "not-so-clevr", {"mul": 1, "with_r": False}),
    "deconv_classification": ("classification", "not-so-clevr", {"mul": 1, "fs": 3}),
    "coordconv_rendering": ("rendering", "not-so-clevr", {"mul": 1, "fs": 3, "with_r": False, "sharpen": True}),
    "deconv_rendering": ("rendering", "not-so-clevr", {"mul": 1, "fs": 3}),
    "conv_regressor": ("regression", "not-so-clevr", {"mul": 1}),
    "conv_regressor_fc": ("regression", "not-so-clevr", {"mul": 1}),
    "coordconv_regressor": ("regression", "not-so-clevr", {"with_r": False}),
    "simple_gan": ("gan", "not-so-clevr", {"z_dim": 10, "width": 64, "size": 64}),
    "simple_coordconv_in_g": ("gan", "not-so-clevr", {"z_dim": 10, "width": 64, "size": 64, "with_r": False}),
    "simple_coordconv_in_gd": ("gan", "not-so-clevr", {"z_dim": 10, "width": 64, "size": 64, "with_r": False}),
    "clevr_gan": ("gan", "sort-of-clevr", {"z_dim": 256, "width": 64, "size": 64}),
    "clevr_coordconv_in_g": ("gan", "sort-of-clevr", {"z_dim": 256, "width": 64, "size": 64, "with_r": False}),
    "clevr_coordconv_in_gd": ("gan", "sort-of-clevr", {"z_dim": 256, "width": 64, "size": 64, "with_r": False}),
    "fcn_vgg9": ("segmentation", "lanes", {"num_classes": 4, "init": "study"}),
    "fcn_vgg9_coordbias": ("segmentation", "lanes", {"num_classes": 4, "init": "study", "per_input": False}),
    "fcn_vgg9_coordconv": ("segmentation", "lanes", {"num_classes": 4, "with_r": False, "init": "study"}),
}


def test_every_expected_model_is_registered_with_its_metadata():
    assert list_models() == sorted(EXPECTED)
    for name, (task, dataset, hparams) in EXPECTED.items():
        info = model_info(name)
        assert (info.name, info.task, info.dataset, dict(info.hparams)) == (name, task, dataset, hparams)
        assert info.task in TASKS and info.dataset in DATASETS
        assert info.contract is TASK_CONTRACTS[task]
        assert info.summary and info.input_shape and info.output_shape
        assert is_model(name)


def test_list_models_filters():
    assert list_models("fcn_*") == ["fcn_vgg9", "fcn_vgg9_coordbias", "fcn_vgg9_coordconv"]
    assert list_models("*regressor*") == ["conv_regressor", "conv_regressor_fc", "coordconv_regressor"]
    assert list_models(task="gan") == ["clevr_coordconv_in_g", "clevr_coordconv_in_gd", "clevr_gan", "simple_coordconv_in_g",
                                       "simple_coordconv_in_gd", "simple_gan"]
    assert list_models("simple_*", dataset="not-so-clevr") == ["simple_coordconv_in_g", "simple_coordconv_in_gd", "simple_gan"]
    assert list_models("clevr_*", dataset="sort-of-clevr", task="gan") == list_models("clevr_*")
    assert list_models("coordconv_*", dataset="not-so-clevr", task="rendering") == ["coordconv_rendering"]
    assert list_models("nothing*") == []


def test_unknown_model_lists_known_names():
    with pytest.raises(UnknownModelError) as exc:
        create_model("foo")
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith("unknown model 'foo'; known: ")
    for name in EXPECTED:
        assert name in message
    # Catchable as either kind of lookup/value error.
    assert isinstance(exc.value, KeyError) and isinstance(exc.value, ValueError)
    with pytest.raises(KeyError):
        model_info("bar")
    assert not is_model("foo")


def test_hyperparameter_the_architecture_does_not_take_is_rejected():
    with pytest.raises(HyperparameterError) as exc:
        create_model("coordconv_regressor", mul=2)
    assert str(exc.value) == "model 'coordconv_regressor' does not take 'mul'; it accepts: with_r"
    with pytest.raises(HyperparameterError, match="it accepts: mul, fs"):
        create_model("deconv_classification", fs=3, z_dim=4)
    assert isinstance(exc.value, ValueError)


@pytest.mark.parametrize("value", [0, -1, 1.5, "2", True])
def test_bad_hyperparameter_values_are_rejected(value):
    with pytest.raises(HyperparameterError, match="mul must be a positive integer"):
        create_model("deconv_classification", mul=value)


def test_bool_hyperparameters_must_be_bool():
    with pytest.raises(HyperparameterError, match="with_r must be True or False"):
        create_model("coordconv_regressor", with_r="yes")


def test_register_model_validates(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @register_model(task="regression", dataset="not-so-clevr", input_shape=(1, 4, 4), output_shape=(2,))
    def tiny_test_model(*, width: int = 3) -> nn.Module:
        """A test-only model."""
        return nn.Linear(width, 2)

    assert "tiny_test_model" in list_models()
    assert dict(model_info("tiny_test_model").hparams) == {"width": 3}
    assert model_info("tiny_test_model").summary == "A test-only model."
    assert create_model("tiny_test_model", width=5).in_features == 5

    with pytest.raises(ValueError, match="already registered"):
        register_model(task="gan", dataset="lanes", input_shape=(1,), output_shape=(1,))(tiny_test_model)
    with pytest.raises(TypeError, match="keyword-only"):
        register_model(task="gan", dataset="lanes", input_shape=(1,), output_shape=(1,))(lambda width=3: nn.Identity())
    with pytest.raises(ValueError, match="task must be one of"):
        register_model(task="detection", dataset="lanes", input_shape=(1,), output_shape=(1,))
    with pytest.raises(ValueError, match="dataset must be one of"):
        register_model(task="gan", dataset="mnist", input_shape=(1,), output_shape=(1,))


def test_package_import_does_not_import_models_or_torch():
    code = "import sys, coordconv_data; print('torch' in sys.modules, 'coordconv_data.models' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
