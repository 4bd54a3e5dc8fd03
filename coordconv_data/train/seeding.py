"""Independent random streams from a run's seed: one function, so that no two purposes share numbers."""

from __future__ import annotations

import numpy as np

__all__ = ["stream_seed", "LATENTS", "WALK_ENDS"]

# Purposes of streams drawn outside the epoch loop (the loop's streams are (seed, rank, epoch)).
LATENTS = 0x5A3  # a GAN run's fixed latents, sampled and scored every epoch
WALK_ENDS = 0x1E7  # the ends of latent walks (interpolate, the report's walks)


def stream_seed(*ints: int) -> int:
    """A 63-bit seed for the stream named by ``ints`` (e.g. ``(seed, rank, epoch)``); never the numbers
    ``torch.manual_seed(seed)`` itself gives."""
    return int(np.random.SeedSequence(list(ints)).generate_state(1, dtype=np.uint64)[0] >> 1)
