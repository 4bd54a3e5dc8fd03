"""``coorddata reproduce``: the paper's and the study's comparisons, run by the engine, in one report.

Each :class:`Experiment` is a set of engine runs with the claim it tests and the recipe behind the
published figure. :func:`reproduce` makes the data files it needs (``OUT/data``), trains every run
(``OUT/runs/<budget>/<run>``: ordinary run folders), reuses a finished run and resumes an interrupted
one (so an interrupted ``reproduce`` continues where it stopped), and writes ``OUT/report.md``: per
comparison the command of every run, our figure (the epoch selected on the validation split, its
test value; for GANs the epoch selected on the samples' geometry score, and the motion of latent
walks), the paper's or the study's figure with the recipe it came from, and pictures.

Budgets: ``paper`` is the original's recipe at the original's scale (a GPU's work); ``quick`` fits
the whole set in about 90 minutes on 2 CPU cores, with the departures each experiment states
(fewer epochs, smaller Lanes images, narrower GANs); ``tiny`` trains every run for one epoch with the
smallest models and files, to check the machinery.
"""

from __future__ import annotations

import json
import math
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import InvalidParameter
from .config import TrainConfig, defaults_for, recipe_source
from .errors import TrainError

__all__ = ["BUDGETS", "EXPERIMENTS", "Experiment", "Run", "DataFile", "reproduce", "listing"]

BUDGETS = ("quick", "paper", "tiny")


@dataclass(frozen=True)
class DataFile:
    """A data file an experiment trains on: its name in ``OUT/data`` and the command that makes it."""

    name: str
    command: str
    make: Callable[[Path], None]


def _nsc(split: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        from ..generate.not_so_clevr import NotSoClevrSpec, write_file

        write_file(NotSoClevrSpec(split=split), path)

    return make


def _lanes(**spec: Any) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        import os

        from ..generate.lanes import LanesSpec, write_file

        write_file(LanesSpec(**spec), path, workers=os.cpu_count() or 1)

    return make


def _soc(**spec: Any) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        import os

        from ..generate.sort_of_clevr import SortOfClevrSpec, write_file

        write_file(SortOfClevrSpec(**spec), path, workers=os.cpu_count() or 1)

    return make


DATA: dict[str, DataFile] = {
    "uniform": DataFile("not_so_clevr_uniform.h5", "coorddata not-so-clevr --split uniform", _nsc("uniform")),
    "quadrant": DataFile("not_so_clevr_quadrant.h5", "coorddata not-so-clevr --split quadrant", _nsc("quadrant")),
    "lanes": DataFile("lanes.h5", "coorddata lanes --n 5000", _lanes(n=5000, test_n=2500)),
    "lanes-64": DataFile("lanes_1000_64.h5", "coorddata lanes --n 1000 --size 64", _lanes(n=1000, test_n=500, size=64)),
    "lanes-tiny": DataFile("lanes_24_32.h5", "coorddata lanes --n 24 --size 32", _lanes(n=24, test_n=12, size=32)),
    "soc": DataFile("sort_of_clevr.h5", "coorddata sort-of-clevr", _soc()),
    "soc-5000": DataFile("sort_of_clevr_5000.h5", "coorddata sort-of-clevr --n 5000", _soc(n=5000)),
    "soc-tiny": DataFile("sort_of_clevr_48_32.h5", "coorddata sort-of-clevr --n 48 --size 32", _soc(n=48, size=32)),
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
    ),
    Experiment(
        "rendering", "Supervised rendering: (x, y) -> the square's mask",
        "CoordConv renders near-perfectly on both splits; deconvolution never reaches IoU 1 and fails "
        "on the held-out quadrant (the original's recipe: CoordConv 50-100 epochs, deconv 1000 with the step schedule)",
        _merge(_pair("coordconv", "coordconv_rendering", {"epochs": 4}, TINY, (40, 40)),
               _pair("deconv", "deconv_rendering", {"epochs": 30}, TINY, (105, 100))),
        {"quick": "CoordConv 4 of the recipe's 100 epochs (with l2 0 and --interm-loss softmax, `coorddata models`); "
                  "deconv 30 of 1000"},
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
    ),
)


