"""iTransformer (Liu et al., 2024): each variate's whole lookback is one token; attention runs
across variates. Attention is written out by hand (no fused kernels) so the model exports to
ONNX / OpenVINO / TFLite with a dynamic batch dimension.

Defined as the official code (thuml/iTransformer with `use_norm`, and the DistilTS copy): every
input window is normalised per variate over time (mean and std, std = sqrt(var + 1e-5)) and the
output is mapped back with the window's std and mean, inside `forward`, so raw values go in and
raw-scale values come out (and the normalisation is part of every exported graph). Defaults are the
DistilTS scripts' student at lookback 512: d_model 512, 4 heads, 1 layer, d_ff 2048, dropout 0.1,
GELU (`activation`: "gelu_tanh" or "relu" are the variants for targets without GELU). Deviations (no
timestamp tokens) are listed in docs/design.md.

FTA representation (`represent`): the encoder output per variate token, `[B, D, d_model]` (after
the final LayerNorm: the official code's `hidden_dim`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from distilts.students.activations import make_activation
from distilts.students.quantile import DEFAULT_RANK, QuantileOutput
from distilts.students.revin import RevIN

NORMS = ("window", "revin", "none")


class Attention(nn.Module):
    """Multi-head self-attention over the token axis of `[B, N, d]`."""

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads}).")
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.q, self.k, self.v = (nn.Linear(d_model, d_model) for _ in range(3))
        self.out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.unflatten(-1, (self.n_heads, self.d_head)).transpose(1, 2)  # [B, h, N, dh]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(self.q(x)), self._heads(self.k(x)), self._heads(self.v(x))
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.d_head))
        attn = self.dropout(torch.softmax(scores, dim=-1))
        ctx = torch.matmul(attn, v).transpose(1, 2).flatten(-2)  # [B, N, d]
        return self.out(ctx)


class EncoderLayer(nn.Module):
    """Post-norm Transformer layer as in the iTransformer reference code (GELU feed-forward)."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, activation: str = "gelu") -> None:
        super().__init__()
        self.attn = Attention(d_model, n_heads, dropout)
        self.ff = nn.Sequential(
            nn.Linear(d_model, d_ff), make_activation(activation), nn.Dropout(dropout), nn.Linear(d_ff, d_model)
        )
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout(self.attn(x)))
        return self.norm2(x + self.dropout(self.ff(x)))


class ITransformer(nn.Module):
    """`[B, L, D] -> [B, H, D]`: normalise each window, embed each variate (Linear L -> d_model),
    encode, project to H, de-normalise.

    `norm`: "window" (the official per-window normalisation, the default), "revin" (the same with a
    learnable affine, RevIN), or "none" (an ablation: no input normalisation).
    """

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_variates: int,
        *,
        d_model: int = 512,
        n_heads: int = 4,
        e_layers: int = 1,
        d_ff: int = 2048,
        dropout: float = 0.1,
        activation: str = "gelu",
        norm: str = "window",
        quantiles: tuple[float, ...] | list[float] | None = None,
        quantile_rank: int = DEFAULT_RANK,
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS} (got {norm!r}).")
        if quantiles is not None and norm == "revin":
            raise ValueError("norm 'revin' is not supported with quantiles (its learnable scale may flip the levels).")
        self.lookback, self.horizon, self.n_variates = lookback, horizon, n_variates
        self.repr_dim = d_model
        self.embed = nn.Linear(lookback, d_model)
        self.embed_dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(EncoderLayer(d_model, n_heads, d_ff, dropout, activation) for _ in range(e_layers))
        self.norm = nn.LayerNorm(d_model)
        self.quantile_head = None if quantiles is None else QuantileOutput(quantiles, horizon, quantile_rank)
        self.head = nn.Linear(d_model, horizon + (0 if quantiles is None else quantile_rank))
        self.norm_mode = norm
        self.revin = None if norm == "none" else RevIN(n_variates, affine=norm == "revin")

    def forward_with_repr(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forecast `[B, H, D]` and encoder output `[B, D, d_model]`."""
        if self.revin is not None:
            x, mean, std = self.revin.normalize(x)
        h = self.embed_dropout(self.embed(x.transpose(1, 2)))  # [B, D, d_model]
        for layer in self.layers:
            h = layer(h)
        h = self.norm(h)
        if self.quantile_head is not None:
            out, H = self.head(h), self.horizon  # [B, D, H + rank]
            y = self.quantile_head(out[..., :H], out[..., H:]).transpose(1, 2)  # [B, D, H, Q] -> [B, H, D, Q]
            if self.revin is not None:  # a positive scale per window and variate: the order is kept
                y = self.revin.denormalize(y, mean.unsqueeze(-1), std.unsqueeze(-1))  # [B, 1, D, 1]
            return y, h
        y = self.head(h).transpose(1, 2)
        if self.revin is not None:
            y = self.revin.denormalize(y, mean, std)
        return y, h

    @property
    def levels(self) -> tuple[float, ...] | None:
        return None if self.quantile_head is None else self.quantile_head.levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_repr(x)[0]

    def represent(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_repr(x)[1]
