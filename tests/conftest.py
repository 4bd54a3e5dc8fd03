import fcntl
import os

import pytest
from click.testing import CliRunner


def pytest_configure(config) -> None:
    # pytest-xdist runs one worker per core: one thread each, or they fight over the cores.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def assert_one_line_error(result, *fragments: str) -> None:
    """A user mistake: non-zero exit, no traceback, one 'Error:' line naming what is wrong."""
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.fixture
def one_cluster_at_a_time(tmp_path_factory):
    """Tests that start a Dask LocalCluster take turns (a lock shared by pytest-xdist's workers)."""
    lock = tmp_path_factory.getbasetemp().parent / "coordconv-dask-tests.lock"
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
