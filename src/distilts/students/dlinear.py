"""DLinear (Zeng et al., 2023): moving-average decomposition, then a linear map per component.

Defined as the official code (cure-lab/LTSF-Linear, thuml Time-Series-Library, and the DistilTS
copy): moving-average kernel 25, one map shared by all variates, and both maps' weights initialised
to 1/L (each starts as the window mean); biases keep nn.Linear's init. No input normalisation
unless `revin` is asked for (the official DLinear has none).

FTA representation (`represent`): for each variate, the concatenation of its seasonal and its
trend projections, `[B, D, 2H]` (d_S = 2 * horizon). These are the model's only per-variate
features before the final sum, so aligning them with the teacher shapes both branches.

Quantile DLinear (`quantiles=(0.1, ..., 0.5, ..., 0.9)`): both maps give `H + quantile_rank` outputs,
the median and the features of the level gaps (students/quantile.py); output `[B, H, D, Q]`. It is
still affine in the input up to the head, so compile folds it into one MatMul + Add (H + rank
columns) followed by the non-crossing transform.

Covariates (`n_past`, `n_future`, `n_static`): a linear covariate branch added to the trend+seasonal output
of every variate (before RevIN's de-normalisation), starting at zero so training starts from the plain DLinear.
Known-future covariates by `future_map`: "step" (default) maps each horizon step's values to that step's output,
one map `F -> D` shared by the steps (`y_t += W f_{L+t} + b`: few weights, what a load-to-price relation needs);
"horizon" maps the horizon's block to every output step (`vec(future[L:]) -> D x H`, at H F H weights: each hour
weighs the whole day's covariates, the LEAR-style day-ahead regression; measured best on EPF, where "full" overfits);
"full" maps the whole block over lookback + horizon (`vec(future) -> D x H`, which can weigh the horizon's values
against the recent ones, at (L + H) F H weights). Past-only covariates over the lookback and static ones take
one map `vec(past) ++ static -> D x (H + rank)`. The model stays affine in all its inputs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from distilts.students.covariates import check_covariate_dims, covariate_inputs
from distilts.students.quantile import DEFAULT_RANK, QuantileOutput
from distilts.students.revin import RevIN

FUTURE_MAPS = ("step", "horizon", "full")


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
    """`[B, L, D] -> [B, H, D]`: y = Linear_s(x - MA(x)) + Linear_t(MA(x)), per variate or shared.

    With `quantiles`, `[B, L, D] -> [B, H, D, Q]` (levels sorted, 0.5 among them, never crossing).
    """

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_variates: int,
        *,
        moving_avg: int = 25,
        individual: bool = False,
        revin: bool = False,
        revin_eps: float = 1e-5,
        quantiles: tuple[float, ...] | list[float] | None = None,
        quantile_rank: int = DEFAULT_RANK,
        n_past: int = 0,
        n_future: int = 0,
        n_static: int = 0,
        future_map: str = "step",
    ) -> None:
        super().__init__()
        self.lookback, self.horizon, self.n_variates = lookback, horizon, n_variates
        self.covariate_dims = check_covariate_dims(n_past, n_future, n_static)
        if future_map not in FUTURE_MAPS:
            raise ValueError(f"future_map must be one of {', '.join(FUTURE_MAPS)} (got {future_map!r}).")
        self.future_map = future_map
        self.repr_dim = 2 * horizon
        self.decompose = MovingAverage(moving_avg)
        self.quantile_head = None
        width = horizon
        if quantiles is not None:
            if revin:
                raise ValueError(
                    "revin is not supported with quantiles (its learnable scale may flip the levels); drop --revin."
                )
            self.quantile_head = QuantileOutput(quantiles, horizon, quantile_rank)
            width = horizon + quantile_rank
        self.seasonal: nn.Module
        self.trend: nn.Module
        if individual:
            self.seasonal = PerVariateLinear(n_variates, lookback, width)
            self.trend = PerVariateLinear(n_variates, lookback, width)
        else:
            self.seasonal = nn.Linear(lookback, width)
            self.trend = nn.Linear(lookback, width)
            with torch.no_grad():  # the official 1/L weight init (the gap features keep nn.Linear's)
                for linear in (self.seasonal, self.trend):
                    linear.weight[:horizon].fill_(1.0 / lookback)
        self.revin = RevIN(n_variates, eps=revin_eps) if revin else None
        self.width = width
        step = future_map == "step"
        future_steps = {"step": 0, "horizon": horizon, "full": lookback + horizon}[future_map]
        n_in = lookback * n_past + n_static + future_steps * n_future
        self.covariate_map = nn.Linear(n_in, n_variates * width) if n_in else None
        self.step_map = nn.Linear(n_future, n_variates) if step and n_future else None
        for layer in (self.covariate_map, self.step_map):
            if layer is not None:  # start as the plain DLinear
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    @property
    def levels(self) -> tuple[float, ...] | None:
        return None if self.quantile_head is None else self.quantile_head.levels

    @property
    def linear_in_weights(self) -> bool:
        """Whether the forecast is linear in the weights (no RevIN, no quantile head): then the average of
        several trained copies' weights forecasts exactly their average forecast (`distilts search` folds seeds)."""
        return self.revin is None and self.quantile_head is None

    def linear_core(self, x: torch.Tensor) -> torch.Tensor:
        """The affine part, `[B, L, D] -> [B, D, H (+ rank)]` (normalized scale; no RevIN)."""
        z = x.transpose(1, 2)  # [B, D, L]
        trend = self.decompose(z)
        return self.seasonal(z - trend) + self.trend(trend)

    def covariate_term(
        self, past: torch.Tensor | None, future: torch.Tensor | None, static: torch.Tensor | None
    ) -> torch.Tensor | None:
        """The covariate branch `[B, D, H (+ rank)]` (None for a student without covariates)."""
        if self.covariate_map is None and self.step_map is None:
            return None
        past, future, static = covariate_inputs(self.covariate_dims, self.lookback, past, future, static)
        out = None
        if self.step_map is not None and future is not None:
            out = self.step_map(future[:, self.lookback :]).transpose(1, 2)  # [B, D, H]
            if self.width > self.horizon:  # the quantile rank features get no step term
                out = torch.nn.functional.pad(out, (0, self.width - self.horizon))
            future = None
        elif self.future_map == "horizon" and future is not None:
            future = future[:, self.lookback :]
        feats = [b.flatten(1) for b in (past, future, static) if b is not None]
        if feats and self.covariate_map is not None:
            full = self.covariate_map(torch.cat(feats, dim=-1)).unflatten(-1, (self.n_variates, self.width))
            out = full if out is None else out + full
        return out

    def forward_with_repr(
        self,
        x: torch.Tensor,
        past: torch.Tensor | None = None,
        future: torch.Tensor | None = None,
        static: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Forecast `[B, H, D]` (`[B, H, D, Q]` with quantiles) and representation `[B, D, 2H]`
        (seasonal ++ trend projections of the median)."""
        cov = self.covariate_term(past, future, static)
        if self.revin is not None:
            x, mean, std = self.revin.normalize(x)
        z = x.transpose(1, 2)  # [B, D, L]
        trend = self.decompose(z)
        s = self.seasonal(z - trend)  # [B, D, H (+ rank)]
        t = self.trend(trend)
        H = self.horizon
        if cov is not None:
            t = t + cov  # added to the output (the representation's trend half includes it)
        if self.quantile_head is not None:
            out = s + t  # [B, D, H + rank]
            y = self.quantile_head(out[..., :H], out[..., H:]).transpose(1, 2)  # [B, D, H, Q] -> [B, H, D, Q]
            return y, torch.cat([s[..., :H], t[..., :H]], dim=-1)
        y = (s + t).transpose(1, 2)
        if self.revin is not None:
            y = self.revin.denormalize(y, mean, std)
        return y, torch.cat([s, t], dim=-1)

    def forward(self, x: torch.Tensor, past=None, future=None, static=None) -> torch.Tensor:
        return self.forward_with_repr(x, past, future, static)[0]

    def represent(self, x: torch.Tensor, past=None, future=None, static=None) -> torch.Tensor:
        return self.forward_with_repr(x, past, future, static)[1]
