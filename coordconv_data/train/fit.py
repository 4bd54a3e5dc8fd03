"""The one training loop, and the entry points around it: start a run, resume one, evaluate one.

:func:`fit` owns a run (as Lightning's Trainer does); the :class:`~.tasks.Task` supplies the steps.
Every epoch: the train split in an order seeded by ``seed + epoch`` (a DistributedSampler, so each
process gets its shard), the task's step on every batch (a loss that is not finite stops the run),
the task's evaluation, the selection of ``best.pt`` (on the validation split, or the GAN's samples;
never on test), then ``last.pt``, ``metrics.csv``, ``curves.png`` and the task's pictures.

Reproducibility: the model is initialised after ``torch.manual_seed(seed)``, and the torch RNG is
re-seeded at the start of every epoch from ``(seed, rank, epoch)``; with the seeded order, no random
state needs saving, and a run resumed from ``last.pt`` ends with the weights and metrics of an
uninterrupted one (on the CPU; CUDA kernels may not be deterministic).
"""

from __future__ import annotations

import datetime
import math
import platform
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from .. import __version__
from ..datasets import VAL_SEED
from ..errors import InvalidParameter
from .config import TrainConfig, learning_rate, resolve, resolve_data, resume_config
from .distributed import Dist, setup
from .errors import TrainError
from .run import RunDir, check_fingerprint, data_fingerprint, load_checkpoint
from .tasks import Task, add_stats, task_for

__all__ = ["FitSummary", "Diverged", "fit", "train", "resume", "evaluate_run", "load_run_model", "default_out"]

Progress = Callable[[int, str], Any]  # (total, label) -> context manager yielding advance(k)


class Diverged(TrainError):
    """The training loss became NaN or infinite."""


@dataclass
class FitSummary:
    """What a finished run reports: the selected epoch and the last one, per split."""

    out: str
    arch: str
    task: str
    epochs: int
    primary: str
    selected_on: str  # "val", "generated" (a GAN's samples) or "last" (no validation split)
    best_epoch: int | None
    best: dict[str, dict[str, Any]]  # split -> metrics at the selected epoch
    last: dict[str, dict[str, Any]]  # split -> metrics at the last epoch
    real: dict[str, Any] | None = None  # GANs: the score of real images (the ceiling)
    train_seconds: float = 0.0
    wall_seconds: float = 0.0
    world_size: int = 1
    rank: int = 0

    def text(self) -> str:
        """One line for people."""
        p = self.primary

        def show(rows: dict[str, dict[str, Any]], splits: tuple[str, ...]) -> str:
            return ", ".join(f"{s} {p} {rows[s][p]:.4g}" for s in splits if s in rows)

        if self.task == "gan":
            b, l = self.best.get("generated", {}), self.last.get("generated", {})
            real = self.real or {}
            return (f"{self.arch}: {self.epochs} epochs in {self.train_seconds:.1f} s; selected epoch {self.best_epoch} "
                    f"on its samples (geometry {b.get('geometry', math.nan):.4g}, position_tv "
                    f"{b.get('position_tv', math.nan):.4g}); last epoch: geometry {l.get('geometry', math.nan):.4g}, "
                    f"position_tv {l.get('position_tv', math.nan):.4g}; real images: geometry "
                    f"{real.get('geometry', math.nan):.4g}, position_tv {real.get('position_tv', math.nan):.4g}; "
                    f"run: {self.out}")
        where = "on val" if self.selected_on == "val" else "(the last: no validation split)"
        return (f"{self.arch}: {self.epochs} epochs in {self.train_seconds:.1f} s; selected epoch {self.best_epoch} "
                f"{where}: {show(self.best, ('val', 'test'))}; last epoch {self.epochs}: "
                f"{show(self.last, ('train', 'val', 'test'))}; run: {self.out}")


def default_out(arch: str, dataset: str) -> str:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return str(Path("runs") / f"{arch}-{dataset}-{stamp}")


