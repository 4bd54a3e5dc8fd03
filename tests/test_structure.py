"""The package's shape: one home per concept, found by walking the source.

A dataset kind is known in one place (``coordconv_data/kinds``) and a task's behaviour in one place
(``coordconv_data/train/tasks.py``): nowhere else does the code compare a kind or a task by name, or
keep a list of the kinds' names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import coordconv_data
from coordconv_data.kinds import KINDS

PACKAGE = Path(coordconv_data.__file__).parent
KIND_NAMES = set(KINDS)
TASK_NAMES = {"classification", "rendering", "regression", "segmentation", "gan"}
NAMED = {"task", "kind", "dataset"}  # attributes and variables that hold a task's or a kind's name


def _sources(exclude: tuple[str, ...]) -> list[tuple[str, ast.AST]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if not rel.startswith(exclude):
            out.append((rel, ast.parse(path.read_text(), rel)))
    return out


def _is_name_literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in KIND_NAMES | TASK_NAMES


def _holds_a_name(node: ast.AST) -> bool:
    # x.task, x.kind, x.dataset, task, kind (not numpy's dtype.kind)
    if isinstance(node, ast.Attribute):
        return node.attr in NAMED and not (isinstance(node.value, ast.Attribute) and node.value.attr == "dtype")
    return isinstance(node, ast.Name) and node.id in NAMED


def comparisons(exclude: tuple[str, ...]) -> list[str]:
    """``file:line`` of every ``==``/``!=``/``in`` comparison outside ``exclude`` that branches on a task's
    or kind's name: against a name written out (``task == "gan"``), or of two names (``a.kind != b.dataset``)."""
    found = []
    for rel, tree in _sources(exclude):
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn))
                                                     for op in node.ops):
                operands = [node.left, *node.comparators]
                if any(map(_is_name_literal, operands)) or sum(map(_holds_a_name, operands)) >= 2:
                    found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    return found


def kind_lists(exclude: tuple[str, ...]) -> list[str]:
    """``file:line`` of every tuple, list, set or dict display holding two or more kinds' names."""
    found = []
    for rel, tree in _sources(exclude):
        for node in ast.walk(tree):
            items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
            if not isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)) or items is None:
                continue
            names = {i.value for i in items if isinstance(i, ast.Constant) and i.value in KIND_NAMES}
            if len(names) >= 2:
                found.append(f"{rel}:{node.lineno}: {ast.unparse(node)[:80]}")
    return found


# The registries themselves look names up: the models' registry filters by task and kind, the store
# checks a file's kind against the one the caller asks for.
OWNERS = ("kinds/", "train/tasks.py", "models/registry.py", "store.py")


def test_the_kinds_are_listed_in_one_registry():
    assert kind_lists(exclude=("kinds/",)) == []


def test_the_walkers_find_what_they_look_for(tmp_path, monkeypatch):
    """The checks above can fail: planted code is found."""
    planted = tmp_path / "coordconv_data"
    (planted / "kinds").mkdir(parents=True)
    (planted / "report.py").write_text('if result.task == "gan":\n    pass\nKNOWN = ("lanes", "sort-of-clevr")\n')
    (planted / "kinds" / "ok.py").write_text('if kind == "lanes":\n    ALL = ["lanes", "not-so-clevr"]\n')
    monkeypatch.setattr(__import__(__name__), "PACKAGE", planted)
    assert comparisons(exclude=("kinds/",)) == ["report.py:1: result.task == 'gan'"]
    assert kind_lists(exclude=("kinds/",)) == ["report.py:3: ('lanes', 'sort-of-clevr')"]


@pytest.mark.parametrize("kind", sorted(KIND_NAMES))
def test_every_kind_names_its_dataset_class_and_default_file(kind):
    pytest.importorskip("torch")
    from coordconv_data.datasets import dataset_class

    k = KINDS[kind]
    assert dataset_class(kind).kind is k
    assert k.file_name().endswith(".h5") and k.command(k.default_spec()).startswith(f"coorddata {kind}")


def raised_texts(exclude: tuple[str, ...]) -> list[str]:
    """``file:line: text`` of every string written into a ``raise`` outside ``exclude`` (messages and hints)."""
    found = []
    for rel, tree in _sources(exclude):
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and node.exc is not None:
                for part in ast.walk(node.exc):
                    if isinstance(part, ast.Constant) and isinstance(part.value, str):
                        found.append(f"{rel}:{node.lineno}: {part.value}")
    return found


def test_no_library_error_names_a_flag_or_a_command():
    """The CLI turns a parameter into its flag (errors.CoordDataError.render); the library never writes one."""
    texts = raised_texts(exclude=("cli.py",))
    assert len(texts) > 100  # the walk sees the messages
    assert [t for t in texts if "--" in t or "coorddata " in t] == []
def test_no_task_or_kind_comparison_outside_the_task_and_kind_modules():
    assert comparisons(exclude=OWNERS) == []


