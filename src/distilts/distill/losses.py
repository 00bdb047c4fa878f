"""DistilTS losses: supervised MSE, horizon-weighted knowledge distillation, and their sum.

    w_t   = exp(tau * t / (T - 1)) / sum_k exp(tau * k / (T - 1)),   t = 0..T-1  (T = 1: w = [1])
    L_KD  = sum_t w_t * MSE_t(student, teacher)     (MSE_t: mean over batch and variates at step t)
    total = L_sup + alpha * L_KD + beta * L_FTA

tau > 0 puts more weight on far steps (where the student is weakest); tau = 0 is uniform KD.
"""

from __future__ import annotations

import torch


def horizon_weights(T: int, tau: float, device: torch.device | str | None = None) -> torch.Tensor:
    """Softmax weights `[T]` over forecast steps with temperature `tau` (sum to 1)."""
    if T < 1:
        raise ValueError(f"horizon must be positive (got {T}).")
    if T == 1:
        return torch.ones(1, device=device)
    t = torch.arange(T, dtype=torch.float64, device=device)
    return torch.softmax(tau * t / (T - 1), dim=0).float()


def mse_per_step(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE at each forecast step `[T]`, averaged over batch and variates of `[B, T, D]`."""
    return ((pred - target) ** 2).mean(dim=(0, 2))


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Horizon-weighted distillation loss `sum_t w_t * MSE_t` between `[B, T, D]` forecasts."""
    return (weights * mse_per_step(student, teacher)).sum()


def total_loss(sup: torch.Tensor, kd: torch.Tensor | None, fta: torch.Tensor | None,
               alpha: float, beta: float) -> torch.Tensor:
    """`L_sup + alpha * L_KD + beta * L_FTA`; absent terms (None) count as 0."""
    loss = sup
    if kd is not None:
        loss = loss + alpha * kd
    if fta is not None:
        loss = loss + beta * fta
    return loss
