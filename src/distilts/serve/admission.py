"""Backpressure and counters: a bounded wait queue in front of the predict workers, a deadline per
request, and the Prometheus metrics (`GET /metrics`) and JSON counters (`GET /stats`) that count them.

All bookkeeping runs on the event loop thread (no locks); a forecast that waits for a worker checks its
deadline in the worker just before it starts, so expired requests never reach the model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Rejected(Exception):
    """Refused with 503 + Retry-After: the queue is full, or the deadline passed before a worker was free."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Admission:
    """At most `workers` forecasts run and `max_queue` wait; more get an immediate 503."""

    workers: int
    max_queue: int
    deadline_s: float
    pending: int = 0  # submitted to the pool and not finished (running + waiting)
    counts: dict = field(default_factory=lambda: {"queue_full": 0, "deadline": 0})  # rejected, by reason
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "distilts_requests", "Answered requests by endpoint and HTTP status.", ["endpoint", "status"], registry=r
        )
        self.rejected = Counter(
            "distilts_rejected",
            "Requests answered 503 without a forecast: queue_full or deadline.",
            ["reason"],
            registry=r,
        )
        self.latency = Histogram(
            "distilts_request_seconds",
            "Time from the request's arrival to its answer (forecast endpoints, 200s).",
            ["endpoint"],
            registry=r,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.windows = Counter("distilts_windows", "Windows forecast.", registry=r)
        self.queue = Gauge("distilts_queue_depth", "Forecasts waiting for a worker.", registry=r)
        self.queue.set_function(lambda: max(0, self.pending - self.workers))
        self.version = Gauge(
            "distilts_model_version_info", "The version being served (value 1).", ["version"], registry=r
        )
        self._retry = str(max(1, round(self.deadline_s / 4)))

    @property
    def retry_after(self) -> str:
        return self._retry

    def admit(self) -> None:
        """Take a place in the queue or raise Rejected (queue full)."""
        if self.pending >= self.workers + self.max_queue:
            self.reject("queue_full")
            raise Rejected(
                "queue_full",
                f"The server is at capacity ({self.workers} forecasts running, "
                f"{self.max_queue} waiting: --max-queue); retry after the Retry-After "
                "seconds or send to another replica.",
            )
        self.pending += 1

    def done(self) -> None:
        self.pending -= 1

    def deadline(self, header: str | None, arrived: float) -> float:
        """The request's deadline (perf_counter time): the server's, or a shorter one asked in the header
        X-Deadline-Ms."""
        limit = self.deadline_s
        if header is not None:
            try:
                limit = min(limit, max(0.0, float(header) / 1000))
            except ValueError:
                pass
        return arrived + limit

    def count_reloads(self, reloads: dict) -> None:
        """Export `reloads` ({"loaded": n, "refused": n}, kept by the model holder) as distilts_reloads_total."""
        from prometheus_client.core import CounterMetricFamily

        class Reloads:
            def collect(self):
                c = CounterMetricFamily(
                    "distilts_reloads", "Reloads of the store's current version, by result.", labels=["result"]
                )
                for result, n in reloads.items():
                    c.add_metric([result], n)
                yield c

        self.registry.register(Reloads())

    def reject(self, reason: str) -> None:
        """Count a 503 for `reason` (queue_full or deadline)."""
        self.counts[reason] += 1
        self.rejected.labels(reason).inc()

    def set_version(self, old: str | None, new: str) -> None:
        if old is not None:
            self.version.remove(old)
        self.version.labels(new).set(1)


def run_before(deadline: float, fn, *args):
    """In a worker: run `fn(*args)` unless the deadline passed while the request waited for this worker."""
    if time.perf_counter() > deadline:
        raise Rejected(
            "deadline",
            "The request's deadline passed while it waited for a free worker; retry after "
            "the Retry-After seconds or with a later X-Deadline-Ms.",
        )
    return fn(*args)
