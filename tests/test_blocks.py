import numpy as np
import pytest

from blockfns import failing_block, uniform_block
from coordconv_data.generate.blocks import block_ranges, generate_blocks


def collect(**kw):
    parts = list(generate_blocks(uniform_block, {"width": 3}, 2500, seed=5, stream=0, block_size=300, **kw))
    starts = [s for s, _ in parts]
    assert starts == sorted(starts) and starts[0] == 0
    return np.concatenate([a["x"] for _, a in parts])


def test_same_arrays_for_any_worker_count():
    serial = collect(workers=1)
    assert serial.shape == (2500, 3)
    np.testing.assert_array_equal(serial, collect(workers=2))
    np.testing.assert_array_equal(serial, collect(workers=3))


def test_streams_and_seeds_differ():
    a = next(generate_blocks(uniform_block, {"width": 3}, 10, seed=5, stream=0, block_size=10))[1]["x"]
    b = next(generate_blocks(uniform_block, {"width": 3}, 10, seed=5, stream=1, block_size=10))[1]["x"]
    c = next(generate_blocks(uniform_block, {"width": 3}, 10, seed=6, stream=0, block_size=10))[1]["x"]
    assert not np.array_equal(a, b) and not np.array_equal(a, c)


def test_block_ranges_cover_n():
    assert list(block_ranges(7, 3)) == [(0, 3), (3, 6), (6, 7)]
    assert list(block_ranges(0, 3)) == []
    with pytest.raises(ValueError):
        block_ranges(5, 0)
    # lazy: a huge n costs nothing until blocks are taken
    huge = block_ranges(10**15, 7)
    assert next(huge) == (0, 7) and next(huge) == (7, 14)


def test_worker_errors_reach_the_caller():
    with pytest.raises(ValueError, match="cannot place objects"):
        list(generate_blocks(failing_block, None, 100, seed=0, stream=0, block_size=10, workers=2))
