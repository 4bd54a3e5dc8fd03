"""Walks through a GAN run's latent space, drawn as a grid: the paper's test of smooth motion."""

from __future__ import annotations

import os

import numpy as np
import torch

from .config import pick_device
from .errors import TrainError
from .seeding import WALK_ENDS, stream_seed

__all__ = ["walk_ends", "interpolation_grid"]


def walk_ends(z_dim: int, rows: int, seed: int) -> torch.Tensor:
    """``(rows, 2, z_dim)``: the two ends of each walk, uniform in ``[-1, 1]`` (the prior), from ``seed`` alone."""
    g = torch.Generator().manual_seed(stream_seed(seed, WALK_ENDS))
    return torch.rand(rows, 2, z_dim, generator=g) * 2 - 1


def interpolation_grid(run_dir: str | os.PathLike, *, rows: int = 8, steps: int = 10, seed: int = 0,
                       checkpoint: str = "best", device: str = "auto", scale: int = 1, path: str = "norm") -> np.ndarray:
    """An RGB picture: one row per latent walk, ``steps`` images from one end to the other.

    ``path="norm"`` rescales every point to the interpolated norm of the ends, as the original's
    ``util.interpolate`` (:func:`coordconv_data.walks.walk_latents`); ``"linear"`` draws straight lines.
    """
    from ..viz import enlarge, grid
    from ..walks import walk_latents
    from .fit import load_run_model
    from .run import RunDir
    from .tasks import task_for

    cfg = RunDir.read_only(run_dir).options()
    task = task_for(cfg)
    if not task.generates:
        raise TrainError(f"{run_dir} is a {cfg.task} run of {cfg.arch}; latent walks need a GAN run")
    dev = pick_device(device)
    model, cfg, _ = load_run_model(run_dir, checkpoint, dev)
    z = walk_latents(walk_ends(model.z_dim, rows, seed), steps, path)
    images = task.generate(model, z, dev)
    return grid([enlarge(im, scale) for im in images], columns=steps, gap=2, background=0)
