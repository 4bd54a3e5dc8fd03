"""``report.md`` of ``coorddata reproduce``: a summary table, then per experiment its runs and pictures.

Every figure comes from the run folders (``metrics.csv``, ``best.pt``): supervised runs at the
epoch selected on the validation split, reported on test; GANs at the epoch selected on their own
samples, with the motion of norm-corrected latent walks drawn from that epoch's generator. Nothing
here is typed in but the paper's figures (:class:`~.experiments.Experiment`).
"""

from __future__ import annotations

import csv
import math
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import recipe_source
from .experiments import DATA, Experiment, Run

__all__ = ["RunResult", "collect", "write_report"]

WALK_ROWS, WALK_STEPS, WALK_SEED = 16, 10, 0  # the walks measured and drawn for every GAN run


@dataclass
class RunResult:
    """What one finished run shows: its history, the selected epoch, and (GANs) its walks."""

    run: Run
    data: Path
    folder: Path
    task: str
    primary: str
    rows: list[dict[str, Any]]
    selected: int
    wall: float | None
    motion: dict[str, Any] = field(default_factory=dict)  # GANs: walk_motion(...).as_dict()
    walks: Path | None = None  # GANs: the picture of the walks

    @property
    def epochs(self) -> int:
        return max(int(r["epoch"]) for r in self.rows)

    def at(self, epoch: int, split: str) -> dict[str, Any]:
        return next((r for r in self.rows if int(r["epoch"]) == epoch and r["split"] == split), {})


def _rows(folder: Path) -> list[dict[str, Any]]:
    with open(folder / "metrics.csv") as f:
        return [{k: (float(v) if k != "split" and v not in ("", None) else v) for k, v in r.items()}
                for r in csv.DictReader(f)]


def _walks(result: RunResult, pictures: Path) -> None:
    """Norm-corrected latent walks from best.pt: their motion, and a picture of the first 8."""
    from ..geometry import SceneSpec
    from ..viz import enlarge, grid, write_png
    from ..walks import walk_latents, walk_motion
    from .fit import load_run_model
    from .interpolate import walk_ends
    from .tasks import task_for

    model, cfg, _ = load_run_model(result.folder, "best")
    images = task_for(cfg).generate(model, walk_latents(walk_ends(model.z_dim, WALK_ROWS, WALK_SEED), WALK_STEPS), "cpu")
    result.motion = walk_motion(images, WALK_STEPS, SceneSpec.from_file(cfg.data)).as_dict()
    result.walks = pictures / f"{result.folder.parent.name}-{result.folder.name}-walks.png"
    write_png(grid([enlarge(im, 2) for im in images[: 8 * WALK_STEPS]], columns=WALK_STEPS, gap=2, background=0),
              result.walks, force=True)


def collect(run: Run, data: Path, folder: Path, wall: float | None, pictures: Path) -> RunResult:
    import torch

    from ..models import model_info
    from .tasks import TASKS

    task = TASKS[model_info(run.arch).task]
    selected = int(torch.load(folder / "best.pt", map_location="cpu", weights_only=True)["epoch"])
    result = RunResult(run, data, folder, task.name, task.primary, _rows(folder), selected, wall)
    if task.generates:
        _walks(result, pictures)
    return result


def _num(value: Any, digits: int = 3, unit: str = "") -> str:
    if value in (None, "") or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}{unit}"


def _metric(result: RunResult, row: dict[str, Any]) -> str:
    value = row.get(result.primary)
    return _num(value, 3, " px") if result.primary == "px_error" else _num(value)


def _figure(result: RunResult) -> str:
    """The run's headline figure, with the epoch it comes from."""
    if result.task == "gan":
        g, m = result.at(result.selected, "generated"), result.motion
        return (f"geometry {_num(g.get('geometry'))}, position_tv {_num(g.get('position_tv'), 2)}, walk jump ratio "
                f"{_num(m.get('jump_ratio'), 2)}, mass dip {_num(m.get('mass_dip'), 2)} (epoch {result.selected} of "
                f"{result.epochs})")
    return f"{result.primary} {_metric(result, result.at(result.selected, 'test'))} (epoch {result.selected} of {result.epochs})"


def summary(results: list[tuple[Experiment, list[RunResult]]]) -> list[str]:
    """One row per run: the figure (test at the epoch selected on validation; GANs: their samples)."""
    lines = ["| experiment | run | arch | our figure (test, epoch selected on val; GANs: on their samples) | paper / study |",
             "|---|---|---|---|---|"]
    for exp, rs in results:
        for i, r in enumerate(rs):
            lines.append(f"| {exp.name if i == 0 else ''} | {r.run.name} | `{r.run.arch}` | {_figure(r)} "
                         f"| {exp.short if i == 0 else ''} |")
    return lines


