"""Data stage: load a series, split it, scale it with train statistics, cut windows.

Names are imported lazily (PEP 562) so that `distilts --help`, which only needs the option choices,
does not import numpy.
"""

from __future__ import annotations

from distilts.data.policies import FILL_POLICIES
from distilts.data.split import SCHEMES
from distilts.lazy import lazy_names

_LAZY = {
    "DataSpec": "spec",
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


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
