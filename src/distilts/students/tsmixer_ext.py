"""TSMixer-Ext (Chen et al., 2023, section 4.3 and figure 4): TSMixer with auxiliary information.

The official repository leaves `tsmixer_extended` unreleased, so this follows the paper: historical
inputs (the target, past-only covariates and the known-future covariates over the lookback, `[B, L, D + P + F]`)
are aligned to the horizon by a temporal projection `Dense(L -> H)`; a conditional feature mixing maps them to
`hidden` features and another maps the known-future covariates over the horizon `[B, H, F]` to `hidden`;
their concatenation goes through `n_block` mixer blocks whose feature mixing is conditioned on the static
features (projected and concatenated to every step); a final `Dense(C -> D)` gives `[B, H, D]`.

Conditional feature mixing (`x [B, T, C_in]`, static `[B, S]`): `x' = [x ++ Dense(S -> C_out)(static)]`,
`y = Dense(C_in' -> C_out)(x') + dropout(Dense(ff -> C_out)(act(Dense(C_in' -> ff)(norm(x')))))`.
"""

from __future__ import annotations

import torch
from torch import nn

from distilts.students.activations import make_activation
from distilts.students.layers import keras_init


class ConditionalFeatureMixing(nn.Module):
    """Feature mixing `[B, T, C_in] -> [B, T, C_out]` conditioned on the static features (when any)."""

    def __init__(self, n_in: int, n_out: int, n_static: int, ff_dim: int, dropout: float, activation: str) -> None:
        super().__init__()
        self.static = nn.Linear(n_static, n_out) if n_static else None
        width = n_in + (n_out if n_static else 0)
        self.norm = nn.LayerNorm(width, eps=1e-3)
        self.mlp = nn.Sequential(
            nn.Linear(width, ff_dim),
            make_activation(activation),
            nn.Dropout(dropout),
            nn.Linear(ff_dim, n_out),
            nn.Dropout(dropout),
        )
        self.skip = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor, static: torch.Tensor | None) -> torch.Tensor:
        if self.static is not None and static is not None:
            x = torch.cat([x, self.static(static).unsqueeze(1).expand(-1, x.shape[1], -1)], dim=-1)
        return self.skip(x) + self.mlp(self.norm(x))


class ConditionalMixerBlock(nn.Module):
    """Time mixing over the horizon, then conditional feature mixing, on `[B, H, C]` (residual)."""

    def __init__(self, horizon: int, width: int, n_static: int, ff_dim: int, dropout: float, activation: str) -> None:
        super().__init__()
        self.time_norm = nn.LayerNorm([horizon, width], eps=1e-3)
        self.time_mix = nn.Linear(horizon, horizon)
        self.act = make_activation(activation)
        self.dropout = nn.Dropout(dropout)
        self.features = ConditionalFeatureMixing(width, width, n_static, ff_dim, dropout, activation)

    def forward(self, x: torch.Tensor, static: torch.Tensor | None) -> torch.Tensor:
        t = self.act(self.time_mix(self.time_norm(x).transpose(1, 2))).transpose(1, 2)
        x = x + self.dropout(t)
        return x + self.features(x, static)


class TSMixerExtCore(nn.Module):
    """`(x [B, L, D], past, future, static) -> ([B, H, D], the aligned targets [B, D, H])` in normalized units."""

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_variates: int,
        dims: tuple[int, int, int],
        *,
        n_block: int,
        ff_dim: int,
        hidden: int,
        dropout: float,
        activation: str,
    ) -> None:
        super().__init__()
        P, F, S = dims
        self.lookback, self.n_variates = lookback, n_variates
        self.time_projection = nn.Linear(lookback, horizon)
        self.history = ConditionalFeatureMixing(n_variates + P + F, hidden, S, ff_dim, dropout, activation)
        self.known = ConditionalFeatureMixing(F, hidden, S, ff_dim, dropout, activation) if F else None
        width = hidden * (2 if F else 1)
        self.blocks = nn.ModuleList(
            ConditionalMixerBlock(horizon, width, S, ff_dim, dropout, activation) for _ in range(n_block)
        )
        self.out = nn.Linear(width, n_variates)
        keras_init(self)

    def forward(
        self, x: torch.Tensor, past: torch.Tensor | None, future: torch.Tensor | None, static: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        L = self.lookback
        hist = torch.cat([b for b in (x, past, None if future is None else future[:, :L]) if b is not None], dim=-1)
        aligned = self.time_projection(hist.transpose(1, 2)).transpose(1, 2)  # [B, H, D + P + F]
        z = self.history(aligned, static)
        if self.known is not None and future is not None:
            z = torch.cat([z, self.known(future[:, L:], static)], dim=-1)
        for block in self.blocks:
            z = block(z, static)
        return self.out(z), aligned[..., : self.n_variates].transpose(1, 2)
