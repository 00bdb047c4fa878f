"""The exported graph: raw `[B, L, D]` -> normalize -> student -> de-normalize -> raw `[B, H, D]`.

Normalization lives in its own submodules so int8 quantizers can leave it in float (quantizing
raw inputs with one scale across variates of different magnitudes would waste the int8 range).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn


class Normalize(nn.Module):
    """z = (x - mean) * (1 / std), per variate (last axis)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(np.asarray(mean, dtype=np.float32)))
        self.register_buffer("inv_std", torch.tensor(1.0 / np.asarray(std, dtype=np.float64), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.inv_std


class Denormalize(nn.Module):
    """x = z * std + mean, per variate (last axis; the axis before the levels of quantile forecasts
    `[B, H, D, Q]`, where a positive std keeps the levels' order)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], quantiles: bool = False) -> None:
        super().__init__()
        shape = (-1, 1) if quantiles else (-1,)
        self.register_buffer("mean", torch.tensor(np.asarray(mean, dtype=np.float32).reshape(shape)))
        self.register_buffer("std", torch.tensor(np.asarray(std, dtype=np.float32).reshape(shape)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean


class RawScaleForecaster(nn.Module):
    """A student with its scaler folded in: raw values in, raw-scale forecasts out."""

    def __init__(self, student: nn.Module, mean: Sequence[float], std: Sequence[float],
                 quantiles: bool | None = None) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.student = student
        if quantiles is None:  # a quantile student (or its fold) has `levels`
            quantiles = getattr(student, "levels", None) is not None
        self.denormalize = Denormalize(mean, std, quantiles)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.denormalize(self.student(self.normalize(x)))


def wrap_student(model: nn.Module, config: dict) -> RawScaleForecaster:
    """Wrap a loaded student with the scaler from its config.json; eval mode."""
    scaler = config["scaler"]
    return RawScaleForecaster(model.eval(), scaler["mean"], scaler["std"]).eval()


def torch_predict(wrapper: nn.Module, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Reference forecasts of the PyTorch wrapper for raw `[N, L, D]` windows."""
    out = []
    with torch.no_grad():
        for lo in range(0, len(x), batch):
            out.append(wrapper(torch.from_numpy(np.ascontiguousarray(x[lo:lo + batch], dtype=np.float32))).numpy())
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


def example_input(lookback: int, n_variates: int, batch: int = 2) -> tuple[torch.Tensor]:
    return (torch.zeros(batch, lookback, n_variates),)


def batch_dim_shapes(max_batch: int = 4096) -> tuple[dict]:
    """torch.export dynamic_shapes making dim 0 of the single input dynamic."""
    return ({0: torch.export.Dim("batch", min=1, max=max_batch)},)
