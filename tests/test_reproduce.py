"""coorddata reproduce: the list, a tiny run that writes a report, reuse of finished runs."""

from __future__ import annotations

import json

from conftest import assert_one_line_error
from coordconv_data.cli import REPRODUCE_BUDGETS, main
from coordconv_data.train.reproduce import BUDGETS, EXPERIMENTS


def test_list_names_every_experiment_with_an_estimate(runner):
    r = runner.invoke(main, ["reproduce", "--list"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert [line.split()[0] for line in lines] == [e.name for e in EXPERIMENTS]
    assert all("min on 2 CPU cores" in line for line in lines)
    assert {"classification", "regression", "rendering", "lanes", "simple-gans", "clevr-gans"} <= {e.name for e in EXPERIMENTS}
    assert REPRODUCE_BUDGETS == BUDGETS
    r = runner.invoke(main, ["reproduce", "--list", "--budget", "paper", "lanes"])
    assert r.exit_code == 0 and r.output.startswith("lanes ") and len(r.output.splitlines()) == 1


def test_a_tiny_reproduce_writes_a_report_and_reuses_its_runs(runner, tmp_path):
    out = tmp_path / "rep"
    r = runner.invoke(main, ["reproduce", "regression", "simple-gans", "--budget", "tiny", "--out", str(out)])
    assert r.exit_code == 0, r.output
    report = (out / "report.md").read_text()
    for part in ("## regression", "## simple-gans", "Paper / study:", "Recipes",
                 "selected epoch (on val)", "coorddata train --arch coordconv_regressor --data data/not_so_clevr_uniform.h5",
                 "walk jump ratio", "walk mass dip", "Real test images score geometry 1.000", "Nothing is selected on test"):
        assert part in report, part
    runs = sorted(p.name for p in (out / "runs" / "tiny").iterdir())
    assert runs == ["regression-conv-quadrant", "regression-conv-uniform", "regression-coordconv-quadrant",
                    "regression-coordconv-uniform", "simple-gans-coordconv-in-gd", "simple-gans-gan"]
    for picture in ("tiny-simple-gans-gan-walks.png", "tiny-simple-gans-coordconv-in-gd-walks.png"):
        assert (out / "pictures" / picture).is_file() and f"pictures/{picture}" in report
    timings = json.loads((out / "timings.json").read_text())
    assert set(timings) == {f"tiny/{e.name}/{run.name}" for e in EXPERIMENTS if e.name in ("regression", "simple-gans")
                            for run in e.runs("tiny")}
    # Again: every run is reused, nothing trains, the report is written again.
    stamps = {p.name: (p / "last.pt").stat().st_mtime_ns for p in (out / "runs" / "tiny").iterdir()}
    r = runner.invoke(main, ["reproduce", "regression", "simple-gans", "--budget", "tiny", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert r.output.count("reused") == 6
    assert stamps == {p.name: (p / "last.pt").stat().st_mtime_ns for p in (out / "runs" / "tiny").iterdir()}
    assert json.loads((out / "timings.json").read_text()) == timings


def test_reproduce_errors(runner, tmp_path):
    assert_one_line_error(runner.invoke(main, ["reproduce", "nope", "--out", str(tmp_path / "o")]), "nope", "classification")
    assert_one_line_error(runner.invoke(main, ["reproduce", "--budget", "huge"]), "--budget")
