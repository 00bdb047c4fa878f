"""The one interface every teacher family implements."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class TeacherOutput:
    forecast: np.ndarray  # [B, H, D] float32, same scale as the input windows
    hidden: np.ndarray | None = None  # [B, D, T_tokens, d_model] float32, or None


class Teacher(ABC):
    """A frozen forecaster. Channel-independent: each of the D variates is forecast on its own."""

    name: str  # family name in the registry, e.g. "timemoe"
    path: str  # hub id or local directory it was loaded from
    checkpoint_hash: str  # sha256 over the weight files (keys the cache)
    d_model: int  # width of the hidden states

    @abstractmethod
    def predict(self, x: np.ndarray, horizon: int, hidden: bool = False) -> TeacherOutput:
        """Forecast `horizon` steps after each window of `x` `[B, L, D]`; optionally hidden states."""

    def check_window(self, lookback: int, horizon: int) -> None:
        """Raise a DistiltsError naming the fix when this teacher cannot take such windows."""

    def hidden_tokens(self, lookback: int) -> int:
        """Number of hidden-state tokens for a window of `lookback` steps (one per step by default)."""
        return lookback

    @property
    def info(self) -> dict:
        return {"name": self.name, "path": str(self.path), "checkpoint_sha256": self.checkpoint_hash,
                "d_model": int(self.d_model)}


def hash_weight_files(directory: str | Path, patterns: tuple[str, ...] = ("*.safetensors", "config.json")) -> str:
    """sha256 over the named files of a checkpoint directory (names and bytes, sorted)."""
    directory = Path(directory)
    h = hashlib.sha256()
    files = sorted({p for pat in patterns for p in directory.glob(pat)})
    for p in files:
        h.update(p.name.encode())
        with open(p, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    return h.hexdigest()


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when available else 'cpu'."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        from distilts.errors import DistiltsError

        raise DistiltsError("--device cuda was asked for but no CUDA device is available. Use --device cpu or auto.")
    return device