def _experiment(name: str) -> Experiment:
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


# -- running ---------------------------------------------------------------------------------------------

def _data_path(out: Path, key: str, log: Callable[[str], None]) -> Path:
    spec = DATA[key]
    path = out / "data" / spec.name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        spec.make(path)
        log(f"made {path} ({spec.command}) in {time.perf_counter() - t0:.1f} s")
    return path


def _done_epochs(run_dir: Path) -> int:
    import csv

    with open(run_dir / "metrics.csv") as f:
        return max((int(r["epoch"]) for r in csv.DictReader(f)), default=0)


def _run_one(run: Run, data: Path, run_dir: Path, timings: dict[str, Any], key: str,
             log: Callable[[str], None], progress: Any) -> None:
    from .config import resolve
    from .fit import resume, train
    from .run import RunDir

    planned = resolve(run.config(data, run_dir))
    state = RunDir.state(run_dir)
    if state == "run":
        recorded = TrainConfig.from_dict(RunDir.read_only(run_dir).read_config()["options"])
        mine = {k: v for k, v in planned.as_dict().items() if k not in ("epochs", "device", "out", "data")}
        theirs = {k: v for k, v in recorded.as_dict().items() if k not in ("epochs", "device", "out", "data")}
        if mine != theirs:
            raise TrainError(f"{run_dir} holds a run with other options than this budget's; choose another --out")
        done = _done_epochs(run_dir)
        if done >= planned.epochs:
            log(f"{run_dir}: done ({done} epochs), reused")
            return
        log(f"{run_dir}: resuming from epoch {done}")
        t0 = time.perf_counter()
        resume(run_dir, {"epochs": planned.epochs}, progress=progress, log=log)
    else:
        log(f"{run_dir}: {run.command(data, run_dir)}")
        t0 = time.perf_counter()
        if state == "started":
            resume(run_dir, {"epochs": planned.epochs}, progress=progress, log=log)
        else:
            train(planned, progress=progress, log=log)
    timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0


def _rows(run_dir: Path) -> list[dict[str, Any]]:
    import csv

    with open(run_dir / "metrics.csv") as f:
        return [{k: (float(v) if k not in ("split",) and v not in ("", None) else v) for k, v in r.items()}
                for r in csv.DictReader(f)]


def _selected(run_dir: Path) -> int | None:
    import torch

    return int(torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True)["epoch"])


def _fmt(value: Any, metric: str) -> str:
    if value in (None, "") or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if metric == "px_error":
        return f"{value:.3f} px"
    return f"{value:.3f}"


def _supervised_table(exp: Experiment, runs: list[tuple[Run, Path, Path]], timings: dict[str, Any], out: Path,
                      budget: str) -> list[str]:
    lines = ["| run | arch | data | epochs | selected epoch (on val) | val (selected) | test (selected) | test (last epoch) "
             "| train (last epoch, running) | wall |", "|---|---|---|---|---|---|---|---|---|---|"]
    details = []
    for run, data, run_dir in runs:
        task = _task_class(run.arch)
        metric = task.primary
        rows = _rows(run_dir)
        best = _selected(run_dir)
        last = max(int(r["epoch"]) for r in rows)
        at = lambda e, s: next((r for r in rows if int(r["epoch"]) == e and r["split"] == s), {})  # noqa: E731
        wall = timings.get(f"{budget}/{exp.name}/{run.name}")
        lines.append(f"| {run.name} | `{run.arch}` | {DATA[run.data].name} | {last} | {best} | {_fmt(at(best, 'val').get(metric), metric)} "
                     f"| **{_fmt(at(best, 'test').get(metric), metric)}** | {_fmt(at(last, 'test').get(metric), metric)} "
                     f"| {_fmt(at(last, 'train').get(metric), metric)} | {f'{wall:.0f} s' if wall else '-'} |")
        if task.name == "segmentation":
            names = [k[len("recall_"):] for k in at(best, "test") if k.startswith("recall_")]
            details.append(f"- {run.name} (`{run.arch}`) test per-class recall at the selected epoch: "
                           + ", ".join(f"{n} {at(best, 'test')[f'recall_{n}']:.2f}" for n in names))
    lines.append("")
    lines.append(f"Metric: {', '.join(sorted({_task_class(r.arch).primary for r, _, _ in runs}))}; each run's "
                 "`metrics.csv` holds every epoch.")
    return lines + details


