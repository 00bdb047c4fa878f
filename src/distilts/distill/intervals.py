"""Split-conformal calibration of a quantile student's intervals on validation windows (CQR).

Conformalized quantile regression (Romano, Patterson and Candès, NeurIPS 2019): for each central interval
`[q_lo, q_hi]` of nominal coverage `1 - a` (levels `lo` and `hi = 1 - lo`), the conformity score of a
validation value `y` is `E = max(q_lo - y, y - q_hi)`, here divided by the window's scale (the student's own
instance normalization std; 1 without one) so that series of every level share one set of scores, and taken
per horizon step over every validation window and variate. The `ceil((n + 1)(1 - a)) / n` empirical quantile
of the `n` scores widens the interval on both sides; with exchangeable windows the calibrated interval covers
at least `1 - a` of new values (marginally).

The widening goes into the quantile head as a non-negative addition to its gaps (`QuantileOutput.set_widening`,
in normalized units), so every exported artifact carries it and the levels still cannot cross. It only widens:
an interval that already over-covers is kept (narrowing could cross the levels without a new operator).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from distilts.metrics import coverage
from distilts.quantiles import median_index
from distilts.students.revin import RevIN


def symmetric_pairs(levels: tuple[float, ...]) -> list[tuple[int, int]] | None:
    """`(lo, hi)` index pairs of the central intervals, outermost first; None when the levels are not symmetric."""
    Q, m = len(levels), median_index(levels)
    if Q != 2 * m + 1 or any(abs(levels[j] + levels[Q - 1 - j] - 1.0) > 1e-6 for j in range(m)):
        return None
    return [(j, Q - 1 - j) for j in range(m)]


def _forecasts(model: torch.nn.Module, windows: Any, device: str, batch: int = 512) -> tuple[np.ndarray, ...]:
    """(quantiles [N, H, D, Q], truth [N, H, D], scale [N, 1, D]) of every window, in the data's normalized units."""
    revin = next((m for m in model.modules() if isinstance(m, RevIN)), None)
    qs, ys, ss = [], [], []
    model.eval()
    with torch.no_grad():
        for lo in range(0, len(windows), batch):
            idx = np.arange(lo, min(lo + batch, len(windows)))
            x, y = windows.batch(idx)
            xt = torch.as_tensor(x, dtype=torch.float32, device=device)
            kw = {
                k: torch.as_tensor(v, dtype=torch.float32, device=device)
                for k, v in windows.covariate_batch(idx).items()
            }
            qs.append(model(xt, **kw).cpu().numpy())
            ys.append(np.asarray(y, np.float32))
            unit = np.ones((len(idx), 1, x.shape[-1]), np.float32)
            ss.append(unit if revin is None else revin.normalize(xt)[2].cpu().numpy())
    return np.concatenate(qs), np.concatenate(ys), np.concatenate(ss)


def calibrate_intervals(model: torch.nn.Module, windows: Any, device: str = "cpu") -> dict | None:
    """Fit and set the head's widening on `windows` (validation); the record for config.json (`intervals`), or
    None for a student without a quantile head. Levels that are not symmetric about the median are left as they are."""
    head = getattr(model, "quantile_head", None)
    if head is None or not hasattr(head, "set_widening"):
        return None
    levels = tuple(head.levels)
    pairs = symmetric_pairs(levels)
    if pairs is None:
        return {"method": "none", "why": "levels not symmetric about the median: no central intervals to calibrate"}
    if len(windows) == 0:
        return {"method": "none", "why": "no validation windows"}
    head.set_widening(None)
    q, y, s = _forecasts(model, windows, device)
    H, Q = q.shape[1], len(levels)
    n = q.shape[0] * q.shape[2]
    widen_of_pair = np.zeros((len(pairs), H))
    before = {}
    for i, (lo, hi) in enumerate(pairs):
        nominal = levels[hi] - levels[lo]
        score = np.maximum(q[..., lo] - y, y - q[..., hi]) / s  # [N, H, D]
        k = min(math.ceil((n + 1) * nominal), n)
        per_step = np.sort(score.transpose(1, 0, 2).reshape(H, -1), axis=1)[:, k - 1]
        widen_of_pair[i] = np.maximum(per_step, 0.0)
        before[f"{nominal:g}"] = coverage(q[..., lo], q[..., hi], y)
    # outer intervals at least as wide as inner ones; the gap between levels j and j + 1 takes the difference
    for i in range(len(pairs) - 2, -1, -1):
        widen_of_pair[i] = np.maximum(widen_of_pair[i], widen_of_pair[i + 1])
    gaps = np.zeros((H, Q - 1))
    for i, (lo, hi) in enumerate(pairs):
        inner = widen_of_pair[i + 1] if i + 1 < len(pairs) else 0.0
        gaps[:, lo] = widen_of_pair[i] - inner  # the gap from level lo to lo + 1 (below the median)
        gaps[:, hi - 1] = widen_of_pair[i] - inner  # the gap from level hi - 1 to hi (above the median)
    head.set_widening(gaps.reshape(-1))
    q2, _, _ = _forecasts(model, windows, device)
    after = {f"{levels[hi] - levels[lo]:g}": coverage(q2[..., lo], q2[..., hi], y) for lo, hi in pairs}
    return {
        "method": "split conformal (CQR), per horizon step, scores over the window's scale",
        "windows": int(q.shape[0]),
        "widen": [round(float(v), 8) for v in gaps.reshape(-1)],
        "val_coverage_before": before,
        "val_coverage_after": after,
    }
