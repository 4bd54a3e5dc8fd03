"""Property-based: over each generator's options, any accepted combination writes a file that
validates, and anything refused is one line, with no traceback and nothing left behind."""

import os
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coordconv_data.cli import main
from coordconv_data.store import read_split, summarize

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

JUNK = st.sampled_from(["", "abc", "-1", "1e400", "inf", "-inf", "nan", "0x10", "1.5", "99999999999999999999"])


def number(valid: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly values the option may take, sometimes ones it may not."""
    return st.one_of(valid.map(str), valid.map(str), valid.map(str), JUNK)


def option(name: str, values: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.just([]), values.map(lambda v: [name, v]))


def run(args: list[str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "sub" / "x.h5"
        result = CliRunner().invoke(main, [*args, "--out", str(out), "-q"])
        if result.exit_code == 0:
            s = summarize(out)  # validates the content
            for split, n in s.lengths.items():
                arrays = read_split(out, split, stop=2)
                assert all(len(a) == min(2, n) for a in arrays.values())
            return
        assert result.exit_code in (1, 2), (args, result.exit_code, result.output, result.exception)
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
        assert "Traceback" not in result.output, (args, result.output)
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, (args, result.output)
        assert os.listdir(d) == [], (args, os.listdir(d))  # no file, no temporary, no folder made


lanes_args = st.tuples(
    option("--n", number(st.integers(-1, 6))),
    option("--test-n", number(st.integers(-1, 4))),
    option("--size", number(st.sampled_from([31, 32, 33, 48, 2049]))),
    option("--circles", number(st.integers(0, 5))),
    option("--intensity", number(st.floats(-0.5, 1.5))),
    option("--scale", number(st.sampled_from([1e-300, 1e-30, 0.001, 0.5, 3.0, 16.0, 1e6, 1e300]))),
    option("--octaves", number(st.integers(0, 17))),
    option("--persistence", number(st.sampled_from([1e-40, 0.01, 0.5, 2.0, 1e10, 1e30, 1e308]))),
    option("--lacunarity", number(st.sampled_from([1e-40, 0.01, 0.5, 2.0, 3.7, 100.0, 1e10]))),
    option("--seed", number(st.sampled_from([0, 1, 2**32 - 1, 2**32, 2**64]))),
).map(lambda parts: [x for p in parts for x in p])


@SETTINGS
@given(lanes_args)
def test_lanes_options(args):
    if "--n" not in args:
        args = [*args, "--n", "3"]  # keep the default 5000 out of a property test
    run(["lanes", "--workers", "1", *args])


soc_args = st.tuples(
    option("--n", number(st.integers(0, 8))),
    option("--test-fraction", number(st.sampled_from([0.0, 0.3, 0.5, 0.99, 1.0, -0.1]))),
    option("--objects", number(st.integers(0, 7))),
    option("--size", number(st.sampled_from([1, 3, 16, 33, 64, 4097]))),
    option("--object-size", number(st.sampled_from([1, 2, 5, 11, 21, 65]))),
    option("--min-distance", number(st.sampled_from([-1, 0, 1, 10, 30, 100]))),
    option("--background", st.sampled_from(["white", "black", "blue", "10,20,30", "1,2", "1,2,300", "purple", ""])),
    option("--seed", number(st.sampled_from([0, 7, 2**32 - 1, 2**32]))),
    option("--layout", st.sampled_from(["native", "original", "tf"])),
).map(lambda parts: [x for p in parts for x in p])


@SETTINGS
@given(soc_args)
def test_sort_of_clevr_options(args):
    if "--n" not in args:
        args = [*args, "--n", "5"]
    run(["sort-of-clevr", "--workers", "1", *args])


nsc_args = st.tuples(
    option("--split", st.sampled_from(["uniform", "quadrant", "diagonal"])),
    option("--layout", st.sampled_from(["native", "tf"])),
    option("--seed", number(st.sampled_from([0, 20202, 2**32 - 1, 2**32]))),
).map(lambda parts: [x for p in parts for x in p])


@settings(SETTINGS, max_examples=12)
@given(nsc_args)
def test_not_so_clevr_options(args):
    if "--split" not in args:
        args = [*args, "--split", "quadrant"]  # --out names a file: one split
    run(["not-so-clevr", *args])


@pytest.mark.parametrize("args", [["lanes", "--n", "2", "--size", "32"], ["sort-of-clevr", "--n", "3"],
                                  ["not-so-clevr", "--split", "uniform", "--layout", "original"]])
def test_property_runner_accepts_the_plain_cases(args):
    run([*args, *(["--workers", "1"] if args[0] != "not-so-clevr" else [])])
