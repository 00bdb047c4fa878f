"""TSMixer (Chen et al., 2023, "TSMixer: An All-MLP Architecture for Time Series Forecasting").

Defined as the official code (google-research/google-research `tsmixer/tsmixer_basic`: `models/tsmixer.py`,
`models/tsmixer_rev_in.py`, `run.py`): `n_block` residual blocks, each a time-mixing MLP (norm, transpose,
`Dense(L -> L)` + activation, dropout, residual) and a feature-mixing MLP (norm, `Dense(D -> ff_dim)` +
activation, dropout, `Dense(ff_dim -> D)`, dropout, residual), then the temporal projection `Dense(L -> H)`
per variate. The block norm (`norm_type`) is the official one: "B" = batch norm with one statistic per
(time step, variate) (Keras `BatchNormalization(axis=[-2, -1])`), "L" = layer norm over time and variates
together (`LayerNormalization(axis=[-2, -1])`), both with Keras' epsilon 1e-3 (and BN momentum 0.99). Dense
layers start as Keras' (Glorot-uniform weights, zero biases). Defaults are the paper's ETTh1 settings at
L=512 (6 blocks, ff_dim 512, dropout 0.9, ReLU, batch norm); deviations are listed in docs/design.md.

`norm`: "window" (per-window mean/std normalisation undone on the output, the default), "revin" (the same
with RevIN's learnable affine: the official `tsmixer_rev_in` model) or "none" (the official plain model).

FTA representation (`represent`): each variate's mixed sequence before the temporal projection,
`[B, D, L]` (d_S = lookback).

Covariates (`n_past`, `n_future`, `n_static` > 0) build TSMixer-Ext instead (students/tsmixer_ext.py: the
paper's extended model with auxiliary information; `hidden` features per step); its representation is the
time-projected targets `[B, D, H]` (d_S = horizon). It gives point forecasts only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distilts.students.activations import make_activation
from distilts.students.covariates import check_covariate_dims, covariate_inputs
from distilts.students.layers import Dropout, ReLUDropout, keras_init
from distilts.students.quantile import DEFAULT_RANK, QuantileOutput, head_forecast
from distilts.students.revin import window_norm
from distilts.students.tsmixer_ext import TSMixerExtCore

NORM_TYPES = ("B", "L")


class StepBatchNorm(nn.BatchNorm1d):
    """Batch norm of `[B, L, D]` with one statistic per (step, variate), as Keras `axis=[-2, -1]`.

    A training batch of one window (the last, partial batch of an epoch) is normalised with the running
    statistics instead of failing (its variance is undefined)."""

    def __init__(self, lookback: int, n_variates: int) -> None:
        super().__init__(lookback * n_variates, eps=1e-3, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        if self.training and flat.shape[0] == 1:
            flat = F.batch_norm(flat, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        else:
            flat = super().forward(flat)
        return flat.view_as(x)


def block_norm(norm_type: str, lookback: int, n_variates: int) -> nn.Module:
    if norm_type not in NORM_TYPES:
        raise ValueError(f"norm_type must be 'B' (batch norm) or 'L' (layer norm) (got {norm_type!r}).")
    if norm_type == "B":
        return StepBatchNorm(lookback, n_variates)
    return nn.LayerNorm([lookback, n_variates], eps=1e-3)


class MixerBlock(nn.Module):
    """One TSMixer residual block on `[B, L, D]`: time mixing, then feature mixing."""

    def __init__(
        self, lookback: int, n_variates: int, ff_dim: int, dropout: float, norm_type: str, activation: str
    ) -> None:
        super().__init__()
        self.time_norm = block_norm(norm_type, lookback, n_variates)
        self.time_mix = nn.Linear(lookback, lookback)
        self.feature_norm = block_norm(norm_type, lookback, n_variates)
        self.feature_in = nn.Linear(n_variates, ff_dim)
        self.feature_out = nn.Linear(ff_dim, n_variates)
        self.act = make_activation(activation)
        self.dropout = Dropout(dropout)
        # the activation and dropout of the widest tensor `[B, L, ff_dim]` as one mask when they can be fused
        self.act_dropout = ReLUDropout(dropout) if activation == "relu" else nn.Sequential(self.act, self.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.act(self.time_mix(self.time_norm(x).transpose(1, 2))).transpose(1, 2)
        res = x + self.dropout(t)
        f = self.act_dropout(self.feature_in(self.feature_norm(res)))
        return res + self.dropout(self.feature_out(f))


class TSMixer(nn.Module):
    """`[B, L, D] -> [B, H, D]`: normalise, n_block time + feature mixing blocks, Linear(L -> H), de-normalise.

    With `quantiles`, `[B, L, D] -> [B, H, D, Q]` (levels sorted, never crossing)."""

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_variates: int,
        *,
        n_block: int = 6,
        ff_dim: int = 512,
        dropout: float = 0.9,
        norm_type: str = "B",
        activation: str = "relu",
        norm: str = "window",
        quantiles: tuple[float, ...] | list[float] | None = None,
        quantile_rank: int = DEFAULT_RANK,
        n_past: int = 0,
        n_future: int = 0,
        n_static: int = 0,
        hidden: int = 64,
    ) -> None:
        super().__init__()
        self.covariate_dims = check_covariate_dims(n_past, n_future, n_static)
        if n_block < 0 or ff_dim < 1:
            raise ValueError(f"n_block must be >= 0 and ff_dim >= 1 (got n_block={n_block}, ff_dim={ff_dim}).")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1) (got {dropout}).")
        self.lookback, self.horizon, self.n_variates = lookback, horizon, n_variates
        self.repr_dim = lookback
        self.revin = window_norm(norm, n_variates, quantiles)
        self.ext = None
        if any(self.covariate_dims):
            if quantiles is not None:
                raise ValueError("TSMixer-Ext (tsmixer with covariates) gives point forecasts only; drop --quantiles.")
            self.ext = TSMixerExtCore(
                lookback,
                horizon,
                n_variates,
                self.covariate_dims,
                n_block=n_block,
                ff_dim=ff_dim,
                hidden=hidden,
                dropout=dropout,
                activation=activation,
            )
            self.repr_dim = horizon
            self.quantile_head = None
            return
        self.blocks = nn.ModuleList(
            MixerBlock(lookback, n_variates, ff_dim, dropout, norm_type, activation) for _ in range(n_block)
        )
        self.quantile_head = None if quantiles is None else QuantileOutput(quantiles, horizon, quantile_rank)
        self.head = nn.Linear(lookback, horizon + (0 if quantiles is None else quantile_rank))
        keras_init(self.blocks, self.head)

    @property
    def levels(self) -> tuple[float, ...] | None:
        return None if self.quantile_head is None else self.quantile_head.levels

    def forward_with_repr(
        self,
        x: torch.Tensor,
        past: torch.Tensor | None = None,
        future: torch.Tensor | None = None,
        static: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Forecast `[B, H, D]` (`[B, H, D, Q]`) and the mixed sequence per variate `[B, D, L]`
        (TSMixer-Ext: the time-projected targets `[B, D, H]`)."""
        mean = std = None
        if self.revin is not None:
            x, mean, std = self.revin.normalize(x)
        if self.ext is not None:
            past, future, static = covariate_inputs(self.covariate_dims, self.lookback, past, future, static)
            y, h = self.ext(x, past, future, static)
            return head_forecast(y.transpose(1, 2), self.horizon, None, self.revin, mean, std), h
        for block in self.blocks:
            x = block(x)
        h = x.transpose(1, 2)  # [B, D, L]
        return head_forecast(self.head(h), self.horizon, self.quantile_head, self.revin, mean, std), h

    def forward(self, x: torch.Tensor, past=None, future=None, static=None) -> torch.Tensor:
        return self.forward_with_repr(x, past, future, static)[0]

    def represent(self, x: torch.Tensor, past=None, future=None, static=None) -> torch.Tensor:
        return self.forward_with_repr(x, past, future, static)[1]
