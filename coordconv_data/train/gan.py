"""GAN training on Sort-of-Clevr, the paper's way, scored with the geometry score every epoch.

Follows ``train_gan.py`` of uber-research/CoordConv:

* every iteration draws one minibatch of real images and one of noise ``z ~ U(-1, 1)^{z_dim}``, then
  takes ONE discriminator step and TWO generator steps, all three on that same ``z``;
* losses are the standard non-saturating ones: ``D: BCE(D(x), 1) + BCE(D(G(z)), 0)`` with real and
  fake batches through D separately (each gets its own BatchNorm statistics, as there);
  ``G: BCE(D(G(z)), 1)``; for the CoordConv generator, D sees its output before ``tanh``, as there
  (:meth:`~coordconv_data.models.sort_of_clevr_gan.GANPair.fakes_for_discriminator`: with ``tanh``
  the generator saturated within an epoch);
* Adam with the original's ``beta1 = 0.9, beta2 = 0.99``; ``--lr`` for the discriminator and
  ``--lr2`` for the generator (the paper: 1e-4 and 5e-4, minibatch 16, 50 epochs); ``--l2`` decays the
  generator's weights only (the original added its regularisation loss to the generator's loss);
* an epoch is ``len(train) // batch_size`` iterations (the last partial batch dropped, as there).

Differences: the original trained on all 50,000 images; here the file's train split is used and
its test split is held out, as real images to score (the ceiling of the geometry score). Samples,
the geometry score and interpolations use the generator in inference mode (BatchNorm running
statistics): an image then depends on its own ``z`` only, not on the batch it was drawn in, which
is what makes interpolation pictures meaningful. The original saved both modes.

Reproducibility: the weights are initialised after ``torch.manual_seed(seed)``, the epoch order is
seeded ``seed + epoch`` and the training noise comes from the saved torch RNG, so ``--resume`` ends
with the weights and metrics of an uninterrupted run on the CPU. The fixed latents of the sample
grids and of the score come from their own generator, seeded from ``seed`` alone.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..data import H5SplitDataset
from ..store import FileSummary, StoreError, read_split, summarize
from .errors import TrainError
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state, write_metrics_csv

__all__ = ["ADAM_BETAS", "G_STEPS", "GAN_COLUMNS", "SAMPLE_GRID", "check_gan_file", "to_model_images", "to_uint8_images",
           "fixed_latents", "generate_images", "gan_iteration", "train_gan", "evaluate_gan", "interpolation_latents",
           "interpolation_grid", "load_gan"]

ADAM_BETAS = (0.9, 0.99)  # the original's --beta1/--beta2 defaults
G_STEPS = 2  # generator steps per discriminator step
SAMPLE_GRID = 10  # samples_<epoch>.png: the first 10 x 10 fixed latents
GEN_BATCH = 100  # images per generator call when sampling (the original sampled in hundreds too)
LOSS_COLUMNS = ("d_loss", "g_loss", "d_real", "d_fake")
SCORE_COLUMNS = ("n", "geometry", "position_tv", "missing", "extra", "malformed", "stray")
GAN_COLUMNS = ["epoch", "split", *LOSS_COLUMNS, *SCORE_COLUMNS, "seconds"]


def to_model_images(images: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` images to the GAN's ``(N, 3, H, W)`` float in ``[-1, 1]`` (``/ 127.5 - 1``)."""
    return images.to(device).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def to_uint8_images(x: torch.Tensor) -> np.ndarray:
    """The generator's ``(N, 3, H, W)`` output in ``[-1, 1]`` to uint8 ``(N, H, W, 3)`` RGB."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _seed_for(seed: int, purpose: int) -> int:
    # An independent stream per purpose, never the same numbers as torch.manual_seed(seed) gives.
    return int(np.random.SeedSequence([seed, purpose]).generate_state(1, dtype=np.uint64)[0] >> 1)


def fixed_latents(n: int, z_dim: int, seed: int) -> torch.Tensor:
    """The ``(n, z_dim)`` latents a run samples and scores every epoch (uniform in ``[-1, 1]``)."""
    g = torch.Generator().manual_seed(_seed_for(seed, 0x5A3))
    return torch.rand(n, z_dim, generator=g) * 2 - 1


@torch.no_grad()
def generate_images(model: torch.nn.Module, z: torch.Tensor, device: torch.device | str = "cpu",
                    batch_size: int = GEN_BATCH) -> np.ndarray:
    """uint8 ``(N, 64, 64, 3)`` images of the generator in inference mode for latents ``z``."""
    gen = model.generator
    was = gen.training
    gen.eval()
    try:
        out = [to_uint8_images(gen(z[i : i + batch_size].to(device))) for i in range(0, len(z), batch_size)]
    finally:
        gen.train(was)
    return np.concatenate(out) if out else np.zeros((0, 64, 64, 3), np.uint8)


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def gan_iteration(model: torch.nn.Module, opt_d: torch.optim.Optimizer, opt_g: torch.optim.Optimizer,
                  real: torch.Tensor, z: torch.Tensor, g_steps: int = G_STEPS) -> dict[str, float]:
    """One discriminator step and ``g_steps`` generator steps on the same ``z``; returns the losses.

    ``d_real`` / ``d_fake`` are the discriminator's mean probability of "real" on the real and the
    fake batch at its step (0.5 / 0.5 is the equilibrium; 1 / 0 a discriminator that wins).
    """
    disc = model.discriminator
    with torch.no_grad():  # D's step needs no gradient through G
        fake = model.fakes_for_discriminator(z)
    real_logits, fake_logits = disc(real), disc(fake)
    d_loss = _bce(real_logits, 1.0) + _bce(fake_logits, 0.0)
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    disc.requires_grad_(False)  # G's steps need gradients w.r.t. D's input only
    try:
        g_losses = []
        for _ in range(g_steps):
            g_loss = _bce(disc(model.fakes_for_discriminator(z)), 1.0)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            g_losses.append(g_loss.item())
    finally:
        disc.requires_grad_(True)
    return {"d_loss": d_loss.item(), "g_loss": sum(g_losses) / len(g_losses),
            "d_real": torch.sigmoid(real_logits.detach()).mean().item(),
            "d_fake": torch.sigmoid(fake_logits.detach()).mean().item()}


def _optimizers(cfg: Any, model: torch.nn.Module) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    d_params, g_params = model.discriminator.parameters(), model.generator.parameters()
    if cfg.opt == "adam":
        return (torch.optim.Adam(d_params, lr=cfg.lr, betas=ADAM_BETAS),
                torch.optim.Adam(g_params, lr=cfg.lr2, betas=ADAM_BETAS, weight_decay=cfg.l2))
    return (torch.optim.SGD(d_params, lr=cfg.lr, momentum=0.9),
            torch.optim.SGD(g_params, lr=cfg.lr2, momentum=0.9, weight_decay=cfg.l2))


def check_gan_file(summary: FileSummary, arch: str, image_size: int = 64) -> None:
    """Refuse, in one line, a file a GAN cannot train on or be scored against."""
    if summary.kind != "sort-of-clevr":
        raise TrainError(f"{summary.path} holds {summary.kind} data, but {arch} (gan) needs sort-of-clevr")
    if summary.layout != "native":
        raise TrainError(f"{summary.path} is in the original layout (one train_x array); GANs read native files: "
                         "make one with coorddata sort-of-clevr (without --layout original)")
    size = int(summary.params.get("size", summary.attrs.get("canvas_size", 0)))
    if size != image_size:
        raise TrainError(f"{summary.path} holds {size}x{size} images, but {arch} generates {image_size}x{image_size}; "
                         f"make a file with coorddata sort-of-clevr --size {image_size}")
    for split in ("train", "test"):
        if summary.lengths.get(split, 0) == 0:
            raise TrainError(f"{summary.path} has no {split!r} images; GANs train on train and are scored "
                             "against test (the ceiling)")


def _summary(data: str) -> FileSummary:
    try:
        return summarize(data)
    except StoreError as e:
        raise TrainError(str(e)) from None


def _score(images: np.ndarray, scene: Any, reference: np.ndarray) -> dict[str, float]:
    from ..geometry import score_images

    s = score_images(images, scene, reference)
    return {k: (int(s.n) if k == "n" else float(getattr(s, k))) for k in SCORE_COLUMNS}


def real_ceiling(data: str, n: int) -> dict[str, float]:
    """The geometry score of up to ``n`` held-out real images (the file's test split)."""
    from ..geometry import SceneSpec, reference_centers

    images = read_split(data, "test", names=("images",), stop=n)["images"]
    return _score(np.asarray(images), SceneSpec.from_file(data), reference_centers(data, "train"))


def _better(score: dict[str, float], best: tuple[float, float] | None) -> bool:
    # More correct images first; among equals (e.g. none correct yet), the closer position histogram.
    key = (score["geometry"], -score["position_tv"])
    return best is None or key > tuple(best)


def sample_grid(images: np.ndarray, columns: int = SAMPLE_GRID) -> np.ndarray:
    from ..viz import grid

    return grid(list(images), columns=min(columns, len(images)), gap=2, background=0)  # black dividers, as the original


def train_gan(cfg: Any, *, resume: bool = False, progress: Callable[[int, str], Any] | None = None,
              log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train the GAN pair of ``cfg`` (already resolved) into ``cfg.out``; return a summary dict."""
    from ..geometry import SceneSpec, reference_centers
    from ..models import create_model
    from ..viz import write_png
    from .loop import epoch_bar, pick_device, write_run_config
    from .plots import write_gan_curves

    device = pick_device(cfg.device)
    out_dir = Path(cfg.out)
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.arch, **cfg.hparams).to(device)
    opt_d, opt_g = _optimizers(cfg, model)
    start_epoch, history, best, best_epoch = 0, [], None, None
    if resume:
        ck = load_checkpoint(out_dir / "last.pt", map_location=device)
        model.load_state_dict(ck["model"])
        opt_d.load_state_dict(ck["optimizer_d"])
        opt_g.load_state_dict(ck["optimizer_g"])
        start_epoch, history = ck["epoch"], ck["history"]
        best, best_epoch = ck.get("best"), ck.get("best_epoch")
        set_rng_state(ck["rng"])
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
    write_run_config(cfg, device, world=1)

    train_ds = H5SplitDataset(cfg.data, "train", kind="sort-of-clevr", names=("images",))
    reference, scene = reference_centers(cfg.data, "train"), SceneSpec.from_file(cfg.data)  # once per run
    z_fixed = fixed_latents(cfg.eval_samples, model.z_dim, cfg.seed)
    if not any(r["split"] == "real" for r in history):
        history.append({"epoch": 0, "split": "real", **real_ceiling(cfg.data, cfg.eval_samples), "seconds": 0.0})
    ceiling = next(r for r in history if r["split"] == "real")
    steps = len(train_ds) // cfg.batch_size  # resolve() made sure it is at least 1
    total_time = sum(r["seconds"] for r in history if r["split"] == "train")
    t_start = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs):
        order = torch.randperm(len(train_ds), generator=torch.Generator().manual_seed(cfg.seed + epoch)).tolist()
        t0 = time.perf_counter()
        model.train()
        sums = dict.fromkeys(LOSS_COLUMNS, 0.0)
        with epoch_bar(progress, steps, f"epoch {epoch + 1}/{cfg.epochs}") as advance:
            for i in range(steps):
                batch = train_ds.batch(order[i * cfg.batch_size : (i + 1) * cfg.batch_size])
                real = to_model_images(batch["images"], device)
                z = model.sample_noise(real.shape[0], device=device)
                for k, v in gan_iteration(model, opt_d, opt_g, real, z).items():
                    sums[k] += v
                advance(1)
        seconds = time.perf_counter() - t0
        total_time += seconds
        train_row = {"epoch": epoch + 1, "split": "train", **{k: v / steps for k, v in sums.items()}, "seconds": seconds}
        samples = generate_images(model, z_fixed, device)
        score = _score(samples, scene, reference)
        gen_row = {"epoch": epoch + 1, "split": "generated", **score}
        history += [train_row, gen_row]
        improved = _better(score, best)
        if improved:
            best, best_epoch = (score["geometry"], -score["position_tv"]), epoch + 1
        payload = {"model": model.state_dict(), "arch": cfg.arch, "hparams": cfg.hparams, "task": cfg.task,
                   "epoch": epoch + 1, "metrics": {"train": train_row, "generated": gen_row}}
        if improved:
            save_checkpoint(out_dir / "best.pt", payload)
        save_checkpoint(out_dir / "last.pt", {**payload, "optimizer_d": opt_d.state_dict(),
                                              "optimizer_g": opt_g.state_dict(), "history": history,
                                              "best": best, "best_epoch": best_epoch, "rng": rng_state()})
        write_png(sample_grid(samples[: SAMPLE_GRID**2]), out_dir / f"samples_{epoch + 1:03d}.png", force=True)
        write_metrics_csv(out_dir / "metrics.csv", history, GAN_COLUMNS)
        write_gan_curves(out_dir / "curves.png", history, title=f"{cfg.arch} on {Path(cfg.data).name}")
        if log:
            log(f"epoch {epoch + 1}/{cfg.epochs}: d_loss {train_row['d_loss']:.3f} g_loss {train_row['g_loss']:.3f} "
                f"D(real) {train_row['d_real']:.2f} D(fake) {train_row['d_fake']:.2f}; generated: geometry "
                f"{score['geometry']:.3f} position_tv {score['position_tv']:.3f} (real: {ceiling['geometry']:.3f} / "
                f"{ceiling['position_tv']:.3f}) ({seconds:.1f} s)")
    last = {r["split"]: r for r in history if r["split"] in ("train", "generated")}
    return {
        "out": str(out_dir), "arch": cfg.arch, "task": cfg.task, "epochs": cfg.epochs, "primary": "geometry",
        "train": last.get("train", {}), "generated": last.get("generated", {}),
        "real": {k: ceiling.get(k) for k in SCORE_COLUMNS},  # a run begun by an older version may lack a column
        "best": best[0] if best else None, "best_epoch": best_epoch,
        "train_seconds": total_time, "wall_seconds": time.perf_counter() - t_start,
        "steps_per_epoch": steps, "rank": 0, "world_size": 1,
    }


def load_gan(run_dir: str | os.PathLike, checkpoint: str = "best", device: torch.device | str = "cpu"):
    """The GAN pair saved in a run directory's ``best.pt`` or ``last.pt``, with the run's config."""
    from ..models import create_model
    from .loop import load_run_config

    run_dir = Path(run_dir)
    path = run_dir / f"{checkpoint}.pt"
    if not path.is_file():
        raise TrainError(f"{run_dir} has no {checkpoint}.pt (not a finished run directory)")
    cfg = load_run_config(run_dir)
    if cfg.task != "gan":
        raise TrainError(f"{run_dir} is a {cfg.task} run of {cfg.arch}; this needs a GAN run "
                         "(clevr_gan, clevr_coordconv_in_gd)")
    ck = load_checkpoint(path, map_location=device)
    model = create_model(ck["arch"], **ck["hparams"]).to(device)
    model.load_state_dict(ck["model"])
    model.eval()
    return model, cfg, ck


def evaluate_gan(run_dir: str | os.PathLike, data: str | None = None, device: str = "auto",
                 n: int | None = None, checkpoint: str = "best") -> dict[str, Any]:
    """Geometry score of the run's checkpoint on its fixed latents, and of the real test images.

    ``data`` (default: the run's file) gives the reference centres and the real images; its scene
    (canvas, object size, colours, background) must be the run's.
    """
    from ..geometry import SceneSpec, reference_centers
    from .loop import pick_device

    dev = pick_device(device)
    model, cfg, ck = load_gan(run_dir, checkpoint, dev)
    data = str(data or cfg.data)
    check_gan_file(_summary(data), cfg.arch)
    if data != cfg.data and Path(cfg.data).is_file() and SceneSpec.from_file(data) != SceneSpec.from_file(cfg.data):
        raise TrainError(f"{data} shows another scene (canvas, object size, colours or background) than the run's "
                         f"data {cfg.data}; its score would not mean anything")
    n = n or cfg.eval_samples
    samples = generate_images(model, fixed_latents(n, model.z_dim, cfg.seed), dev)
    return {"run": str(run_dir), "arch": cfg.arch, "task": cfg.task, "data": data, "epoch": ck["epoch"],
            "checkpoint": checkpoint, "generated": _score(samples, SceneSpec.from_file(data), reference_centers(data, "train")),
            "real": real_ceiling(data, n)}


def interpolation_latents(z_dim: int, rows: int, steps: int, seed: int) -> torch.Tensor:
    """``(rows * steps, z_dim)``: per row, ``steps`` points on the straight line between two random latents."""
    g = torch.Generator().manual_seed(_seed_for(seed, 0x1E7))
    ends = torch.rand(rows, 2, z_dim, generator=g) * 2 - 1
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    return ((1 - t) * ends[:, :1] + t * ends[:, 1:]).reshape(rows * steps, z_dim)


def interpolation_grid(run_dir: str | os.PathLike, *, rows: int = 8, steps: int = 10, seed: int = 0,
                       checkpoint: str = "best", device: str = "auto", scale: int = 1) -> np.ndarray:
    """An RGB picture: one row per latent walk, ``steps`` images from one end to the other."""
    from ..viz import enlarge, grid
    from .loop import pick_device

    dev = pick_device(device)
    model, _, _ = load_gan(run_dir, checkpoint, dev)
    images = generate_images(model, interpolation_latents(model.z_dim, rows, steps, seed), dev)
    return grid([enlarge(im, scale) for im in images], columns=steps, gap=2, background=0)

