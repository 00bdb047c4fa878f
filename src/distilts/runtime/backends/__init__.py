"""Inference backends. Each lives in its own module and imports its library only when opened."""

from __future__ import annotations

import importlib
from pathlib import Path

from distilts.runtime.backends.base import Session

# backend name -> (module, pip extra)
BACKENDS: dict[str, tuple[str, str]] = {
    "onnx": ("distilts.runtime.backends.onnx", "onnx"),
    "openvino": ("distilts.runtime.backends.openvino", "openvino"),
    "tflite": ("distilts.runtime.backends.tflite", "tflite"),
}

__all__ = ["BACKENDS", "Session", "open_session"]


def open_session(backend: str, path: str | Path, *, batch: int | None, input_name: str, output_name: str,
                 threads: int | None = None) -> Session:
    """Load one model file with `backend` (raises MissingExtraError if its library is missing)."""
    module = importlib.import_module(BACKENDS[backend][0])
    return module.open_session(Path(path), batch=batch, input_name=input_name, output_name=output_name,
                               threads=threads)
