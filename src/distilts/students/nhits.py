"""N-HiTS (Challu et al., 2023, "N-HiTS: Neural Hierarchical Interpolation for Time Series Forecasting")
and N-BEATS generic (Oreshkin et al., 2020), its special case. Channel-independent: every variate's
window goes through the same blocks.

Defined as the official code (cchallu/n-hits `src/models/nhits/nhits.py`; Nixtla/neuralforecast
`models/nhits.py`): stacks of blocks; each block max-pools its input residual (kernel = stride =
`n_pool_kernel_size[stack]`, ceil mode), runs an MLP (`mlp_units` hidden layers, each Linear + activation
(+ dropout)), and one Linear gives its coefficients theta = (backcast [L], knots [max(H // r, 1)]) with
`r = n_freq_downsample[stack]`; the knots are linearly interpolated to the horizon (F.interpolate,
`align_corners=False`). The backcast is subtracted from the residual, the block forecasts are added to the
level (the window's last value, "Naive1"). Defaults: neuralforecast's (3 stacks x 1 block, 2 x 512 ReLU,
pools 2/2/1, downsampling 4/2/1, no dropout) with the official code's MLP (every hidden Linear activated).

Written for export, the same function as the official one:
- the interpolation is a fixed linear map, so it is a constant `[knots, H]` matrix built at init by
  interpolating the identity (`interpolation_matrix`): `knots @ M` equals `F.interpolate(knots, H,
  "linear")` (tests check it), and exports as one MatMul (no Resize op); with r = 1 it is the identity
  and is left out;
- the official code flips the window (newest step first) so that ceil-mode pooling's partial window falls
  on the oldest steps; here the window keeps its order and the oldest step is replicated in front up to
  a multiple of the kernel (a repeated element of the same window leaves its max unchanged), so the
  pooled values are the official ones in reverse order and the first and last Linear see their inputs
  and outputs permuted: the same function class, with no Flip op and no ceil mode in the graph.

N-BEATS generic (`NBEATS`, registered as "nbeats"): pooling 1 and downsampling 1 (no interpolation; theta
= backcast + forecast, the generic basis), 30 blocks, 4 x 512 ReLU (Oreshkin et al.'s generic
configuration); the same code with other defaults.

FTA representation (`represent`): every block's last hidden layer (the features its output Linear maps to
theta), concatenated, `[B, D, sum of blocks' last widths]`: the forecast is linear in them.

Quantile N-HiTS: each block's output Linear also gives `quantile_rank` features, summed over the blocks
like the forecast; the median is the forecast (students/quantile.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from distilts.students.activations import make_activation
from distilts.students.quantile import DEFAULT_RANK, QuantileOutput, head_forecast
from distilts.students.revin import window_norm


def interpolation_matrix(n_knots: int, horizon: int) -> torch.Tensor:
    """`M [n_knots, H]` with `knots @ M == F.interpolate(knots[:, None], H, mode="linear")[:, 0]`."""
    eye = torch.eye(n_knots, dtype=torch.float64).unsqueeze(1)  # [K, 1, K]: knot k alone
    return F.interpolate(eye, size=horizon, mode="linear").squeeze(1).float()  # [K, H]


class NHiTSBlock(nn.Module):
    """Pool the residual `[B, D, L]`, MLP, theta -> (backcast [B, D, L], forecast [B, D, H], features, hidden)."""

    def __init__(
        self,
        lookback: int,
        horizon: int,
        pool: int,
        freq_downsample: int,
        mlp_units: Sequence[int],
        activation: str,
        dropout: float,
        n_features: int,
    ) -> None:
        super().__init__()
        self.lookback, self.horizon = lookback, horizon
        self.pad = -lookback % pool  # oldest steps replicated so that the windows tile from the newest step
        self.pool = nn.MaxPool1d(pool, stride=pool) if pool > 1 else None
        widths = [(lookback + self.pad) // pool, *mlp_units]
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(w_in, w_out), make_activation(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        self.mlp = nn.Sequential(*layers)
        self.n_knots = max(horizon // freq_downsample, 1)
        self.n_features = n_features
        self.theta = nn.Linear(widths[-1], lookback + self.n_knots + n_features)
        self.interp: torch.Tensor | None
        interp = None if self.n_knots == horizon else interpolation_matrix(self.n_knots, horizon)
        self.register_buffer("interp", interp, persistent=False)

    def pooled(self, r: torch.Tensor) -> torch.Tensor:
        """Max over windows of `pool` steps counted from the newest, `[B, D, L] -> [B, D, ceil(L / pool)]`
        (the official ceil-mode pooling of the flipped window, in time order)."""
        if self.pad:
            r = torch.cat([r[..., :1].repeat(1, 1, self.pad), r], dim=-1)
        return r if self.pool is None else self.pool(r)

    def forward(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
        h = self.mlp(self.pooled(r))  # [B, D, last width]
        theta = self.theta(h)
        L, K = self.lookback, self.n_knots
        backcast, knots = theta[..., :L], theta[..., L : L + K]
        forecast = knots if self.interp is None else torch.matmul(knots, self.interp)
        features = theta[..., L + K :] if self.n_features else None
        return backcast, forecast, features, h


class NHiTS(nn.Module):
    """N-HiTS (Challu et al., 2023): pooled-input MLP blocks, interpolated forecasts, residual stacking.

    `[B, L, D] -> [B, H, D]` (`[B, H, D, Q]` with quantiles): the level (last value) plus the forecasts of
    stacked blocks, each fitting the residual the previous ones left.

    `norm`: "none" (the official model: no input normalization of its own), "window" (per-window mean and
    std, undone on the output), "revin" (the same with RevIN's learnable affine).
    """

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_variates: int,
        *,
        n_blocks: tuple[int, ...] = (1, 1, 1),
        mlp_units: tuple[int, ...] = (512, 512),
        n_pool_kernel_size: tuple[int, ...] = (2, 2, 1),
        n_freq_downsample: tuple[int, ...] = (4, 2, 1),
        dropout: float = 0.0,
        activation: str = "relu",
        norm: str = "none",
        quantiles: tuple[float, ...] | list[float] | None = None,
        quantile_rank: int = DEFAULT_RANK,
    ) -> None:
        super().__init__()
        n_blocks, mlp_units = _ints(n_blocks, "n_blocks"), _ints(mlp_units, "mlp_units")
        pools, freqs = _ints(n_pool_kernel_size, "n_pool_kernel_size"), _ints(n_freq_downsample, "n_freq_downsample")
        if not len(n_blocks) == len(pools) == len(freqs):
            raise ValueError(
                f"n_blocks, n_pool_kernel_size and n_freq_downsample need one entry per stack (got "
                f"{len(n_blocks)}, {len(pools)} and {len(freqs)})."
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1) (got {dropout}).")
        self.lookback, self.horizon, self.n_variates = lookback, horizon, n_variates
        self.quantile_head = None if quantiles is None else QuantileOutput(quantiles, horizon, quantile_rank)
        n_features = 0 if quantiles is None else quantile_rank
        self.blocks = nn.ModuleList(
            NHiTSBlock(lookback, horizon, pool, freq, mlp_units, activation, dropout, n_features)
            for stack_blocks, pool, freq in zip(n_blocks, pools, freqs, strict=True)
            for _ in range(stack_blocks)
        )
        self.repr_dim = mlp_units[-1] * len(self.blocks)
        self.revin = window_norm(norm, n_variates, quantiles)

    @property
    def levels(self) -> tuple[float, ...] | None:
        return None if self.quantile_head is None else self.quantile_head.levels

    def forward_with_repr(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forecast `[B, H, D]` (`[B, H, D, Q]`) and the blocks' last hidden layers `[B, D, repr_dim]`."""
        mean = std = None
        if self.revin is not None:
            x, mean, std = self.revin.normalize(x)
        residual = x.transpose(1, 2)  # [B, D, L]
        forecast = residual[..., -1:]  # the level: the last value (Naive1), broadcast over the horizon
        features, hidden = None, []
        for block in self.blocks:
            backcast, block_forecast, block_features, h = block(residual)
            residual = residual - backcast
            forecast = forecast + block_forecast
            if block_features is not None:
                features = block_features if features is None else features + block_features
            hidden.append(h)
        h = torch.cat(hidden, dim=-1) if len(hidden) > 1 else hidden[0]
        if features is not None:
            forecast = torch.cat([forecast, features], dim=-1)  # [B, D, H + rank]: median and quantile features
        return head_forecast(forecast, self.horizon, self.quantile_head, self.revin, mean, std), h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_repr(x)[0]

    def represent(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_repr(x)[1]


class NBEATS(NHiTS):
    """N-BEATS generic (Oreshkin et al., 2020): N-HiTS without pooling or interpolation, 30 x 4 x 512.

    Theta = backcast + forecast (the generic basis), 30 blocks of 4 hidden layers of 512: the paper's generic
    model, 30 stacks of one block (with one pooling and downsampling for all, one stack of 30 blocks)."""

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_variates: int,
        *,
        n_blocks: tuple[int, ...] = (30,),
        mlp_units: tuple[int, ...] = (512, 512, 512, 512),
        n_pool_kernel_size: tuple[int, ...] = (1,),
        n_freq_downsample: tuple[int, ...] = (1,),
        dropout: float = 0.0,
        activation: str = "relu",
        norm: str = "none",
        quantiles: tuple[float, ...] | list[float] | None = None,
        quantile_rank: int = DEFAULT_RANK,
    ) -> None:
        super().__init__(
            lookback,
            horizon,
            n_variates,
            n_blocks=n_blocks,
            mlp_units=mlp_units,
            n_pool_kernel_size=n_pool_kernel_size,
            n_freq_downsample=n_freq_downsample,
            dropout=dropout,
            activation=activation,
            norm=norm,
            quantiles=quantiles,
            quantile_rank=quantile_rank,
        )


def _ints(values: Sequence[int] | int, name: str) -> tuple[int, ...]:
    out = (values,) if isinstance(values, int) else tuple(values)
    if not out or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in out):
        raise ValueError(f"{name} must be positive integers, one per stack (got {values!r}).")
    return out
