"""``report.md`` of ``coorddata reproduce``: every claim as a distribution over seeds, then per experiment
its per-seed figures, pictures and commands.

Every figure comes from the run folders (``metrics.csv``, ``best.pt``): supervised runs at the epoch
selected on the validation split, reported on test; GANs at the epoch selected on their own samples,
with the motion of norm-corrected latent walks drawn from that epoch's generator. A claim
(:mod:`.claims`) is judged on each seed; the report gives how many seeds hold it, the median and a
distribution-free interval, and the epochs each seed needed to reach the threshold. Nothing here is
typed in but the paper's figures (:class:`~.experiments.Experiment`).
"""

from __future__ import annotations

import csv
import math
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .claims import ClaimResult, judge
from .config import recipe_source
from .experiments import DATA, Experiment, Run

__all__ = ["SeedRun", "RunResult", "collect", "write_report", "WALK_ROWS", "WALK_STEPS"]

WALK_ROWS, WALK_STEPS, WALK_SEED = 16, 10, 0  # the walks measured for every GAN run (and drawn for its first seed)


@dataclass
class SeedRun:
    """One seed of a run: its history (GANs: with a ``walks`` row at the selected epoch) and selection."""

    seed: int
    folder: Path
    rows: list[dict[str, Any]]
    selected: int
    wall: float | None

    @property
    def epochs(self) -> int:
        return max(int(r["epoch"]) for r in self.rows)

    def at(self, epoch: int, split: str) -> dict[str, Any]:
        return next((r for r in self.rows if int(r["epoch"]) == epoch and r["split"] == split), {})


@dataclass
class RunResult:
    """What one run shows over its seeds."""

    run: Run
    data: Path
    task: Any  # the Task class
    seeds: list[SeedRun] = field(default_factory=list)
    walks: Path | None = None  # GANs: the picture of the first seed's walks

    def histories(self) -> dict[int, tuple[list[dict[str, Any]], int]]:
        return {s.seed: (s.rows, s.selected) for s in self.seeds}


def _rows(folder: Path) -> list[dict[str, Any]]:
    with open(folder / "metrics.csv") as f:
        return [{k: (float(v) if k != "split" and v not in ("", None) else v) for k, v in r.items()}
                for r in csv.DictReader(f)]


def _walks(folder: Path, picture: Path | None) -> dict[str, Any]:
    """Norm-corrected latent walks from best.pt: their motion (and a picture of the first 8)."""
    from ..geometry import SceneSpec
    from ..viz import enlarge, grid, write_png
    from ..walks import walk_latents, walk_motion
    from .fit import load_run_model
    from .interpolate import walk_ends
    from .tasks import task_for

    model, cfg, _ = load_run_model(folder, "best")
    images = task_for(cfg).generate(model, walk_latents(walk_ends(model.z_dim, WALK_ROWS, WALK_SEED), WALK_STEPS), "cpu")
    motion = walk_motion(images, WALK_STEPS, SceneSpec.from_file(cfg.data)).as_dict()
    if picture is not None:
        write_png(grid([enlarge(im, 2) for im in images[: 8 * WALK_STEPS]], columns=WALK_STEPS, gap=2, background=0),
                  picture, force=True)
    return motion


def collect(run: Run, data: Path, folders: dict[int, tuple[Path, float | None]], pictures: Path) -> RunResult:
    """A run's seeds from their folders (``seed -> (folder, seconds trained)``)."""
    from ..models import model_info
    from .run import load_checkpoint
    from .tasks import TASKS

    task = TASKS[model_info(run.arch).task]
    result = RunResult(run, data, task)
    for i, (seed, (folder, wall)) in enumerate(sorted(folders.items())):
        selected = int(load_checkpoint(folder / "best.pt", arch=run.arch)["epoch"])
        seed_run = SeedRun(seed, folder, _rows(folder), selected, wall)
        if task.generates:
            picture = pictures / f"{folder.parent.name}-{folder.name}-walks.png" if i == 0 else None
            seed_run.rows.append({"epoch": selected, "split": "walks", **_walks(folder, picture)})
            result.walks = picture or result.walks
        result.seeds.append(seed_run)
    return result


def _num(value: Any, digits: int = 3, unit: str = "") -> str:
    if value in (None, "") or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}{unit}"


def _fig(task: Any, value: float) -> str:
    return _num(value, 3, task.unit)


def _judged(exp: Experiment, results: list[RunResult]) -> list[tuple[ClaimResult, RunResult]]:
    by_name = {r.run.name: r for r in results}
    return [(judge(c, name, by_name[name].histories()), by_name[name]) for c in exp.claims for name in c.runs
            if name in by_name]