def _supervised(results: list[RunResult], out: Path) -> list[str]:
    lines = ["| run | arch | data | epochs | selected epoch (on val) | val (selected) | test (selected) | test (last epoch) "
             "| train (last epoch, running) | wall |", "|---|---|---|---|---|---|---|---|---|---|"]
    details = []
    for r in results:
        best, last = r.selected, r.epochs
        lines.append(f"| {r.run.name} | `{r.run.arch}` | {DATA[r.run.data].name} | {last} | {best} "
                     f"| {_metric(r, r.at(best, 'val'))} | **{_metric(r, r.at(best, 'test'))}** "
                     f"| {_metric(r, r.at(last, 'test'))} | {_metric(r, r.at(last, 'train'))} "
                     f"| {f'{r.wall:.0f} s' if r.wall else '-'} |")
        if r.task == "segmentation":
            test = r.at(best, "test")
            names = [k[len("recall_"):] for k in test if k.startswith("recall_")]
            details.append(f"- {r.run.name} (`{r.run.arch}`) test per-class recall at the selected epoch: "
                           + ", ".join(f"{n} {test[f'recall_{n}']:.2f}" for n in names))
    lines += ["", f"Metric: {', '.join(sorted({r.primary for r in results}))}; each run's `metrics.csv` holds every epoch."]
    lines += details + ["", "| run | curves | predictions (test) |", "|---|---|---|"]
    for r in results:
        rel = r.folder.relative_to(out)
        lines.append(f"| {r.run.name} | ![curves]({rel}/curves.png) | ![predictions]({rel}/predictions.png) |")
    return lines


def _gan(results: list[RunResult], out: Path) -> list[str]:
    even = 1 / (WALK_STEPS - 1)
    lines = ["| run | arch | epochs | selected epoch (on its samples) | geometry | position_tv | missing | extra | malformed "
             f"| stray | walk jump ratio (even: {even:.3f}) | walk mass dip | moving / still / untracked objects | wall |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        g, m = r.at(r.selected, "generated"), r.motion
        lines.append(f"| {r.run.name} | `{r.run.arch}` | {r.epochs} | {r.selected} | **{_num(g['geometry'])}** "
                     f"| {_num(g['position_tv'])} | {_num(g['missing'])} | {_num(g['extra'])} | {_num(g['malformed'])} "
                     f"| {_num(g['stray'])} | **{_num(m['jump_ratio'])}** | **{_num(m['mass_dip'])}** "
                     f"| {m['moving']} / {m['still']} / {m['untracked']} | {f'{r.wall:.0f} s' if r.wall else '-'} |")
    real = next(row for row in results[0].rows if row["split"] == "real")
    lines += ["", f"Real images of the file score geometry {real['geometry']:.3f}, position_tv {real['position_tv']:.3f} "
                  f"({int(real['n'])} images): the ceiling.", "",
              f"Walks: {WALK_ROWS} norm-corrected latent walks of {WALK_STEPS} steps from each run's best.pt (the "
              "original's `util.interpolate`); jump ratio = largest centre jump / path length, mass dip = least "
              "foreground mass / mean of the two ends' (1: no fading), averaged over the objects that moved (still: "
              "travelled under 1 px; untracked: present at fewer than two steps).", "",
              "| run | samples of the selected epoch | latent walks (the first 8, one per row) |", "|---|---|---|"]
    for r in results:
        lines.append(f"| {r.run.name} | ![samples]({r.folder.relative_to(out)}/samples_{r.selected:03d}.png) "
                     f"| ![walks]({r.walks.relative_to(out)}) |")
    return lines


def write_report(results: list[tuple[Experiment, list[RunResult]]], budget: str, out: Path, minutes: float) -> str:
    """The text of ``report.md``."""
    import torch

    from .. import __version__

    lines = [f"# coorddata reproduce --budget {budget}", "",
             f"coordconv_data {__version__}, torch {torch.__version__}, Python {platform.python_version()}; the runs "
             f"trained for {minutes:.1f} min in all. Supervised figures: test at the epoch selected on the "
             "validation split (a tenth of the train split); GANs: the epoch selected on their samples' geometry "
             "score. Nothing is selected on test.", "", "## Summary", "", *summary(results), ""]
    for exp, rs in results:
        lines += [f"## {exp.name}: {exp.title}", "", f"**Paper / study:** {exp.claim}.", ""]
        if exp.note.get(budget):
            lines += [f"**This budget departs from the recipe:** {exp.note[budget]}.", ""]
        archs = sorted({r.run.arch for r in rs})
        lines += ["**Recipes** (`coorddata models`): " + "; ".join(f"`{a}` from {recipe_source(a)}" for a in archs), ""]
        lines += (_gan if rs and rs[0].task == "gan" else _supervised)(rs, out)
        lines += ["", "Commands:", "", "```console"]
        lines += [f"$ {r.run.command(r.data.relative_to(out), r.folder.relative_to(out))}" for r in rs]
        lines += ["```", ""]
    return "\n".join(lines)
