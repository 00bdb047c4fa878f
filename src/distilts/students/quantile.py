"""The quantile head shared by the students: levels that never cross, by construction.

A quantile student's last linear layer gives, per variate, `H` median values and `rank` features
`f`. The other levels are the median plus cumulative non-negative offsets:

    g     = |f W + b|                  [B, D, H, Q-1]   (W: rank -> H x (Q-1); |.| keeps them >= 0)
    q_j   = median + sum of the gaps between the median and level j   (+ above, - below)

computed with cumulative sums (above: `cumsum(g_up)`; below: `cumsum(g_lo) - g_lo - sum(g_lo)`), so
`q_{j+1} - q_j` is one gap, >= 0 for any weights: the levels cannot cross, in PyTorch and in every
exported graph (Abs, CumSum, Concat exist in ONNX, OpenVINO and TFLite, and int8 quantizers leave
CumSum in float; a MatMul with a constant 0/±1 matrix is the same map, but OpenVINO's int8
transformations could not pass its dequantization through the reshape after it). |.| is positively
homogeneous, so a positive per-variate scale `s` (the de-normalisation) passes through: the raw-scale
levels are `median_raw + |f_raw W + s b| A` with `f_raw = s f` (what the compile fold uses).

The low-rank offsets (rank 8 by default) keep a quantile DLinear's folded matrix at `H + rank`
columns instead of `H x Q`, so its cost stays close to the point model's.
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
from torch import nn

from distilts.quantiles import median_index, validate_levels

DEFAULT_RANK = 8


class QuantileOutput(nn.Module):
    """`(median [B, D, H], features [B, D, rank]) -> [B, D, H, Q]` with non-crossing levels."""

    def __init__(self, levels: Sequence[float], horizon: int, rank: int = DEFAULT_RANK) -> None:
        super().__init__()
        self.levels = validate_levels(levels)
        self.horizon, self.rank = int(horizon), int(rank)
        if self.rank < 1:
            raise ValueError(f"quantile_rank must be positive (got {rank}).")
        Q = len(self.levels)
        self.gaps = nn.Linear(self.rank, self.horizon * (Q - 1))
        nn.init.zeros_(self.gaps.weight)
        with torch.no_grad():  # start with evenly spread levels, 0.3 apart (in normalized units)
            self.gaps.bias.fill_(0.3)
        self.median_index = median_index(self.levels)
        self.register_buffer("variate_bias", None, persistent=False)  # [D, H] once scaled

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    def forward(self, median: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        raw = torch.matmul(features, self.gaps.weight.t())  # [B, D, H]
        raw = raw + (self.gaps.bias if self.variate_bias is None else self.variate_bias)
        gaps = torch.abs(raw).unflatten(-1, (self.horizon, self.n_levels - 1))  # [B, D, H, Q-1]
        m = self.median_index
        parts = []
        if m > 0:  # level j < m: -(g_j + ... + g_{m-1}) = C_j - g_j - C_{m-1}
            lo = gaps[..., :m]
            c = torch.cumsum(lo, dim=-1)
            parts.append(c - lo - c[..., -1:])
        parts.append(torch.zeros_like(gaps[..., :1]))
        if m < self.n_levels - 1:  # level j > m: g_m + ... + g_{j-1}
            parts.append(torch.cumsum(gaps[..., m:], dim=-1))
        return median.unsqueeze(-1) + torch.cat(parts, dim=-1)

    def scaled(self, scale: Sequence[float], dtype: torch.dtype = torch.float32) -> "QuantileOutput":
        """A copy in `dtype` for raw-scale inputs: features `s f` and a median already in raw scale,
        per-variate scale `s > 0` (the scaler's std), giving `median_raw + s |f W + b| A`."""
        out = copy.deepcopy(self).to(dtype)
        s = torch.as_tensor(np.asarray(scale, np.float64))
        out.variate_bias = (self.gaps.bias.detach().double()[None, :] * s[:, None]).to(dtype).contiguous()
        return out.eval()