def _interval(cr: ClaimResult, task: Any) -> str:
    median, low, high, coverage = cr.interval()
    if cr.n < 2:
        return _fig(task, median)
    return f"{_fig(task, median)} [{_fig(task, low)}, {_fig(task, high)}; {coverage:.0%}]"


def _reached(cr: ClaimResult, epochs: int) -> str:
    if not any(s.curve for s in cr.seeds):
        return "measured at the selected epoch only"
    reached = cr.reached()
    if not reached:
        return f"none in {epochs}"
    spread = f"{min(reached)}-{max(reached)}" if min(reached) != max(reached) else f"{reached[0]}"
    return f"{spread} ({len(reached)} of {cr.n})"


def summary(judged: list[tuple[Experiment, list[tuple[ClaimResult, RunResult]]]]) -> list[str]:
    """One row per claim and run: how many seeds hold it, the median with its interval, the epochs."""
    lines = ["| experiment | claim | run | rule | seeds holding | median [95% interval; coverage] "
             "| epochs to reach it (test) | paper / study |", "|---|---|---|---|---|---|---|---|"]
    for exp, claims in judged:
        for i, (cr, rr) in enumerate(claims):
            epochs = max(s.epochs for s in rr.seeds)
            lines.append(f"| {exp.name if i == 0 else ''} | {cr.claim.text} | {cr.run} | `{cr.claim.rule}` "
                         f"| **{cr.held} of {cr.n}** | {_interval(cr, rr.task)} | {_reached(cr, epochs)} "
                         f"| {exp.short if i == 0 else ''} |")
    return lines


def _claim_table(cr: ClaimResult, rr: RunResult) -> list[str]:
    claim, task = cr.claim, rr.task
    extra = list(claim.metrics) if len(claim.metrics) > 1 else []
    head = "| seed | selected epoch | " + "".join(f"{m} | " for m in extra) + \
           f"{claim.split} figure (selected) | {claim.split} figure (last epoch) | holds | first epoch at the threshold |"
    lines = [f"**{claim.text}** ({cr.run}: `{claim.rule}`, judged at the epoch selected on "
             f"{'its samples' if task.generates else 'val'}): {cr.held} of {cr.n} seeds hold it.", "", head,
             "|" + "---|" * (6 + len(extra))]
    for s, sr in zip(cr.seeds, rr.seeds):
        row = sr.at(s.selected_epoch, claim.split) if s.selected_epoch is not None else {}
        cells = "".join(f"{_num(row.get(m))} | " for m in extra)
        last = "not measured" if math.isnan(s.last) and not s.curve else _fig(task, s.last)
        lines.append(f"| {s.seed} | {s.selected_epoch} of {s.last_epoch} | {cells}{_fig(task, s.selected)} "
                     f"| {last} | {'yes' if s.holds else 'no'} | {s.reached_at or ('-' if s.curve else 'no curve')} |")
    return lines + [""]


