"""PatchTST as a student (Nie et al., 2023, "A Time Series is Worth 64 Words"): each variate's window is
cut into patches, each patch is a token, a Transformer encoder runs over the patches of one variate
(channel-independent), and a flatten head maps all patch tokens to the horizon.

Defined as the official code (yuqinie98/PatchTST, `PatchTST_supervised/layers/PatchTST_backbone.py` and
`models/PatchTST.py`, defaults of `run_longExp.py` and `scripts/PatchTST/etth1.sh`): RevIN without affine
(`revin=1, affine=0`), end padding by `stride` replicated steps (`padding_patch="end"`), a Linear patch
embedding (patch_len -> d_model) plus a learned positional encoding (uniform +-0.02) and dropout, post-norm
encoder layers with BatchNorm over d_model (`norm="BatchNorm"`), residual attention (each layer adds the
previous layer's pre-softmax scores, `res_attention=True`), a GELU feed-forward, and the flatten head
(`[d_model, patches]` flattened, Linear -> H, head dropout). ETTh1 defaults: patch 16, stride 8, 3 layers,
4 heads, d_model 16, d_ff 128, dropout 0.3, head dropout 0.

Written for export, the same function as the official one:
- patching + embedding: the official `unfold` then `Linear(patch_len, d_model)` equals a `Conv1d(1, d_model,
  kernel=patch_len, stride=stride)` over each variate's padded window (same weights, reshaped), which every
  format has (no unfold);
- BatchNorm over d_model on `[N, patches, d_model]`: the official transposes to `[N, d_model, patches]`; here
  the tokens are flattened to `[N * patches, d_model]` (the same statistics per channel, no transposes);
- attention written out by hand (no fused kernels), as in students/itransformer.py.

`activation` ("gelu", "relu", "gelu_tanh"): the feed-forward's activation (GELU blocks microcontrollers).

FTA representation (`represent`): the flattened encoder output per variate, `[B, D, d_model * patches]`
(what the head maps to the horizon).

This is not the PatchTST teacher (distilts.teachers.patchtst, transformers' PatchTSTForPrediction): that is
a larger model served through transformers; this is our own exportable module (docs/design.md).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from distilts.students.activations import make_activation
from distilts.students.itransformer import Attention
from distilts.students.quantile import DEFAULT_RANK, QuantileOutput, head_forecast
from distilts.students.revin import window_norm

PADDINGS = ("end", "none")


def n_patches(lookback: int, patch_len: int, stride: int, padding_patch: str = "end") -> int:
    """Patches cut from a window of `lookback` steps (the official formula; one more with end padding)."""
    return (lookback - patch_len) // stride + 1 + (padding_patch == "end")


class TokenBatchNorm(nn.Module):
    """BatchNorm1d over the last axis (d_model) of tokens `[N, T, d]`: statistics over N and T."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.reshape(-1, x.shape[-1])).reshape(x.shape)


class ResidualAttention(Attention):
    """Multi-head self-attention over `[N, T, d]` (iTransformer's projections, written out to export); with
    `prev` scores, adds them before the softmax (the official residual attention), and its dropout acts on
    the output (the official proj_dropout; attn_dropout is 0). Returns (output, pre-softmax scores)."""

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        q, k, v = self._heads(self.q(x)), self._heads(self.k(x)), self._heads(self.v(x))
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.d_head))
        if prev is not None:
            scores = scores + prev
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).flatten(-2)  # [N, T, d]
        return self.dropout(self.out(ctx)), scores


