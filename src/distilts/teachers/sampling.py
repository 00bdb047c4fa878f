"""Seeded sampling that leaves the caller's random state alone."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def seeded(seed: int, device: str) -> Iterator[None]:
    """Run the block with torch's RNG (CPU, and `device` when CUDA) seeded to `seed`, then restore it."""
    cuda = [torch.device(device).index or 0] if str(device).startswith("cuda") else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield
