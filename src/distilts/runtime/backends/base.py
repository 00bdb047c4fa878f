"""The small interface every backend implements, and the worker pool that makes them thread-safe."""

from __future__ import annotations

import os
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:  # annotations only: `distilts --help` (targets read MODES) imports no numpy
    import numpy as np

# how the runtime sets up its session (docs/runtime.md, "Settings"): latency = batch-1 calls answered as
# fast as possible; throughput = large batches, parallel streams/requests
MODES: tuple[str, ...] = ("latency", "throughput")
W = TypeVar("W")


def cpu_count() -> int:
    """CPUs this process may run on (affinity / cgroup-restricted where the OS says so)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class RunSettings:
    """How a backend runs: `threads` per inference call, `mode` latency | throughput, at most
    `workers` calls at once (one interpreter / infer request each; onnxruntime shares one session)."""

    threads: int = 1
    mode: str = "latency"
    workers: int = 0  # 0: cpu_count() // threads

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, not {self.threads}")
        if self.workers <= 0:
            object.__setattr__(self, "workers", max(1, cpu_count() // self.threads))


class Pool(Generic[W]):
    """Workers that are not thread-safe (a LiteRT interpreter, an OpenVINO infer request), lent to one
    thread at a time: `w = pool.get()` ... `pool.put(w)`. Created on first need up to `size`; callers
    beyond that wait for a free one. The fast path is one C-level queue get and put (~1 us)."""

    def __init__(self, make: Callable[[], W], size: int, first: W | None = None) -> None:
        self._make = make
        self.size = max(1, size)
        self._idle: queue.SimpleQueue[W] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.created = 0
        if first is not None:
            self._idle.put(first)
            self.created = 1

    def get(self) -> W:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            grow = self.created < self.size
            self.created += grow
        return self._make() if grow else self._idle.get()

    def put(self, worker: W) -> None:
        self._idle.put(worker)


class Session(ABC):
    """One loaded model file: maps float32 `[B, L, D]` raw values to `[B, H, D]` raw forecasts.

    `batch` is the fixed batch size the file was compiled for, or None when it takes any batch.
    Callers pass exactly `batch` rows to fixed-batch sessions (the Forecaster pads and chunks).
    `run` is safe to call from many threads at once; it returns an array the caller owns.
    """

    backend: str
    batch: int | None
    settings: RunSettings

    @abstractmethod
    def run(self, x: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        """Forecast for a contiguous float32 batch, or named float32 inputs (thread-safe)."""

    @property
    def version(self) -> str:
        """Version of the backend library, for reports."""
        return "?"
