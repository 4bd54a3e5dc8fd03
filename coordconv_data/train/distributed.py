"""Where a run executes: one process, or one of several under ``torchrun`` (the one place that knows).

Under ``torchrun`` (``WORLD_SIZE > 1``) the process group is created with gloo on the CPU and nccl on
CUDA; modules are wrapped in DistributedDataParallel; each process trains on its shard of every
epoch (``--batch-size`` is per process); evaluation statistics are summed over processes; work that
only one process should do (scoring GAN samples) runs on rank 0 and its result is sent to the others.
Only rank 0 writes the run folder.
"""

from __future__ import annotations

import os
import pickle
import warnings
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import torch
import torch.nn as nn

from .config import pick_device
from .errors import TrainError

__all__ = ["Dist", "setup", "world_from_env"]

T = TypeVar("T")


def world_from_env() -> tuple[int, int, int]:
    """``(world size, rank, local rank)`` as torchrun sets them (1, 0, 0 in a plain process)."""
    return (int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")),
            int(os.environ.get("LOCAL_RANK", "0")))


@dataclass
class Dist:
    world: int
    rank: int
    device: torch.device
    owns_group: bool = False  # this process created the process group (and destroys it)

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` data-parallel across the processes (itself in one process)."""
        if not self.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel as DDP

        # A (C_out, C_in, 1, 1) kernel is both contiguous and channels-last; DDP's bucket views take the
        # latter and conv backward gives the former, and every step warns. Harmless (a copy per step).
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        return DDP(module, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def all_reduce_stats(self, stats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Additive statistics summed over the processes."""
        if not self.distributed:
            return stats
        import torch.distributed as dist

        out = {}
        for k, v in stats.items():
            t = v.to(self.device) if self.device.type == "cuda" else v.clone()
            dist.all_reduce(t)
            out[k] = t.cpu()
        return out

    def any(self, flag: bool) -> bool:
        """True in every process when it is true in any."""
        if not self.distributed:
            return flag
        import torch.distributed as dist

        t = torch.tensor([1.0 if flag else 0.0], device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def on_rank0(self, fn: Callable[[], T]) -> T:
        """``fn()`` computed by rank 0 and sent to every process; a library error it raises is raised
        in every process (so that none waits for the others forever)."""
        if not self.distributed:
            return fn()
        import torch.distributed as dist

        from ..errors import CoordDataError

        box: list[Any] = [None]
        if self.main:
            try:
                box = [("ok", fn())]
            except CoordDataError as e:
                box = [("error", e)]
            try:  # what cannot be sent is an error in every process, not a wait for ever in the others
                pickle.dumps(box)
            except Exception as e:
                box = [("error", TrainError(f"rank 0 cannot send its result to the other processes "
                                            f"({type(e).__name__}: {e})"))]
        dist.broadcast_object_list(box, src=0)
        status, value = box[0]
        if status == "error":
            raise value
        return value

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as dist

            # Every process reaches this point before any tears its connections down: a rank that
            # destroyed its group while another was still finishing crashed in gloo's teardown
            # ("terminate called without an active exception"), now and then under load.
            try:
                dist.barrier()
            finally:
                dist.destroy_process_group()
                self.owns_group = False


def setup(device: str) -> Dist:
    """The process's place in the run; creates the process group under torchrun."""
    world, rank, local_rank = world_from_env()
    dev = pick_device(device)
    if world <= 1:
        return Dist(1, 0, dev)
    import torch.distributed as dist

    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    owns = False
    if not dist.is_initialized():
        dist.init_process_group("cpu:gloo,cuda:nccl" if dev.type == "cuda" else "gloo")
        owns = True
    return Dist(world, rank, dev, owns)
