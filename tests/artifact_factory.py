"""Artifacts for the runtime tests: real `distilts compile` output (see compiled_factory), one per backend."""

from __future__ import annotations

import shutil
from pathlib import Path

from compiled_factory import HORIZON, LOOKBACK, compiled

__all__ = ["HORIZON", "LOOKBACK", "artifact", "copy_artifact"]
SPECS = {"onnx": (), "openvino": (), "tflite": (1, 4)}


def artifact(tmp_path_factory, backend: str) -> Path:
    """One fp32 DLinear artifact per backend per test session (TFLite: files for batch 1 and 4)."""
    return compiled(tmp_path_factory, backend, batches=SPECS[backend])


def copy_artifact(src: Path, dst: Path) -> Path:
    """A private copy to tamper with."""
    return Path(shutil.copytree(src, dst))
