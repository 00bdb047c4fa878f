"""The quantile head shared by the students: levels that never cross, by construction.

A quantile student's last linear layer gives, per variate, `H` median values and `rank` features
`f`. The other levels are the median plus cumulative non-negative gaps:

    g = |f W + b|                      [B, D, H, Q-1]   (W: rank -> H x (Q-1); |.| keeps them >= 0)
    q = [median, g] A                  [B, D, H, Q]     (A [Q, Q] constant: row 0 all ones, then 0 / ±1)

where column j of `A` adds the median and the gaps between the median and level j (+ above, - below),
so `q_{j+1} - q_j` is one gap, >= 0 for any weights: the levels cannot cross, in PyTorch and in every
exported graph (Abs, Concat and MatMul exist in ONNX, OpenVINO and TFLite; int8 verification checks
the order on every window). |.| is positively homogeneous, so a positive per-variate scale `s` (the
de-normalisation) passes through: the raw-scale levels are `[median_raw, |f_raw W + s b|] A` with
`f_raw = s f` (what the compile fold uses).

Interval calibration (`widen`, set from a student's config.json by `distilts.distill.intervals`): a
non-negative constant added to each gap after |.| (`[median, |r| + w] A`), fitted by split conformal
prediction on validation windows; it only widens, so the levels still cannot cross. It is in normalized
units and scales with the de-normalisation like the gap bias.

Layout: the head works on `[B, D, H, Q]` (variates first, weights on the right of every MatMul, as
int8 TFLite kernels need), which is what a compiled artifact returns (no output transpose in the
graph; the runtime hands out `[B, H, D, Q]` views). Students return `[B, H, D, Q]`. The low-rank gaps (rank 8 by
default) keep a quantile DLinear's folded matrix at
`H + rank` columns instead of `H x Q`, so its cost stays close to the point model's.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from distilts.quantiles import median_index, validate_levels

DEFAULT_RANK = 8


def assemble_matrix(levels: Sequence[float]) -> np.ndarray:
    """`A [Q, Q]` such that `q = [median, g_0 .. g_{Q-2}] @ A`: column j of A gives level j."""
    Q, m = len(levels), median_index(levels)
    a = np.zeros((Q, Q), np.float32)
    a[0, :] = 1.0  # every level starts at the median
    for j in range(Q):
        if j > m:  # + gaps m .. j-1 (gap k lies between levels k and k+1; row k + 1)
            a[1 + m : 1 + j, j] = 1.0
        elif j < m:  # - gaps j .. m-1
            a[1 + j : 1 + m, j] = -1.0
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
        self.assemble: torch.Tensor
        self.variate_bias: torch.Tensor | None
        self.register_buffer("assemble", torch.from_numpy(assemble_matrix(self.levels)), persistent=False)
        self.register_buffer("variate_bias", None, persistent=False)  # [D, H] once scaled
        self.widen: torch.Tensor | None
        self.register_buffer("widen", None, persistent=False)  # [H] ([D, H] once scaled), >= 0

    def set_widening(self, widen: Sequence[float] | np.ndarray | None) -> None:
        """Set the calibrated non-negative widening of every gap, `[H (Q-1)]` in normalized units (None: off)."""
        if widen is None:
            self.widen = None
            return
        w = torch.as_tensor(np.asarray(widen, np.float64), dtype=self.gaps.bias.dtype).reshape(-1)
        if w.numel() != self.gaps.bias.numel() or bool((w < 0).any()):
            raise ValueError(f"widening needs {self.gaps.bias.numel()} non-negative values (got {w.numel()}).")
        self.widen = w.contiguous()

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    def forward(self, median: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        raw = torch.matmul(features, self.gaps.weight.t())  # [B, D, H]
        raw = raw + (self.gaps.bias if self.variate_bias is None else self.variate_bias)
        gaps = torch.abs(raw)
        if self.widen is not None:
            gaps = gaps + self.widen
        gaps = gaps.unflatten(-1, (self.horizon, self.n_levels - 1))  # [B, D, H, Q-1]
        return torch.matmul(torch.cat([median.unsqueeze(-1), gaps], dim=-1), self.assemble)  # [B, D, H, Q]

    def scaled(self, scale: Sequence[float], dtype: torch.dtype = torch.float32) -> QuantileOutput:
        """A copy in `dtype` for raw-scale inputs: features `s f` and a median already in raw scale,
        per-variate scale `s > 0` (the scaler's std), giving `[median_raw, s |f W + b|] A`."""
        out = copy.deepcopy(self).to(dtype)
        s = torch.as_tensor(np.asarray(scale, np.float64))
        out.variate_bias = (self.gaps.bias.detach().double()[None, :] * s[:, None]).to(dtype).contiguous()
        if self.widen is not None:
            out.widen = (self.widen.detach().double()[None, :] * s[:, None]).to(dtype).contiguous()
        return out.eval()


def head_forecast(
    out: torch.Tensor,
    horizon: int,
    quantile_head: QuantileOutput | None,
    revin: Any,
    mean: torch.Tensor | None,
    std: torch.Tensor | None,
) -> torch.Tensor:
    """A student's forecast from its last projection `out [B, D, H (+ rank)]`: `[B, H, D]`, or with a
    quantile head `[B, H, D, Q]` (the median and the rank features), mapped back by `revin` when given."""
    if quantile_head is not None:
        y = quantile_head(out[..., :horizon], out[..., horizon:]).transpose(1, 2)  # [B, H, D, Q]
        if revin is not None:  # a positive scale per window and variate: the order is kept
            assert mean is not None and std is not None
            y = revin.denormalize(y, mean.unsqueeze(-1), std.unsqueeze(-1))
        return y
    y = out.transpose(1, 2)
    return y if revin is None else revin.denormalize(y, mean, std)


def apply_widening(model: nn.Module, config: dict) -> None:
    """Set the calibrated widening a student's config.json records (`intervals.widen`, written by
    `distilts.distill.intervals`) on its quantile head."""
    widen = (config.get("intervals") or {}).get("widen")
    head = getattr(model, "quantile_head", None)
    if widen is not None and isinstance(head, QuantileOutput):
        head.set_widening(widen)
