"""The README's tour runs top to bottom, as written, after its set-up command, in a fresh folder; then
every Python block of the README runs there, in order, as written."""

import contextlib
import filecmp
import glob
import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from coordconv_data.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"
SIZE = re.compile(r"\d+(\.\d+)? (B|KiB|MiB|GiB|TiB)")


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def steps_of(block: str) -> list[tuple[str, list[str]]]:
    """(command line, the output lines the README shows right after it) for each `$ ` line of a block."""
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif line.strip() and steps:
            steps[-1][1].append(line)
    return steps


def tour_steps() -> list[tuple[str, list[str]]]:
    """(command line, the output lines the README shows right after it) for each `$ coorddata` line."""
    return steps_of(re.search(r"```console\n(.*?)```", section("A tour"), re.S).group(1))


def setup_command() -> str:
    """The `coorddata` part of the README's first set-up line."""
    block = re.search(r"```bash\n(.*?)```", section("Set up"), re.S).group(1)
    return block.splitlines()[0].split("&& ")[-1]


def run(line: str):
    """A `coorddata` line as a shell would run it (a `> FILE` redirect writes the output to FILE)."""
    command, _, target = line.split(" #")[0].partition(" > ")
    words = [w for word in shlex.split(command) for w in _glob(word)]
    assert words[0] == "coorddata", line
    result = CliRunner().invoke(main, words[1:], catch_exceptions=False)
    if target.strip():
        Path(target.strip()).write_text(result.output)
    return result


def _glob(word: str) -> list[str]:
    """A word as a shell expands it: a pattern that matches names those files, sorted; else itself."""
    matches = sorted(glob.glob(word)) if any(c in word for c in "*?[") else []
    return matches or [word]


def console_lines(title: str) -> list[str]:
    """The `$ coorddata` lines of a section's console blocks."""
    blocks = re.findall(r"```console\n(.*?)```", section(title), re.S)
    return [line[2:] for block in blocks for line in block.splitlines() if line.startswith("$ coorddata ")]


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


DEFAULT_FILES = {"not-so-clevr": "not_so_clevr_{split}.h5", "sort-of-clevr": "sort_of_clevr.h5", "lanes": "lanes.h5"}


def written_by(line: str) -> str:
    """The file a tour line writes: its --out, or its command's default file."""
    words = shlex.split(line.split(" #")[0])
    if "--out" in words:
        return words[words.index("--out") + 1]
    split = words[words.index("--split") + 1] if "--split" in words else "quadrant"
    return DEFAULT_FILES.get(words[1], "").format(split=split)


# What each Python block is known for printing (the README says so beside it).
PRINTS = {
    "held-out quadrant": ["epoch 2: accuracy 1.000 on the held-out quadrant"],
    "score_images": ["'geometry': 0.5,", "'stray': 0.5,"],
    "load_dataset": ["['blue', 'red', 'green', 'orange', 'gray', 'yellow']"],
    "from_spec": ["9000000", "torch.Size([16, 3, 128, 128]) torch.Size([16, 128, 128])"],
}