def _task_class(arch: str) -> Any:
    from ..models import model_info
    from .tasks import TASKS

    return TASKS[model_info(arch).task]


WALK_ROWS, WALK_STEPS, WALK_SEED = 16, 10, 0


def _gan_analysis(run: Run, run_dir: Path, pictures: Path) -> dict[str, Any]:
    """The selected epoch's score and the motion of norm-corrected latent walks from best.pt."""
    from ..geometry import SceneSpec
    from ..viz import enlarge, grid, write_png
    from ..walks import walk_latents, walk_motion
    from .fit import load_run_model
    from .interpolate import walk_ends
    from .tasks import task_for

    model, cfg, ck = load_run_model(run_dir, "best")
    task = task_for(cfg)
    images = task.generate(model, walk_latents(walk_ends(model.z_dim, WALK_ROWS, WALK_SEED), WALK_STEPS, "norm"), "cpu")
    motion = walk_motion(images, WALK_STEPS, SceneSpec.from_file(cfg.data)).as_dict()
    shown = [enlarge(im, 2) for im in images[: 8 * WALK_STEPS]]
    picture = pictures / f"{run_dir.parent.name}-{run_dir.name}-walks.png"
    write_png(grid(shown, columns=WALK_STEPS, gap=2, background=0), picture, force=True)
    rows = _rows(run_dir)
    best = int(ck["epoch"])
    generated = next(r for r in rows if int(r["epoch"]) == best and r["split"] == "generated")
    real = next(r for r in rows if r["split"] == "real")
    return {"epoch": best, "last": max(int(r["epoch"]) for r in rows), "generated": generated, "real": real,
            "motion": motion, "walks": picture, "samples": run_dir / f"samples_{best:03d}.png"}


