"""Module-level block functions for tests (worker processes import them by name)."""

import numpy as np


def uniform_block(spec, rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    return {"x": rng.integers(0, 1000, size=(count, spec["width"])), "n": np.full(count, count)}


def failing_block(spec, rng, count):
    raise ValueError("cannot place objects")