class EncoderLayer(nn.Module):
    """Post-norm layer: BatchNorm(x + attn(x)), BatchNorm(x + FF(x)), residual dropout on both."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, activation: str) -> None:
        super().__init__()
        self.attn = ResidualAttention(d_model, n_heads, dropout)
        self.ff = nn.Sequential(
            nn.Linear(d_model, d_ff), make_activation(activation), nn.Dropout(dropout), nn.Linear(d_ff, d_model)
        )
        self.norm_attn, self.norm_ff = TokenBatchNorm(d_model), TokenBatchNorm(d_model)
        self.dropout_attn, self.dropout_ff = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        a, scores = self.attn(x, prev)
        x = self.norm_attn(x + self.dropout_attn(a))
        return self.norm_ff(x + self.dropout_ff(self.ff(x))), scores


class PatchTST(nn.Module):
    """PatchTST (Nie et al., 2023): patches of each variate as tokens, Transformer encoder, flatten head.

    `[B, L, D] -> [B, H, D]`: normalise each window, patch, embed, encode per variate, flatten, project to H,
    de-normalise. With `quantiles`, `[B, H, D, Q]` (levels sorted, never crossing).

    `norm`: "window" (the official RevIN without affine, the default), "revin" (with its learnable
    affine), or "none" (no input normalization). `padding_patch`: "end" (official) or "none".
    """

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_variates: int,
        *,
        patch_len: int = 16,
        stride: int = 8,
        padding_patch: str = "end",
        d_model: int = 16,
        n_heads: int = 4,
        e_layers: int = 3,
        d_ff: int = 128,
        dropout: float = 0.3,
        head_dropout: float = 0.0,
        activation: str = "gelu",
        res_attention: bool = True,
        norm: str = "window",
        quantiles: tuple[float, ...] | list[float] | None = None,
        quantile_rank: int = DEFAULT_RANK,
    ) -> None:
        super().__init__()
        if padding_patch not in PADDINGS:
            raise ValueError(f"padding_patch must be one of {PADDINGS} (got {padding_patch!r}).")
        if patch_len < 1 or stride < 1 or patch_len > lookback:
            raise ValueError(
                f"patch_len ({patch_len}) and stride ({stride}) must be positive and patch_len at most the "
                f"lookback ({lookback})."
            )
        self.lookback, self.horizon, self.n_variates = lookback, horizon, n_variates
        self.pad = stride if padding_patch == "end" else 0
        self.n_patches = n_patches(lookback, patch_len, stride, padding_patch)
        self.res_attention = res_attention
        self.embed = nn.Conv1d(1, d_model, kernel_size=patch_len, stride=stride)  # = Linear on each patch
        self.pos = nn.Parameter(torch.empty(self.n_patches, d_model).uniform_(-0.02, 0.02))
        self.embed_dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(EncoderLayer(d_model, n_heads, d_ff, dropout, activation) for _ in range(e_layers))
        self.repr_dim = d_model * self.n_patches
        self.quantile_head = None if quantiles is None else QuantileOutput(quantiles, horizon, quantile_rank)
        self.head = nn.Linear(self.repr_dim, horizon + (0 if quantiles is None else quantile_rank))
        self.head_dropout = nn.Dropout(head_dropout)
        self.revin = window_norm(norm, n_variates, quantiles)

    @property
    def levels(self) -> tuple[float, ...] | None:
        return None if self.quantile_head is None else self.quantile_head.levels

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized `[B, L, D]` -> flattened encoder output `[B, D, d_model * patches]`."""
        z = x.transpose(1, 2)  # [B, D, L]
        if self.pad:
            z = torch.cat([z, z[..., -1:].repeat(1, 1, self.pad)], dim=-1)  # ReplicationPad1d((0, stride))
        u = self.embed(z.reshape(-1, 1, z.shape[-1])).transpose(1, 2)  # [B * D, patches, d_model]
        u = self.embed_dropout(u + self.pos)
        scores = None
        for layer in self.layers:
            u, s = layer(u, scores)
            scores = s if self.res_attention else None
        u = u.reshape(-1, self.n_variates, self.n_patches, u.shape[-1])  # [B, D, patches, d_model]
        return u.transpose(-1, -2).flatten(-2)  # the official [d_model, patches] order

    def forward_with_repr(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forecast `[B, H, D]` (`[B, H, D, Q]`) and the flattened encoder output `[B, D, repr_dim]`."""
        mean = std = None
        if self.revin is not None:
            x, mean, std = self.revin.normalize(x)
        h = self.encode(x)
        out = self.head_dropout(self.head(h))  # [B, D, H (+ rank)]
        return head_forecast(out, self.horizon, self.quantile_head, self.revin, mean, std), h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_repr(x)[0]

    def represent(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_repr(x)[1]
