"""The README's tour runs top to bottom, as written, after its set-up command, in a fresh folder; then
every Python block of the README runs there, in order, as written."""

import contextlib
import io
import re
import shlex
from pathlib import Path

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
    words = shlex.split(line.split(" #")[0])
    assert words[0] == "coorddata", line
    return CliRunner().invoke(main, words[1:], catch_exceptions=False)


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


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

    # The Python blocks, on the tour's files; what the README says they print, they print.
    blocks = python_blocks()
    assert len(blocks) >= 3
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for block in blocks:
            exec(compile(block, "README.md", "exec"), {"__name__": "__readme__"})
    out = printed.getvalue()
    assert "epoch 2: accuracy 1.000 on the held-out quadrant" in out, out
    assert "'geometry': 0.5," in out and "'stray': 0.5," in out, out