def _stream_seed(*ints: int) -> int:
    return int(np.random.SeedSequence(list(ints)).generate_state(1, dtype=np.uint64)[0] >> 1)


def _bar(progress: Progress | None, total: int, label: str) -> Any:
    return progress(total, label) if progress is not None else nullcontext(lambda k: None)


def _config_record(cfg: TrainConfig, task: Task, data: dict[str, Any], dist: Dist) -> dict[str, Any]:
    from .run import FORMAT

    record: dict[str, Any] = {
        "format": FORMAT,
        "options": cfg.as_dict(),
        "task": cfg.task,
        "dataset": cfg.dataset,
        "data": data_fingerprint(cfg.data),
        "selection": task.selects_on if task.selects_on != "val" or cfg.val_fraction else "last",
        "versions": {"coordconv_data": __version__, "torch": torch.__version__, "python": platform.python_version(),
                     "h5py": h5py.__version__},
        "world_size": dist.world,
        "device": str(dist.device),
    }
    if "val" in data:
        record["validation"] = {"fraction": cfg.val_fraction, "seed": VAL_SEED, "samples": len(data["val"]),
                                "carved_from": "the file's train split"}
    return record


def fit(cfg: TrainConfig, run: RunDir | None, dist: Dist, *, checkpoint: dict[str, Any] | None = None,
        progress: Progress | None = None, log: Callable[[str], None] | None = None) -> FitSummary:
    """Train a resolved config; ``run`` is the claimed folder (``None`` in processes other than rank 0);
    ``checkpoint`` a ``last.pt`` to continue from."""
    task = task_for(cfg)
    device = dist.device
    data = task.datasets()
    for name, ds in data.items():
        if name != "train" and len(ds) < dist.world:
            raise TrainError(f"the {name} split has {len(ds)} samples, fewer than the {dist.world} processes")
    torch.manual_seed(cfg.seed)
    model = task.build_model().to(device)
    if device.type == "cpu" and not dist.distributed and task.channels_last:
        # oneDNN's convolutions ran 1.3-1.6x faster channels-last here; DDP's gradient buckets expect the
        # default layout, so not under torchrun.
        model = model.to(memory_format=torch.channels_last)
    optimizers = task.optimizers(model)
    history: list[dict[str, Any]] = []
    start, best_value, best_epoch = 0, None, None
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        for name, opt in optimizers.items():
            opt.load_state_dict(checkpoint["optimizers"][name])
        start, history = int(checkpoint["epoch"]), list(checkpoint["history"])
        best_value = tuple(checkpoint["best_value"]) if checkpoint.get("best_value") is not None else None
        best_epoch = checkpoint.get("best_epoch")
    nets = task.networks(model, dist.wrap)
    if run is not None:
        run.write_json("config.json", _config_record(cfg, task, data, dist))
    train_ds = data["train"]
    sampler = DistributedSampler(train_ds, num_replicas=dist.world, rank=dist.rank, shuffle=True, seed=cfg.seed)
    loader = DataLoader(train_ds, batch_size=cfg.batch_size, sampler=sampler, drop_last=task.drop_last)
    if len(loader) == 0:
        raise InvalidParameter("batch_size", f"batch_size {cfg.batch_size} leaves no whole batch of the "
                                             f"{len(sampler)} training samples")
    if task.selects_on == "generated" and not any(r["split"] == "real" for r in history):
        history.append({"epoch": 0, **dist.on_rank0(lambda: task.real_row(data))})
    select_last = task.selects_on == "val" and "val" not in data
    train_seconds = sum(r.get("seconds", 0.0) for r in history if r["split"] == "train")
    t_start = time.perf_counter()
    base_rates = task.base_rates()
    for epoch in range(start + 1, cfg.epochs + 1):
        sampler.set_epoch(epoch - 1)
        torch.manual_seed(_stream_seed(cfg.seed, dist.rank, epoch))
        for name, opt in optimizers.items():
            for group in opt.param_groups:
                group["lr"] = learning_rate(base_rates[name], epoch, cfg)
        t0 = time.perf_counter()
        acc = None
        with _bar(progress if dist.main else None, len(loader), f"epoch {epoch}/{cfg.epochs}") as advance:
            for step, batch in enumerate(loader, 1):
                loss, stats = task.train_step(nets, batch, optimizers, device)
                value = loss.item()
                if dist.any(not math.isfinite(value)):
                    kept = f"last.pt holds epoch {epoch - 1}" if epoch > 1 else "no epoch finished"
                    raise Diverged(f"the training loss became {value} at epoch {epoch}, step {step} of {len(loader)}; "
                                   f"stopped ({kept})", hint=task.divergence_advice())
                acc = add_stats(acc, stats)
                advance(1)
        seconds = time.perf_counter() - t0
        train_seconds += seconds
        rate = next(iter(optimizers.values())).param_groups[0]["lr"]
        rows = [{"epoch": epoch, "split": "train", **task.train_row(dist.all_reduce_stats(acc)), "lr": rate,
                 "seconds": seconds}]
        rows += [{"epoch": epoch, **r} for r in task.evaluate(model, data, device, dist)]
        history += rows
        score = task.selection_value(rows)
        improved = select_last or (score is not None and (best_value is None or score > best_value))
        if improved:
            best_value, best_epoch = (score if not select_last else None), epoch
        if run is not None:
            payload = {"arch": cfg.arch, "task": cfg.task, "hparams": cfg.hparams, "epoch": epoch,
                       "model": model.state_dict(), "metrics": rows}
            if improved:
                run.save_checkpoint("best.pt", payload)
            run.save_checkpoint("last.pt", {**payload, "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                                            "history": history, "best_value": list(best_value) if best_value else None,
                                            "best_epoch": best_epoch})
            run.write_metrics(history, task.columns())
            run.write_picture("curves.png", task.curves(history))
            for name, picture in task.epoch_pictures(model, data, epoch, device).items():
                run.write_picture(name, picture)
            if log:
                log(task.log_line(epoch, cfg.epochs, rows, seconds))
    if run is not None:
        for name, picture in task.final_pictures(model, data, device).items():
            run.write_picture(name, picture)
    dist.barrier()

    def by_split(epoch: int | None) -> dict[str, dict[str, Any]]:
        return {r["split"]: r for r in history if r["epoch"] == epoch}

    last_epoch = max((r["epoch"] for r in history), default=None)
    real = next((r for r in history if r["split"] == "real"), None)
    return FitSummary(
        out=str(run.path) if run is not None else str(cfg.out), arch=cfg.arch, task=cfg.task, epochs=cfg.epochs,
        primary=task.primary, selected_on="last" if select_last else task.selects_on, best_epoch=best_epoch,
        best=by_split(best_epoch), last=by_split(last_epoch), real=real, train_seconds=train_seconds,
        wall_seconds=time.perf_counter() - t_start, world_size=dist.world, rank=dist.rank)


