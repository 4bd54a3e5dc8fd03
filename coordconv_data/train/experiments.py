"""The experiments of ``coorddata reproduce``: the paper's claims, each tested over seeds by engine runs.

An :class:`Experiment` holds the paper's (or the study's) figure and the recipe it came from, its
:class:`~.claims.Claim` s (a threshold on a test figure, judged per seed), and per budget its
:class:`Run` s: an arch, a data file (:data:`DATA`, each a generator spec whose ``coorddata`` command
is derived from it) and the options that differ from the arch's recipe. Every run is trained once per
seed (``--seeds N``: seeds ``0 .. N-1``; a run may train on fewer, ``max_seeds``, where the budget
says so). Budgets: ``paper`` is the original's recipe at the original's scale (a GPU's work);
``quick`` fits 2 CPU cores, with the departures each experiment states; ``tiny`` trains every run for
one epoch with the smallest models and files, to check the machinery. Estimates are the seconds a
run took on 2 CPU cores, per seed: every quick run, and the Lanes study's at the paper budget (the
other paper runs are left without one).

No torch here: the command line lists the experiments without loading it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter
from .claims import Claim
from .options import BUDGETS, TrainConfig, flag

__all__ = ["DATA", "EXPERIMENTS", "SEEDS", "DataFile", "Experiment", "Run", "experiment", "listing", "seeds_for"]

SEEDS = {"quick": 5, "paper": 10, "tiny": 1}  # default --seeds per budget


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
    """One training configuration, trained once per seed: ``options`` are TrainConfig fields (model
    hyperparameters under ``hparams``) that differ from the arch's recipe."""

    name: str
    arch: str
    data: str
    options: dict[str, Any] = field(default_factory=dict)
    estimate_s: float | None = None  # per seed, measured on 2 CPU cores
    max_seeds: int | None = None  # train on at most this many of the seeds

    def seeds(self, seeds: list[int]) -> list[int]:
        return seeds[: self.max_seeds] if self.max_seeds is not None else seeds

    def folder(self, experiment: str, seed: int | str) -> str:
        return f"{experiment}-{self.name}-seed{seed}"

    def config(self, data: Path, out: Path, seed: int) -> TrainConfig:
        options = dict(self.options)
        hparams = options.pop("hparams", {})
        return TrainConfig(arch=self.arch, data=str(data), out=str(out), hparams=dict(hparams), seed=seed, **options)

    def command(self, data: Path | str, out: Path | str, seed: int | str) -> str:
        """The ``coorddata train`` command that makes the same run."""
        args = ["coorddata", "train", "--arch", self.arch, "--data", str(data)]
        for key, value in self.options.items():
            pairs = value.items() if key == "hparams" else [(key, value)]
            for name, v in pairs:
                args += [flag(name), str(v)]
        return shlex.join(args + ["--seed", str(seed), "--out", str(out)])


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    claim: str  # the published figure and the recipe it came from
    budgets: dict[str, tuple[Run, ...]]
    claims: tuple[Claim, ...] = ()
    note: dict[str, str] = field(default_factory=dict)  # per budget: how the runs depart from the recipe
    short: str = ""  # the claim in a few words, for the summary table

    def runs(self, budget: str) -> tuple[Run, ...]:
        return self.budgets.get(budget, ())


def _pair(prefix: str, arch: str, quick: dict[str, Any], tiny: dict[str, Any], est: float,
          max_seeds: int | None = None, splits: tuple[str, str] = ("uniform", "quadrant")) -> dict[str, list[Run]]:
    """The same run on both Not-so-Clevr splits."""
    return {
        "quick": [Run(f"{prefix}-{s}", arch, s, quick, est, max_seeds) for s in splits],
        "paper": [Run(f"{prefix}-{s}", arch, s) for s in splits],
        "tiny": [Run(f"{prefix}-{s}", arch, s, tiny) for s in splits],
    }


