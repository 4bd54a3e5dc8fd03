"""``coorddata reproduce``: the paper's and the study's comparisons, run by the engine, in one report.

:func:`reproduce` makes the data files the chosen experiments (:mod:`.experiments`) need
(``OUT/data``), trains every run (``OUT/runs/<budget>/<experiment>-<run>``: ordinary run folders),
reuses a finished run and resumes an interrupted one (so an interrupted ``reproduce`` continues where
it stopped), and writes ``OUT/report.md`` (:mod:`.report`). ``OUT/timings.json`` keeps the seconds
each run trained, so a reused run reports the time it took.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import InvalidParameter
from ..store import atomic_write_bytes
from .options import TrainConfig
from .errors import TrainError
from .experiments import BUDGETS, DATA, EXPERIMENTS, Run, experiment

__all__ = ["reproduce"]


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
        recorded = RunDir.read_only(run_dir).options()
        mine = {k: v for k, v in planned.as_dict().items() if k not in ("epochs", "device", "out", "data")}
        theirs = {k: v for k, v in recorded.as_dict().items() if k not in ("epochs", "device", "out", "data")}
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
        log(f"{run_dir}: {run.command(data, run_dir)}")
        t0 = time.perf_counter()
        if state == "started":
            resume(run_dir, {"epochs": planned.epochs}, progress=progress, log=log)
        else:
            train(planned, progress=progress, log=log)
    timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0


def reproduce(names: list[str] | None, budget: str, out: str | Path, *, log: Callable[[str], None] | None = None,
              progress: Any = None) -> Path:
    """Run the chosen experiments (all by default) at ``budget`` into ``out``; return the report's path."""
    from .report import collect, write_report

    if budget not in BUDGETS:
        raise InvalidParameter("budget", f"budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    chosen = [experiment(n) for n in names] if names else list(EXPERIMENTS)
    say = log or (lambda line: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings_path = out / "timings.json"
    timings: dict[str, Any] = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    done = []
    for exp in chosen:
        runs = []
        for run in exp.runs(budget):
            data = _data_path(out, run.data, say)
            folder = out / "runs" / budget / f"{exp.name}-{run.name}"
            folder.parent.mkdir(parents=True, exist_ok=True)
            key = f"{budget}/{exp.name}/{run.name}"
            _run_one(run, data, folder, timings, key, say, progress)
            atomic_write_bytes(timings_path, (json.dumps(timings, indent=2, sort_keys=True) + "\n").encode())
            runs.append((run, data, folder, timings.get(key)))
        done.append((exp, runs))
    pictures = out / "pictures"
    pictures.mkdir(exist_ok=True)
    results = [(exp, [collect(run, data, folder, wall, pictures) for run, data, folder, wall in runs]) for exp, runs in done]
    minutes = sum(v for k, v in timings.items() if k.startswith(f"{budget}/")) / 60
    report = out / "report.md"
    atomic_write_bytes(report, write_report(results, budget, out, minutes).encode())
    return report