def train(cfg: TrainConfig, *, progress: Progress | None = None, log: Callable[[str], None] | None = None) -> FitSummary:
    """Start a new run of ``cfg`` (options checked, data found or generated, ``cfg.out`` claimed) and fit it.

    Under ``torchrun`` call it in every process: rank 0 decides the folder and claims it.
    """
    cfg = resolve(cfg)
    dist = setup(cfg.device)
    holder: list[RunDir] = []
    try:
        def claim() -> TrainConfig:
            out = cfg.out or default_out(cfg.arch, cfg.dataset)
            RunDir.check_new(out)  # before generating any data
            resolved = resolve_data(cfg, announce=log)
            resolved.out = out
            holder.append(RunDir.create(out))
            return resolved

        resolved = dist.on_rank0(claim)
        return fit(resolved, holder[0] if holder else None, dist, progress=progress, log=log)
    finally:
        for r in holder:
            r.release()
        dist.close()


def resume(run_dir: str | Path, given: dict[str, Any] | None = None, *, progress: Progress | None = None,
           log: Callable[[str], None] | None = None) -> FitSummary:
    """Continue the run in ``run_dir`` from its ``last.pt`` (or start it over, if it died in its first
    epoch). ``given``: options passed again (only ``epochs`` and ``device`` may differ from the run's)."""
    peek = RunDir.read_only(run_dir)
    raw = peek.read_config()
    cfg = resume_config(peek.options(), given or {})
    cfg = resolve(cfg)
    dist = setup(cfg.device)
    holder: list[RunDir] = []
    try:
        def claim() -> bool:
            holder.append(RunDir.resume(run_dir))
            check_fingerprint(raw.get("data", {}))
            return True

        dist.on_rank0(claim)
        run = holder[0] if holder else None
        ck = None
        if (Path(run_dir) / "last.pt").is_file():
            ck = load_checkpoint(Path(run_dir) / "last.pt", map_location=dist.device, arch=cfg.arch)
            if cfg.epochs <= int(ck["epoch"]):
                raise InvalidParameter("epochs", f"epochs {cfg.epochs} is not more than the {ck['epoch']} epochs "
                                                 f"{run_dir} has done", hint="give a larger {epochs} to continue it")
        cfg.out = str(run_dir)
        return fit(cfg, run, dist, checkpoint=ck, progress=progress, log=log)
    finally:
        for r in holder:
            r.release()
        dist.close()


