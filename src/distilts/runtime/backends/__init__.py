"""Inference backends. Each lives in its own module and imports its library only when opened."""

from __future__ import annotations

import importlib
from pathlib import Path

from distilts.runtime.backends.base import MODES, RunSettings, Session

# backend name -> (module, pip extra)
BACKENDS: dict[str, tuple[str, str]] = {
    "onnx": ("distilts.runtime.backends.onnx", "onnx"),
    "openvino": ("distilts.runtime.backends.openvino", "openvino"),
    "tflite": ("distilts.runtime.backends.tflite", "tflite"),
}

__all__ = ["BACKENDS", "MODES", "RunSettings", "Session", "open_session"]


def open_session(backend: str, path: str | Path, *, batch: int | None, input_name: str, output_name: str,
                 threads: int | None = None, mode: str = "latency",
                 settings: RunSettings | None = None) -> Session:
    """Load one model file with `backend` (raises MissingExtraError if its library is missing).

    `settings` (or `threads` per call, default 1, and `mode`) say how it runs; see docs/runtime.md.
    """
    settings = settings or RunSettings(threads=int(threads or 1), mode=mode)
    module = importlib.import_module(BACKENDS[backend][0])
    return module.open_session(Path(path), batch=batch, input_name=input_name, output_name=output_name,
                               settings=settings)
