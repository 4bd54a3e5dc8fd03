"""Module-level block functions for tests (worker processes import them by name)."""

import numpy as np


def uniform_block(spec, rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    return {"x": rng.integers(0, 1000, size=(count, spec["width"])), "n": np.full(count, count)}


def failing_block(spec, rng, count):
    raise ValueError("cannot place objects")


# -- cluster tasks (Dask workers import these by name) ------------------------------------------------

def kill_worker_once(marker_dir, victim, kind, params, path, index, count):
    """Shard ``victim``'s first attempt kills its own worker process (SIGKILL, as the out-of-memory
    killer does) after writing its first block; every other run writes the shard as usual."""
    import os
    import signal
    from pathlib import Path

    from coordconv_data.cluster import write_shard
    from coordconv_data.generate.shards import Shard
    from coordconv_data.kinds import get_kind

    marker = Path(marker_dir) / f"killed-{index}"
    if index == victim and not marker.exists():
        marker.write_text(str(os.getpid()))
        k = get_kind(kind)
        k.generator.write_file(k.spec_from_params(params), path, workers=1, force=True, shard=Shard(index, count),
                               exclusive=False, progress=lambda n: os.kill(os.getpid(), signal.SIGKILL))
    return write_shard(kind, params, path, index, count)


def fail_once(marker_dir, victim, kind, params, path, index, count):
    """Shard ``victim``'s first attempt raises; the retry writes it."""
    from pathlib import Path

    from coordconv_data.cluster import write_shard

    marker = Path(marker_dir) / f"failed-{index}"
    if index == victim and not marker.exists():
        marker.touch()
        raise OSError("the shared filesystem hiccuped")
    return write_shard(kind, params, path, index, count)


def always_fail(kind, params, path, index, count):
    if index == 1:
        raise ValueError("no luck")
    from coordconv_data.cluster import write_shard

    return write_shard(kind, params, path, index, count)
