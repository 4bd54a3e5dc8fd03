"""The one training loop, and the entry points around it: start a run, resume one, evaluate one.

:func:`fit` owns a run (as Lightning's Trainer does); the :class:`~.tasks.Task` supplies the steps,
its :class:`~.selection.Selection` says which epoch ``best.pt`` holds, and a :class:`~.recorder.Recorder`
writes the run folder. Every epoch: the train split in an order seeded by ``seed + epoch`` (a
DistributedSampler, so each process gets its shard), the task's step on every batch (a loss that is
not finite stops the run), the task's evaluation, the selection, the record.

The data file is found and validated once per run (:mod:`.data`) and handed down: the task's
datasets, the GAN's scene and the recorded fingerprint all read through that one validation.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import h5py
import torch
from torch.utils.data import DataLoader, DistributedSampler

from .. import __version__
from ..datasets import VAL_SEED
from ..errors import InvalidParameter
from .config import learning_rate, pick_device, resolve, resume_config
from .data import RunData, recorded_data, resolve_data
from .distributed import Dist, setup
from .errors import TrainError
from .options import TrainConfig
from .recorder import Recorder
from .run import FORMAT, RunDir, load_checkpoint, load_optimizers, load_weights
from .seeding import stream_seed
from .tasks import TASKS, Task, add_stats, task_for

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
        return TASKS[self.task].summary_line(self)


def default_out(arch: str, dataset: str) -> str:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return str(Path("runs") / f"{arch}-{dataset}-{stamp}")


def _bar(progress: Progress | None, total: int, label: str) -> Any:
    return progress(total, label) if progress is not None else nullcontext(lambda k: None)


def _config_record(cfg: TrainConfig, task: Task, data: RunData, dist: Dist) -> dict[str, Any]:
    record: dict[str, Any] = {
        "format": FORMAT,
        "options": cfg.as_dict(),
        "task": cfg.task,
        "dataset": cfg.dataset,
        "data": data.fingerprint,
        "selection": task.selection().name,
        "versions": {"coordconv_data": __version__, "torch": torch.__version__, "python": platform.python_version(),
                     "h5py": h5py.__version__},
        "world_size": dist.world,
        "device": str(dist.device),
    }
    if "val" in task.splits:
        record["validation"] = {"fraction": cfg.val_fraction, "seed": VAL_SEED, "samples": len(task.splits["val"]),
                                "carved_from": "the file's train split"}
    return record


def fit(cfg: TrainConfig, data: RunData, run: RunDir | None, dist: Dist, *, checkpoint: dict[str, Any] | None = None,
        checkpoint_path: Path | None = None, progress: Progress | None = None,
        log: Callable[[str], None] | None = None) -> FitSummary:
    """Train a resolved config on its validated data; ``run`` is the claimed folder (``None`` in
    processes other than rank 0); ``checkpoint`` a ``last.pt`` (read from ``checkpoint_path`` by
    :func:`~.run.load_checkpoint`) to continue from."""
    task = task_for(cfg)
    device = dist.device
    splits = task.setup(data)
    for name, ds in splits.items():
        if name != "train" and len(ds) < dist.world:
            raise TrainError(f"the {name} split has {len(ds)} samples, fewer than the {dist.world} processes")
    torch.manual_seed(cfg.seed)
    model = task.build_model().to(device)
    if device.type == "cpu" and not dist.distributed and task.channels_last:
        # oneDNN's convolutions ran 1.3-1.6x faster channels-last here; DDP's gradient buckets expect the
        # default layout, so not under torchrun.
        model = model.to(memory_format=torch.channels_last)
    optimizers = task.optimizers(model)
    selection = task.selection()
    history: list[dict[str, Any]] = []
    start = 0
    if checkpoint is not None:
        where = checkpoint_path or Path(cfg.out or ".") / "last.pt"
        load_weights(where, model, checkpoint["model"], cfg.arch)
        load_optimizers(where, optimizers, checkpoint["optimizers"])
        start, history = int(checkpoint["epoch"]), list(checkpoint["history"])
        selection.load_state_dict(checkpoint)
    nets = task.networks(model, dist.wrap)
    recorder = Recorder(run, task, log)
    try:
        return _loop(cfg, task, splits, model, optimizers, selection, nets, recorder, history, start, run, dist,
                     data, progress)
    finally:
        recorder.close()


def _loop(cfg: TrainConfig, task: Task, splits: dict[str, Any], model: torch.nn.Module,
          optimizers: dict[str, torch.optim.Optimizer], selection: Any, nets: Any, recorder: Recorder,
          history: list[dict[str, Any]], start: int, run: RunDir | None, dist: Dist, data: RunData,
          progress: Progress | None) -> FitSummary:
    device = dist.device
    if task.generates and not any(r["split"] == "real" for r in history):
        history.append({"epoch": 0, **dist.on_rank0(task.real_row)})
    recorder.start(_config_record(cfg, task, data, dist), history)
    sampler = DistributedSampler(splits["train"], num_replicas=dist.world, rank=dist.rank, shuffle=True, seed=cfg.seed)
    loader = DataLoader(splits["train"], batch_size=cfg.batch_size, sampler=sampler, drop_last=task.drop_last)
    if len(loader) == 0:
        raise InvalidParameter("batch_size", f"batch_size {cfg.batch_size} leaves no whole batch of the "
                                             f"{len(sampler)} training samples")
    train_seconds = sum(r.get("seconds", 0.0) for r in history if r["split"] == "train")
    t_start = time.perf_counter()
    base_rates = task.base_rates()
    for epoch in range(start + 1, cfg.epochs + 1):
        sampler.set_epoch(epoch - 1)
        torch.manual_seed(stream_seed(cfg.seed, dist.rank, epoch))
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
        rows += [{"epoch": epoch, **r} for r in task.evaluate(model, device, dist)]
        history += rows
        improved = selection.update(epoch, rows)
        recorder.epoch(epoch, model, optimizers, rows, history, selection, improved, seconds, device)
    dist.barrier()

    def by_split(epoch: int | None) -> dict[str, dict[str, Any]]:
        return {r["split"]: r for r in history if r["epoch"] == epoch}

    last_epoch = max((r["epoch"] for r in history), default=None)
    real = next((r for r in history if r["split"] == "real"), None)
    return FitSummary(
        out=str(run.path) if run is not None else str(cfg.out), arch=cfg.arch, task=cfg.task, epochs=cfg.epochs,
        primary=task.primary, selected_on=selection.name, best_epoch=selection.best_epoch,
        best=by_split(selection.best_epoch), last=by_split(last_epoch), real=real, train_seconds=train_seconds,
        wall_seconds=time.perf_counter() - t_start, world_size=dist.world, rank=dist.rank)


def train(cfg: TrainConfig, *, progress: Progress | None = None, log: Callable[[str], None] | None = None) -> FitSummary:
    """Start a new run of ``cfg`` (options checked, data found or generated, ``cfg.out`` claimed) and fit it.

    Under ``torchrun`` call it in every process: rank 0 decides the folder, claims it and validates the
    data file; the others receive what it found.
    """
    cfg = resolve(cfg)
    dist = setup(cfg.device)
    holder: list[RunDir] = []
    try:
        def claim() -> tuple[TrainConfig, RunData]:
            out = cfg.out or default_out(cfg.arch, cfg.dataset)
            RunDir.check_new(out)  # before generating any data
            resolved, data = resolve_data(cfg, task_for(cfg).check_data, announce=log)
            resolved.out = out
            holder.append(RunDir.create(out))
            return resolved, data

        resolved, data = dist.on_rank0(claim)
        return fit(resolved, data, holder[0] if holder else None, dist, progress=progress, log=log)
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
    cfg = resolve(resume_config(peek.options(), given or {}))
    dist = setup(cfg.device)
    holder: list[RunDir] = []
    try:
        def claim() -> RunData:
            holder.append(RunDir.resume(run_dir))
            return recorded_data(raw.get("data", {}))

        data = dist.on_rank0(claim)
        run = holder[0] if holder else None
        ck = None
        last = Path(run_dir) / "last.pt"
        if last.is_file():
            ck = load_checkpoint(last, map_location=dist.device, arch=cfg.arch, resumable=True)
            if cfg.epochs <= int(ck["epoch"]):
                raise InvalidParameter("epochs", f"epochs {cfg.epochs} is not more than the {ck['epoch']} epochs "
                                                 f"{run_dir} has done", hint="give a larger {epochs} to continue it")
        cfg.out = str(run_dir)
        return fit(cfg, data, run, dist, checkpoint=ck, checkpoint_path=last, progress=progress, log=log)
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
    load_weights(run.file(checkpoint + ".pt"), model, ck["model"], cfg.arch)
    model.eval()
    return model, cfg, ck


def evaluate_run(run_dir: str | Path, data: str | None = None, device: str = "auto",
                 checkpoint: str = "best") -> dict[str, Any]:
    """Metrics of a run's ``best.pt`` (or ``last.pt``): supervised runs on train, val and test of the run's
    data file (the recorded absolute path, refused if the file changed) or of ``data``; GAN runs the
    geometry score of their samples and of real images."""
    dev = pick_device(device)
    model, cfg, ck = load_run_model(run_dir, checkpoint, dev)
    raw = RunDir.read_only(run_dir).read_config()
    task = task_for(cfg)
    if data is None:
        found = recorded_data(raw.get("data", {}))
    else:
        cfg, found = resolve_data(TrainConfig.from_dict({**cfg.as_dict(), "data": str(data)}), task.check_data)
        task.check_other_data(raw.get("data", {}), found.fingerprint)
    task.setup(found)
    return {"run": str(run_dir), "arch": cfg.arch, "task": cfg.task, "data": str(found.path), "epoch": ck["epoch"],
            "checkpoint": checkpoint, "selected_on": raw.get("selection"),
            **task.checkpoint_metrics(model, dev, Dist(1, 0, dev))}
