"""MLP student in the TimeDistill style (Ni et al., 2025, "TimeDistill: Efficient Long-Term Time Series
Forecasting with MLP via Cross-Architecture Distillation", arXiv 2502.15016).

Defined as the official code (LingFengGold/TimeDistill, models/MLP.py): RevIN with a learnable affine
over each window, then per variate (weights shared by all variates) `Linear(L -> d_model)`,
`BatchNorm1d` over the variate channels, ReLU, `Linear(d_model -> H)`, and RevIN undone on the output.
The paper's scripts tune `d_model` and the learning rate per dataset; 512 is the default here.
Additions (options, off or equal to the official model by default): `activation`, `dropout` after the
activation, `batch_norm` (a microcontroller-friendly form without it), `skip` (a linear map `Linear(L -> H)` of
the normalized window added to the forecast: a global model can then copy the last season exactly, which
near-periodic series need; the M4 recipe).

FTA representation (`represent`): the hidden layer before BatchNorm, `[B, D, d_model]` (the first of the
features the official code returns for its own distillation losses).
"""

from __future__ import annotations

import torch
from torch import nn

from distilts.students.activations import make_activation
from distilts.students.quantile import DEFAULT_RANK, QuantileOutput
from distilts.students.revin import RevIN


class MLP(nn.Module):
    """`[B, L, D] -> [B, H, D]`: RevIN, Linear(L -> d_model), BatchNorm, ReLU, Linear(d_model -> H)
    (+ Linear(L -> H) with `skip`), RevIN^-1.

    With `quantiles`, `[B, L, D] -> [B, H, D, Q]` (levels sorted, never crossing); RevIN is then used
    without its learnable affine (a negative learned scale would flip the levels).
    """

    quantile_revin = True  # quantile levels survive its RevIN (no affine with quantiles)

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_variates: int,
        *,
        d_model: int = 512,
        activation: str = "relu",
        batch_norm: bool = True,
        dropout: float = 0.0,
        revin: bool = True,
        revin_eps: float = 1e-5,
        skip: bool = False,
        quantiles: tuple[float, ...] | list[float] | None = None,
        quantile_rank: int = DEFAULT_RANK,
    ) -> None:
        super().__init__()
        self.lookback, self.horizon, self.n_variates = lookback, horizon, n_variates
        self.repr_dim = d_model
        self.hidden = nn.Linear(lookback, d_model)
        self.norm = nn.BatchNorm1d(n_variates) if batch_norm else nn.Identity()
        self.act = make_activation(activation)
        self.dropout = nn.Dropout(dropout)
        self.quantile_head = None if quantiles is None else QuantileOutput(quantiles, horizon, quantile_rank)
        self.out = nn.Linear(d_model, horizon + (0 if quantiles is None else quantile_rank))
        self.revin = RevIN(n_variates, affine=quantiles is None, eps=revin_eps) if revin else None
        self.skip = nn.Linear(lookback, horizon) if skip else None

    @property
    def levels(self) -> tuple[float, ...] | None:
        return None if self.quantile_head is None else self.quantile_head.levels

    def forward_with_repr(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forecast `[B, H, D]` (`[B, H, D, Q]` with quantiles) and hidden features `[B, D, d_model]`."""
        if self.revin is not None:
            x, mean, std = self.revin.normalize(x)
        xt = x.transpose(1, 2)  # [B, D, L]
        h = self.hidden(xt)  # [B, D, d_model]
        out = self.out(self.dropout(self.act(self.norm(h))))  # [B, D, H (+ rank)]
        if self.skip is not None:  # the linear path adds to the forecast (the median of a quantile student)
            lin = self.skip(xt)
            out = (
                out + lin
                if self.quantile_head is None
                else torch.cat([out[..., : self.horizon] + lin, out[..., self.horizon :]], dim=-1)
            )
        if self.quantile_head is not None:
            H = self.horizon
            y = self.quantile_head(out[..., :H], out[..., H:]).transpose(1, 2)  # [B, H, D, Q]
            if self.revin is not None:  # a positive scale per window and variate keeps the order
                y = self.revin.denormalize(y, mean.unsqueeze(-1), std.unsqueeze(-1))
            return y, h
        y = out.transpose(1, 2)
        if self.revin is not None:
            y = self.revin.denormalize(y, mean, std)
        return y, h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_repr(x)[0]

    def represent(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_repr(x)[1]
