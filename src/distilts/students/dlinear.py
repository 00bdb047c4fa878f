"""DLinear (Zeng et al., 2023): moving-average decomposition, then a linear map per component.

Defined as the official code (cure-lab/LTSF-Linear, thuml Time-Series-Library, and the DistilTS
copy): moving-average kernel 25, one map shared by all variates, and both maps' weights initialised
to 1/L (each starts as the window mean); biases keep nn.Linear's init. No input normalisation
unless `revin` is asked for (the official DLinear has none).

FTA representation (`represent`): for each variate, the concatenation of its seasonal and its
trend projections, `[B, D, 2H]` (d_S = 2 * horizon). These are the model's only per-variate
features before the final sum, so aligning them with the teacher shapes both branches.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from distilts.students.revin import RevIN


class MovingAverage(nn.Module):
    """Moving average over time of `[B, D, L]` with replicate padding (odd kernel, length kept)."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"moving_avg kernel must be a positive odd number (got {kernel}).")
        self.kernel = kernel
        self.pool = nn.AvgPool1d(kernel_size=kernel, stride=1, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = (self.kernel - 1) // 2
        front = x[:, :, :1].repeat(1, 1, pad)
        end = x[:, :, -1:].repeat(1, 1, pad)
        return self.pool(torch.cat([front, x, end], dim=2))


class PerVariateLinear(nn.Module):
    """One `Linear(L -> H)` per variate, applied to `[B, D, L]` with a batched matmul (exports)."""

    def __init__(self, n_variates: int, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)  # nn.Linear's default bias init
        self.weight = nn.Parameter(torch.full((n_variates, in_features, out_features), 1.0 / in_features))
        self.bias = nn.Parameter(torch.empty(n_variates, 1, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.bmm(x.transpose(0, 1), self.weight) + self.bias  # [D, B, H]
        return y.transpose(0, 1)


class DLinear(nn.Module):
    """`[B, L, D] -> [B, H, D]`: y = Linear_s(x - MA(x)) + Linear_t(MA(x)), per variate or shared."""

    def __init__(
        self, lookback: int, horizon: int, n_variates: int, *,
        moving_avg: int = 25, individual: bool = False, revin: bool = False,
    ) -> None:
        super().__init__()
        self.lookback, self.horizon, self.n_variates = lookback, horizon, n_variates
        self.repr_dim = 2 * horizon
        self.decompose = MovingAverage(moving_avg)
        if individual:
            self.seasonal = PerVariateLinear(n_variates, lookback, horizon)
            self.trend = PerVariateLinear(n_variates, lookback, horizon)
        else:
            self.seasonal = nn.Linear(lookback, horizon)
            self.trend = nn.Linear(lookback, horizon)
            for linear in (self.seasonal, self.trend):  # the official 1/L weight init
                nn.init.constant_(linear.weight, 1.0 / lookback)
        self.revin = RevIN(n_variates) if revin else None

    def forward_with_repr(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forecast `[B, H, D]` and representation `[B, D, 2H]` (seasonal ++ trend projections)."""
        if self.revin is not None:
            x, mean, std = self.revin.normalize(x)
        z = x.transpose(1, 2)  # [B, D, L]
        trend = self.decompose(z)
        s = self.seasonal(z - trend)  # [B, D, H]
        t = self.trend(trend)
        y = (s + t).transpose(1, 2)
        if self.revin is not None:
            y = self.revin.denormalize(y, mean, std)
        return y, torch.cat([s, t], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_repr(x)[0]

    def represent(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_repr(x)[1]
