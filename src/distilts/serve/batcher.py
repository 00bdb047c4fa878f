"""Run forecasts off the event loop, at most `workers` at once; optionally micro-batch waiting requests.

Micro-batching is greedy and adds no wait: while every worker is busy, requests queue up; a worker
that frees takes the queued requests, up to `max_batch` windows, as one `predict` call. With
micro-batching off each request is its own call. Requests are validated before they get here, so one
request can never make another fail.
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from distilts.runtime.forecaster import Forecaster


class Batcher:
    def __init__(self, fc: Forecaster, workers: int, max_batch: int, micro_batch: bool = True) -> None:
        self.fc = fc
        self.workers = max(1, workers)
        self.max_batch = max(1, max_batch)
        self.micro_batch = micro_batch
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="distilts-predict")
        self._queue: deque[tuple[np.ndarray, asyncio.Future]] = deque()
        self._busy = 0
        self.calls = 0  # predict calls made
        self.windows = 0  # windows forecast

    async def predict(self, x: np.ndarray) -> np.ndarray:
        """Forecast `x [B, L, D]` (already validated) -> `[B, H, D]`."""
        fut = asyncio.get_running_loop().create_future()
        self._queue.append((x, fut))
        self._dispatch()
        return await fut

    def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue and self._busy < self.workers:
            items = [self._queue.popleft()]
            rows = len(items[0][0])
            while self.micro_batch and self._queue and rows + len(self._queue[0][0]) <= self.max_batch:
                items.append(self._queue.popleft())
                rows += len(items[-1][0])
            self._busy += 1
            task = loop.run_in_executor(self._pool, self._run, [x for x, _ in items])
            task.add_done_callback(lambda t, items=items: self._done(t, items))

    def _run(self, xs: list[np.ndarray]) -> np.ndarray:
        x = xs[0] if len(xs) == 1 else np.concatenate(xs)
        return self.fc.predict(x)

    def _done(self, task: asyncio.Future, items: list[tuple[np.ndarray, asyncio.Future]]) -> None:
        self._busy -= 1
        self.calls += 1
        exc = task.exception()
        lo = 0
        for x, fut in items:
            if fut.cancelled():  # the client went away
                lo += len(x)
                continue
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(task.result()[lo:lo + len(x)])
                self.windows += len(x)
            lo += len(x)
        self._dispatch()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