def test_the_tour_runs_top_to_bottom(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(setup_command()).exit_code == 0
    steps = tour_steps()
    assert len(steps) >= 10
    for line, shown in steps:
        result = run(line)
        assert result.exit_code == 0, f"{line}\n{result.output}"
        for want, got in zip(shown, result.output.splitlines()):
            assert SIZE.sub("SIZE", got) == SIZE.sub("SIZE", want), (line, got)
    for name in ("not_so_clevr_uniform.h5", "data/not_so_clevr_quadrant.h5", "rectangle_4_uniform.h5",
                 "sort_of_clevr.h5", "lanes.h5", "grid.png", "previews/lanes.jpg"):
        assert (tmp_path / name).exists(), name
    assert (tmp_path / "previews/lanes.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG, as named


def test_every_python_block_is_tested():
    blocks = python_blocks()
    assert len(blocks) >= 3
    assert all(any(key in block for block in blocks) for key in PRINTS)


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_a_python_block_runs_as_written(index, tmp_path, monkeypatch):
    """Each Python block, in a fresh folder holding the tour's files it reads (made by the tour's own
    lines), prints what the README says it prints."""
    block = python_blocks()[index]
    monkeypatch.chdir(tmp_path)
    assert run(setup_command()).exit_code == 0
    for line, _ in tour_steps():
        name = written_by(line)
        if name.endswith(".h5") and name in block and not (tmp_path / name).exists():
            assert run(line).exit_code == 0, line
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(block, "README.md", "exec"), {"__name__": "__readme__"})
    out = printed.getvalue()
    for key, lines in PRINTS.items():
        if key in block:
            assert all(line in out for line in lines), out


def test_working_with_other_tools_runs_as_written(tmp_path, monkeypatch):
    """The section's `coorddata` lines, after the set-up command and the tour lines that make its files."""
    monkeypatch.chdir(tmp_path)
    assert run(setup_command()).exit_code == 0
    lines = console_lines("Working with other tools")
    assert len(lines) >= 5
    for line, _ in tour_steps():
        name = written_by(line)
        if name.endswith(".h5") and name in " ".join(lines):
            assert run(line).exit_code == 0, line
    for line in lines:
        result = run(line)
        assert result.exit_code == 0, f"{line}\n{result.output}"
    assert (tmp_path / "runs/reg-seed3/metrics.csv").is_file() and (tmp_path / "relational_parquet/SHA256SUMS").is_file()


def _metrics(run: Path) -> list[str]:
    """metrics.csv without its seconds column (the figures of a run)."""
    rows = [line.split(",") for line in (run / "metrics.csv").read_text().splitlines()]
    keep = [i for i, name in enumerate(rows[0]) if name != "seconds"]
    return [",".join(row[i] for i in keep) for row in rows]


def test_beyond_one_machine_runs_as_written(tmp_path, monkeypatch, one_cluster_at_a_time):
    """The section's `coorddata` lines in order after the set-up command (shown output checked as in the
    tour; `shards/*.h5` expanded as a shell does), then the job array's line as Slurm runs it."""
    pytest.importorskip("distributed")  # the [cluster] extra, for the --dask line
    monkeypatch.chdir(tmp_path)
    assert run(setup_command()).exit_code == 0
    blocks = re.findall(r"```console\n(.*?)```", section("Beyond one machine"), re.S)
    steps = [(line, shown) for block in blocks for line, shown in steps_of(block) if line.startswith("coorddata ")]
    assert len(steps) >= 10 and any("--dask local" in line for line, _ in steps)
    said = {}
    for line, shown in steps:
        result = run(line)
        assert result.exit_code == 0, f"{line}\n{result.output}"
        for want, got in zip(shown, result.output.splitlines()):
            assert SIZE.sub("SIZE", got) == SIZE.sub("SIZE", want), (line, got)
        said[line.split(" #")[0].strip()] = result.output
    # what the section says of them
    info = said["coorddata info shards/lanes-00003-of-00004.h5"]
    assert "shard: 3 of 4 (0..3): train samples 192..255 of 256, test samples 192..255 of 256; content sha256:" in info
    assert filecmp.cmp("lanes_256_copy.h5", "lanes_256_one.h5", shallow=False)  # the copy: the one-machine file
    from coordconv_data.store import read_split

    for merged in ("lanes_256.h5", "cluster/lanes_256.h5"):
        for split in ("train", "test"):
            a, b = read_split(merged, split), read_split("lanes_256_one.h5", split)
            assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a), (merged, split)
    assert _metrics(tmp_path / "runs/merged") == _metrics(tmp_path / "runs/fly")  # the same figures
    # the job array's task as Slurm runs it: two tasks of a larger array, so that a shard is a block or two
    script = next(b for b in re.findall(r"```bash\n(.*?)```", section("Beyond one machine"), re.S) if "#SBATCH" in b)
    (line,) = [x for x in script.splitlines() if x.startswith("coorddata ")]
    from coordconv_data.store import summarize

    for task in (0, 99999):
        monkeypatch.setenv("SLURM_ARRAY_TASK_ID", str(task))
        monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "100000")
        monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
        result = run(os.path.expandvars(line))
        assert result.exit_code == 0, f"{line}\n{result.output}"
        s = summarize(f"lanes-shards/lanes-{task:05d}-of-100000.h5")
        assert (s.attrs["shard_index"], s.attrs["shard_count"]) == (task, 100000) and s.params["n"] == 10_000_000
        assert 0 < s.lengths["train"] <= 128


@pytest.mark.slow
def test_beyond_one_machine_torchrun_runs_as_written(tmp_path):
    """The section's `torchrun` line: two processes on this machine train on a spec."""
    lines = [line for block in re.findall(r"```console\n(.*?)```", section("Beyond one machine"), re.S)
             for line, _ in steps_of(block) if line.startswith("torchrun ")]
    assert len(lines) == 1
    words = shlex.split(lines[0].split(" #")[0])
    repo = README.parent
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", *words[1:]], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    record = json.loads((tmp_path / "runs/fly-ddp/config.json").read_text())
    assert record["world_size"] == 2 and record["data"]["spec"].startswith("lanes:n=256")
