"""Online interval calibration: a conformal quantile tracker per horizon step, variate and level (numpy only).

A quantile artifact's levels are calibrated on the training period; when the series' level or noise
shifts, its intervals stop covering. `OnlineCalibrator` keeps one additive offset `theta[h, d, j]` per
horizon step h, variate d and level tau_j, and moves it by one pinball-loss subgradient step each time
the value the forecast was for is observed:

    theta <- theta + eta_d * (tau_j - 1{y <= q + theta})          (q: the model's level tau_j forecast)

the quantile tracker of conformal PID control (Angelopoulos, Candes & Tibshirani, "Conformal PID Control
for Time Series Prediction", NeurIPS 2023, eq. 2: q_{t+1} = q_t + eta (err_t - alpha)), which for one
level is adaptive conformal inference (Gibbs & Candes, "Adaptive Conformal Inference Under
Distribution Shift", NeurIPS 2021) on the score scale. Its long-run guarantee holds for any sequence:
the miss rate of each level over T updates is within (B + eta) / (eta T) of 1 - tau (B: the largest
score). The step eta_d = lr * std_d is in raw units (std_d: the training scaler's std of variate d), so
`lr` is unitless. The calibrated forecast is `q + theta`, made monotone over the levels (running
maximum), so the levels still never cross. State: H x D x Q floats and a counter; each observation
costs a compare and a multiply-add per level. The C artifact's `distilts_calibrate_update` runs the
same rule in float32 (docs/runtime.md, "Online calibration").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from distilts.errors import DataError, DistiltsError
from distilts.utils import atomic_write_text

DEFAULT_LR = 0.05
FORMAT = "distilts-online-calibration/1"


class OnlineCalibrator:
    """Offsets `[H, D, Q]` added to a quantile forecaster's levels, updated as observations arrive."""

    def __init__(self, levels, horizon: int, scale, lr: float = DEFAULT_LR, offsets=None, updates: int = 0) -> None:
        self.levels = np.asarray(levels, np.float32)
        self.scale = np.asarray(scale, np.float32).ravel()
        if not 0.0 < float(lr) <= 1.0:
            raise DistiltsError(f"lr must lie in (0, 1] (a fraction of each variate's std per step); got {lr}.")
        if np.any(self.scale <= 0):
            raise DistiltsError("the per-variate scale (the scaler's std) must be positive.")
        self.lr = float(lr)
        self.step = (self.lr * self.scale).astype(np.float32)  # eta_d, raw units
        shape = (int(horizon), len(self.scale), len(self.levels))
        self.offsets = np.zeros(shape, np.float32) if offsets is None else np.asarray(offsets, np.float32).copy()
        if self.offsets.shape != shape:
            raise DataError(f"calibration offsets have shape {self.offsets.shape}; this model needs {shape}.")
        self.updates = int(updates)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(H, D, Q): horizon steps, variates, levels."""
        return self.offsets.shape

    def apply(self, quantiles: np.ndarray) -> np.ndarray:
        """Calibrated levels of `[H, D, Q]` or `[B, H, D, Q]` forecasts (a new array; levels never cross)."""
        q = self._check(quantiles, "quantiles", self.shape)
        return np.maximum.accumulate((q + self.offsets).astype(np.float32), axis=-1)

    def update(self, quantiles: np.ndarray, observed: np.ndarray) -> None:
        """One tracker step per observed value: `quantiles` `[H, D, Q]` is the UNcalibrated forecast issued
        for steps 1..H, `observed` `[H, D]` the values that came (NaN: not observed yet, skipped)."""
        q = self._check(quantiles, "quantiles", self.shape)
        y = self._check(observed, "observed", self.shape[:2], allow_nan=True)
        seen = ~np.isnan(y)
        below = (y[..., None] <= q + self.offsets).astype(np.float32)  # NaN compares False; masked below
        delta = self.step[None, :, None] * (self.levels - below)
        self.offsets += np.where(seen[..., None], delta, np.float32(0)).astype(np.float32)
        self.updates += 1

    # --- state ------------------------------------------------------------------------------
    def state(self) -> dict:
        """The whole state as JSON-able values (what `save` writes)."""
        return {
            "format": FORMAT,
            "rule": "theta += lr * std_d * (tau - 1{y <= q + theta})  (conformal quantile tracker)",
            "levels": [float(v) for v in self.levels],
            "horizon": self.shape[0],
            "scale": [float(v) for v in self.scale],
            "lr": self.lr,
            "updates": self.updates,
            "offsets": self.offsets.tolist(),
        }

    def save(self, path: str | Path) -> Path:
        """Write the state to `path` (JSON, atomically)."""
        atomic_write_text(path, json.dumps(self.state()) + "\n")
        return Path(path)

    @classmethod
    def from_state(cls, state: dict) -> OnlineCalibrator:
        if state.get("format") != FORMAT:
            raise DataError(f"not an online calibration state (format {state.get('format')!r}, expected {FORMAT}).")
        return cls(state["levels"], state["horizon"], state["scale"], state["lr"], state["offsets"], state["updates"])

    @classmethod
    def load(cls, path: str | Path) -> OnlineCalibrator:
        """Read a state written by `save`."""
        try:
            state = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read the calibration state {path}: {exc}. Save one with .save(path).") from None
        return cls.from_state(state)

    def _check(self, a: np.ndarray, name: str, tail: tuple[int, ...], allow_nan: bool = False) -> np.ndarray:
        a = np.asarray(a, np.float32)
        if a.shape[-len(tail) :] != tail or a.ndim > len(tail) + (0 if name == "observed" else 1):
            raise DataError(
                f"{name} has shape {a.shape}; expected {list(tail)} (H, D{', Q' if len(tail) == 3 else ''})."
            )
        if not allow_nan and not np.isfinite(a).all():
            raise DataError(f"{name} holds NaN/inf values.")
        return a


def replay(cal: OnlineCalibrator, forecasts: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Calibrated forecasts of a rolling history, each with only the updates it could have had.

    forecasts `[T, H, D, Q]`: the uncalibrated forecast issued at origin t (one step apart);
    observed `[T, H, D]`: the values they were for. Forecast t is calibrated with the offsets of the
    moment it is issued: at origin t the value of step t arrives first, which completes forecast t - H (it
    covered steps t - H + 1 .. t), so `cal` is updated with that one, then forecast t is calibrated.
    Returns `[T, H, D, Q]`.
    """
    forecasts = np.asarray(forecasts, np.float32)
    H = cal.shape[0]
    out = np.empty_like(forecasts)
    for t in range(len(forecasts)):
        if t >= H:
            cal.update(forecasts[t - H], observed[t - H])
        out[t] = cal.apply(forecasts[t])
    return out


def for_forecaster(fc, lr: float = DEFAULT_LR) -> OnlineCalibrator:
    """A fresh calibrator for a quantile `Forecaster` (its levels, horizon and scaler std)."""
    if fc.levels is None:
        raise DistiltsError(
            f"{fc.manifest.directory} is a point forecaster: online calibration adjusts quantile levels. "
            "Distil a quantile student (`distilts distill --quantiles deciles`) and compile that."
        )
    std = fc.manifest.scaler_std
    scale = np.ones(len(fc.columns)) if std is None else std
    return OnlineCalibrator(fc.levels, fc.horizon, scale, lr)
