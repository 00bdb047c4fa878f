"""DistilTS losses: supervised MSE, horizon-weighted knowledge distillation, and their sum.

    w_t   = exp(tau * t / (T - 1)) / sum_k exp(tau * k / (T - 1)),   t = 0..T-1  (T = 1: w = [1])
    L_KD  = sum_t w_t * MSE_t(student, teacher)     (MSE_t: mean over batch and variates at step t)
    total = L_sup + alpha * L_KD + beta * L_FTA

With loss "mae" every MSE above is a mean absolute error (MAE_t at step t); with "mase" (N-BEATS' MASE
loss, the M4 recipe) each window's absolute errors are divided by its input's scale
`s = mean_t |x_t - x_{t-m}|` (m: the season, `--season`; per window and variate; invariant to any
per-series affine map, so the per-series z-score does not change it), so calm and volatile windows weigh
alike; with "smape" (panel data) the forecasts, targets and teacher forecasts are first mapped back to
each series' raw values and compared by sMAPE, the M4 metric itself.
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


MASE_EPS = 1e-3  # floor of the mase scale, in per-series z-score units (a flat window does not explode)


def mase_scale(x: torch.Tensor, season: int = 1) -> torch.Tensor:
    """`[B, 1, D]`: the mean absolute seasonal change `|x_t - x_{t-m}|` of each input window `x [B, L, D]`
    (m = `season`, 1 when it is not shorter than the window; floored at MASE_EPS)."""
    m = season if 1 <= season < x.shape[1] else 1
    return (x[:, m:] - x[:, :-m]).abs().mean(dim=1, keepdim=True).clamp_min(MASE_EPS)


def point_loss(
    pred: torch.Tensor, target: torch.Tensor, kind: str = "mse", x: torch.Tensor | None = None, season: int = 1
) -> torch.Tensor:
    """The supervised term of a point student: mean squared ("mse"), absolute ("mae") or scaled absolute
    ("mase": divided by `mase_scale(x, season)` of the input windows) error."""
    diff = pred - target
    if kind == "mse":
        return torch.mean(diff * diff)
    return torch.mean(diff.abs() if kind == "mae" else diff.abs() / mase_scale(_needs(x), season))


def kd_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    weights: torch.Tensor,
    kind: str = "mse",
    x: torch.Tensor | None = None,
    season: int = 1,
) -> torch.Tensor:
    """Horizon-weighted distillation loss `sum_t w_t * MSE_t` (`MAE_t` for "mae", scaled as `point_loss` for
    "mase") between `[B, T, D]` forecasts."""
    if kind == "mse":
        per_step = mse_per_step(student, teacher)
    elif kind == "mae":
        per_step = mae_per_step(student, teacher)
    else:
        per_step = ((student - teacher).abs() / mase_scale(_needs(x), season)).mean(dim=(0, 2))
    return (weights * per_step).sum()


def smape_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """sMAPE (in [0, 2]; the M4 metric / 100) between raw-scale forecasts and targets `[B, T, D]`."""
    return torch.mean(2.0 * (pred - target).abs() / (pred.abs() + target.abs()).clamp_min(1e-8))


def smape_per_step(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """sMAPE at each forecast step `[T]` (mean over batch and variates)."""
    return (2.0 * (pred - target).abs() / (pred.abs() + target.abs()).clamp_min(1e-8)).mean(dim=(0, 2))


def _needs(x: torch.Tensor | None) -> torch.Tensor:
    if x is None:
        raise ValueError("the mase loss needs the input windows (x) for its per-window scale")
    return x


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
