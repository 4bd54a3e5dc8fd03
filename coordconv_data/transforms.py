"""Data transforms: coordinate channels added in the data loader instead of the model.

:class:`AddCoordChannels` appends the CoordConv coordinate channels to a sample, like MONAI's
``AddCoordinateChannels``, so a plain convolutional network can be given CoordConv's extra input
without changing its code (its first layer then takes ``C + 2`` channels, or ``C + 3`` with ``r``)::

    from coordconv_data import NotSoClevr
    from coordconv_data.transforms import AddCoordChannels

    data = NotSoClevr("data/", task="regression", transform=AddCoordChannels())
    x, y = data[0]      # x: (3, 64, 64): the one-hot map, then x and y coordinates in [-1, 1]

The channels are exactly those of :class:`~coordconv_data.models.AddCoords` (the same function
builds both): ``x`` (column) then ``y`` (row), each ``i / (n - 1) * 2 - 1``, then optionally ``r``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .errors import InvalidParameter
from .models.coords import AddCoords

__all__ = ["AddCoordChannels"]


class AddCoordChannels:
    r"""Append coordinate channels to a channel-first sample (a tensor or a numpy array).

    Args:
        rank: spatial axes of a sample: 1 (``(C, L)``), 2 (``(C, H, W)``) or 3 (``(C, D, H, W)``).
        with_r: also append the radial channel ``r``.

    Shape:
        - Input: :math:`(C, *S)` with ``len(S) == rank`` (a batch :math:`(N, C, *S)` works too), a
          float tensor or a numpy array (integer arrays become float32).
        - Output: :math:`(C + \text{rank} + \text{with\_r}, *S)`, the same type as the input: a tensor
          on the input's device and dtype, or a numpy array of the input's float dtype.
    """

    def __init__(self, rank: int = 2, with_r: bool = False) -> None:
        if rank not in (1, 2, 3):
            raise InvalidParameter("rank", f"rank must be 1, 2 or 3, got {rank!r}")
        self.rank, self.with_r = rank, bool(with_r)
        self._add = AddCoords(rank=rank, with_r=with_r)

    def __call__(self, sample: Any) -> Any:
        if isinstance(sample, np.ndarray):
            array = sample if np.issubdtype(sample.dtype, np.floating) else sample.astype(np.float32)
            return self._add(torch.from_numpy(np.ascontiguousarray(array))).numpy()
        if not isinstance(sample, torch.Tensor):
            raise TypeError(f"AddCoordChannels takes a tensor or a numpy array, got {type(sample).__name__}")
        if not sample.is_floating_point():
            sample = sample.float()
        return self._add(sample)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, with_r={self.with_r})"
