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

# Every drawn value is tagged: OK (the option takes it, whatever else is given), BAD (it never does) or
# EITHER (it depends on the other options, e.g. a noise scale whose float32 arithmetic may overflow at
# some octave counts). A command given only OK values must succeed; one given a BAD value must fail
# cleanly; anything else may go either way, cleanly.
OK, BAD, EITHER = "ok", "bad", "either"
JUNK = st.sampled_from(["", "abc", "1e400", "inf", "-inf", "nan", "0x10", "99999999999999999999"])


def tagged(values: list, tag: str) -> st.SearchStrategy:
    return st.sampled_from(values).map(lambda v: (str(v), tag))


def options(table: dict[str, tuple[list, list, list]], only_ok: bool = False) -> st.SearchStrategy:
    """Some of the options of ``table`` (``name -> (ok, bad, either)``), each with a tagged value: only
    OK values (``only_ok``), or mostly OK ones with BAD, EITHER and junk (no number at all) among them."""
    def values(ok: list, bad: list, either: list) -> st.SearchStrategy:
        if only_ok:
            return tagged(ok, OK)
        parts = [tagged(ok, OK), tagged(ok, OK)] + [tagged(bad, BAD)] * bool(bad) + [tagged(either, EITHER)] * bool(either)
        if all(isinstance(v, (int, float)) for v in ok):
            parts.append(JUNK.map(lambda v: (v, BAD)))
        return st.one_of(*parts)

    picks = [st.one_of(st.just([]), values(*spec).map(lambda v, n=name: [(n, v)])) for name, spec in table.items()]
    return st.tuples(*picks).map(lambda parts: [x for p in parts for x in p])


def args_of(chosen: list) -> list[str]:
    return [x for name, (value, _) in chosen for x in (name, value)]


def expected(chosen: list) -> str:
    tags = {tag for _, (_, tag) in chosen}
    return BAD if BAD in tags else EITHER if EITHER in tags else OK


def run(args: list[str], expect: str = EITHER) -> None:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "sub" / "x.h5"
        result = CliRunner().invoke(main, [*args, "--out", str(out), "-q"])
        if result.exit_code == 0:
            assert expect != BAD, (args, "accepted a value it must refuse")
            s = summarize(out)  # validates the content
            for split, n in s.lengths.items():
                arrays = read_split(out, split, stop=2)
                assert all(len(a) == min(2, n) for a in arrays.values())
            return
        assert expect != OK, (args, "refused valid options", result.output)
        assert result.exit_code in (1, 2), (args, result.exit_code, result.output, result.exception)
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
        assert "Traceback" not in result.output, (args, result.output)
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, (args, result.output)
        assert os.listdir(d) == [], (args, os.listdir(d))  # no file, no temporary, no folder made


LANES = {
    "--n": ([1, 3, 6], [-1], []),
    "--test-n": ([0, 1, 4], [-1], []),
    "--size": ([32, 33, 48], [31, 2049], []),
    "--circles": ([1, 3, 5], [0, 65], []),
    "--intensity": ([0.0, 0.3, 1.0], [-0.5, 1.5], []),
    "--scale": ([0.5, 3.0, 16.0, 1e6], [0, -1], [1e-300, 1e-30, 0.001, 1e300]),
    "--octaves": ([1, 2, 16], [0, 17], []),
    "--persistence": ([0.01, 0.5, 2.0], [0, -0.5], [1e-40, 1e10, 1e30, 1e308]),
    "--lacunarity": ([0.5, 2.0, 3.7], [0, -2], [1e-40, 0.01, 100.0, 1e10]),
    "--seed": ([0, 1, 2**32 - 1], [-1, 2**32, 2**64], []),
}


def lanes(chosen: list) -> None:
    if "--n" not in {name for name, _ in chosen}:
        chosen = [*chosen, ("--n", ("3", OK))]  # keep the default 5000 out of a property test
    run(["lanes", "--workers", "1", *args_of(chosen)], expected(chosen))


@SETTINGS
@given(options(LANES, only_ok=True))
def test_lanes_takes_every_valid_option(chosen):
    lanes(chosen)


@SETTINGS
@given(options(LANES))
def test_lanes_options(chosen):
    lanes(chosen)


SOC = {
    "--n": ([1, 5, 8], [0, -1], []),
    "--test-fraction": ([0.0, 0.3, 0.5, 0.99], [1.0, -0.1], []),
    "--objects": ([1, 2, 3], [0, 7], []),
    "--size": ([64, 65], [0, 4097], [1, 3, 16, 33]),
    "--object-size": ([5, 11, 21], [0], [1, 2, 65]),
    "--min-distance": ([0, 1, 10], [-1], [30, 100]),
    "--background": (["white", "black", "10,20,30"], ["1,2", "1,2,300", "purple", ""], ["blue"]),
    "--seed": ([0, 7, 2**32 - 1], [2**32], []),
    "--layout": (["native", "original"], ["tf"], []),
}
SOC_GEOMETRY = {"--size", "--object-size", "--min-distance"}  # whether objects fit depends on all three


def sort_of_clevr(chosen: list) -> None:
    names = {name for name, _ in chosen}
    if "--n" not in names:
        chosen = [*chosen, ("--n", ("5", OK))]
    if len(names & SOC_GEOMETRY) > 1:  # two of them together may not fit: either way, cleanly
        chosen = [(name, (value, EITHER if tag == OK and name in SOC_GEOMETRY else tag)) for name, (value, tag) in chosen]
    run(["sort-of-clevr", "--workers", "1", *args_of(chosen)], expected(chosen))


@SETTINGS
@given(options(SOC, only_ok=True))
def test_sort_of_clevr_takes_every_valid_option(chosen):
    sort_of_clevr(chosen)


@SETTINGS
@given(options(SOC))
def test_sort_of_clevr_options(chosen):
    sort_of_clevr(chosen)


NSC = {
    "--split": (["uniform", "quadrant"], ["diagonal"], []),
    "--layout": (["native", "original"], ["tf"], []),
    "--seed": ([0, 20202, 2**32 - 1], [2**32, -1], []),
}


@settings(SETTINGS, max_examples=12)
@given(options(NSC))
def test_not_so_clevr_options(chosen):
    if "--split" not in {name for name, _ in chosen}:
        chosen = [*chosen, ("--split", ("quadrant", OK))]  # --out names a file: one split
    run(["not-so-clevr", *args_of(chosen)], expected(chosen))


@pytest.mark.parametrize("args", [["lanes", "--n", "2", "--size", "32"], ["sort-of-clevr", "--n", "3"],
                                  ["not-so-clevr", "--split", "uniform", "--layout", "original"]])
def test_property_runner_accepts_the_plain_cases(args):
    run([*args, *(["--workers", "1"] if args[0] != "not-so-clevr" else [])], OK)


def test_property_runner_fails_on_a_wrongly_refused_or_accepted_input():
    with pytest.raises(AssertionError, match="refused valid options"):
        run(["lanes", "--n", "2", "--size", "31"], OK)  # as if 31 were valid: the command refuses it
    with pytest.raises(AssertionError, match="accepted a value it must refuse"):
        run(["lanes", "--n", "2", "--size", "32", "--workers", "1"], BAD)
