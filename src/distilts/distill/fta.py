"""Factorized Temporal Alignment (FTA): align the student's variate-wise representation with the
teacher's per-token hidden states through a factorized, time-indexed projection.

    h [B, D, d_S]  ->  H_hat[b, d, t] = W_out · phi((W_s · h[b, d]) ⊙ E_t)   ->  [B, D, T, d_T]

As the DistilTS code defines it (`VarTimeFactorAligner`): latent width u = 256, phi = GELU, no
biases, `E` `[T, u]` initialised N(0, 1/u), one row per teacher token (all T tokens by default),
and the loss is the mean over blocks of 128 tokens of each block's MSE (blocks bound the memory of
the `[B, D, block, u]` intermediate). Its weight in the total loss is 0.3 (`config.FTA_WEIGHT`); the
DistilTS scripts use FTA for iTransformer only (`vt_loss 0` for DLinear), hence `config.DEFAULT_BETA`.
FTA is training-only: it is never part of the saved student.

One deviation, on purpose: the official code builds its optimizer from the student's parameters
only, so W_s, E and W_out stay at their random initialisation; here they are trained with the
student (the paper's learnable projection). See docs/design.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from distilts.distill.config import FTA_LATENT

FTA_BLOCK = 128


class FTA(nn.Module):
    def __init__(
        self,
        d_student: int,
        d_teacher: int,
        n_tokens: int,
        latent: int = FTA_LATENT,
        phi: Callable[[], nn.Module] = nn.GELU,
        block: int = FTA_BLOCK,
    ) -> None:
        super().__init__()
        self.d_student, self.d_teacher, self.n_tokens, self.latent = d_student, d_teacher, n_tokens, latent
        self.block = block
        self.W_s = nn.Linear(d_student, latent, bias=False)
        self.E = nn.Parameter(torch.randn(n_tokens, latent) / math.sqrt(latent))
        self.phi = phi()
        self.W_out = nn.Linear(latent, d_teacher, bias=False)

    def forward(self, h: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """`h [B, D, d_S]` -> predicted teacher states `[B, D, T, d_T]` for tokens `start:stop`."""
        z = self.W_s(h).unsqueeze(2) * self.E[start:stop]  # [B, D, t, u]
        return self.W_out(self.phi(z))

    def loss(self, h: torch.Tensor, teacher_hidden: torch.Tensor) -> torch.Tensor:
        """Mean over token blocks of the MSE between the projection of `h` and the teacher's hidden
        states `[B, D, T, d_T]` (equal to the plain MSE when T is a multiple of the block)."""
        losses = []
        for start in range(0, self.n_tokens, self.block):
            stop = min(start + self.block, self.n_tokens)
            target = teacher_hidden[:, :, start:stop].to(h.dtype)
            losses.append(torch.mean((self(h, start, stop) - target) ** 2))
        return torch.stack(losses).mean()

    def settings(self) -> dict:
        return {
            "d_student": self.d_student,
            "d_teacher": self.d_teacher,
            "n_tokens": self.n_tokens,
            "latent": self.latent,
            "phi": type(self.phi).__name__,
            "block": self.block,
            "bias": False,
        }
