"""The training loop: config resolution and checks, epochs, evaluation, the run directory, resume, DDP.

:func:`resolve` turns user options into a complete config (per-task defaults filled in) and checks
everything that can be checked before training (arch, file kind, splits, hyperparameters, device),
raising :class:`OptionError` (a bad option: which one and why) or :class:`TrainError` (a runtime
problem such as a file of the wrong kind), each with a one-line message. :func:`train` runs it.

Reproducibility: the model is initialised after ``torch.manual_seed(seed)``; epoch ``e`` shuffles
with a :class:`~torch.utils.data.DistributedSampler` seeded ``seed`` (its generator is seeded
``seed + e``, so the shuffle needs no saved state); the torch RNG state is saved in every checkpoint.
On the CPU a run resumed from ``last.pt`` ends with the same weights and metrics as an uninterrupted
one.

Distributed: under ``torchrun`` (``WORLD_SIZE > 1``) the process group is created (gloo on the CPU,
nccl on CUDA), the model wrapped in DistributedDataParallel, and each process trains on its shard of
every epoch; ``--batch-size`` is per process. Every process evaluates the full splits (the models are
identical), only rank 0 writes the run directory.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import h5py
import torch

from .. import __version__
from ..data import H5SplitDataset
from ..store import StoreError, summarize
from . import tasks as T
from .errors import OptionError, TrainError
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state, write_json, write_metrics_csv

__all__ = ["TrainError", "OptionError", "TrainConfig", "DEFAULTS", "resolve", "train", "evaluate_run",
           "evaluate_model", "default_out"]

TRAINABLE_TASKS = tuple(T.TASK_SPECS)

# Per-task defaults (the paper's classification command: -mb 16 -L 0.005 adam l2 0.001; its regression
# used lr 0.01, l2 1e-5, but coordconv_regressor can stall at 1e-2, so 1e-3 here).
DEFAULTS: dict[str, dict[str, Any]] = {
    "classification": dict(epochs=10, batch_size=16, lr=0.005, opt="adam", l2=0.001),
    "rendering": dict(epochs=10, batch_size=16, lr=0.005, opt="adam", l2=0.001),
    "regression": dict(epochs=20, batch_size=32, lr=0.001, opt="adam", l2=1e-5),
    "segmentation": dict(epochs=10, batch_size=16, lr=0.001, opt="adam", l2=0.0),
    # The paper's GAN command: -mb 16 -E 50 -L 0.0001 --lr2 .0005 (lr: discriminator, lr2: generator).
    "gan": dict(epochs=50, batch_size=16, lr=0.0001, lr2=0.0005, opt="adam", l2=0.0, eval_samples=1000),
}
GAN_ONLY = ("lr2", "eval_samples")  # options only GAN training takes
MAX_EVAL_SAMPLES = 50000  # generated images are kept in memory as uint8: 600 MB
# Per-arch overrides of DEFAULTS, each from a measured run (README results): coordconv_rendering's
# softmax "sharpen" stage stalled at IoU 0 for 3 epochs with lr 0.005 / l2 0.001 and reached 0.81 with
# lr 0.001 / no l2.
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "coordconv_rendering": dict(lr=0.001, l2=0.0),
}
HPARAM_OPTIONS = ("mul", "fs", "z_dim")  # model hyperparameters offered as options
EVAL_BATCH = 256


@dataclass
class TrainConfig:
    arch: str
    data: str
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    opt: str | None = None
    l2: float | None = None
    mul: int | None = None
    fs: int | None = None
    z_dim: int | None = None
    lr2: float | None = None  # GANs: the generator's learning rate (lr is the discriminator's)
    eval_samples: int | None = None  # GANs: generated images scored every epoch
    seed: int = 0
    device: str = "auto"
    out: str | None = None
    hparams: dict[str, Any] = field(default_factory=dict)  # resolved model hyperparameters
    task: str = ""
    dataset: str = ""


def default_out(arch: str, dataset: str) -> str:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return str(Path("runs") / f"{arch}-{dataset}-{stamp}")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise OptionError("--device", "CUDA is not available here (torch "
                          f"{torch.__version__} sees no GPU); use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise OptionError("--device", f"must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


def resolve(cfg: TrainConfig) -> TrainConfig:
    """Fill in defaults and check the config against the arch and the file; raise before any work."""
    from ..models import HyperparameterError, UnknownModelError, model_info

    try:
        info = model_info(cfg.arch)
    except UnknownModelError as e:
        raise OptionError("--arch", str(e)) from None
    if info.task not in TRAINABLE_TASKS:
        raise OptionError("--arch", f"{cfg.arch} is a {info.task} model; train handles "
                          f"{', '.join(TRAINABLE_TASKS)} models")
    spec = T.TASK_SPECS[info.task]
    defaults = {**DEFAULTS[info.task], **ARCH_DEFAULTS.get(cfg.arch, {})}
    out = TrainConfig(**{**asdict(cfg)})
    out.task, out.dataset = info.task, info.dataset
    for key in GAN_ONLY:
        if getattr(out, key) is not None and key not in defaults:
            raise OptionError(_flag(key), f"only GAN archs take {_flag(key)}; {cfg.arch} is a {info.task} model")
    for key, value in defaults.items():
        if getattr(out, key) is None:
            setattr(out, key, value)
    if out.opt not in ("adam", "sgd"):
        raise OptionError("--opt", f"must be adam or sgd, got {out.opt!r}")
    if out.epochs < 1:
        raise OptionError("--epochs", f"must be at least 1, got {out.epochs}")
    if out.batch_size < 1:
        raise OptionError("--batch-size", f"must be at least 1, got {out.batch_size}")
    if not (out.lr > 0 and math.isfinite(out.lr)):
        raise OptionError("--lr", f"must be a positive number, got {out.lr}")
    if not (out.l2 >= 0 and math.isfinite(out.l2)):
        raise OptionError("--l2", f"must be 0 or more, got {out.l2}")
    if out.lr2 is not None and not (out.lr2 > 0 and math.isfinite(out.lr2)):
        raise OptionError("--lr2", f"must be a positive number, got {out.lr2}")
    if out.eval_samples is not None and not 1 <= out.eval_samples <= MAX_EVAL_SAMPLES:
        raise OptionError("--eval-samples", f"must be 1 to {MAX_EVAL_SAMPLES} (kept in memory), got {out.eval_samples}")
    hparams = dict(out.hparams)
    for name in HPARAM_OPTIONS:
        value = getattr(out, name)
        if value is None:
            continue
        if name not in info.hparams:
            takes = ", ".join(_flag(h) for h in HPARAM_OPTIONS if h in info.hparams) or "none"
            offered = "/".join(_flag(h) for h in HPARAM_OPTIONS)
            raise OptionError(_flag(name), f"{cfg.arch} does not take {_flag(name)} (of {offered} it takes: {takes})")
        hparams[name] = value
    try:  # validates the values (e.g. fs) by building the model once
        from ..models import create_model

        create_model(cfg.arch, **hparams)
    except HyperparameterError as e:
        raise OptionError(_flag(next((h for h in HPARAM_OPTIONS if h in str(e)), "arch")), str(e)) from None
    out.hparams = hparams
    pick_device(out.device)
    if info.task == "gan" and _dist_env()[0] > 1:
        raise TrainError("GAN training runs in one process; start it without torchrun")
    # The file: kind and splits.
    try:
        summary = summarize(out.data)
    except StoreError as e:
        raise TrainError(str(e)) from None
    if summary.kind != spec.dataset:
        raise TrainError(f"{out.data} holds {summary.kind} data, but {cfg.arch} ({info.task}) trains on {spec.dataset}")
    if info.task == "gan":
        from .gan import check_gan_file

        check_gan_file(summary, cfg.arch, info.output_shape[-1])
    for split in ("train", "test"):
        if split not in summary.splits or summary.lengths.get(split, 0) == 0:
            raise TrainError(f"{out.data} has no {split!r} split (or it is empty); train needs train and test")
        missing = [a for a in spec.arrays if a not in summary.splits[split]]
        if missing:
            raise TrainError(f"{out.data}: split {split!r} lacks {', '.join(missing)}, which {info.task} needs")
    if info.task == "gan":
        if out.batch_size > summary.lengths["train"]:  # an epoch drops the last partial batch
            raise OptionError("--batch-size", f"{out.batch_size} is more than the {summary.lengths['train']} "
                              f"train images of {out.data}")
    return out


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def data_record(path: str) -> dict[str, Any]:
    summary = summarize(path)
    return {
        "path": str(Path(path).resolve()),
        "bytes": Path(path).stat().st_size,
        "kind": summary.kind,
        "layout": summary.layout,
        "seed": summary.seed,
        "params": summary.params,
        "lengths": summary.lengths,
    }


def class_names_of(path: str) -> list[str] | None:
    summary = summarize(path)
    names = summary.attrs.get("class_names")
    if isinstance(names, str):
        try:
            names = json.loads(names)
        except json.JSONDecodeError:
            names = None
    if not names:
        return None
    return [str(n).replace(" ", "_") for n in names]


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    # --l2 is coupled weight decay: the gradient of l2/2 * ||w||^2, like TensorFlow's l2 * tf.nn.l2_loss.
    if cfg.opt == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.l2)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.l2)


@torch.no_grad()
def evaluate_model(model: torch.nn.Module, ds: H5SplitDataset, task: str, device: torch.device,
                   class_names: list[str] | None = None, batch_size: int = EVAL_BATCH) -> dict[str, float]:
    """Loss (mean over samples) and the task's metrics of ``model`` on a whole split."""
    was_training = model.training
    model.eval()
    acc = None
    loss_sum = 0.0
    n = len(ds)
    for start in range(0, n, batch_size):
        batch = ds.batch(range(start, min(n, start + batch_size)))
        x, y = T.to_inputs_targets(task, batch, device)
        out = model(x)
        loss_sum += float(T.loss_fn(task, out, y)) * y.shape[0]
        acc = T.add_stats(acc, T.stats(task, out, y))
    model.train(was_training)
    result = {"loss": loss_sum / max(n, 1)}
    result.update(T.finalize(task, acc, class_names))
    return result


def _dist_env() -> tuple[int, int, int]:
    return int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))


def _better(task: str, value: float, best: float | None) -> bool:
    spec = T.TASK_SPECS[task]
    if best is None or math.isnan(best):
        return not math.isnan(value)
    return value > best if spec.higher_is_better else value < best


def _columns(task: str, class_names: list[str] | None) -> list[str]:
    return ["epoch", "split", "loss"] + T.metric_columns(task, class_names) + ["seconds"]


def prepare_out(out: str, resume: bool) -> Path:
    p = Path(out)
    if resume:
        if not (p / "last.pt").is_file() or not (p / "config.json").is_file():
            raise TrainError(f"{p} is not a run directory to resume (no last.pt and config.json)")
        return p
    if p.exists() and (not p.is_dir() or any(p.iterdir())):
        raise OptionError("--out", f"{p} exists and is not an empty folder; choose another --out, or --resume it")
    return p


def load_run_config(run_dir: str | os.PathLike) -> TrainConfig:
    p = Path(run_dir) / "config.json"
    try:
        raw = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise TrainError(f"{p}: cannot read the run's config ({e})") from None
    fields = TrainConfig.__dataclass_fields__
    cfg = TrainConfig(**{k: v for k, v in raw["options"].items() if k in fields})
    resolved = raw.get("data", {}).get("path")
    if not Path(cfg.data).exists() and resolved and Path(resolved).exists():
        cfg.data = resolved  # a relative --data, resumed from another folder
    return cfg


