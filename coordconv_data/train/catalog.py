"""What ``coorddata models`` lists: every trainable arch with its task, data, size and defaults."""

from __future__ import annotations

from typing import Any

from ..models import create_model, model_info
from .config import defaults_for, trainable_archs

__all__ = ["catalog"]


def catalog() -> list[dict[str, Any]]:
    """One JSON-ready entry per trainable arch, sorted by name."""
    from ..datasets import dataset_class

    out = []
    for name in trainable_archs():
        info = model_info(name)
        model = create_model(name)
        out.append({
            "arch": name,
            "task": info.task,
            "dataset": info.dataset,
            "default_data": dataset_class(info.dataset).file_name(),
            "parameters": sum(p.numel() for p in model.parameters()),
            "hparams": dict(info.hparams),
            "defaults": defaults_for(name),
            "summary": info.summary,
        })
    return out
