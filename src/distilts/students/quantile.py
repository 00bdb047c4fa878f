"""The quantile head shared by the students: levels that never cross, by construction.

A quantile student's last linear layer gives, per variate, `H` median values and `rank` features
`f`. The other levels are the median plus cumulative non-negative offsets:

    g     = |f W + b|                  [B, D, H, Q-1]   (W: rank -> H x (Q-1); |.| keeps them >= 0)
    q     = median + g A               [B, D, H, Q]     (A [Q-1, Q] constant, entries 0 / +1 / -1)

where column j of `A` sums the gaps between the median and level j (+ above, - below). So
`q_{j+1} - q_j` is one gap, >= 0 for any weights: the levels cannot cross, in PyTorch and in every
exported graph (Abs, MatMul and Add exist in ONNX, OpenVINO and TFLite). |.| is positively
homogeneous, so a positive per-variate scale `s` (the de-normalisation) passes through: the raw-scale
levels are `median_raw + |f_raw W + s b| A` with `f_raw = s f` (what the compile fold uses).

The low-rank offsets (rank 8 by default) keep a quantile DLinear's folded matrix at `H + rank`
columns instead of `H x Q`, so its cost stays close to the point model's.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from distilts.quantiles import median_index, validate_levels

DEFAULT_RANK = 8


def gap_matrix(levels: Sequence[float]) -> np.ndarray:
    """`A [Q-1, Q]`: column j is the signed sum of the gaps between the median and level j."""
    Q, m = len(levels), median_index(levels)
    a = np.zeros((Q - 1, Q), np.float32)
    for j in range(Q):
        if j > m:  # gaps m..j-1 (gap k lies between levels k and k+1)
            a[m:j, j] = 1.0
        elif j < m:  # gaps j..m-1, subtracted
            a[j:m, j] = -1.0
    return a


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
        self.register_buffer("assemble", torch.from_numpy(gap_matrix(self.levels)), persistent=False)
        self.register_buffer("variate_bias", None, persistent=False)  # [D, H] once scaled

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    def forward(self, median: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        raw = torch.matmul(features, self.gaps.weight.t())  # [B, D, H]
        raw = raw + (self.gaps.bias if self.variate_bias is None else self.variate_bias)
        gaps = torch.abs(raw).unflatten(-1, (self.horizon, self.n_levels - 1))  # [B, D, H, Q-1]
        return median.unsqueeze(-1) + torch.matmul(gaps, self.assemble)

    def scaled(self, scale: Sequence[float]) -> "QuantileOutput":
        """A copy for raw-scale inputs: features `s f` and a median already in raw scale, per-variate
        scale `s > 0` (the scaler's std), giving `median_raw + s |f W + b| A`."""
        import copy

        out = copy.deepcopy(self)
        s = torch.as_tensor(np.asarray(scale, np.float32))
        out.variate_bias = (self.gaps.bias.detach()[None, :] * s[:, None]).contiguous()
        return out.eval()
