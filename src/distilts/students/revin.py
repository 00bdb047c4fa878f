"""RevIN-style instance normalization: z-score each window per variate, undo it on the output."""

from __future__ import annotations

import torch
from torch import nn


class RevIN(nn.Module):
    """Reversible instance normalization (Kim et al., 2022) over the time axis of `[B, L, D]`.

    Statistics are computed per window and variate (no data-dependent control flow, so it exports).
    With `affine`, a learnable per-variate scale and shift is applied after normalizing.
    """

    def __init__(self, n_variates: int, affine: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(n_variates))
            self.bias = nn.Parameter(torch.zeros(n_variates))

    def normalize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`x [B, L, D]` -> (normalized x, mean [B, 1, D], std [B, 1, D])."""
        mean = x.mean(dim=1, keepdim=True)
        var = x.var(dim=1, keepdim=True, unbiased=False) + self.eps
        inv = torch.rsqrt(var)  # RSQRT, not SQRT + DIV: TFLite Micro has an int8 kernel only for the former
        z = (x - mean) * inv
        std = var * inv
        if self.affine:
            z = z * self.weight + self.bias
        return z, mean, std

    def denormalize(self, y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """Map `y [B, H, D]` from the normalized space back to the window's scale."""
        if self.affine:
            y = (y - self.bias) / (self.weight + self.eps * self.eps)
        return y * std + mean
