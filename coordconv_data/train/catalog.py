"""What ``coorddata models`` lists: every trainable arch with its task, data, size and defaults."""

from __future__ import annotations

from typing import Any

from ..models import create_model, model_info
from .config import defaults_for, recipe_source, trainable_archs

__all__ = ["catalog"]


def catalog() -> list[dict[str, Any]]:
    """One JSON-ready entry per trainable arch, sorted by name."""
    from ..kinds import get_kind

    out = []
    for name in trainable_archs():
        info = model_info(name)
        defaults = defaults_for(name)
        model = create_model(name, **defaults["hparams"])
        out.append({
            "arch": name,
            "task": info.task,
            "dataset": info.dataset,
            "default_data": get_kind(info.dataset).file_name(),
            "parameters": sum(p.numel() for p in model.parameters()),
            "hparams": defaults["hparams"],
            "defaults": defaults,
            "source": recipe_source(name),
            "summary": info.summary,
        })
    return out