def _gan_table(exp: Experiment, runs: list[tuple[Run, Path, Path]], timings: dict[str, Any], out: Path,
               budget: str) -> list[str]:
    pictures = out / "pictures"
    pictures.mkdir(exist_ok=True)
    lines = ["| run | epochs | selected epoch (on its samples) | geometry | position_tv | missing | extra | malformed "
             "| stray | walk jump ratio (even: {even}) | walk mass dip | moving / still / untracked objects | wall |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    real_line, pics = "", []
    analyses = []
    for run, data, run_dir in runs:
        a = _gan_analysis(run, run_dir, pictures)
        analyses.append((run, a))
        g, m = a["generated"], a["motion"]
        wall = timings.get(f"{budget}/{exp.name}/{run.name}")
        lines.append(f"| `{run.arch}` | {a['last']} | {a['epoch']} | **{g['geometry']:.3f}** | {g['position_tv']:.3f} "
                     f"| {g['missing']:.3f} | {g['extra']:.3f} | {g['malformed']:.3f} | {g['stray']:.3f} "
                     f"| **{_fmt(m['jump_ratio'], '')}** | **{_fmt(m['mass_dip'], '')}** "
                     f"| {m['moving']} / {m['still']} / {m['untracked']} | {f'{wall:.0f} s' if wall else '-'} |")
        r = a["real"]
        real_line = (f"Real images score geometry {r['geometry']:.3f}, position_tv {r['position_tv']:.3f} "
                     f"({int(r['n'])} images): the ceiling.")
        pics.append(f"| `{run.arch}` | ![samples]({a['samples'].relative_to(out)}) | ![walks]({a['walks'].relative_to(out)}) |")
    steps = analyses[0][1]["motion"]["steps"] if analyses else WALK_STEPS
    lines[0] = lines[0].replace("{even}", f"{1 / (steps - 1):.3f}")
    lines += ["", real_line, "",
              f"Walks: {WALK_ROWS} norm-corrected latent walks of {WALK_STEPS} steps from best.pt (the original's "
              "`util.interpolate`); jump ratio = largest centre jump / path length (1 / (steps - 1) for even travel, "
              "1 for a jump in one step), mass dip = least foreground mass / mean of the ends' (1: no fading), "
              "averaged over objects that moved.", ""]
    plain = [a for r, a in analyses if "coordconv" not in r.arch]
    cc = [a for r, a in analyses if r.arch.endswith("coordconv_in_gd")]
    if plain and cc:
        p, c = plain[0]["motion"], cc[0]["motion"]
        lines.append(f"At this budget the CoordConv GAN's objects have walk mass dip {_fmt(c['mass_dip'], '')} and jump "
                     f"ratio {_fmt(c['jump_ratio'], '')}; the plain GAN's {_fmt(p['mass_dip'], '')} and "
                     f"{_fmt(p['jump_ratio'], '')}.")
        lines.append("")
    lines += ["| run | samples of the selected epoch | latent walks (first 8 of best.pt's, one per row) |", "|---|---|---|"]
    return lines + pics


def reproduce(names: list[str] | None, budget: str, out: str | Path, *, log: Callable[[str], None] | None = None,
              progress: Any = None) -> Path:
    """Run the chosen experiments (all by default) at ``budget`` into ``out``; return the report's path."""
    if budget not in BUDGETS:
        raise InvalidParameter("budget", f"budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    chosen = [_experiment(n) for n in names] if names else list(EXPERIMENTS)
    say = log or (lambda line: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings_path = out / "timings.json"
    timings: dict[str, Any] = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    planned = []
    t_start = time.perf_counter()
    for exp in chosen:
        runs = []
        for run in exp.runs(budget):
            data = _data_path(out, run.data, say)
            run_dir = out / "runs" / budget / f"{exp.name}-{run.name}"
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            _run_one(run, data, run_dir, timings, f"{budget}/{exp.name}/{run.name}", say, progress)
            from ..store import atomic_write_bytes

            atomic_write_bytes(timings_path, (json.dumps(timings, indent=2, sort_keys=True) + "\n").encode())
            runs.append((run, data, run_dir))
        planned.append((exp, runs))
    report = out / "report.md"
    from ..store import atomic_write_bytes

    atomic_write_bytes(report, _report(planned, budget, out, timings, time.perf_counter() - t_start).encode())
    return report


def _report(planned: list[tuple[Experiment, list[tuple[Run, Path, Path]]]], budget: str, out: Path,
            timings: dict[str, Any], seconds: float) -> str:
    import platform

    import torch

    from .. import __version__
    from ..models import model_info

    total = sum(v for k, v in timings.items() if k.startswith(f"{budget}/"))
    lines = [f"# coorddata reproduce --budget {budget}", "",
             f"coordconv_data {__version__}, torch {torch.__version__}, Python {platform.python_version()}; "
             f"training time of all runs {total / 60:.1f} min (this invocation {seconds / 60:.1f} min, reused runs "
             "not counted twice). Every figure: supervised runs at the epoch selected on the validation split "
             "(a tenth of the train split), reported on test; GANs at the epoch selected on their samples' "
             "geometry score. Nothing is selected on test.", ""]
    for exp, runs in planned:
        lines += [f"## {exp.name}: {exp.title}", "",
                  f"**Paper / study:** {exp.claim}.", ""]
        if exp.note.get(budget):
            lines += [f"**This budget departs from the recipe:** {exp.note[budget]}.", ""]
        archs = sorted({r.arch for r, _, _ in runs})
        lines += ["**Recipes** (`coorddata models`): " + "; ".join(f"`{a}` from {recipe_source(a)}" for a in archs), ""]
        if runs and model_info(runs[0][0].arch).task == "gan":
            lines += _gan_table(exp, runs, timings, out, budget)
        else:
            lines += _supervised_table(exp, runs, timings, out, budget)
            lines += ["", "| run | curves | predictions (test) |", "|---|---|---|"]
            for run, _, run_dir in runs:
                rel = run_dir.relative_to(out)
                lines.append(f"| {run.name} | ![curves]({rel}/curves.png) | ![predictions]({rel}/predictions.png) |")
        lines += ["", "Commands:", "", "```console"]
        lines += [f"$ {run.command(data.relative_to(out) if data.is_relative_to(out) else data, run_dir.relative_to(out))}"
                  for run, data, run_dir in runs]
        lines += ["```", ""]
    return "\n".join(lines)
