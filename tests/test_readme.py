"""The README's tour runs top to bottom, as written, after its set-up command, in a fresh folder; then
every Python block of the README runs there, in order, as written."""

import contextlib
import io
import re
import shlex
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


def tour_steps() -> list[tuple[str, list[str]]]:
    """(command line, the output lines the README shows right after it) for each `$ coorddata` line."""
    block = re.search(r"```console\n(.*?)```", section("A tour"), re.S).group(1)
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif line.strip() and steps:
            steps[-1][1].append(line)
    return steps


def setup_command() -> str:
    """The `coorddata` part of the README's first set-up line."""
    block = re.search(r"```bash\n(.*?)```", section("Set up"), re.S).group(1)
    return block.splitlines()[0].split("&& ")[-1]


def run(line: str):
    """A `coorddata` line as a shell would run it (a `> FILE` redirect writes the output to FILE)."""
    command, _, target = line.split(" #")[0].partition(" > ")
    words = shlex.split(command)
    assert words[0] == "coorddata", line
    result = CliRunner().invoke(main, words[1:], catch_exceptions=False)
    if target.strip():
        Path(target.strip()).write_text(result.output)
    return result


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