def epoch_bar(progress: Callable[[int, str], Any] | None, total: int, label: str) -> Any:
    """``progress(total, label)``, or a context yielding a do-nothing ``advance`` when there is none."""
    return progress(total, label) if progress is not None else contextlib.nullcontext(lambda k: None)


def write_run_config(cfg: TrainConfig, device: torch.device, world: int) -> None:
    write_json(Path(cfg.out) / "config.json", {
        "options": {k: v for k, v in asdict(cfg).items()},
        "data": data_record(cfg.data),
        "versions": {"coordconv_data": __version__, "torch": torch.__version__,
                     "python": platform.python_version(), "h5py": h5py.__version__},
        "world_size": world,
        "device": str(device),
    })


def train(cfg: TrainConfig, *, resume: bool = False, progress: Callable[[int, str], Any] | None = None,
          log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train ``cfg`` (already :func:`resolve`-d) into ``cfg.out``; return a summary dict.

    ``progress(total, label)`` returns a context manager yielding ``advance(k)`` (one per epoch);
    ``log`` receives one line per epoch.
    """
    from ..models import create_model

    if cfg.task == "gan":
        from .gan import train_gan

        return train_gan(cfg, resume=resume, progress=progress, log=log)
    world, rank, local_rank = _dist_env()
    distributed = world > 1
    device = pick_device(cfg.device)
    if distributed:
        import torch.distributed as dist

        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo")
    out_dir = Path(cfg.out)
    spec = T.TASK_SPECS[cfg.task]
    class_names = class_names_of(cfg.data) if cfg.task == "segmentation" else None
    columns = _columns(cfg.task, class_names)

    torch.manual_seed(cfg.seed)
    model = create_model(cfg.arch, **cfg.hparams).to(device)
    if device.type == "cpu" and not distributed:  # oneDNN convs run ~1.5x faster channels-last here (DDP's
        # gradient buckets expect the default layout, so not under torchrun)
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, model.parameters())
    start_epoch, history, best, best_epoch = 0, [], None, None
    if resume:
        ck = load_checkpoint(out_dir / "last.pt", map_location=device)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        start_epoch, history = ck["epoch"], ck["history"]
        best, best_epoch = ck.get("best"), ck.get("best_epoch")
        set_rng_state(ck["rng"])
    elif rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        write_run_config(cfg, device, world)
    net: torch.nn.Module = model
    if distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        import warnings

        # A (C_out, C_in, 1, 1) kernel is both contiguous and channels-last; DDP's bucket views take the
        # latter and conv backward gives the former, and every step warns. Harmless (a copy per step).
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)

    train_ds = H5SplitDataset(cfg.data, "train", kind=spec.dataset, names=spec.arrays)
    test_ds = H5SplitDataset(cfg.data, "test", kind=spec.dataset, names=spec.arrays)
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(train_ds, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    steps_per_epoch = math.ceil(sampler.num_samples / cfg.batch_size)
    total_time = sum(r["seconds"] for r in history if r["split"] == "train")
    t_start = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs):
        sampler.set_epoch(epoch)
        indices = list(sampler)
        t0 = time.perf_counter()
        net.train()
        with epoch_bar(progress if rank == 0 else None, steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}") as advance:
            for b in range(0, len(indices), cfg.batch_size):
                batch = train_ds.batch(indices[b : b + cfg.batch_size])
                x, y = T.to_inputs_targets(cfg.task, batch, device)
                optimizer.zero_grad(set_to_none=True)
                loss = T.loss_fn(cfg.task, net(x), y)
                loss.backward()
                optimizer.step()
                advance(1)
        seconds = time.perf_counter() - t0
        total_time += seconds
        rows = []
        for split, ds in (("train", train_ds), ("test", test_ds)):
            m = evaluate_model(model, ds, cfg.task, device, class_names)
            rows.append({"epoch": epoch + 1, "split": split, **m, "seconds": seconds if split == "train" else 0.0})
        history.extend(rows)
        test_row = rows[1]
        if _better(cfg.task, test_row[spec.primary], best):
            best, best_epoch = test_row[spec.primary], epoch + 1
            improved = True
        else:
            improved = False
        if rank == 0:
            payload = {"model": model.state_dict(), "arch": cfg.arch, "hparams": cfg.hparams, "task": cfg.task,
                       "epoch": epoch + 1, "metrics": {r["split"]: r for r in rows}}
            if improved:
                save_checkpoint(out_dir / "best.pt", payload)
            save_checkpoint(out_dir / "last.pt", {**payload, "optimizer": optimizer.state_dict(), "history": history,
                                                  "best": best, "best_epoch": best_epoch, "rng": rng_state()})
            write_metrics_csv(out_dir / "metrics.csv", history, columns)
            from .plots import write_curves

            write_curves(out_dir / "curves.png", history, spec.primary, title=f"{cfg.arch} on {Path(cfg.data).name}")
            if log:
                log(f"epoch {epoch + 1}/{cfg.epochs}: train loss {rows[0]['loss']:.4g} {spec.primary} "
                    f"{rows[0][spec.primary]:.4g}, test loss {rows[1]['loss']:.4g} {spec.primary} "
                    f"{rows[1][spec.primary]:.4g} ({seconds:.1f} s)")
    if rank == 0:
        from .plots import write_predictions

        write_predictions(out_dir / "predictions.png", model, test_ds, cfg.task, device)
    final = {r["split"]: r for r in history[-2:]}
    if distributed:
        import torch.distributed as dist

        dist.barrier()
    return {
        "out": str(out_dir),
        "arch": cfg.arch,
        "task": cfg.task,
        "epochs": cfg.epochs,
        "primary": spec.primary,
        "train": final.get("train", {}),
        "test": final.get("test", {}),
        "best": best,
        "best_epoch": best_epoch,
        "train_seconds": total_time,
        "wall_seconds": time.perf_counter() - t_start,
        "rank": rank,
        "world_size": world,
    }


def evaluate_run(run_dir: str | os.PathLike, data: str | None = None, device: str = "auto",
                 checkpoint: str = "best") -> dict[str, Any]:
    """Metrics of a run's ``best.pt`` (or ``last.pt``) on both splits of its data file (or ``data``);
    for a GAN run, the geometry score of its samples and of the real test images."""
    from ..models import create_model

    run_dir = Path(run_dir)
    if not (run_dir / f"{checkpoint}.pt").is_file():
        raise TrainError(f"{run_dir} has no {checkpoint}.pt (not a finished run directory)")
    cfg = load_run_config(run_dir)
    if cfg.task == "gan":
        from .gan import evaluate_gan

        return evaluate_gan(run_dir, data, device, checkpoint=checkpoint)
    data = data or cfg.data
    spec = T.TASK_SPECS[cfg.task]
    try:
        summary = summarize(data)
    except StoreError as e:
        raise TrainError(str(e)) from None
    if summary.kind != spec.dataset:
        raise TrainError(f"{data} holds {summary.kind} data, but {cfg.arch} ({cfg.task}) needs {spec.dataset}")
    dev = pick_device(device)
    ck = load_checkpoint(run_dir / f"{checkpoint}.pt", map_location=dev)
    model = create_model(ck["arch"], **ck["hparams"]).to(dev)
    model.load_state_dict(ck["model"])
    class_names = class_names_of(data) if cfg.task == "segmentation" else None
    result: dict[str, Any] = {"run": str(run_dir), "arch": cfg.arch, "task": cfg.task, "data": str(data),
                              "epoch": ck["epoch"], "checkpoint": checkpoint}
    for split in ("train", "test"):
        if split in summary.splits:
            ds = H5SplitDataset(data, split, kind=spec.dataset, names=spec.arrays)
            result[split] = evaluate_model(model, ds, cfg.task, dev, class_names)
    return result
