"""Probabilistic forecast metrics, computed as the field does (numpy only).

Arrays: quantile forecasts `q [N, H, D, Q]` at sorted `levels`, truth `y [N, H, D]`, lookback
windows `x [N, L, D]` (for the MASE/MSIS scale).

- WQL (weighted quantile loss, as Chronos and GIFT-Eval): for each level, 2 x the summed pinball
  loss over all windows, steps and variates divided by the summed |y|; averaged over the levels.
- MASE of the median: mean |y - q_0.5| over the horizon, divided by the window's in-sample
  seasonal-naive MAE, mean |x_t - x_{t-m}| over its lookback (per window and variate), averaged.
- Coverage and mean width of the central interval between levels `lo` and `hi` (80%: 0.1 - 0.9).
- MSIS (M4): mean over the horizon of the interval score `(U - L) + 2/a (L - y) 1[y < L] +
  2/a (y - U) 1[y > U]` with `a = 1 - (hi - lo)`, divided by the same seasonal-naive scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

SEASONALITY = {3600: 24, 86400: 7, 604800: 52, 1800: 48, 900: 96, 600: 144, 300: 288, 60: 1440}


def seasonality(freq_seconds: int | None) -> int:
    """Seasonal period m of the naive scale (hourly 24, daily 7, ...; 1 when unknown)."""
    return SEASONALITY.get(int(freq_seconds), 1) if freq_seconds else 1


def pinball(q: np.ndarray, y: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """Pinball loss `rho_tau(y - q)` elementwise, `[N, H, D, Q]`."""
    tau = np.asarray(levels, np.float64)
    diff = np.asarray(y, np.float64)[..., None] - np.asarray(q, np.float64)
    return np.maximum(tau * diff, (tau - 1.0) * diff)


def wql(q: np.ndarray, y: np.ndarray, levels: Sequence[float]) -> float:
    """Weighted quantile loss (mean over levels of 2 sum rho_tau / sum |y|)."""
    loss = pinball(q, y, levels).reshape(-1, len(levels)).sum(axis=0)
    denom = np.abs(np.asarray(y, np.float64)).sum()
    return float(np.mean(2.0 * loss / denom)) if denom > 0 else float("nan")


def naive_scale(x: np.ndarray, season: int = 1) -> np.ndarray:
    """In-sample seasonal-naive MAE of each window and variate `[N, D]` (falls back to m = 1 when the
    lookback is not longer than the season)."""
    x = np.asarray(x, np.float64)
    m = season if x.shape[1] > season else 1
    return np.abs(x[:, m:] - x[:, :-m]).mean(axis=1)


def _scaled(err: np.ndarray, scale: np.ndarray) -> float:
    """Mean over windows and variates of `err [N, D] / scale [N, D]`, skipping zero scales."""
    ok = scale > 0
    return float(np.mean(err[ok] / scale[ok])) if ok.any() else float("nan")


def mase(median: np.ndarray, y: np.ndarray, x: np.ndarray, season: int = 1) -> float:
    """MASE of a point forecast `[N, H, D]`."""
    err = np.abs(np.asarray(y, np.float64) - np.asarray(median, np.float64)).mean(axis=1)
    return _scaled(err, naive_scale(x, season))


def interval(q: np.ndarray, levels: Sequence[float], lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """The lower and upper bounds `[N, H, D]` at levels `lo` and `hi` (which must be in `levels`)."""
    levels = [round(float(v), 6) for v in levels]
    for v in (lo, hi):
        if round(v, 6) not in levels:
            raise ValueError(f"level {v} is not among the forecast levels {levels}")
    return q[..., levels.index(round(lo, 6))], q[..., levels.index(round(hi, 6))]


def coverage(lower: np.ndarray, upper: np.ndarray, y: np.ndarray) -> float:
    """Share of targets inside [lower, upper]."""
    return float(np.mean((y >= lower) & (y <= upper)))


def mean_width(lower: np.ndarray, upper: np.ndarray) -> float:
    return float(np.mean(np.asarray(upper, np.float64) - np.asarray(lower, np.float64)))


def msis(lower: np.ndarray, upper: np.ndarray, y: np.ndarray, x: np.ndarray, a: float, season: int = 1) -> float:
    """Mean scaled interval score of the (1 - a) interval [lower, upper]."""
    lower, upper, y = (np.asarray(v, np.float64) for v in (lower, upper, y))
    score = (upper - lower) + (2.0 / a) * (lower - y) * (y < lower) + (2.0 / a) * (y - upper) * (y > upper)
    return _scaled(score.mean(axis=1), naive_scale(x, season))


def crossings(q: np.ndarray) -> int:
    """Number of (window, step, variate) where some level lies below the level before it."""
    return int(np.any(np.diff(np.asarray(q), axis=-1) < 0, axis=-1).sum())


def probabilistic_scores(
    q: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    levels: Sequence[float],
    *,
    season: int = 1,
    lo: float = 0.1,
    hi: float = 0.9,
) -> dict[str, Any]:
    """WQL, MASE of the median, coverage / mean width / MSIS of the [lo, hi] interval, crossings."""
    from distilts.quantiles import median_index

    levels = [float(v) for v in levels]
    out: dict[str, Any] = {
        "levels": levels,
        "wql": wql(q, y, levels),
        "mase": mase(q[..., median_index(levels)], y, x, season),
        "season": season,
    }
    if round(lo, 6) in [round(v, 6) for v in levels] and round(hi, 6) in [round(v, 6) for v in levels]:
        lower, upper = interval(q, levels, lo, hi)
        out["interval"] = {
            "lo": lo,
            "hi": hi,
            "coverage": coverage(lower, upper, y),
            "mean_width": mean_width(lower, upper),
            "msis": msis(lower, upper, y, x, 1.0 - (hi - lo), season),
        }
    out["crossings"] = crossings(q)
    return out
