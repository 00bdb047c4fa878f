"""The runtime stage: what ships to the device.

Imports numpy and, lazily, the one backend an artifact needs (onnxruntime, openvino or
ai_edge_litert). Never torch, transformers, pandas or distilts.compile. Names load on first use
(PEP 562), so `distilts --help` imports no numpy.
"""

from __future__ import annotations

from distilts.lazy import lazy_names

_LAZY = {"Forecaster": "forecaster", "plan_chunks": "batching", "Manifest": "manifest", "read_manifest": "manifest"}
__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
