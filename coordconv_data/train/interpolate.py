"""Walks through a GAN run's latent space, drawn as a grid: the paper's test of smooth motion."""

from __future__ import annotations

import os

import numpy as np
import torch

from .config import pick_device
from .errors import TrainError

__all__ = ["interpolation_latents", "interpolation_grid"]


def interpolation_latents(z_dim: int, rows: int, steps: int, seed: int) -> torch.Tensor:
    """``(rows * steps, z_dim)``: per row, ``steps`` points on the straight line between two random latents."""
    from .tasks import _seed_for

    g = torch.Generator().manual_seed(_seed_for(seed, 0x1E7))
    ends = torch.rand(rows, 2, z_dim, generator=g) * 2 - 1
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    return ((1 - t) * ends[:, :1] + t * ends[:, 1:]).reshape(rows * steps, z_dim)


def interpolation_grid(run_dir: str | os.PathLike, *, rows: int = 8, steps: int = 10, seed: int = 0,
                       checkpoint: str = "best", device: str = "auto", scale: int = 1) -> np.ndarray:
    """An RGB picture: one row per latent walk, ``steps`` images from one end to the other."""
    from ..viz import enlarge, grid
    from .fit import load_run_model
    from .tasks import task_for

    from .config import TrainConfig
    from .run import RunDir

    cfg = TrainConfig.from_dict(RunDir.read_only(run_dir).read_config()["options"])
    if cfg.task != "gan":
        raise TrainError(f"{run_dir} is a {cfg.task} run of {cfg.arch}; interpolate needs a GAN run")
    dev = pick_device(device)
    model, cfg, _ = load_run_model(run_dir, checkpoint, dev)
    images = task_for(cfg).generate(model, interpolation_latents(model.z_dim, rows, steps, seed), dev)
    return grid([enlarge(im, scale) for im in images], columns=steps, gap=2, background=0)
