"""The experiments of ``coorddata reproduce``: each a set of engine runs per budget, with the claim it tests.

An :class:`Experiment` holds the paper's (or the study's) figure and the recipe it came from, and per
budget its :class:`Run` s: an arch, a data file (:data:`DATA`, each with the ``coorddata`` command
that makes it) and the options that differ from the arch's recipe. Budgets: ``paper`` is the
original's recipe at the original's scale (a GPU's work); ``quick`` fits the whole set in about an
hour on 2 CPU cores, with the departures each experiment states; ``tiny`` trains every run for one
epoch with the smallest models and files, to check the machinery. Estimates are the seconds each
quick run took on 2 CPU cores.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter
from .options import BUDGETS
from .options import TrainConfig

__all__ = ["BUDGETS", "DATA", "EXPERIMENTS", "DataFile", "Experiment", "Run", "experiment", "listing"]



@dataclass(frozen=True)
class DataFile:
    """A data file an experiment trains on: its name in ``OUT/data``, its kind and the generator options
    that differ from the defaults (the spec is the one record; the command is derived from it)."""

    name: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)

    def spec(self) -> Any:
        from ..kinds import get_kind

        return get_kind(self.kind).generator.Spec(**self.options)

    def command(self) -> str:
        """The ``coorddata`` command that makes the file."""
        from ..kinds import get_kind

        return get_kind(self.kind).command(self.spec(), out=self.name)

    def make(self, path: Path) -> None:
        """Write the file at ``path`` as :meth:`command` does."""
        from ..kinds import get_kind

        get_kind(self.kind).make_file(path, self.spec())


DATA: dict[str, DataFile] = {
    "uniform": DataFile("not_so_clevr_uniform.h5", "not-so-clevr", {"split": "uniform"}),
    "quadrant": DataFile("not_so_clevr_quadrant.h5", "not-so-clevr", {"split": "quadrant"}),
    "lanes": DataFile("lanes.h5", "lanes", {"n": 5000, "test_n": 2500}),
    "lanes-64": DataFile("lanes_1000_64.h5", "lanes", {"n": 1000, "test_n": 500, "size": 64}),
    "lanes-tiny": DataFile("lanes_24_32.h5", "lanes", {"n": 24, "test_n": 12, "size": 32}),
    "soc": DataFile("sort_of_clevr.h5", "sort-of-clevr"),
    "soc-5000": DataFile("sort_of_clevr_5000.h5", "sort-of-clevr", {"n": 5000}),
    "soc-tiny": DataFile("sort_of_clevr_48_32.h5", "sort-of-clevr", {"n": 48, "size": 32}),
}


@dataclass(frozen=True)
class Run:
    """One engine run: ``options`` are TrainConfig fields (model hyperparameters under ``hparams``)."""

    name: str
    arch: str
    data: str
    options: dict[str, Any] = field(default_factory=dict)
    estimate_s: float | None = None  # measured on 2 CPU cores (quick budget)

    def config(self, data: Path, out: Path) -> TrainConfig:
        options = dict(self.options)
        hparams = options.pop("hparams", {})
        return TrainConfig(arch=self.arch, data=str(data), out=str(out), hparams=dict(hparams), **options)

    def command(self, data: Path, out: Path) -> str:
        """The ``coorddata train`` command that makes the same run."""
        args = ["coorddata", "train", "--arch", self.arch, "--data", str(data)]
        for key, value in self.options.items():
            if key == "hparams":
                for h, v in value.items():
                    args += [f"--{'image-size' if h == 'size' else h.replace('_', '-')}", str(v)]
            else:
                args += [f"--{key.replace('_', '-')}", str(value)]
        return shlex.join(args + ["--out", str(out)])


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    claim: str  # the published figure and the recipe it came from
    budgets: dict[str, tuple[Run, ...]]
    note: dict[str, str] = field(default_factory=dict)  # per budget: how the runs depart from the recipe
    short: str = ""  # the claim in a few words, for the summary table

    def runs(self, budget: str) -> tuple[Run, ...]:
        return self.budgets.get(budget, ())


def _pair(prefix: str, arch: str, quick: dict[str, Any], tiny: dict[str, Any], est: tuple[float, float],
          splits: tuple[str, str] = ("uniform", "quadrant")) -> dict[str, list[Run]]:
    return {
        "quick": [Run(f"{prefix}-{s}", arch, s, quick, e) for s, e in zip(splits, est)],
        "paper": [Run(f"{prefix}-{s}", arch, s) for s in splits],
        "tiny": [Run(f"{prefix}-{s}", arch, s, tiny) for s in splits],
    }


def _merge(*parts: dict[str, list[Run]]) -> dict[str, tuple[Run, ...]]:
    return {b: tuple(r for p in parts for r in p.get(b, [])) for b in BUDGETS}


TINY = {"epochs": 1}
SIMPLE_GAN_QUICK = {"epochs": 30, "hparams": {"width": 8}}
SIMPLE_GAN_TINY = {"epochs": 1, "batch_size": 128, "eval_samples": 16, "hparams": {"width": 2}}
CLEVR_GAN_QUICK = {"epochs": 8, "hparams": {"width": 16}}
SEEDS = (0, 1, 2)


def _seeds(prefix: str, arch: str, options: dict[str, Any], est: float) -> dict[str, list[Run]]:
    """CoordConv regression on both splits, once per seed of SEEDS (quick) or once (paper, tiny)."""
    return {
        "quick": [Run(f"{prefix}-{s}-seed{seed}", arch, s, {**options, "seed": seed}, est)
                  for s in ("uniform", "quadrant") for seed in SEEDS],
        "paper": [Run(f"{prefix}-{s}", arch, s) for s in ("uniform", "quadrant")],
        "tiny": [Run(f"{prefix}-{s}", arch, s, TINY) for s in ("uniform", "quadrant")],
    }


EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment(
        "classification", "Supervised coordinate classification: (x, y) -> the one-hot pixel",
        "CoordConv 100% test accuracy on both splits in seconds; deconvolution never above about 86% on "
        "the uniform split (the best of a 324-configuration sweep of 1000-2000 epochs with the step "
        "schedule) and near 0% on the held-out quadrant",
        _merge(_pair("coordconv", "coordconv_classification", {"epochs": 2}, TINY, (15, 15)),
               _pair("deconv", "deconv_classification", {"epochs": 60}, TINY, (235, 225))),
        {"quick": "CoordConv 2 of the recipe's 100 epochs; deconv 60 of 1000 (its step schedule first steps at 200, "
                  "so the rate stays 0.01), one configuration (mul 2, fs 3, lr 0.01, l2 0.001) of the sweep"},
        short="CoordConv 100% test on both splits; deconv at most ~86% (uniform), ~0% (quadrant)",
    ),
    Experiment(
        "regression", "Supervised coordinate regression: the one-hot map -> (x, y)",
        "CoordConv regression generalises to the held-out quadrant (test error near 0 px); plain "
        "convolution fits the training quadrants and misses the held-out one (the original's recipe: "
        "100 epochs, batch 256, lr 0.01, l2 1e-5; conv_regressor_fc on the uniform split, conv_regressor on the quadrant)",
        _merge(_seeds("coordconv", "coordconv_regressor", {"epochs": 25}, 50),
               {"quick": [Run("conv-uniform", "conv_regressor_fc", "uniform", {}, 75),
                          Run("conv-quadrant", "conv_regressor", "quadrant", {}, 60)],
                "paper": [Run("conv-uniform", "conv_regressor_fc", "uniform"),
                          Run("conv-quadrant", "conv_regressor", "quadrant")],
                "tiny": [Run("conv-uniform", "conv_regressor_fc", "uniform", TINY),
                         Run("conv-quadrant", "conv_regressor", "quadrant", TINY)]}),
        {"quick": "CoordConv 25 of 100 epochs, at lr 0.001 (its measured departure, `coorddata models`), once per "
                  "seed 0, 1, 2; the plain regressors' recipe in full (100 epochs)"},
        short="CoordConv near 0 px on both splits; conv misses the held-out quadrant",
    ),
    Experiment(
        "rendering", "Supervised rendering: (x, y) -> the square's mask",
        "CoordConv renders near-perfectly on both splits; deconvolution never reaches IoU 1 and fails "
        "on the held-out quadrant (the original's recipe: CoordConv 50-100 epochs, deconv 1000 with the step schedule)",
        _merge(_pair("coordconv", "coordconv_rendering", {"epochs": 4}, TINY, (40, 40)),
               _pair("deconv", "deconv_rendering", {"epochs": 30}, TINY, (105, 100))),
        {"quick": "CoordConv 4 of the recipe's 100 epochs (with l2 0 and --interm-loss softmax, `coorddata models`); "
                  "deconv 30 of 1000"},
        short="CoordConv near-perfect IoU; deconv lower, failing on the held-out quadrant",
    ),
    Experiment(
        "lanes", "Lanes segmentation: classes that depend on where a circle is",
        "the custom-conv2d study: after 2 epochs on 5000 128x128 images, per-class recall about 0.99 "
        "with the coordinate bias against 0.43-0.57 on the position classes without",
        {"quick": (Run("plain", "fcn_vgg9", "lanes-64", {"epochs": 3}, 75),
                   Run("coordbias", "fcn_vgg9_coordbias", "lanes-64", {"epochs": 3}, 85),
                   Run("coordconv", "fcn_vgg9_coordconv", "lanes-64", {"epochs": 3}, 85)),
         "paper": (Run("plain", "fcn_vgg9", "lanes"), Run("coordbias", "fcn_vgg9_coordbias", "lanes"),
                   Run("coordconv", "fcn_vgg9_coordconv", "lanes")),
         "tiny": (Run("plain", "fcn_vgg9", "lanes-tiny", TINY), Run("coordbias", "fcn_vgg9_coordbias", "lanes-tiny", TINY))},
        {"quick": "64x64 images, 1000 train (the study: 128x128, 5000), 3 epochs (the study: 2)"},
        short="position classes: recall ~0.99 with the coordinate bias, 0.43-0.57 without",
    ),
    Experiment(
        "simple-gans", "GANs on one grey square (all 3136 Not-so-Clevr images)",
        "the paper: along latent walks the CoordConv GAN's square moves smoothly across the canvas, the "
        "plain GAN's fades out in one place and in at another (the original's train_gan.py: width 64, "
        "50 epochs of batch 16)",
        {"quick": (Run("gan", "simple_gan", "quadrant", SIMPLE_GAN_QUICK, 250),
                   Run("coordconv-in-g", "simple_coordconv_in_g", "quadrant", SIMPLE_GAN_QUICK, 600),
                   Run("coordconv-in-gd", "simple_coordconv_in_gd", "quadrant", SIMPLE_GAN_QUICK, 720)),
         "paper": (Run("gan", "simple_gan", "quadrant"), Run("coordconv-in-g", "simple_coordconv_in_g", "quadrant"),
                   Run("coordconv-in-gd", "simple_coordconv_in_gd", "quadrant")),
         "tiny": (Run("gan", "simple_gan", "quadrant", SIMPLE_GAN_TINY),
                  Run("coordconv-in-gd", "simple_coordconv_in_gd", "quadrant", SIMPLE_GAN_TINY))},
        {"quick": "width 8 (the paper's channel widths divided by 8), 30 of 50 epochs"},
        short="CoordConv squares move smoothly along walks; plain GAN squares fade out and in",
    ),
    Experiment(
        "clevr-gans", "GANs on Sort-of-Clevr (a blue and a red object)",
        "the paper: the CoordConv GAN's objects move smoothly in latent walks and cover the canvas; the "
        "plain GAN collapses to fewer positions (the original's command: 50 epochs of batch 16 on 50,000 images, width 64)",
        {"quick": (Run("gan", "clevr_gan", "soc-5000", CLEVR_GAN_QUICK, 180),
                   Run("coordconv-in-gd", "clevr_coordconv_in_gd", "soc-5000", CLEVR_GAN_QUICK, 650)),
         "paper": (Run("gan", "clevr_gan", "soc"), Run("coordconv-in-g", "clevr_coordconv_in_g", "soc"),
                   Run("coordconv-in-gd", "clevr_coordconv_in_gd", "soc")),
         "tiny": (Run("gan", "clevr_gan", "soc-tiny", {"epochs": 1, "eval_samples": 8, "hparams": {"width": 2, "size": 32}}),)},
        {"quick": "width 16, 8 of 50 epochs on 5,000 of the 50,000 images (2,500 iterations, 1.6% of the paper's "
                  "156,000): a short run whose score and samples show where the two stand"},
        short="CoordConv objects move smoothly and cover the canvas; the plain GAN collapses",
    ),
)


def experiment(name: str) -> Experiment:
    for e in EXPERIMENTS:
        if e.name == name:
            return e
    raise InvalidParameter("names", f"unknown experiment {name!r}; choose from {', '.join(e.name for e in EXPERIMENTS)}")


def listing(budget: str) -> list[dict[str, Any]]:
    """Each experiment with its runs and the estimated seconds on 2 CPU cores (quick budget)."""
    out = []
    for e in EXPERIMENTS:
        runs = e.runs(budget)
        known = [r.estimate_s for r in runs if r.estimate_s is not None]
        out.append({"name": e.name, "title": e.title, "runs": [r.name for r in runs],
                    "estimate_s": sum(known) if len(known) == len(runs) and runs else None})
    return out


