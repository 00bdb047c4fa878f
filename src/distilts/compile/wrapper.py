"""The exported graph: raw `[B, L, D]` -> normalize -> student -> de-normalize -> raw `[B, H, D]`
(`[B, D, H, Q]` for a quantile student: variates first, so the folded head needs no output transpose
and every MatMul has its weights on the right; the runtime returns `[B, H, D, Q]` views).

Normalization lives in its own submodules so int8 quantizers can leave it in float (quantizing
raw inputs with one scale across variates of different magnitudes would waste the int8 range).
The wrapper also carries the exact scaler (float64 numpy) for the module passes, and
`as_float64()` gives the exact float64 original every pass is checked against.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


class Normalize(nn.Module):
    """z = (x - mean) * (1 / std), per variate (last axis)."""

    def __init__(self, mean: Sequence[float] | np.ndarray, std: Sequence[float] | np.ndarray) -> None:
        super().__init__()
        self.mean: torch.Tensor
        self.inv_std: torch.Tensor
        self.register_buffer("mean", torch.tensor(np.asarray(mean, dtype=np.float32)))
        self.register_buffer("inv_std", torch.tensor(1.0 / np.asarray(std, dtype=np.float64), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.inv_std


class Denormalize(nn.Module):
    """x = z * std + mean, per variate (last axis; axis 1 of quantile forecasts `[B, D, H, Q]`, where a
    positive std keeps the levels in order)."""

    def __init__(
        self, mean: Sequence[float] | np.ndarray, std: Sequence[float] | np.ndarray, quantiles: bool = False
    ) -> None:
        super().__init__()
        shape = (-1, 1, 1) if quantiles else (-1,)
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(np.asarray(mean, dtype=np.float32).reshape(shape)))
        self.register_buffer("std", torch.tensor(np.asarray(std, dtype=np.float32).reshape(shape)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean


class RawScaleForecaster(nn.Module):
    """A student with its scaler folded in: raw values in, raw-scale forecasts out.

    `mean` and `std` (float64 numpy) are the exact scaler; the buffers hold it in the module's dtype.
    """

    def __init__(
        self, student: nn.Module, mean: Sequence[float] | np.ndarray, std: Sequence[float] | np.ndarray
    ) -> None:
        super().__init__()
        self.mean = np.asarray(mean, np.float64)
        self.std = np.asarray(std, np.float64)
        self.normalize = Normalize(mean, std)
        self.student = student
        quantiles = getattr(student, "levels", None) is not None
        self.denormalize = Denormalize(mean, std, quantiles)
        # a quantile student returns [B, H, D, Q]; the artifact layout is [B, D, H, Q] (a fold gives it directly)
        self.to_artifact_layout = quantiles and not getattr(student, "artifact_layout", False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.student(self.normalize(x))
        return self.denormalize(y.transpose(1, 2) if self.to_artifact_layout else y)

    @property
    def dtype(self) -> torch.dtype:
        return self.normalize.mean.dtype

    def rewrap(self, student: nn.Module) -> RawScaleForecaster:
        """`student` behind this wrapper's scaler, in this wrapper's dtype (exact when float64)."""
        out = RawScaleForecaster(student, self.mean, self.std).eval()
        return out.as_float64() if self.dtype == torch.float64 else out

    def as_float64(self) -> RawScaleForecaster:
        """A float64 copy with the scaler in exact float64 (the float32 wrapper rounds 1/std)."""
        w = copy.deepcopy(self).to(torch.float64).eval()
        m, s = torch.tensor(self.mean), torch.tensor(self.std)
        shape = w.denormalize.mean.shape  # [D], or [D, 1, 1] for quantile forecasts
        w.normalize.mean, w.normalize.inv_std = m, 1.0 / s
        w.denormalize.mean, w.denormalize.std = m.reshape(shape), s.reshape(shape)
        return w


def wrap_student(model: nn.Module, config: dict) -> RawScaleForecaster:
    """Wrap a loaded student with the scaler from its config.json; eval mode."""
    scaler = config["scaler"]
    return RawScaleForecaster(model.eval(), scaler["mean"], scaler["std"]).eval()


def torch_predict(module: nn.Module, x: np.ndarray, batch: int = 256, dtype: type = np.float32) -> np.ndarray:
    """Forecasts of a torch module for raw `[N, L, D]` windows fed as `dtype` (float64 for a float64 module)."""
    out = []
    with torch.no_grad():
        for lo in range(0, len(x), batch):
            out.append(module(torch.from_numpy(np.ascontiguousarray(x[lo : lo + batch], dtype=dtype))).numpy())
    return np.concatenate(out) if out else np.zeros((0,), dtype)


def example_input(lookback: int, n_variates: int, batch: int = 2) -> tuple[torch.Tensor]:
    return (torch.zeros(batch, lookback, n_variates),)


def batch_dim_shapes(max_batch: int = 4096) -> tuple[dict]:
    """torch.export dynamic_shapes making dim 0 of the single input dynamic."""
    return ({0: torch.export.Dim("batch", min=1, max=max_batch)},)
