"""One class per task kind: what a run reads, how one training step goes, what it measures.

The fit loop (:mod:`.fit`) is the same for every task; a :class:`Task` supplies the pieces that
differ: its datasets (the samples come from :mod:`coordconv_data.datasets`, the one definition of
each task's ``(input, target)``), made once by :meth:`Task.setup`; its optimizers, a training step,
the additive statistics of an epoch and their metrics, the evaluation after each epoch, its
:class:`~.selection.Selection` of ``best.pt``, its pictures, and how a finished run reads (its
summary line, what ``evaluate`` reports, its headline figure in a report). Nothing outside this module
asks a task's name. Adding a task is one class registered with :func:`register_task` under the
registry's task name (:data:`coordconv_data.models.TASKS`).

Metrics accumulate over an epoch as additive statistics (sums and counts, float64 on the CPU), so
statistics of several processes simply add up.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, ClassVar

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..datasets import CoordDataset, dataset_class, val_partition
from ..errors import InvalidParameter
from ..kinds import get_kind
from ..models import denormalize_coords, l2_parameters, model_info
from ..models.registry import ModelInfo
from ..store import FileSummary
from .errors import TrainError
from .seeding import LATENTS, stream_seed
from .selection import Selection

__all__ = ["Task", "SupervisedTask", "Classification", "Rendering", "Regression", "Segmentation", "GAN",
           "TASKS", "register_task", "task_for", "Stats", "add_stats", "EVAL_BATCH"]

Stats = dict[str, Tensor]
EVAL_BATCH = 256
TASKS: dict[str, type["Task"]] = {}


def register_task(cls: type["Task"]) -> type["Task"]:
    TASKS[cls.name] = cls
    return cls


def task_for(cfg: Any) -> "Task":
    """The task object of a resolved config (``cfg.arch`` names a registered model)."""
    info = model_info(cfg.arch)
    cls = TASKS.get(info.task)
    if cls is None:
        raise TrainError(f"{cfg.arch} is a {info.task} model; train handles {', '.join(TASKS)} models")
    return cls(cfg, info)


ADAM_BETAS = (0.9, 0.99)  # the original's --beta1/--beta2 defaults (util.py), for every task


def make_optimizer(name: str, params: Any, lr: float) -> torch.optim.Optimizer:
    """Adam with the original's betas, or SGD with momentum 0.9 (the original's --mom default)."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=ADAM_BETAS)
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def add_stats(a: Stats | None, b: Stats) -> Stats:
    if a is None:
        return {k: v.detach().double().cpu().clone() for k, v in b.items()}
    return {k: a[k] + b[k].detach().double().cpu() for k in a}


def l2_penalty(params: list[Tensor], l2: float) -> Tensor | float:
    """``l2 * sum(w ** 2)`` over ``params``, as the original's ``l2reg`` added to the loss (gradient ``2 * l2 * w``)."""
    if not l2 or not params:
        return 0.0
    return l2 * sum(p.square().sum() for p in params)


