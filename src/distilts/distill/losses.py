"""DistilTS losses: supervised MSE, horizon-weighted knowledge distillation, and their sum.

    w_t   = exp(tau * t / (T - 1)) / sum_k exp(tau * k / (T - 1)),   t = 0..T-1  (T = 1: w = [1])
    L_KD  = sum_t w_t * MSE_t(student, teacher)     (MSE_t: mean over batch and variates at step t)
    total = L_sup + alpha * L_KD + beta * L_FTA

With loss "mae" (the M4 recipe) every MSE above is a mean absolute error (MAE_t at step t).
tau > 0 puts more weight on far steps (where the student is weakest); tau = 0 is uniform KD.

Quantile students (`[B, T, D, Q]` at levels tau_q): the supervised term is the pinball loss
rho_q(y - s_q) averaged over everything, and the KD term compares the student's levels with the
teacher's at the same levels, horizon-weighted as above, with one of `QUANTILE_KD`:
    "pinball": sum_t w_t * mean rho_q(t_q - s_q)   (the teacher's quantile values as targets)
    "l2":      sum_t w_t * mean (s_q - t_q)^2      (L2 between the quantile vectors)
"""

from __future__ import annotations

import torch

from distilts.distill.config import QUANTILE_KD


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


def mae_per_step(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MAE at each forecast step `[T]`, averaged over batch and variates of `[B, T, D]`."""
    return (pred - target).abs().mean(dim=(0, 2))


def point_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """The supervised term of a point student: mean squared ("mse") or absolute ("mae") error."""
    diff = pred - target
    return torch.mean(diff * diff) if kind == "mse" else torch.mean(diff.abs())


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, weights: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Horizon-weighted distillation loss `sum_t w_t * MSE_t` (`MAE_t` for "mae") between `[B, T, D]` forecasts."""
    per_step = mse_per_step(student, teacher) if kind == "mse" else mae_per_step(student, teacher)
    return (weights * per_step).sum()


def pinball_per_step(pred: torch.Tensor, target: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Pinball loss at each step `[T]` of quantile forecasts `pred [B, T, D, Q]` against `target`
    `[B, T, D]` (one value per step) or `[B, T, D, Q]` (a value per level); mean over B, D and Q."""
    if target.dim() == pred.dim() - 1:
        target = target.unsqueeze(-1)
    diff = target - pred
    loss = torch.maximum(levels * diff, (levels - 1.0) * diff)
    return loss.mean(dim=(0, 2, 3))


def pinball_loss(pred: torch.Tensor, target: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Mean pinball loss of `pred [B, T, D, Q]` against `target [B, T, D]` (or `[B, T, D, Q]`)."""
    return pinball_per_step(pred, target, levels).mean()


def quantile_kd_loss(
    student: torch.Tensor, teacher: torch.Tensor, levels: torch.Tensor, weights: torch.Tensor, kind: str = "l2"
) -> torch.Tensor:
    """Horizon-weighted KD between quantile forecasts `[B, T, D, Q]` at the same levels."""
    if kind == "pinball":
        per_step = pinball_per_step(student, teacher, levels)
    elif kind == "l2":
        per_step = ((student - teacher) ** 2).mean(dim=(0, 2, 3))
    else:
        raise ValueError(f"unknown quantile KD term {kind!r}; use one of {QUANTILE_KD}")
    return (weights * per_step).sum()


def total_loss(
    sup: torch.Tensor, kd: torch.Tensor | None, fta: torch.Tensor | None, alpha: float, beta: float
) -> torch.Tensor:
    """`L_sup + alpha * L_KD + beta * L_FTA`; absent terms (None) count as 0."""
    loss = sup
    if kd is not None:
        loss = loss + alpha * kd
    if fta is not None:
        loss = loss + beta * fta
    return loss