def _merge(*parts: dict[str, list[Run]]) -> dict[str, tuple[Run, ...]]:
    return {b: tuple(r for p in parts for r in p.get(b, [])) for b in BUDGETS}


TINY = {"epochs": 1}
GAN_SEEDS = 3  # quick: the GAN comparisons on the first 3 seeds
SIMPLE_GAN_QUICK = {"epochs": 10, "hparams": {"width": 8}}
SIMPLE_GAN_TINY = {"epochs": 1, "batch_size": 128, "eval_samples": 16, "hparams": {"width": 2}}
CLEVR_GAN_QUICK = {"epochs": 4, "hparams": {"width": 16}}
CLEVR_GAN_TINY = {"epochs": 1, "eval_samples": 8, "hparams": {"width": 2, "size": 32}}
POSITION_CLASSES = ("recall_yellow_right", "recall_yellow_left", "recall_red_bottom")


def _lanes_runs(data: str, options: dict[str, Any], est: dict[str, float] | None, archs: tuple[str, ...]) -> list[Run]:
    names = {"fcn_vgg9": "plain", "fcn_vgg9_coordbias": "coordbias", "fcn_vgg9_coordconv": "coordconv"}
    return [Run(names[a], a, data, options, est[a] if est else None) for a in archs]


FCNS = ("fcn_vgg9", "fcn_vgg9_coordbias", "fcn_vgg9_coordconv")
LANES_PAPER_S = {"fcn_vgg9": 1040, "fcn_vgg9_coordbias": 1170, "fcn_vgg9_coordconv": 1120}  # 128 px, n 5000: docs/lab.md

EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment(
        "classification", "Supervised coordinate classification: (x, y) -> the one-hot pixel",
        "CoordConv 100% test accuracy on both splits in seconds; deconvolution never above about 86% on "
        "the uniform split (the best of a 324-configuration sweep of 1000-2000 epochs with the step "
        "schedule) and near 0% on the held-out quadrant",
        _merge(_pair("coordconv", "coordconv_classification", {"epochs": 10}, TINY, 50),
               _pair("deconv", "deconv_classification", {"epochs": 20}, TINY, 60, max_seeds=3)),
        (Claim("CoordConv reaches 100% test accuracy", ("coordconv-uniform", "coordconv-quadrant"), ("accuracy",),
               ">=", 0.99),
         Claim("deconvolution stays far below 100% on the uniform split", ("deconv-uniform",), ("accuracy",), "<=", 0.9),
         Claim("deconvolution is near 0% on the held-out quadrant", ("deconv-quadrant",), ("accuracy",), "<=", 0.05)),
        {"quick": "CoordConv 10 of the recipe's 100 epochs; deconv 20 of 1000 (its step schedule first steps at 200, "
                  "so the rate stays 0.01), one configuration (mul 2, fs 3, lr 0.01, l2 0.001) of the sweep, on 3 "
                  "of the seeds"},
        short="CoordConv 100% test on both splits; deconv at most ~86% (uniform), ~0% (quadrant)",
    ),
    Experiment(
        "regression", "Supervised coordinate regression: the one-hot map -> (x, y)",
        "CoordConv regression generalises to the held-out quadrant (test error near 0 px); plain "
        "convolution fits the training quadrants and misses the held-out one (the original's recipe: "
        "100 epochs, batch 256, lr 0.01, l2 1e-5; conv_regressor_fc on the uniform split, conv_regressor on the quadrant)",
        _merge(_pair("coordconv", "coordconv_regressor", {"epochs": 50}, TINY, 95),
               {"quick": [Run("conv-uniform", "conv_regressor_fc", "uniform", {}, 70, max_seeds=3),
                          Run("conv-quadrant", "conv_regressor", "quadrant", {}, 55, max_seeds=3)],
                "paper": [Run("conv-uniform", "conv_regressor_fc", "uniform"),
                          Run("conv-quadrant", "conv_regressor", "quadrant")],
                "tiny": [Run("conv-uniform", "conv_regressor_fc", "uniform", TINY),
                         Run("conv-quadrant", "conv_regressor", "quadrant", TINY)]}),
        (Claim("CoordConv regression is near 0 px off on test", ("coordconv-uniform", "coordconv-quadrant"),
               ("px_error",), "<=", 0.5),
         Claim("plain convolution misses the held-out quadrant", ("conv-quadrant",), ("px_error",), ">=", 2.0)),
        {"quick": "CoordConv 50 of 100 epochs; the plain regressors' recipe in full (100 epochs) on 3 of the seeds"},
        short="CoordConv near 0 px on both splits; conv misses the held-out quadrant",
    ),
    Experiment(
        "rendering", "Supervised rendering: (x, y) -> the square's mask",
        "CoordConv renders near-perfectly on both splits; deconvolution never reaches IoU 1 and fails "
        "on the held-out quadrant (the original's recipe: CoordConv 50-100 epochs, deconv 1000 with the step schedule)",
        _merge(_pair("coordconv", "coordconv_rendering", {"epochs": 10}, TINY, 85),
               _pair("deconv", "deconv_rendering", {"epochs": 15}, TINY, 50, max_seeds=3)),
        (Claim("CoordConv renders near-perfectly (test IoU)", ("coordconv-uniform", "coordconv-quadrant"), ("iou",),
               ">=", 0.95),
         Claim("deconvolution fails on the held-out quadrant (test IoU)", ("deconv-quadrant",), ("iou",), "<=", 0.5)),
        {"quick": "CoordConv 10 of the recipe's 100 epochs (`coorddata models` gives its recipe); deconv 15 of 1000, on "
                  "3 of the seeds"},
        short="CoordConv near-perfect IoU; deconv lower, failing on the held-out quadrant",
    ),
    Experiment(
        "lanes", "Lanes segmentation: classes that depend on where a circle is",
        "the custom-conv2d study: after 2 epochs (SGD lr 1e-3 momentum 0.9, batch 1) on 5000 128x128 images, "
        "per-class recall about 0.99 with the coordinate bias against 0.43-0.57 on the position classes without",
        {"quick": tuple(_lanes_runs("lanes-64", {}, dict.fromkeys(FCNS, 75), FCNS)),
         "paper": tuple(_lanes_runs("lanes", {}, LANES_PAPER_S, FCNS)),
         "tiny": tuple(_lanes_runs("lanes-tiny", TINY, None, FCNS[:2]))},
        (Claim("the coordinate-bias net tells the position classes apart (recall of each)", ("coordbias",),
               POSITION_CLASSES, ">=", 0.95),
         Claim("the plain net does not (the least recall of the position classes)", ("plain",), POSITION_CLASSES, "<", 0.95),
         Claim("CoordConv tells them apart too (not in the study)", ("coordconv",), POSITION_CLASSES, ">=", 0.95)),
        {"quick": "64x64 images, 1000 train (the study: 128x128, 5000); the study's recipe otherwise (2 epochs, batch 1)"},
        short="position classes: recall ~0.99 with the coordinate bias, 0.43-0.57 without",
    ),
    Experiment(
        "simple-gans", "GANs on one grey square (all 3136 Not-so-Clevr images)",
        "the paper: along latent walks the CoordConv GAN's square moves smoothly across the canvas, the "
        "plain GAN's fades out in one place and in at another (the original's train_gan.py: width 64, "
        "50 epochs of batch 16)",
        {"quick": (Run("gan", "simple_gan", "quadrant", SIMPLE_GAN_QUICK, 70, GAN_SEEDS),
                   Run("coordconv-in-gd", "simple_coordconv_in_gd", "quadrant", SIMPLE_GAN_QUICK, 250, GAN_SEEDS)),
         "paper": (Run("gan", "simple_gan", "quadrant"), Run("coordconv-in-g", "simple_coordconv_in_g", "quadrant"),
                   Run("coordconv-in-gd", "simple_coordconv_in_gd", "quadrant")),
         "tiny": (Run("gan", "simple_gan", "quadrant", SIMPLE_GAN_TINY),
                  Run("coordconv-in-gd", "simple_coordconv_in_gd", "quadrant", SIMPLE_GAN_TINY))},
        (Claim("the CoordConv GAN's squares slide along the walks (share of walk objects)", ("coordconv-in-gd",),
               ("slide_fraction",), ">=", 0.5, split="walks"),
         Claim("the plain GAN's squares do not (share that slide)", ("gan",), ("slide_fraction",), "<", 0.5,
               split="walks")),
        {"quick": "width 8 (the paper's channel widths divided by 8), 10 of 50 epochs, on 3 of the seeds; "
                  "simple_coordconv_in_g left out"},
        short="CoordConv squares move smoothly along walks; plain GAN squares fade out and in",
    ),
    Experiment(
        "clevr-gans", "GANs on Sort-of-Clevr (a blue and a red object)",
        "the paper: the CoordConv GAN's objects move smoothly in latent walks and cover the canvas; the "
        "plain GAN collapses to fewer positions (the original's command: 50 epochs of batch 16 on 50,000 images, width 64)",
        {"quick": (Run("gan", "clevr_gan", "soc-5000", CLEVR_GAN_QUICK, 100, GAN_SEEDS),
                   Run("coordconv-in-gd", "clevr_coordconv_in_gd", "soc-5000", CLEVR_GAN_QUICK, 300, GAN_SEEDS)),
         "paper": (Run("gan", "clevr_gan", "soc"), Run("coordconv-in-g", "clevr_coordconv_in_g", "soc"),
                   Run("coordconv-in-gd", "clevr_coordconv_in_gd", "soc")),
         "tiny": (Run("gan", "clevr_gan", "soc-tiny", CLEVR_GAN_TINY),)},
        (Claim("the CoordConv GAN's objects slide along the walks (share of walk objects)", ("coordconv-in-gd",),
               ("slide_fraction",), ">=", 0.5, split="walks"),
         Claim("the plain GAN's objects do not (share that slide)", ("gan",), ("slide_fraction",), "<", 0.5,
               split="walks")),
        {"quick": "width 16, 4 of 50 epochs on 5,000 of the 50,000 images (1,250 iterations, 0.8% of the paper's "
                  "156,000), on 3 of the seeds: a short run whose scores and walks show where the two stand"},
        short="CoordConv objects move smoothly and cover the canvas; the plain GAN collapses",
    ),
)


