"""The runtime stage: what ships to the device.

Imports numpy and, lazily, the one backend an artifact needs (onnxruntime, openvino or
ai_edge_litert). Never torch, transformers, pandas or distilts.compile. Names load on first use
(PEP 562), so `distilts --help` imports no numpy.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"Forecaster": "forecaster", "plan_chunks": "batching", "Manifest": "manifest", "read_manifest": "manifest"}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"distilts.runtime.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'distilts.runtime' has no attribute {name!r}")
