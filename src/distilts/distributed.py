"""Running under torchrun: the process group, the rank's view of it, and the small collective helpers
the teacher cache and the trainer use.

`torchrun --nproc-per-node N -m distilts teach|distill ...` (or `--nnodes`, a rendezvous, SLURM)
sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; `session(device)` reads them and
joins the process group (NCCL on GPUs, gloo on CPU). Without them everything runs as one process
and every helper here is a no-op, so the single-process code paths are unchanged.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
TIMEOUT_ENV = "DISTILTS_DIST_TIMEOUT_MIN"  # collective timeout: a rank may wait this long for the slowest


@dataclass(frozen=True)
class Comm:
    """This process's place in the job; `world == 1` means a plain single process."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank (JSON-like objects; pickled by torch between our own ranks)."""
        if not self.active:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.active:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks (float64 on the host: exact enough for loss logs)."""
        if not self.active:
            return list(values)
        return [float(x) for x in np.sum(np.asarray(self.gather(list(values)), dtype=np.float64), axis=0)]


SINGLE = Comm()
_current: Comm = SINGLE


def launched_by_torchrun() -> bool:
    """True when torchrun (or SLURM/Kubernetes through it) started this process as one of several."""
    return all(v in os.environ for v in ENV_VARS) and int(os.environ.get("WORLD_SIZE", "1")) > 1


def current() -> Comm:
    """The active process group's view (SINGLE outside `session`)."""
    return _current


def backend_for(device: str) -> str:
    """NCCL when the ranks use CUDA, gloo on CPU."""
    import torch

    return "nccl" if device != "cpu" and torch.cuda.is_available() else "gloo"


@contextlib.contextmanager
def session(device: str = "auto") -> Iterator[Comm]:
    """Join torchrun's process group for the duration of a command (a no-op for one process).

    On CUDA each rank takes GPU LOCAL_RANK (`torch.cuda.set_device`), so "cuda" means its own GPU.
    """
    global _current
    if not launched_by_torchrun() or _current.active:
        yield _current
        return
    import torch
    import torch.distributed as dist

    rank, world, local = (int(os.environ[v]) for v in ENV_VARS)
    backend = backend_for(device)
    if backend == "nccl":
        torch.cuda.set_device(local)
    timeout = _dt.timedelta(minutes=float(os.environ.get(TIMEOUT_ENV, "120")))
    dist.init_process_group(backend=backend, timeout=timeout)
    _current = Comm(rank, world, local)
    try:
        yield _current
    finally:
        _current = SINGLE
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


def rank_seed(seed: int, rank: int) -> int:
    """The torch seed of `rank`: `seed` itself on rank 0 (so one rank = the single-process run), an
    independent stream derived from (seed, rank) on the others (dropout differs between ranks)."""
    if rank == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, rank]).generate_state(1, np.uint64)[0] >> 1)


def shard_batch(idx: np.ndarray, comm: Comm) -> tuple[np.ndarray, float]:
    """This rank's part of one global batch and the factor that makes DDP's gradient average equal
    the gradient of the global batch mean: rank r takes `array_split(idx, world)[r]` and scales its
    (per-sample mean) loss by `n_r * world / n`. A rank left without samples (a last batch smaller
    than the world) runs one sample with factor 0, so every rank still joins the all-reduce."""
    if not comm.active:
        return idx, 1.0
    mine = np.array_split(idx, comm.world)[comm.rank]
    if len(mine) == 0:
        return idx[:1], 0.0
    return mine, len(mine) * comm.world / len(idx)


def wrap_ddp(module: Any, device: str) -> Any:
    """DistributedDataParallel around `module` (its parameters broadcast from rank 0 here)."""
    from torch.nn.parallel import DistributedDataParallel

    if device.startswith("cuda"):
        import torch

        return DistributedDataParallel(module, device_ids=[torch.cuda.current_device()])
    return DistributedDataParallel(module)