def experiment(name: str) -> Experiment:
    for e in EXPERIMENTS:
        if e.name == name:
            return e
    raise InvalidParameter("names", f"unknown experiment {name!r}; choose from {', '.join(e.name for e in EXPERIMENTS)}")


def seeds_for(budget: str, seeds: int | None) -> list[int]:
    """The seeds a budget trains on: ``0 .. seeds - 1`` (the budget's default count when ``None``)."""
    n = SEEDS[budget] if seeds is None else seeds
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidParameter("seeds", f"seeds must be a whole number of at least 1, got {n!r}")
    return list(range(n))


def listing(budget: str, seeds: int | None = None) -> list[dict[str, Any]]:
    """Each experiment with its runs and the estimated seconds on 2 CPU cores (``None`` where a run has no
    measured estimate)."""
    chosen = seeds_for(budget, seeds)
    out = []
    for e in EXPERIMENTS:
        runs = e.runs(budget)
        known = [r.estimate_s * len(r.seeds(chosen)) for r in runs if r.estimate_s is not None]
        out.append({"name": e.name, "title": e.title, "runs": [r.name for r in runs],
                    "trainings": sum(len(r.seeds(chosen)) for r in runs),
                    "estimate_s": sum(known) if len(known) == len(runs) and runs else None})
    return out
