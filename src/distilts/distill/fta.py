"""Factorized Temporal Alignment (FTA): align the student's variate-wise representation with the
teacher's per-token hidden states through a factorized, time-indexed projection.

    h [B, D, d_S]  ->  H_hat[b, d, t] = W_out · phi((W_s · h[b, d]) ⊙ E_t)   ->  [B, D, T, d_T]

`E_t` `[T, u]` is a learnable embedding per teacher token. The loss is the MSE to the teacher's
(pooled) hidden states. FTA is training-only: it is never part of the saved student.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


class FTA(nn.Module):
    def __init__(self, d_student: int, d_teacher: int, n_tokens: int, latent: int = 64,
                 phi: Callable[[], nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.d_student, self.d_teacher, self.n_tokens, self.latent = d_student, d_teacher, n_tokens, latent
        self.W_s = nn.Linear(d_student, latent)
        self.E = nn.Parameter(torch.randn(n_tokens, latent) / latent ** 0.5 + 1.0)
        self.phi = phi()
        self.W_out = nn.Linear(latent, d_teacher)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """`h [B, D, d_S]` -> predicted teacher states `[B, D, T, d_T]`."""
        z = self.W_s(h).unsqueeze(2) * self.E  # [B, D, T, u]
        return self.W_out(self.phi(z))

    def loss(self, h: torch.Tensor, teacher_hidden: torch.Tensor) -> torch.Tensor:
        """MSE between the projection of `h` and the teacher's hidden states `[B, D, T, d_T]`."""
        return torch.mean((self(h) - teacher_hidden.to(h.dtype)) ** 2)

    def settings(self) -> dict:
        return {"d_student": self.d_student, "d_teacher": self.d_teacher, "n_tokens": self.n_tokens,
                "latent": self.latent, "phi": type(self.phi).__name__}
