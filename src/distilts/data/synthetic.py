"""A built-in synthetic multivariate series so every command runs with no files at hand.

Generated deterministically from a seed (never stored): hourly data with trend, daily and weekly
seasonality, noise, and variates that are correlated through a shared driver.
"""

from __future__ import annotations

import numpy as np

from distilts.data.series import TimeSeries

SYNTHETIC_COLUMNS = ["load", "temperature", "solar", "price"]


def synthetic_series(n_rows: int = 8760, seed: int = 0, start: str = "2024-01-01T00:00:00") -> TimeSeries:
    """One year (default) of hourly data with 4 correlated variates."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_rows, dtype=np.float64)
    daily = np.sin(2 * np.pi * t / 24)
    weekly = np.sin(2 * np.pi * t / (24 * 7))
    yearly = np.sin(2 * np.pi * t / (24 * 365))
    # a slowly wandering shared driver (AR(1)) correlates the variates
    driver = np.zeros(n_rows)
    eps = rng.normal(0, 0.1, n_rows)
    for i in range(1, n_rows):
        driver[i] = 0.98 * driver[i - 1] + eps[i]
    temperature = 12 + 8 * yearly + 4 * np.sin(2 * np.pi * (t - 6) / 24) + driver + rng.normal(0, 0.4, n_rows)
    load = 50 + 0.002 * t + 10 * daily + 4 * weekly - 0.8 * (temperature - 12) + 2 * driver + rng.normal(0, 1.0, n_rows)
    solar = np.clip(np.sin(2 * np.pi * (t - 6) / 24), 0, None) * (5 + 2 * yearly) + rng.normal(0, 0.2, n_rows)
    price = 30 + 0.4 * load - 1.5 * solar + rng.normal(0, 1.5, n_rows)
    values = np.stack([load, temperature, solar, price], axis=1).astype(np.float32)
    dates = np.datetime64(start, "s") + np.arange(n_rows) * np.timedelta64(3600, "s")
    return TimeSeries(values, list(SYNTHETIC_COLUMNS), dates, source=f"synthetic(seed={seed})")