def _supervised_runs(results: list[RunResult], out: Path) -> list[str]:
    lines = ["| run | arch | data | seeds | epochs | test (selected epoch), per seed | val (selected epoch), per seed "
             "| wall per seed |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        p = r.task.primary
        tests = ", ".join(_fig(r.task, s.at(s.selected, "test").get(p)) for s in r.seeds)
        vals = ", ".join(_fig(r.task, s.at(s.selected, "val").get(p)) for s in r.seeds)
        walls = [s.wall for s in r.seeds if s.wall]
        lines.append(f"| {r.run.name} | `{r.run.arch}` | {DATA[r.run.data].name} | {len(r.seeds)} "
                     f"| {max(s.epochs for s in r.seeds)} | {p}: {tests} | {vals} "
                     f"| {f'{sum(walls) / len(walls):.0f} s' if walls else '-'} |")
    lines += ["", "Pictures of the first seed:", "", "| run | curves | predictions (test, selected epoch) |", "|---|---|---|"]
    for r in results:
        rel = r.seeds[0].folder.relative_to(out)
        lines.append(f"| {r.run.name} | ![curves]({rel}/curves.png) | ![predictions]({rel}/predictions.png) |")
    return lines


def _gan_runs(results: list[RunResult], out: Path) -> list[str]:
    from ..walks import LABELS

    lines = ["| run | arch | seed | selected epoch (on its samples) | geometry | position_tv | "
             + " | ".join(f"walks: {label}" for label in LABELS) + " | slide fraction | wall |",
             "|" + "---|" * (8 + len(LABELS))]
    untrained = []
    for r in results:
        for s in r.seeds:
            g, m = s.at(s.selected, "generated"), s.at(s.selected, "walks")
            counts = " | ".join(str(int(m.get(label, 0))) for label in LABELS)
            lines.append(f"| {r.run.name} | `{r.run.arch}` | {s.seed} | {s.selected} of {s.epochs} "
                         f"| {_num(g.get('geometry'))} | {_num(g.get('position_tv'))} | {counts} "
                         f"| **{_num(m.get('slide_fraction'), 2)}** | {f'{s.wall:.0f} s' if s.wall else '-'} |")
        if all(float(s.at(s.selected, "generated").get("geometry", 0.0)) == 0.0 for s in r.seeds):
            untrained.append(r.run.name)
    real = next(row for row in results[0].seeds[0].rows if row["split"] == "real")
    lines += ["", f"Real images of the file score geometry {real['geometry']:.3f}, position_tv {real['position_tv']:.3f} "
                  f"({int(real['n'])} images): the ceiling."]
    if untrained:
        lines += ["", f"**Not trained far enough to judge:** {', '.join(untrained)} draw(s) no correct scene at this "
                      "budget on any seed (geometry 0): their walks show what their blobs do, not what a trained "
                      "generator does, and the claims about them say no more than that."]
    lines += ["", f"Walks: {WALK_ROWS} norm-corrected latent walks of {WALK_STEPS} steps from each seed's best.pt (the "
                  "original's `util.interpolate`), every colour's object labelled (`coordconv_data.walks`): slide "
                  "(a nearly straight path in even steps, steady mass), still, jitter, teleport (a crooked or jumping "
                  "path), fade (its mass dips below 0.6 of its ends', or it vanishes at some step), absent. Slide "
                  "fraction: slides over the objects present.", "",
              "| run | samples of the selected epoch (first seed) | latent walks (first seed, the first 8, one per row) |",
              "|---|---|---|"]
    for r in results:
        s = r.seeds[0]
        walks = f"![walks]({r.walks.relative_to(out)})" if r.walks else "-"
        lines.append(f"| {r.run.name} | ![samples]({s.folder.relative_to(out)}/samples_{s.selected:03d}.png) | {walks} |")
    return lines


def _training_time(results: list[tuple[Experiment, list[RunResult]]]) -> str:
    # A run trained outside `reproduce` (by hand, then placed in the folder) has no recorded time: say so
    # rather than count it as zero.
    walls = [s.wall for _, rs in results for r in rs for s in r.seeds]
    known = [w for w in walls if w is not None]
    if not known:
        return "the runs' training time is not recorded (they were trained outside `coorddata reproduce`)"
    text = f"the runs trained for {sum(known) / 60:.1f} min in all"
    if len(known) < len(walls):
        text += f" ({len(walls) - len(known)} of {len(walls)} runs were trained outside `coorddata reproduce`: not counted)"
    return text


def write_report(results: list[tuple[Experiment, list[RunResult]]], budget: str, out: Path) -> str:
    """The text of ``report.md``."""
    import torch

    from .. import __version__

    judged = [(exp, _judged(exp, rs)) for exp, rs in results]
    seeds = sorted({s.seed for _, rs in results for r in rs for s in r.seeds})
    lines = [f"# coorddata reproduce --budget {budget} --seeds {len(seeds)}", "",
             f"coordconv_data {__version__}, torch {torch.__version__}, Python {platform.python_version()}; "
             f"{_training_time(results)}, on seeds {', '.join(map(str, seeds))} (a run that says so on fewer). "
             "Each claim is judged on every seed at the epoch selected on the validation split (a tenth of the train "
             "split; GANs: the epoch selected on their samples' geometry score), on test. Nothing is selected on "
             "test; the epochs to reach a threshold describe the test curves after the fact. The interval is "
             "distribution-free: order statistics of the seeds' figures, with the coverage they give.", "",
             "## Claims", "", *summary(judged), ""]
    for (exp, rs), (_, claims) in zip(results, judged):
        lines += [f"## {exp.name}: {exp.title}", "", f"**Paper / study:** {exp.claim}.", ""]
        if exp.note.get(budget):
            lines += [f"**This budget departs from the recipe:** {exp.note[budget]}.", ""]
        sources: dict[str, list[str]] = {}
        for arch in sorted({r.run.arch for r in rs}):
            sources.setdefault(recipe_source(arch), []).append(f"`{arch}`")
        lines += ["**Recipes** (`coorddata models`): " + "; ".join(f"{', '.join(a)} from {src}"
                                                                 for src, a in sources.items()), ""]
        for cr, rr in claims:
            lines += _claim_table(cr, rr)
        if rs:
            lines += (_gan_runs if rs[0].task.generates else _supervised_runs)(rs, out)
        lines += ["", "Commands (one per seed):", "", "```console"]
        for r in rs:
            folder = Path("runs") / budget / r.run.folder(exp.name, "SEED")
            lines.append(f"$ {r.run.command(r.data.relative_to(out), folder, 'SEED')}")
        lines += ["```", ""]
    return "\n".join(lines)
