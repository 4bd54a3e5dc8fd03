"""Per-task pieces of training: which arrays, batch -> (input, target), loss, metrics.

Everything here is a small pure function of tensors, so the metrics can be checked on hand-made
predictions. Metrics are accumulated over an epoch as additive statistics (:func:`stats`) and turned
into numbers at the end (:func:`finalize`); statistics from several processes just add up.

Inputs per task (the contracts in :mod:`coordconv_data.models.registry`):

* classification / rendering: ``normalize_coords(locations, 64)``; targets the pixel index
  ``y * 64 + x`` / the square's 0/1 mask (``images / 255``).
* regression: the one-hot map (``onehots``, as the paper's original fed it); target
  ``normalize_coords(locations, 64)``; metric the mean Euclidean error in pixels.
* segmentation: ``images / 255`` as (N, 3, H, W); target the (N, H, W) class mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.coords import denormalize_coords, normalize_coords

__all__ = ["TaskSpec", "TASK_SPECS", "to_inputs_targets", "loss_fn", "stats", "finalize",
           "metric_columns", "NUM_CLASSES"]

NUM_CLASSES = 4  # Lanes


@dataclass(frozen=True)
class TaskSpec:
    name: str
    dataset: str
    arrays: tuple[str, ...]  # arrays read from each split
    primary: str  # metric that picks best.pt
    higher_is_better: bool


TASK_SPECS: dict[str, TaskSpec] = {
    "classification": TaskSpec("classification", "not-so-clevr", ("locations",), "accuracy", True),
    "rendering": TaskSpec("rendering", "not-so-clevr", ("images", "locations"), "iou", True),
    "regression": TaskSpec("regression", "not-so-clevr", ("onehots", "locations"), "px_error", False),
    "segmentation": TaskSpec("segmentation", "lanes", ("images", "masks"), "mean_iou", True),
    # GANs train in .gan (their own loop); the spec says what they read and what picks best.pt.
    "gan": TaskSpec("gan", "sort-of-clevr", ("images", "centers"), "geometry", True),
}


def to_inputs_targets(task: str, batch: dict[str, Tensor], device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """Map a batch of raw arrays (file dtypes) to the model's input and the loss's target."""
    if task in ("classification", "rendering"):
        loc = batch["locations"].to(device)
        x = normalize_coords(loc.float(), 64)
        if task == "classification":
            size = 64
            y = loc[:, 1].long() * size + loc[:, 0].long()
        else:
            img = batch["images"].to(device)
            y = (img[..., 0] > 0).float().unsqueeze(1)  # (N, 1, H, W) 0/1 mask
        return x, y
    if task == "regression":
        x = batch["onehots"].to(device).float().permute(0, 3, 1, 2)
        x = x / x.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1)  # 0/1 whatever the file's scale
        y = normalize_coords(batch["locations"].to(device).float(), 64)
        return x, y
    if task == "segmentation":
        x = batch["images"].to(device).permute(0, 3, 1, 2).float() / 255.0
        y = batch["masks"].to(device).long()
        return x, y
    raise ValueError(f"no training for task {task!r}")


def loss_fn(task: str, output: Tensor, target: Tensor) -> Tensor:
    """Mean loss of a batch."""
    if task == "classification":
        return F.cross_entropy(output.flatten(1), target)
    if task == "rendering":
        return F.binary_cross_entropy_with_logits(output, target)
    if task == "regression":
        return F.mse_loss(output, target)
    if task == "segmentation":
        return F.cross_entropy(output, target)
    raise ValueError(f"no loss for task {task!r}")


@torch.no_grad()
def stats(task: str, output: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Additive statistics of one batch (float64 tensors on the CPU)."""
    n = torch.tensor(float(target.shape[0]), dtype=torch.float64)
    if task == "classification":
        correct = (output.flatten(1).argmax(1) == target).sum().double().cpu()
        return {"n": n, "correct": correct}
    if task == "rendering":
        pred = output > 0
        tgt = target > 0.5
        inter = (pred & tgt).flatten(1).sum(1).double()
        union = (pred | tgt).flatten(1).sum(1).double()
        iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(inter))
        return {"n": n, "iou_sum": iou.sum().cpu()}
    if task == "regression":
        d = denormalize_coords(output.double(), 64) - denormalize_coords(target.double(), 64)
        return {"n": n, "px_sum": d.norm(dim=1).sum().cpu()}
    if task == "segmentation":
        k = output.shape[1]
        pred = output.argmax(1).flatten()
        idx = target.flatten() * k + pred
        conf = torch.bincount(idx, minlength=k * k).reshape(k, k).double().cpu()  # rows: true, cols: predicted
        return {"n": n, "confusion": conf}
    raise ValueError(f"no metrics for task {task!r}")


def add_stats(a: dict[str, Tensor] | None, b: dict[str, Tensor]) -> dict[str, Tensor]:
    if a is None:
        return {k: v.clone() for k, v in b.items()}
    return {k: a[k] + b[k] for k in a}


def metric_columns(task: str, class_names: list[str] | None = None) -> list[str]:
    """Metric names :func:`finalize` returns for a task, in a stable order."""
    if task == "classification":
        return ["accuracy"]
    if task == "rendering":
        return ["iou"]
    if task == "regression":
        return ["px_error"]
    if task == "segmentation":
        names = class_names or [str(i) for i in range(NUM_CLASSES)]
        return (["pixel_accuracy", "mean_iou"] + [f"recall_{c}" for c in names] + [f"iou_{c}" for c in names])
    raise ValueError(task)


def finalize(task: str, s: dict[str, Tensor], class_names: list[str] | None = None) -> dict[str, float]:
    """Metrics from accumulated statistics: accuracy, IoU, recall in [0, 1]; px_error in pixels."""
    n = float(s["n"])
    if task == "classification":
        return {"accuracy": float(s["correct"]) / max(n, 1)}
    if task == "rendering":
        return {"iou": float(s["iou_sum"]) / max(n, 1)}
    if task == "regression":
        return {"px_error": float(s["px_sum"]) / max(n, 1)}
    if task == "segmentation":
        conf = s["confusion"]
        k = conf.shape[0]
        names = class_names or [str(i) for i in range(k)]
        tp = conf.diag()
        true = conf.sum(1)
        predicted = conf.sum(0)
        recall = torch.where(true > 0, tp / true.clamp_min(1), torch.full_like(tp, float("nan")))
        union = true + predicted - tp
        iou = torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))
        out = {
            "pixel_accuracy": float(tp.sum() / conf.sum().clamp_min(1)),
            "mean_iou": float(iou[~iou.isnan()].mean()) if (~iou.isnan()).any() else float("nan"),
        }
        out.update({f"recall_{c}": float(recall[i]) for i, c in enumerate(names)})
        out.update({f"iou_{c}": float(iou[i]) for i, c in enumerate(names)})
        return out
    raise ValueError(task)
