"""The small interface every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Session(ABC):
    """One loaded model file: maps float32 `[B, L, D]` raw values to `[B, H, D]` raw forecasts.

    `batch` is the fixed batch size the file was compiled for, or None when it takes any batch.
    Callers pass exactly `batch` rows to fixed-batch sessions (the Forecaster pads and chunks).
    """

    backend: str
    batch: int | None

    @abstractmethod
    def run(self, x: np.ndarray) -> np.ndarray:
        """Forecast for a contiguous float32 batch."""

    @property
    def version(self) -> str:
        """Version of the backend library, for reports."""
        return "?"