def _to(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj


class Task:
    """The pieces of training that depend on the task. ``cfg`` is a resolved TrainConfig."""

    name: ClassVar[str]
    primary: ClassVar[str]  # the metric that selects best.pt
    higher_is_better: ClassVar[bool]
    dataset_task: ClassVar[str]  # the datasets' name of this task's (input, target)
    optimizer_names: ClassVar[tuple[str, ...]]
    generates: ClassVar[bool] = False  # a generator of images (latent walks, samples)
    unit: ClassVar[str] = ""  # written after the primary metric's values
    default_options: ClassVar[dict[str, Any]] = {}  # options of every arch of the task (a recipe may override)
    drop_last: ClassVar[bool] = False  # drop an epoch's last partial batch
    channels_last: ClassVar[bool] = True  # train channels-last on the CPU (in one process)

    def __init__(self, cfg: Any, info: ModelInfo) -> None:
        self.cfg, self.info = cfg, info
        self.data: Any = None  # the RunData of setup()
        self.splits: dict[str, CoordDataset] = {}

    # -- data and model --------------------------------------------------------------------------

    def setup(self, data: Any) -> dict[str, CoordDataset]:
        """Read the run's data (a validated :class:`~.data.RunData`) once: the splits the loop steps
        through (``train``) and evaluates, and whatever else the task keeps of the file. Returns the splits."""
        self.data = data
        self.splits = self.make_splits()
        return self.splits

    def dataset(self, split: str, **kwargs: Any) -> CoordDataset:
        cls = dataset_class(self.info.dataset)
        return cls(self.data.path, split, task=self.dataset_task, generate=False, summary=self.data.summary, **kwargs)

    def make_splits(self) -> dict[str, CoordDataset]:
        """``train`` (what the loop steps through) and whatever :meth:`evaluate` needs."""
        raise NotImplementedError

    def check_data(self, summary: FileSummary) -> None:
        """Refuse, in one line and before any work, a file of the right kind this task cannot use."""
        raise NotImplementedError

    def check_other_data(self, recorded: dict[str, Any], other: dict[str, Any]) -> None:
        """Refuse a file to evaluate a run on whose numbers would not mean what the run's do
        (``recorded`` and ``other`` are data fingerprints)."""

    def selection(self) -> Selection:
        """What selects best.pt (never the test split)."""
        raise NotImplementedError

    def build_model(self) -> nn.Module:
        from ..models import create_model

        return create_model(self.cfg.arch, **self.cfg.hparams)

    def optimizers(self, model: nn.Module) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def networks(self, model: nn.Module, wrap: Callable[[nn.Module], nn.Module]) -> dict[str, Any]:
        """What :meth:`train_step` runs; ``wrap`` makes a module data-parallel (identity in one process)."""
        raise NotImplementedError

    def base_rates(self) -> dict[str, float]:
        """Each optimizer's learning rate before the schedule."""
        raise NotImplementedError

    # -- one epoch -------------------------------------------------------------------------------

    def train_step(self, nets: Any, batch: Any, optimizers: dict[str, torch.optim.Optimizer],
                   device: torch.device) -> tuple[Tensor, Stats]:
        """One step on a batch; returns the loss that was minimised (checked for NaN) and the step's
        additive statistics."""
        raise NotImplementedError

    def train_row(self, stats: Stats) -> dict[str, float]:
        """The ``train`` row of an epoch from its summed step statistics."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, device: torch.device, dist: Any) -> list[dict[str, Any]]:
        """Rows (``split`` plus metrics) measured after an epoch, the same in every process."""
        raise NotImplementedError

    def columns(self) -> list[str]:
        raise NotImplementedError

    def divergence_advice(self) -> str:
        """What to try when the loss becomes NaN or infinite (an error's hint: options as ``{name}``)."""
        return f"lower {{lr}} (it is {self.cfg.lr:g}) or raise {{batch_size}} (it is {self.cfg.batch_size})"

    def log_line(self, epoch: int, epochs: int, rows: list[dict[str, Any]], seconds: float) -> str:
        raise NotImplementedError

    # -- pictures ----------------------------------------------------------------------------------

    def epoch_pictures(self, model: nn.Module, epoch: int, device: torch.device) -> dict[str, np.ndarray]:
        """PNG name -> RGB image, written after every epoch."""
        return {}

    def selected_pictures(self, model: nn.Module, device: torch.device) -> dict[str, np.ndarray]:
        """PNG name -> RGB image of the model of the selected epoch, written when an epoch is selected."""
        return {}

    def curves(self, history: list[dict[str, Any]], selected: int | None = None) -> np.ndarray:
        """curves.png: the run's figures per epoch (``history``: the metrics.csv rows) with ``selected``,
        the epoch ``best.pt`` holds, marked."""
        raise NotImplementedError

    # -- a finished run ----------------------------------------------------------------------------

    @classmethod
    def summary_line(cls, summary: Any) -> str:
        """The line ``coorddata train`` ends with (``summary``: a :class:`~.fit.FitSummary`)."""
        raise NotImplementedError

    def checkpoint_metrics(self, model: nn.Module, device: torch.device, dist: Any) -> dict[str, dict[str, Any]]:
        """What ``evaluate`` reports of a checkpoint's model: metrics per split (or per source)."""
        raise NotImplementedError



# ---------------------------------------------------------------------------------------------------
# Supervised tasks


class SupervisedTask(Task):
    """A model trained on ``(input, target)`` with one loss; selected on the validation split."""

    optimizer_names = ("model",)
    default_options = {"val_fraction": 0.1}  # ours: the original had no validation split

    def make_splits(self) -> dict[str, CoordDataset]:
        kw = {"val_fraction": self.cfg.val_fraction}
        data = {"train": self.dataset("train", **kw)}
        if self.cfg.val_fraction > 0:
            data["val"] = self.dataset("val", **kw)
        data["test"] = self.dataset("test", **kw)
        return data

    def check_data(self, summary: FileSummary) -> None:
        for split in ("train", "test"):
            if summary.lengths.get(split, 0) == 0:
                raise TrainError(f"{summary.path} has no {split!r} samples; {self.cfg.arch} trains on train, selects on a "
                                 "part of it and reports test")
        val_partition(summary.lengths["train"], self.cfg.val_fraction)  # leaves samples to train on

    def selection(self) -> Selection:
        if not self.cfg.val_fraction:
            return Selection(None)
        # Equal validation figures (100% twice): the later epoch (selection.py says why).
        return Selection("val", self.primary, "max" if self.higher_is_better else "min", "epoch", "max")

    def optimizers(self, model: nn.Module) -> dict[str, torch.optim.Optimizer]:
        return {"model": make_optimizer(self.cfg.opt, model.parameters(), self.cfg.lr)}

    def base_rates(self) -> dict[str, float]:
        return {"model": self.cfg.lr}

    def training_module(self, model: nn.Module) -> nn.Module:
        """What the training step runs (the model; a task may ask for more outputs of it)."""
        return model

    def networks(self, model: nn.Module, wrap: Callable[[nn.Module], nn.Module]) -> dict[str, Any]:
        return {"net": wrap(self.training_module(model)), "l2": l2_parameters(model)}

    def training_loss(self, output: Any, target: Any, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The objective of a batch (before ``--l2``), its data loss (what evaluation measures) and the
        model's output to measure."""
        loss = self.loss(output, target)
        return loss, loss, output

    # The task's own pieces.
    def loss(self, output: Tensor, target: Any) -> Tensor:
        raise NotImplementedError

    def stats(self, output: Tensor, target: Any) -> Stats:
        """Additive statistics of a batch (without ``n`` and ``loss_sum``, which the base adds)."""
        raise NotImplementedError

    def finalize(self, stats: Stats) -> dict[str, float]:
        raise NotImplementedError

    def metric_columns(self) -> list[str]:
        return [self.primary]

    def tiles(self, x: Tensor, y: Any, output: Tensor) -> tuple[list[np.ndarray], int]:
        """Pictures of a few samples (input or target, prediction) and how many tiles per sample."""
        raise NotImplementedError

    # The generic parts.
    def train_step(self, nets: nn.Module, batch: Any, optimizers: dict[str, torch.optim.Optimizer],
                   device: torch.device) -> tuple[Tensor, Stats]:
        x, y = _to(batch[0], device), _to(batch[1], device)
        opt = optimizers["model"]
        objective, loss, output = self.training_loss(nets["net"](x), y, x)
        total = objective + l2_penalty(nets["l2"], self.cfg.l2)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        with torch.no_grad():
            s = self.stats(output.detach(), y)
        n = torch.tensor(float(len(x)), dtype=torch.float64)
        return total, {"n": n, "loss_sum": loss.detach().double().cpu() * n, **s}

    def metrics(self, stats: Stats) -> dict[str, float]:
        n = float(stats["n"])
        return {"loss": float(stats["loss_sum"]) / max(n, 1.0), **self.finalize(stats)}

    def train_row(self, stats: Stats) -> dict[str, float]:
        return self.metrics(stats)

    @torch.no_grad()
    def evaluate_split(self, model: nn.Module, ds: CoordDataset, device: torch.device, dist: Any) -> dict[str, float]:
        """Loss and metrics of ``model`` on a whole split, each process taking every world-th sample."""
        was = model.training
        model.eval()
        acc: Stats | None = None
        indices = np.array_split(np.arange(len(ds)), dist.world)[dist.rank]  # never empty (checked up front)
        try:
            for start in range(0, len(indices), EVAL_BATCH):
                x, y = ds.encode(indices[start : start + EVAL_BATCH])
                x, y = _to(x, device), _to(y, device)
                out = model(x)
                n = torch.tensor(float(len(x)), dtype=torch.float64)
                s = {"n": n, "loss_sum": self.loss(out, y).double().cpu() * n, **self.stats(out, y)}
                acc = add_stats(acc, s)
        finally:
            model.train(was)
        assert acc is not None
        return self.metrics(dist.all_reduce_stats(acc))

    def evaluate(self, model: nn.Module, device: torch.device, dist: Any) -> list[dict[str, Any]]:
        return [{"split": split, **self.evaluate_split(model, self.splits[split], device, dist)}
                for split in ("val", "test") if split in self.splits]

    def checkpoint_metrics(self, model: nn.Module, device: torch.device, dist: Any) -> dict[str, dict[str, Any]]:
        return {split: self.evaluate_split(model, ds, device, dist) for split, ds in self.splits.items()}

    @classmethod
    def summary_line(cls, s: Any) -> str:
        p = s.primary

        def show(rows: dict[str, dict[str, Any]], splits: tuple[str, ...]) -> str:
            return ", ".join(f"{split} {p} {rows[split][p]:.4g}" for split in splits if split in rows)

        where = "on val" if s.selected_on == "val" else "(the last: no validation split)"
        return (f"{s.arch}: {s.epochs} epochs in {s.train_seconds:.1f} s; selected epoch {s.best_epoch} "
                f"{where}: {show(s.best, ('val', 'test'))}; last epoch {s.epochs}: "
                f"{show(s.last, ('train', 'val', 'test'))}; run: {s.out}")

    def columns(self) -> list[str]:
        return ["epoch", "split", "loss", *self.metric_columns(), "lr", "seconds"]

    def log_line(self, epoch: int, epochs: int, rows: list[dict[str, Any]], seconds: float) -> str:
        p = self.primary
        parts = [f"{r['split']} loss {r['loss']:.4g} {p} {r[p]:.4g}" for r in rows]
        return f"epoch {epoch}/{epochs}: " + ", ".join(parts) + f" ({seconds:.1f} s)"

    def curves(self, history: list[dict[str, Any]], selected: int | None = None) -> np.ndarray:
        from .plots import metric_curves

        sel = self.selection()
        return metric_curves(history, self.metric_columns(), title=f"{self.cfg.arch} on {self.info.dataset}",
                             selected=selected, selected_on=sel.split, primary=sel.metric,
                             fractions=not self.unit, units=self.unit)

    def selected_pictures(self, model: nn.Module, device: torch.device) -> dict[str, np.ndarray]:
        from ..viz import grid

        ds = self.splits["test"]
        x, y = ds.encode(range(min(4, len(ds))))
        was = model.training
        model.eval()
        with torch.no_grad():
            out = model(_to(x, device)).float().cpu()
        model.train(was)
        tiles, columns = self.tiles(x, y, out)
        return {"predictions.png": grid(tiles, columns=columns)}




class _Stages(nn.Module):
    """A model with ``forward_stages`` (the CoordConv renderer), as its training step runs it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.model.forward_stages(x)


@register_task
class Classification(SupervisedTask):
    """Coordinate classification: ``(x, y)`` -> the one-hot pixel, softmax cross-entropy over 4096."""

    name = "classification"
    dataset_task = "classification"
    primary = "accuracy"
    higher_is_better = True

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(output.flatten(1), target)

    def stats(self, output: Tensor, target: Tensor) -> Stats:
        return {"correct": (output.flatten(1).argmax(1) == target).sum().double().cpu()}

    def finalize(self, stats: Stats) -> dict[str, float]:
        return {"accuracy": float(stats["correct"]) / max(float(stats["n"]), 1.0)}

    def tiles(self, x: Tensor, y: Tensor, output: Tensor) -> tuple[list[np.ndarray], int]:
        import cv2

        from ..viz import enlarge, label

        size, scale, tiles = output.shape[-1], 4, []
        for i in range(len(y)):
            tgt = np.zeros((size, size), np.uint8)
            tgt.reshape(-1)[int(y[i])] = 255
            prob = torch.softmax(output[i].flatten(), 0).reshape(size, size)
            t1, t2 = enlarge(tgt, scale), enlarge((prob / prob.max() * 255).numpy().astype(np.uint8), scale)
            py, px = divmod(int(prob.flatten().argmax()), size)
            cv2.circle(t2, (px * scale + 2, py * scale + 2), 8, (255, 64, 64), 1, cv2.LINE_AA)
            label(t1, "target"), label(t2, f"pred ({px},{py})")
            tiles += [t1, t2]
        return tiles, 2


@register_task
class Rendering(SupervisedTask):
    """Rendering: ``(x, y)`` -> the square's 0/1 mask, per-pixel sigmoid cross-entropy, IoU."""

    name = "rendering"
    dataset_task = "rendering"
    primary = "iou"
    higher_is_better = True

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(output, target)

    def training_module(self, model: nn.Module) -> nn.Module:
        if self.cfg.interm_loss in (None, "none"):
            return model
        return _Stages(model)

    def training_loss(self, output: Any, target: Tensor, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if not isinstance(output, tuple):
            return super().training_loss(output, target, x)
        final, centre = output
        loss = self.loss(final, target)
        return loss + self.interm_loss(centre, x), loss, final

    def interm_loss(self, centre: Tensor, x: Tensor) -> Tensor:
        """The original's ``--interm_loss`` on stage 1's logits against the one-hot centre: ``softmax``
        (cross-entropy over the pixels) or ``mse`` (mean squared difference over every pixel)."""
        size = centre.shape[-1]
        loc = ((x + 1) / 2 * (size - 1)).round().long()
        index = loc[:, 1] * size + loc[:, 0]
        flat = centre.flatten(1)
        if self.cfg.interm_loss == "softmax":
            return F.cross_entropy(flat, index)
        return (flat - F.one_hot(index, flat.shape[1]).to(flat.dtype)).square().mean()

    def stats(self, output: Tensor, target: Tensor) -> Stats:
        pred, tgt = output > 0, target > 0.5
        inter = (pred & tgt).flatten(1).sum(1).double()
        union = (pred | tgt).flatten(1).sum(1).double()
        iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(inter))
        return {"iou_sum": iou.sum().cpu()}

    def finalize(self, stats: Stats) -> dict[str, float]:
        return {"iou": float(stats["iou_sum"]) / max(float(stats["n"]), 1.0)}

    def tiles(self, x: Tensor, y: Tensor, output: Tensor) -> tuple[list[np.ndarray], int]:
        from ..viz import enlarge, label

        scale, tiles = 4, []
        for i in range(len(y)):
            t1 = enlarge((y[i, 0].numpy() * 255).astype(np.uint8), scale)
            t2 = enlarge((torch.sigmoid(output[i, 0]).numpy() * 255).astype(np.uint8), scale)
            label(t1, "target mask"), label(t2, "sigmoid(pred)")
            tiles += [t1, t2]
        return tiles, 2


@register_task
class Regression(SupervisedTask):
    """Coordinate regression: the one-hot map -> normalised ``(x, y)``, MSE, mean error in pixels."""

    name = "regression"
    dataset_task = "regression"
    primary = "px_error"
    higher_is_better = False
    unit = " px"

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(output, target)

    def stats(self, output: Tensor, target: Tensor) -> Stats:
        size = 64
        d = denormalize_coords(output.double(), size) - denormalize_coords(target.double(), size)
        return {"px_sum": d.norm(dim=1).sum().cpu()}

    def finalize(self, stats: Stats) -> dict[str, float]:
        return {"px_error": float(stats["px_sum"]) / max(float(stats["n"]), 1.0)}

    def tiles(self, x: Tensor, y: Tensor, output: Tensor) -> tuple[list[np.ndarray], int]:
        import cv2

        from ..viz import enlarge, label

        scale, tiles = 4, []
        for i in range(len(y)):
            t1 = enlarge((x[i, 0].numpy() * 255).astype(np.uint8), scale)
            t2 = t1.copy()
            tx, ty = ((y[i] + 1) / 2 * 63).tolist()
            px, py = ((output[i] + 1) / 2 * 63).tolist()
            cv2.circle(t2, (int(tx * scale + 2), int(ty * scale + 2)), 10, (64, 255, 64), 1, cv2.LINE_AA)
            cv2.drawMarker(t2, (int(px * scale + 2), int(py * scale + 2)), (255, 64, 64), cv2.MARKER_CROSS, 12, 1)
            label(t1, "input"), label(t2, f"pred ({px:.1f},{py:.1f})")
            tiles += [t1, t2]
        return tiles, 2


@register_task
class Segmentation(SupervisedTask):
    """Lanes segmentation: RGB -> class mask, per-pixel cross-entropy; pixel accuracy, IoU, recall."""

    name = "segmentation"
    dataset_task = "segmentation"
    primary = "mean_iou"
    higher_is_better = True

    def __init__(self, cfg: Any, info: ModelInfo) -> None:
        super().__init__(cfg, info)
        self.class_names = [str(i) for i in range(4)]  # metric suffixes; the file's names once setup() read them

    def setup(self, data: Any) -> dict[str, CoordDataset]:
        names = data.summary.attrs.get("class_names")
        names = json.loads(names) if isinstance(names, str) else names
        if names:
            self.class_names = [str(n).replace(" ", "_") for n in names]
        return super().setup(data)

    def metric_columns(self) -> list[str]:
        names = self.class_names
        return ["pixel_accuracy", "mean_iou", *(f"recall_{c}" for c in names), *(f"iou_{c}" for c in names)]

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(output, target)

    def stats(self, output: Tensor, target: Tensor) -> Stats:
        k = output.shape[1]
        idx = target.flatten() * k + output.argmax(1).flatten()
        conf = torch.bincount(idx, minlength=k * k).reshape(k, k).double().cpu()  # rows: true, columns: predicted
        return {"confusion": conf}

    def finalize(self, stats: Stats) -> dict[str, float]:
        conf = stats["confusion"]
        names = self.class_names if len(self.class_names) == conf.shape[0] else [str(i) for i in range(conf.shape[0])]
        tp, true, predicted = conf.diag(), conf.sum(1), conf.sum(0)
        nan = torch.full_like(tp, float("nan"))
        recall = torch.where(true > 0, tp / true.clamp_min(1), nan)
        union = true + predicted - tp
        iou = torch.where(union > 0, tp / union.clamp_min(1), nan)
        present = ~iou.isnan()
        out = {"pixel_accuracy": float(tp.sum() / conf.sum().clamp_min(1)),
               "mean_iou": float(iou[present].mean()) if present.any() else float("nan")}
        out.update({f"recall_{c}": float(recall[i]) for i, c in enumerate(names)})
        out.update({f"iou_{c}": float(iou[i]) for i, c in enumerate(names)})
        return out

    def tiles(self, x: Tensor, y: Tensor, output: Tensor) -> tuple[list[np.ndarray], int]:
        from ..kinds import LANES
        from ..viz import enlarge, label

        scale, tiles = max(1, 256 // x.shape[-1]), []
        for i in range(len(y)):
            img = enlarge((x[i].permute(1, 2, 0).numpy() * 255).astype(np.uint8), scale)
            tgt = enlarge(LANES.mask_colors(y[i].numpy()), scale)
            pred = enlarge(LANES.mask_colors(output[i].argmax(0).numpy()), scale)
            label(img, "input"), label(tgt, "target"), label(pred, "prediction")
            tiles += [img, tgt, pred]
        return tiles, 3


# ---------------------------------------------------------------------------------------------------
# GANs



G_STEPS = 2  # generator steps per discriminator step, as train_gan.py
SAMPLE_GRID = 10  # samples_<epoch>.png: the first 10 x 10 fixed latents
GEN_BATCH = 100  # images per generator call when sampling (the original sampled in hundreds too)
LOSS_COLUMNS = ("d_loss", "g_loss", "d_real", "d_fake")
SCORE_COLUMNS = ("n", "geometry", "position_tv", "missing", "extra", "malformed", "stray")


def fixed_latents(n: int, z_dim: int, seed: int) -> Tensor:
    """The ``(n, z_dim)`` latents a run samples and scores every epoch (uniform in ``[-1, 1]``)."""
    g = torch.Generator().manual_seed(stream_seed(seed, LATENTS))
    return torch.rand(n, z_dim, generator=g) * 2 - 1


def _bce(logits: Tensor, target: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


class _Fakes(nn.Module):
    """The generator as the discriminator is trained on it (one module: what DDP syncs for G)."""

    def __init__(self, pair: nn.Module) -> None:
        super().__init__()
        self.generator = pair.generator
        self._fakes = pair.fakes_for_discriminator

    def forward(self, z: Tensor) -> Tensor:
        return self._fakes(z)


class _JudgePair(nn.Module):
    """The discriminator on the real and the fake batch, separately (each with its own BatchNorm
    statistics, as the original), in one forward pass: one DDP call per discriminator step."""

    def __init__(self, discriminator: nn.Module) -> None:
        super().__init__()
        self.discriminator = discriminator

    def forward(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        return self.discriminator(real), self.discriminator(fake)


def gan_iteration(nets: dict[str, Any], optimizers: dict[str, torch.optim.Optimizer], real: Tensor, z: Tensor,
                  g_steps: int = G_STEPS, l2: float = 0.0) -> dict[str, Tensor]:
    """One discriminator step and ``g_steps`` generator steps on the same ``z`` (train_gan.py).

    ``nets`` are :meth:`GAN.networks`: the pair, the discriminator on real and fake batches
    (``judge``) and the generator as D sees it (``fakes``), each data-parallel under torchrun.
    ``l2`` adds ``l2 * sum(w ** 2)`` of ``nets["l2"]`` to the generator's loss (not to the losses returned).
    ``d_real`` / ``d_fake`` are the discriminator's mean probability of "real" on the real and the
    fake batch at its step (0.5 / 0.5 is the equilibrium; 1 / 0 a discriminator that wins).
    """
    model = nets["pair"]
    disc, opt_d, opt_g = model.discriminator, optimizers["discriminator"], optimizers["generator"]
    with torch.no_grad():  # D's step needs no gradient through G
        fake = model.fakes_for_discriminator(z)
    real_logits, fake_logits = nets["judge"](real, fake)
    d_loss = _bce(real_logits, 1.0) + _bce(fake_logits, 0.0)
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    disc.requires_grad_(False)  # G's steps need gradients w.r.t. D's input only
    try:
        g_losses = []
        for _ in range(g_steps):
            g_loss = _bce(disc(nets["fakes"](z)), 1.0)
            opt_g.zero_grad(set_to_none=True)
            (g_loss + l2_penalty(nets.get("l2", []), l2)).backward()
            opt_g.step()
            g_losses.append(g_loss.detach())
    finally:
        disc.requires_grad_(True)
    return {"d_loss": d_loss.detach(), "g_loss": torch.stack(g_losses).mean(),
            "d_real": torch.sigmoid(real_logits.detach()).mean(), "d_fake": torch.sigmoid(fake_logits.detach()).mean()}


@register_task
class GAN(Task):
    """A generator and a discriminator trained the paper's way, scored by the geometry of their images.

    Every iteration: one minibatch of real images and one of noise ``z ~ U(-1, 1)``, one
    discriminator step and two generator steps on that same ``z`` (non-saturating losses; real and
    fake through D separately). An epoch is ``len(images) // batch`` iterations over every image of
    the file (train and test: the original GANs trained on all their data). After each epoch the
    generator, in inference mode, draws ``eval_samples`` images from fixed latents; the geometry
    score of those (:mod:`coordconv_data.geometry`) selects best.pt. Real images, scored once,
    give the ceiling (the ``real`` row).
    """

    name = "gan"
    dataset_task = "gan"
    primary = "geometry"
    higher_is_better = True
    optimizer_names = ("discriminator", "generator")
    default_options = {"eval_samples": 1000}
    drop_last = True  # as train_gan.py: len(images) // batch iterations
    channels_last = False
    generates = True

    def __init__(self, cfg: Any, info: ModelInfo) -> None:
        super().__init__(cfg, info)
        self.scene: Any = None  # the geometry score's SceneSpec of the file (setup)
        self.reference: np.ndarray | None = None  # every real object's centre: the position histogram's reference
        self.latents: Tensor | None = None  # the fixed latents sampled and scored every epoch (setup)
        self.samples: np.ndarray | None = None  # the last evaluation's images, drawn again as samples_<epoch>.png

    def divergence_advice(self) -> str:
        return f"lower {{lr}} (D, it is {self.cfg.lr:g}) and {{lr2}} (G, it is {self.cfg.lr2:g})"

    def setup(self, data: Any) -> dict[str, CoordDataset]:
        from ..geometry import SceneSpec, reference_centers

        self.scene = SceneSpec.from_file(data.summary)
        self.reference = np.concatenate([reference_centers(data.summary, s) for s in ("train", "test")
                                         if s in data.summary.splits])
        self.latents = fixed_latents(self.cfg.eval_samples, self.cfg.hparams["z_dim"], self.cfg.seed)
        return super().setup(data)

    def make_splits(self) -> dict[str, CoordDataset]:
        return {"train": self.dataset("all")}

    def selection(self) -> Selection:
        # More correct images first; among equals (e.g. none correct yet), the closer position histogram.
        return Selection("generated", "geometry", "max", "position_tv", "min")

    def check_data(self, summary: FileSummary) -> None:
        arch = self.cfg.arch
        if summary.layout != "native":
            raise TrainError(f"{summary.path} is in the original layout; GANs read native files",
                             hint="write one without {layout} original")
        size = int(self.cfg.hparams["size"])
        have = int(summary.attrs.get("canvas_size", summary.params.get("size", 64)))
        if have != size:
            raise TrainError(f"{summary.path} holds {have}x{have} images, but {arch} generates {size}x{size}",
                             field="size", hint=f"make a file of that size, or train with {{size}} {have}")
        total = sum(summary.lengths.values())  # GANs train on every image, train and test
        if total == 0:
            raise TrainError(f"{summary.path} holds no images")
        if self.cfg.batch_size > total:  # an epoch drops the last partial batch
            raise InvalidParameter("batch_size", f"batch_size {self.cfg.batch_size} is more than the {total} images "
                                                 f"of {summary.path}")

    SCENE_PARAMS = ("size", "objects", "object_size", "background")  # what the geometry score depends on

    def check_other_data(self, recorded: dict[str, Any], other: dict[str, Any]) -> None:
        before, now = recorded.get("params", {}), other.get("params", {})
        differ = [k for k in self.SCENE_PARAMS if k in before and before.get(k) != now.get(k)]
        if differ:
            raise TrainError(f"{other['path']} shows another scene than the run's data ({', '.join(differ)} differ); "
                             "its score would not mean anything")

    def optimizers(self, model: nn.Module) -> dict[str, torch.optim.Optimizer]:
        return {"discriminator": make_optimizer(self.cfg.opt, model.discriminator.parameters(), self.cfg.lr),
                "generator": make_optimizer(self.cfg.opt, model.generator.parameters(), self.cfg.lr2)}

    def base_rates(self) -> dict[str, float]:
        return {"discriminator": self.cfg.lr, "generator": self.cfg.lr2}

    def networks(self, model: nn.Module, wrap: Callable[[nn.Module], nn.Module]) -> dict[str, Any]:
        # --l2: the original regularised the CoordConv generator's kernels only (GANPair.l2_parameters).
        return {"pair": model, "judge": wrap(_JudgePair(model.discriminator)), "fakes": wrap(_Fakes(model)),
                "l2": l2_parameters(model)}

    def train_step(self, nets: dict[str, Any], batch: Any, optimizers: dict[str, torch.optim.Optimizer],
                   device: torch.device) -> tuple[Tensor, Stats]:
        real = _to(batch[0], device)
        z = nets["pair"].sample_noise(real.shape[0], device=device)
        losses = gan_iteration(nets, optimizers, real, z, l2=self.cfg.l2)
        stats = {k: v.double().cpu() for k, v in losses.items()}
        stats["iterations"] = torch.ones((), dtype=torch.float64)
        return losses["d_loss"] + losses["g_loss"], stats

    def train_row(self, stats: Stats) -> dict[str, float]:
        n = max(float(stats["iterations"]), 1.0)
        return {k: float(stats[k]) / n for k in LOSS_COLUMNS}

    # -- scoring ---------------------------------------------------------------------------------

    def to_uint8(self, x: Tensor) -> np.ndarray:
        """Generated ``(N, C, H, W)`` images in the model's scale to the file's uint8 pixels ``(N, H, W, C)``:
        the inverse of the dataset's ``gan`` sample (Sort-of-Clevr ``p / 127.5 - 1``; Not-so-Clevr the
        original's grey, the square at 128 / 255), which is what the geometry score's scene describes."""
        from ..geometry import to_uint8

        return to_uint8(x.detach().float().cpu(), get_kind(self.info.dataset).gan_value_range)

    @torch.no_grad()
    def generate(self, model: nn.Module, z: Tensor, device: torch.device) -> np.ndarray:
        """uint8 images of the generator in inference mode (BatchNorm running statistics) for ``z``."""
        gen = model.generator
        was = gen.training
        gen.eval()
        try:
            out = [self.to_uint8(gen(z[i : i + GEN_BATCH].to(device))) for i in range(0, len(z), GEN_BATCH)]
        finally:
            gen.train(was)
        return np.concatenate(out)

    def score(self, images: np.ndarray) -> dict[str, float]:
        from ..geometry import score_images

        s = score_images(images, self.scene, self.reference)
        return {k: (int(s.n) if k == "n" else float(getattr(s, k))) for k in SCORE_COLUMNS}

    def real_row(self) -> dict[str, Any]:
        """The score of ``eval_samples`` real images spread evenly over what the GAN trains on (every
        image of the file): the ceiling a generator is measured against."""
        images = self.splits["train"]
        index = np.unique(np.linspace(0, len(images) - 1, min(len(images), self.cfg.eval_samples)).round().astype(int))
        return {"split": "real", **self.score(self.to_uint8(images.encode(index)[0]))}

    def evaluate(self, model: nn.Module, device: torch.device, dist: Any) -> list[dict[str, Any]]:
        def measure() -> dict[str, Any]:
            self.samples = self.generate(model, self.latents, device)
            return {"split": "generated", **self.score(self.samples)}

        return [dist.on_rank0(measure)]

    def checkpoint_metrics(self, model: nn.Module, device: torch.device, dist: Any) -> dict[str, dict[str, Any]]:
        generated = self.evaluate(model, device, dist)[0]
        return {"generated": {k: v for k, v in generated.items() if k != "split"},
                "real": {k: v for k, v in self.real_row().items() if k != "split"}}

    @classmethod
    def summary_line(cls, s: Any) -> str:
        b, last, real = s.best.get("generated", {}), s.last.get("generated", {}), s.real or {}
        return (f"{s.arch}: {s.epochs} epochs in {s.train_seconds:.1f} s; selected epoch {s.best_epoch} "
                f"on its samples (geometry {b.get('geometry', math.nan):.4g}, position_tv "
                f"{b.get('position_tv', math.nan):.4g}); last epoch: geometry {last.get('geometry', math.nan):.4g}, "
                f"position_tv {last.get('position_tv', math.nan):.4g}; real images: geometry "
                f"{real.get('geometry', math.nan):.4g}, position_tv {real.get('position_tv', math.nan):.4g}; "
                f"run: {s.out}")

    def columns(self) -> list[str]:
        return ["epoch", "split", *LOSS_COLUMNS, *SCORE_COLUMNS, "seconds"]

    def log_line(self, epoch: int, epochs: int, rows: list[dict[str, Any]], seconds: float) -> str:
        t = next(r for r in rows if r["split"] == "train")
        g = next(r for r in rows if r["split"] == "generated")
        return (f"epoch {epoch}/{epochs}: d_loss {t['d_loss']:.3f} g_loss {t['g_loss']:.3f} D(real) {t['d_real']:.2f} "
                f"D(fake) {t['d_fake']:.2f}; generated: geometry {g['geometry']:.3f} position_tv "
                f"{g['position_tv']:.3f} ({seconds:.1f} s)")

    def epoch_pictures(self, model: nn.Module, epoch: int, device: torch.device) -> dict[str, np.ndarray]:
        from ..viz import grid

        samples = self.samples
        if samples is None:
            samples = self.generate(model, self.latents[: SAMPLE_GRID**2], device)
        shown = list(samples[: SAMPLE_GRID**2])
        # Black dividers, as the original's sample grids.
        return {f"samples_{epoch:03d}.png": grid(shown, columns=min(SAMPLE_GRID, len(shown)), gap=2, background=0)}

    def curves(self, history: list[dict[str, Any]], selected: int | None = None) -> np.ndarray:
        from .plots import gan_curves

        return gan_curves(history, title=f"{self.cfg.arch} on {self.info.dataset}", selected=selected)
