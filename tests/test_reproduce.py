"""coorddata reproduce: the list, a tiny run that writes a report, reuse of finished runs."""

from __future__ import annotations

import json
import os
import stat

from conftest import assert_one_line_error
from coordconv_data.cli import main
from coordconv_data.train.experiments import EXPERIMENTS


def test_list_names_every_experiment_with_an_estimate(runner):
    r = runner.invoke(main, ["reproduce", "--list"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert [line.split()[0] for line in lines] == [e.name for e in EXPERIMENTS] + ["all"]
    assert all("min on 2 CPU cores" in line for line in lines)
    total = sum(float(line.split("~")[1].split()[0]) for line in lines[:-1])
    assert abs(float(lines[-1].split("~")[1].split()[0]) - total) <= len(lines)  # rounded per line
    assert {"classification", "regression", "rendering", "lanes", "simple-gans", "clevr-gans"} <= {e.name for e in EXPERIMENTS}
    r = runner.invoke(main, ["reproduce", "--list", "--budget", "paper", "lanes"])
    assert r.exit_code == 0 and r.output.startswith("lanes ") and len(r.output.splitlines()) == 1
    assert "30 trainings" in r.output  # three archs on ten seeds
    assert "~555 min on 2 CPU cores" in r.output  # the study's scale, measured per arch on 2 cores
    assert "no estimate" in runner.invoke(main, ["reproduce", "--list", "--budget", "paper", "regression"]).output
    fewer = runner.invoke(main, ["reproduce", "--list", "classification", "--seeds", "2"]).output
    assert "8 trainings" in fewer  # four runs on 2 seeds
    assert "16 trainings" in runner.invoke(main, ["reproduce", "--list", "classification"]).output  # deconv: 3 of 5


def test_every_claim_names_runs_of_every_budget():
    for e in EXPERIMENTS:
        assert e.claims, e.name
        for claim in e.claims:
            for budget in ("quick", "paper"):
                assert set(claim.runs) <= {r.name for r in e.runs(budget)}, (e.name, budget, claim.runs)


def test_a_tiny_reproduce_over_two_seeds_writes_the_claims_and_reuses_its_runs(runner, tmp_path):
    out = tmp_path / "rep"
    chosen = ("lanes", "clevr-gans")  # the tiny budget's small files: seconds
    r = runner.invoke(main, ["reproduce", *chosen, "--budget", "tiny", "--seeds", "2", "--out", str(out)])
    assert r.exit_code == 0, r.output
    report = (out / "report.md").read_text()
    for part in ("# coorddata reproduce --budget tiny --seeds 2", "## Claims", "## lanes", "## clevr-gans",
                 "Paper / study:", "Recipes", "seeds holding", "of 2**", "the coordinate-bias net tells",
                 "recall_yellow_right", "walks: slide", "slide fraction", "Real images of the file score geometry 1.000",
                 "Nothing is selected on test", "Not trained far enough to judge",
                 "coorddata train --arch fcn_vgg9 --data data/lanes_24_32.h5 --epochs 1 --seed SEED"):
        assert part in report, part
    runs = sorted(p.name for p in (out / "runs" / "tiny").iterdir())
    assert runs == [f"{name}-seed{s}" for name in ("clevr-gans-gan", "lanes-coordbias", "lanes-plain") for s in (0, 1)]
    picture = "tiny-clevr-gans-gan-seed0-walks.png"
    assert (out / "pictures" / picture).is_file() and f"pictures/{picture}" in report
    timings = json.loads((out / "timings.json").read_text())
    assert set(timings) == {f"tiny/{e.name}/{run.name}/seed{s}" for e in EXPERIMENTS if e.name in chosen
                            for run in e.runs("tiny") for s in (0, 1)}
    # Again: every run is reused, nothing trains, the report is written again.
    stamps = {p.name: (p / "last.pt").stat().st_mtime_ns for p in (out / "runs" / "tiny").iterdir()}
    r = runner.invoke(main, ["reproduce", *chosen, "--budget", "tiny", "--seeds", "2", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert r.output.count("reused") == 6
    assert stamps == {p.name: (p / "last.pt").stat().st_mtime_ns for p in (out / "runs" / "tiny").iterdir()}
    assert json.loads((out / "timings.json").read_text()) == timings
    minutes = sum(timings.values()) / 60
    assert f"the runs trained for {minutes:.1f} min in all, on seeds 0, 1" in (out / "report.md").read_text()
    # Runs trained by hand and placed in the folder have no recorded time: the report says so, not "0.0 min".
    partial = {k: v for k, v in timings.items() if "lanes-plain" not in k and "/plain/" not in k}
    (out / "timings.json").write_text(json.dumps(partial))
    assert runner.invoke(main, ["reproduce", *chosen, "--budget", "tiny", "--seeds", "2", "--out", str(out)]).exit_code == 0
    assert "(2 of 6 runs were trained outside `coorddata reproduce`: not counted)" in (out / "report.md").read_text()
    (out / "timings.json").unlink()
    assert runner.invoke(main, ["reproduce", *chosen, "--budget", "tiny", "--seeds", "2", "--out", str(out)]).exit_code == 0
    assert "training time is not recorded" in (out / "report.md").read_text()


def test_reproduce_errors(runner, tmp_path):
    assert_one_line_error(runner.invoke(main, ["reproduce", "nope", "--out", str(tmp_path / "o")]), "nope", "classification")
    assert_one_line_error(runner.invoke(main, ["reproduce", "nope", "--list"]), "nope")
    assert_one_line_error(runner.invoke(main, ["reproduce", "--budget", "huge"]), "--budget")
    assert_one_line_error(runner.invoke(main, ["reproduce", "--seeds", "0"]), "--seeds")
    assert not (tmp_path / "o").exists()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert_one_line_error(runner.invoke(main, ["reproduce", "--budget", "tiny", "--out", str(fifo)]), "--out", "not a folder")
    assert stat.S_ISFIFO(fifo.stat().st_mode)