def load_run_model(run_dir: str | Path, checkpoint: str = "best", device: torch.device | str = "cpu",
                   ) -> tuple[torch.nn.Module, TrainConfig, dict[str, Any]]:
    """The model saved in a run folder's ``best.pt`` or ``last.pt``, in inference mode, with the run's config."""
    run = RunDir.read_only(run_dir)
    cfg = run.options()
    ck = run.load_checkpoint(f"{checkpoint}.pt", map_location=device, arch=cfg.arch)
    from ..models import create_model

    model = create_model(cfg.arch, **cfg.hparams).to(device)
    try:
        model.load_state_dict(ck["model"])
    except (RuntimeError, KeyError) as e:
        raise TrainError(f"{run.file(checkpoint + '.pt')}: its weights do not fit {cfg.arch} "
                         f"({str(e).splitlines()[0]})") from None
    model.eval()
    return model, cfg, ck


def evaluate_run(run_dir: str | Path, data: str | None = None, device: str = "auto",
                 checkpoint: str = "best") -> dict[str, Any]:
    """Metrics of a run's ``best.pt`` (or ``last.pt``): supervised runs on train, val and test of the run's
    data file (the recorded absolute path, refused if the file changed) or of ``data``; GAN runs the
    geometry score of their samples and of real images."""
    from .config import pick_device

    dev = pick_device(device)
    model, cfg, ck = load_run_model(run_dir, checkpoint, dev)
    raw = RunDir.read_only(run_dir).read_config()
    if data is None:
        check_fingerprint(raw.get("data", {}))
    else:
        cfg = resolve_data(TrainConfig.from_dict({**cfg.as_dict(), "data": str(data)}))
        task_for(cfg).check_other_data(raw.get("data", {}), data_fingerprint(cfg.data))
    task = task_for(cfg)
    dist = Dist(1, 0, dev)
    datasets = task.datasets()
    result: dict[str, Any] = {"run": str(run_dir), "arch": cfg.arch, "task": cfg.task, "data": cfg.data,
                              "epoch": ck["epoch"], "checkpoint": checkpoint, "selected_on": raw.get("selection")}
    if cfg.task == "gan":
        result["generated"] = {k: v for k, v in task.evaluate(model, datasets, dev, dist)[0].items() if k != "split"}
        result["real"] = {k: v for k, v in task.real_row(datasets).items() if k != "split"}
        return result
    for split, ds in datasets.items():
        result[split] = task.evaluate_split(model, ds, dev, dist)
    return result
