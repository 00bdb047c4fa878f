"""The one timing module: how distilts measures how long a call takes.

Every figure of speed (`distilts profile`, the benchmark harness, compile's int8 candidate choice, the
coming search) comes from here, measured one way:
- warm-up calls first, untimed (first calls allocate, compile kernels, fill caches);
- `per_call`: one sample per call (latency percentiles: p50/p95/p99), bounded by a time budget;
- `interleaved`: several callables measured in rounds, each round calling every one of them in turn
  (rotating who goes first), so a change of machine load or clock speed during the run falls on all
  of them alike; each sample is the mean of `number` calls (autoranged to >= `min_sample_s`);
- the median of the samples is the figure, and the spread is reported with it (interquartile range
  relative to the median, min, max, n), so a reader can tell a real difference from noise;
- `threads(n)` caps numpy's BLAS/OpenMP pools (threadpoolctl when installed) for a reference computed
  in numpy; a backend's own threads are set when its session is opened (Forecaster.load(threads=...)).

Pure Python + numpy: the runtime side (profile workers, compile, benchmarks) imports it without torch.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Timing:
    """Samples of one callable, in milliseconds per call."""

    samples_ms: tuple[float, ...]
    warmup: int
    number: int = 1  # calls averaged into one sample
    threads: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.samples_ms)

    def percentile(self, q: float) -> float:
        return float(np.percentile(np.asarray(self.samples_ms, np.float64), q))

    @property
    def median_ms(self) -> float:
        return self.percentile(50)

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median (0.05 = the middle half of the samples within 5%)."""
        med = self.median_ms
        return (self.percentile(75) - self.percentile(25)) / med if med > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """The record every consumer writes: median, spread, percentiles, min/max/mean, n, settings."""
        a = np.asarray(self.samples_ms, np.float64)
        return {
            "median_ms": self.median_ms,
            "iqr_rel": self.spread,
            "p50": self.median_ms,
            "p95": self.percentile(95),
            "p99": self.percentile(99),
            "mean": float(a.mean()),
            "min": float(a.min()),
            "max": float(a.max()),
            "n": self.n,
            "number": self.number,
            "warmup": self.warmup,
            "threads": self.threads,
            **self.extra,
        }


def per_call(
    fn: Callable[[], object],
    *,
    warmup: int = 10,
    iters: int = 200,
    budget_s: float = 10.0,
    min_iters: int = 5,
    threads: int | None = None,
) -> Timing:
    """One sample per call of `fn` after `warmup` untimed calls; stops at `iters` or after `budget_s`
    (keeping at least `min_iters`)."""
    for _ in range(warmup):
        fn()
    ms: list[float] = []
    start = time.perf_counter()
    for _ in range(iters):
        t = time.perf_counter_ns()
        fn()
        ms.append((time.perf_counter_ns() - t) / 1e6)
        if len(ms) >= min_iters and time.perf_counter() - start > budget_s:
            break
    return Timing(tuple(ms), warmup, 1, threads)


def autorange(fn: Callable[[], object], min_sample_s: float = 0.02, max_number: int = 100_000) -> int:
    """Calls per sample so that one sample takes at least `min_sample_s` (1, 2, 5, 10, 20, ...)."""
    number = 1
    while number < max_number:
        for step in (1, 2, 5):
            n = number * step
            t = time.perf_counter()
            for _ in range(n):
                fn()
            if time.perf_counter() - t >= min_sample_s:
                return n
        number *= 10
    return max_number


def interleaved(
    fns: dict[str, Callable[[], object]],
    *,
    warmup: int = 3,
    rounds: int = 15,
    min_sample_s: float = 0.02,
    budget_s: float = 30.0,
    threads: int | None = None,
) -> dict[str, Timing]:
    """Time several callables in interleaved rounds (see the module docstring); {name: Timing}.

    Each callable's `number` (calls per sample) is autoranged once after its warm-up; the rounds stop
    after `rounds` or when `budget_s` is spent (at least 3 rounds).
    """
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    numbers = {name: autorange(fns[name], min_sample_s) for name in names}
    samples: dict[str, list[float]] = {name: [] for name in names}
    start = time.perf_counter()
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            fn, number = fns[name], numbers[name]
            t = time.perf_counter_ns()
            for _ in range(number):
                fn()
            samples[name].append((time.perf_counter_ns() - t) / 1e6 / number)
        if r >= 2 and time.perf_counter() - start > budget_s:
            break
    return {name: Timing(tuple(samples[name]), warmup, numbers[name], threads) for name in names}


def throughput(fn: Callable[[], object], batch: int, *, budget_s: float = 2.0, min_calls: int = 3) -> dict[str, Any]:
    """Windows per second when each call forecasts `batch` windows (one warm-up call)."""
    fn()
    reps, start = 0, time.perf_counter()
    while True:
        fn()
        reps += 1
        elapsed = time.perf_counter() - start
        if (reps >= min_calls and elapsed > min(0.5, budget_s)) or elapsed > budget_s:
            break
    return {
        "batch": int(batch),
        "windows_per_s": batch * reps / elapsed,
        "ms_per_batch": 1000 * elapsed / reps,
        "calls": reps,
    }


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Cap numpy's BLAS/OpenMP thread pools at `n` inside the block (no-op for None or without threadpoolctl)."""
    if n is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits  # optional: numpy alone has no thread control
    except ImportError:
        yield
        return
    with threadpool_limits(limits=int(n)):
        yield
