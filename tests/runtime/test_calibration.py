"""Online interval calibration (conformal quantile tracker): coverage comes back after a shift, the frozen
interval stays off; state round-trips; bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest

from distilts.errors import DataError
from distilts.runtime.calibration import OnlineCalibrator, replay

LEVELS = (0.1, 0.5, 0.9)
Z90 = 1.2815515655446004  # standard normal 0.9 quantile
H, L = 4, 24
SHIFT, T = 300, 1500  # the level and noise shift at origin SHIFT; T origins in all
RECOVERY_STEPS = 300  # documented (docs/runtime.md): coverage back within 5 points this many origins after the shift


def shifted_history(seed: int = 0):
    """A noisy sine whose level jumps by 3 sigma and whose noise grows 2.5x at SHIFT, and the forecasts of a
    model calibrated before it: median = the sine + the window's mean offset, levels +- z sigma_0."""
    rng = np.random.default_rng(seed)
    n = T + L + H
    t = np.arange(n)
    signal = np.sin(2 * np.pi * t / 24)
    sigma = np.where(t < SHIFT + L, 1.0, 2.5) * 0.3
    level = np.where(t < SHIFT + L, 0.0, 0.9)
    y = (signal + level + rng.normal(size=n) * sigma).astype(np.float32)
    fc, obs = [], []
    for o in range(L, L + T):  # origin o: the window y[o-L:o], forecasting y[o:o+H]
        offset = float(np.mean(y[o - L : o] - signal[o - L : o]))
        med = signal[o : o + H] + offset
        fc.append(np.stack([med - Z90 * 0.3, med, med + Z90 * 0.3], axis=-1)[:, None, :])  # [H, 1, Q]
        obs.append(y[o : o + H, None])
    return np.asarray(fc, np.float32), np.asarray(obs, np.float32)


def coverage(q: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((y >= q[..., 0]) & (y <= q[..., -1])))


def test_online_step_brings_80pct_coverage_back_after_a_shift_frozen_stays_off():
    fc, obs = shifted_history()
    cal = OnlineCalibrator(LEVELS, H, [0.3])
    online = replay(cal, fc, obs)
    before = slice(100, SHIFT)
    after = slice(SHIFT + RECOVERY_STEPS, T)
    assert abs(coverage(fc[before], obs[before]) - 0.8) < 0.05  # the model was calibrated before the shift
    assert abs(coverage(fc[after], obs[after]) - 0.8) > 0.25  # frozen: far off after it (about 0.44)
    assert abs(coverage(online[after], obs[after]) - 0.8) <= 0.05
    assert np.all(np.diff(online, axis=-1) >= 0) and cal.updates == T - H


def test_state_round_trips_and_continues_identically(tmp_path):
    fc, obs = shifted_history(1)
    a = OnlineCalibrator(LEVELS, H, [0.3], lr=0.1)
    for f, y in zip(fc[:50], obs[:50], strict=True):
        a.update(f, y)
    b = OnlineCalibrator.load(a.save(tmp_path / "cal.json"))
    for f, y in zip(fc[50:80], obs[50:80], strict=True):
        a.update(f, y)
        b.update(f, y)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    assert b.updates == a.updates == 80 and b.lr == 0.1


def test_nan_observations_are_skipped():
    cal = OnlineCalibrator(LEVELS, H, [1.0])
    f = np.zeros((H, 1, 3), np.float32)
    y = np.full((H, 1), np.nan, np.float32)
    y[0] = 5.0  # above every level: each offset of step 0 rises by lr * tau
    cal.update(f, y)
    np.testing.assert_allclose(cal.offsets[0, 0], np.float32(0.05) * np.asarray(LEVELS, np.float32))
    assert not cal.offsets[1:].any()


def test_bad_input_is_refused(tmp_path):
    cal = OnlineCalibrator(LEVELS, H, [1.0])
    with pytest.raises(DataError, match="expected"):
        cal.update(np.zeros((H + 1, 1, 3)), np.zeros((H + 1, 1)))
    (tmp_path / "x.json").write_text('{"format": "other"}')
    with pytest.raises(DataError, match="not an online calibration state"):
        OnlineCalibrator.load(tmp_path / "x.json")
