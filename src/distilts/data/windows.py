"""Sliding (lookback, horizon) windows over a series, as views: nothing is copied until a batch."""

from __future__ import annotations

from typing import Any

import numpy as np

from distilts.errors import DataError


class Windows:
    """Windows whose forecast targets start at rows `starts` (each needs `lookback` rows before it).

    x[i] = values[s - lookback : s], y[i] = values[s : s + horizon] for s = starts[i].
    """

    def __init__(self, values: np.ndarray, starts: np.ndarray, lookback: int, horizon: int) -> None:
        self.values = values
        self.starts = np.asarray(starts, dtype=np.int64)
        self.lookback = lookback
        self.horizon = horizon
        self.covariates: Any = None  # data.covariates.Covariates: the blocks `covariate_batch` cuts
        # [N - L - H + 1, L + H, D] view of the whole series
        self._view = np.lib.stride_tricks.sliding_window_view(values, lookback + horizon, axis=0).swapaxes(1, 2)

    def __len__(self) -> int:
        return int(self.starts.size)

    def batch(self, index: np.ndarray | slice | list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Copy out x `[B, L, D]` and y `[B, H, D]` for the given window indices."""
        w = self._view[self.starts[index] - self.lookback]
        return np.ascontiguousarray(w[:, : self.lookback]), np.ascontiguousarray(w[:, self.lookback :])

    def covariate_batch(self, index) -> dict[str, np.ndarray]:
        """The covariate blocks of the windows `index` (normalized): past `[B, L, P]`, future `[B, L + H, F]`,
        static `[B, S]`, only the present ones; {} without covariates."""
        if self.covariates is None:
            return {}
        s = np.atleast_1d(self.starts[index])
        return self.covariates.batch(s, np.zeros(len(s), np.int64), self.lookback, self.horizon)

    def inputs(self, index=slice(None)) -> np.ndarray:
        return self.batch(index)[0]

    def targets(self, index=slice(None)) -> np.ndarray:
        return self.batch(index)[1]

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.batch([i])
        return x[0], y[0]

    def iter_batches(self, batch_size: int):
        for lo in range(0, len(self), batch_size):
            idx = np.arange(lo, min(lo + batch_size, len(self)))
            yield idx, *self.batch(idx)


def make_windows(
    values: np.ndarray, part: tuple[int, int], lookback: int, horizon: int, stride: int = 1, label: str = "series"
) -> Windows:
    """Windows whose targets lie inside rows `part`; the lookback may reach before it."""
    if lookback < 1 or horizon < 1:
        raise DataError(f"lookback and horizon must be positive (got {lookback}, {horizon}).")
    lo, hi = part
    first = max(lo, lookback)
    last = hi - horizon  # inclusive start of the last target window
    if last < first:
        raise DataError(
            f"{label}: too short for lookback {lookback} + horizon {horizon}: rows {lo}..{hi} give no "
            f"complete window (needs at least {lookback + horizon} rows of history and {horizon} "
            "target rows). Use a smaller --lookback/--horizon or a longer series."
        )
    starts = np.arange(first, last + 1, max(1, stride))
    return Windows(values, starts, lookback, horizon)
