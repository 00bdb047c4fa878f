"""Data stage: load a series, split it, scale it with train statistics, cut windows.

Names are imported lazily (PEP 562) so that `distilts --help`, which only needs the option choices,
does not import numpy.
"""

from __future__ import annotations

import importlib
from typing import Any

from distilts.data.policies import FILL_POLICIES
from distilts.data.split import SCHEMES

_LAZY = {
    "Dataset": "dataset",
    "load_dataset": "dataset",
    "Scaler": "scaler",
    "TimeSeries": "series",
    "fill_missing": "series",
    "load_series": "series",
    "Split": "split",
    "standard_split": "split",
    "synthetic_series": "synthetic",
    "Windows": "windows",
    "make_windows": "windows",
}

__all__ = ["FILL_POLICIES", "SCHEMES", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"distilts.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'distilts.data' has no attribute {name!r}")
