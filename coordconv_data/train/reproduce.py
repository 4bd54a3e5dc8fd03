"""``coorddata reproduce``: the paper's and the study's claims, run by the engine over seeds, in one report.

:func:`reproduce` makes the data files the chosen experiments (:mod:`.experiments`) need
(``OUT/data``), trains every run once per seed (``OUT/runs/<budget>/<experiment>-<run>-seed<S>``:
ordinary run folders), reuses a finished run and resumes an interrupted one (so an interrupted
``reproduce`` continues where it stopped), and writes ``OUT/report.md`` (:mod:`.report`).
``OUT/timings.json`` keeps the seconds each run trained, so a reused run reports the time it took.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import InvalidParameter
from ..store import atomic_write_bytes
from .errors import TrainError
from .experiments import DATA, EXPERIMENTS, Run, experiment, seeds_for
from .options import BUDGETS

__all__ = ["reproduce", "planned"]


def _data_path(out: Path, key: str, log: Callable[[str], None]) -> Path:
    spec = DATA[key]
    path = out / "data" / spec.name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        spec.make(path)
        log(f"made {path} ({spec.command()}) in {time.perf_counter() - t0:.1f} s")
    return path


def _done_epochs(run_dir: Path) -> int:
    with open(run_dir / "metrics.csv") as f:
        return max((int(r["epoch"]) for r in csv.DictReader(f)), default=0)


def _run_one(run: Run, data: Path, run_dir: Path, seed: int, timings: dict[str, Any], key: str,
             log: Callable[[str], None], progress: Any) -> None:
    from .config import resolve
    from .fit import resume, train
    from .run import RunDir

    planned = resolve(run.config(data, run_dir, seed))
    state = RunDir.state(run_dir)
    if state == "run":
        recorded = RunDir.read_only(run_dir).options()
        ignore = ("epochs", "device", "out", "data")
        mine = {k: v for k, v in planned.as_dict().items() if k not in ignore}
        theirs = {k: v for k, v in recorded.as_dict().items() if k not in ignore}
        if mine != theirs:
            raise TrainError(f"{run_dir} holds a run with other options than this budget's", field="out",
                             hint="choose another {out}")
        done = _done_epochs(run_dir)
        if done >= planned.epochs:
            log(f"{run_dir}: done ({done} epochs), reused")
            return
        log(f"{run_dir}: resuming from epoch {done}")
        t0 = time.perf_counter()
        resume(run_dir, {"epochs": planned.epochs}, progress=progress, log=log)
    else:
        log(f"{run_dir}: {run.command(data, run_dir, seed)}")
        t0 = time.perf_counter()
        if state == "started":
            resume(run_dir, {"epochs": planned.epochs}, progress=progress, log=log)
        else:
            train(planned, progress=progress, log=log)
    timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0


def planned(names: list[str] | None, budget: str, seeds: int | None) -> list[tuple[Any, list[tuple[Run, list[int]]]]]:
    """The chosen experiments (all by default) with each run's seeds; a one-line error for an unknown
    name or budget."""
    if budget not in BUDGETS:
        raise InvalidParameter("budget", f"budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    chosen = [experiment(n) for n in names] if names else list(EXPERIMENTS)
    all_seeds = seeds_for(budget, seeds)
    return [(e, [(r, r.seeds(all_seeds)) for r in e.runs(budget)]) for e in chosen]


def reproduce(names: list[str] | None, budget: str, out: str | Path, *, seeds: int | None = None,
              log: Callable[[str], None] | None = None, progress: Any = None) -> Path:
    """Run the chosen experiments (all by default) at ``budget`` over ``seeds`` seeds (the budget's
    default count when ``None``) into ``out``; return the report's path."""
    from .report import collect, write_report

    plan = planned(names, budget, seeds)
    say = log or (lambda line: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings_path = out / "timings.json"
    timings: dict[str, Any] = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    done = []
    for exp, runs in plan:
        trained = []
        for run, run_seeds in runs:
            data = _data_path(out, run.data, say)
            for seed in run_seeds:
                folder = out / "runs" / budget / run.folder(exp.name, seed)
                folder.parent.mkdir(parents=True, exist_ok=True)
                key = f"{budget}/{exp.name}/{run.name}/seed{seed}"
                _run_one(run, data, folder, seed, timings, key, say, progress)
                atomic_write_bytes(timings_path, (json.dumps(timings, indent=2, sort_keys=True) + "\n").encode())
            trained.append((run, data, {s: (out / "runs" / budget / run.folder(exp.name, s),
                                            timings.get(f"{budget}/{exp.name}/{run.name}/seed{s}")) for s in run_seeds}))
        done.append((exp, trained))
    pictures = out / "pictures"
    pictures.mkdir(exist_ok=True)
    results = [(exp, [collect(run, data, folders, pictures) for run, data, folders in trained]) for exp, trained in done]
    report = out / "report.md"
    atomic_write_bytes(report, write_report(results, budget, out).encode())
    return report
