"""What every route of the server shares: the model holder, options, worker pool, admission control, the
error answers and the predict call (on the event loop when cheap, else on the pool behind the queue)."""

import asyncio
import functools
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from distilts.runtime.forecaster import Forecaster
from distilts.serve.admission import Admission, Rejected, run_before
from distilts.serve.models import INLINE_S, ModelHolder, Served
from distilts.serve.request import RequestError

VERSION_HEADER = "x-model-version"
NOT_FINITE = (
    "The forecast is not finite for this input: its values are far outside the range the model was "
    "trained on. Check the units and scale of the window."
)
Answer = tuple  # (status, body bytes, headers {lower-case name: value})


@dataclass(frozen=True)
class ServeOptions:
    max_batch: int = 256  # windows per request
    workers: int = 0  # predict calls at once; 0: the runtime's pool size
    max_queue: int = 64  # forecasts waiting for a worker; beyond: 503 + Retry-After
    deadline_s: float = 10.0  # a request still waiting for a worker after this long gets 503
    name: str = ""  # model name in the Open Inference Protocol (default: the artifact's or store's dir name)
    inline_s: float = INLINE_S  # requests estimated to take less predict time run on the event loop

    def body_limit(self, fc: Forecaster) -> int:
        """Largest accepted body: 32 bytes per value of a full batch (every input's), plus 64 KiB."""
        values = sum(int(np.prod(t)) for t in fc.manifest.input_tails.values())
        return self.max_batch * values * 32 + 65536


def model_summary(fc: Forecaster) -> dict:
    """What `GET /model` answers: the manifest's facts a client needs."""
    raw = fc.manifest.raw
    return {
        "backend": fc.backend,
        "precision": fc.manifest.precision,
        "lookback": fc.lookback,
        "horizon": fc.horizon,
        "columns": fc.columns,
        "freq_seconds": fc.manifest.freq_seconds,
        "student": {k: v for k, v in (raw.get("student") or {}).items() if k != "dir"},
        "target": fc.manifest.target,
        "verification": raw.get("verification"),
        "quantization": raw.get("quantization"),
        "created_by": raw.get("created_by"),
        "created_at": raw.get("created_at"),
        "batch_sizes": fc.batch_sizes,
        "quantiles": None if fc.levels is None else list(fc.levels),
        "runtime": {
            "threads": fc.threads,
            "mode": fc.mode,
            "workers": fc.settings.workers,
            "backend_version": next(iter(fc.sessions.values())).version,
        },
    }


@dataclass
class ServerContext:
    """The state the routes share (built once by create_app)."""

    holder: ModelHolder
    opts: ServeOptions
    pool: ThreadPoolExecutor
    adm: Admission
    name: str
    workers: int
    orjson: Any
    timings: dict = field(
        default_factory=lambda: {"parse_s": 0.0, "infer_s": 0.0, "encode_s": 0.0, "requests": 0, "windows": 0}
    )

    @property
    def first(self) -> Forecaster:
        return self.holder.current.fc

    def error(self, status: int, message: str, served: Served, endpoint: str, headers: dict | None = None) -> Answer:
        """An error answer (JSON {"error": message}), counted in /metrics."""
        self.adm.requests.labels(endpoint, str(status)).inc()
        return (
            status,
            self.orjson.dumps({"error": message}),
            {"content-type": "application/json", VERSION_HEADER: served.version, **(headers or {})},
        )

    def busy(self, exc: Rejected, served: Served, endpoint: str) -> Answer:
        """503 with Retry-After: the queue is full or the deadline passed."""
        return self.error(503, exc.message, served, endpoint, {"retry-after": self.adm.retry_after})

    async def predict(
        self,
        served: Served,
        x: np.ndarray,
        headers: Mapping[str, str],
        arrived: float,
        quantiles: bool = False,
        covariates: dict | None = None,
    ) -> np.ndarray:
        """The forecast of `x` (every level `[B, H, D, Q]` with `quantiles`; `covariates`: the keyword inputs of
        `Forecaster.predict`, past/future/static/timestamps): on the loop when cheap, else on the pool behind
        the bounded queue."""
        fn = served.fc.predict_quantiles if quantiles else served.fc.predict
        if covariates:
            fn = functools.partial(fn, **covariates)
        if len(x) * served.window_s <= self.opts.inline_s:  # a thread hop would cost more than the forecast
            return fn(x)
        adm = self.adm
        deadline = adm.deadline(headers.get("x-deadline-ms"), arrived)
        adm.admit()
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, run_before, deadline, fn, x)
        except Rejected as exc:
            adm.reject(exc.reason)
            raise
        finally:
            adm.done()


async def receive_body(receive, headers, limit: int) -> bytes:
    """The request body from the ASGI messages, refusing (413) anything over `limit` bytes before reading it all."""
    size = headers.get("content-length")
    too_big = RequestError(
        413,
        f"The body is over this server's limit of {limit} bytes (set by --max-batch); send fewer windows per request.",
    )
    if size is not None and size.isdigit() and int(size) > limit:
        raise too_big
    chunks, total = [], 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            break
        chunk = msg.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise too_big
        chunks.append(chunk)
        if not msg.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def response(answer: Answer):
    from fastapi.responses import Response

    status, body, headers = answer
    return Response(body, status_code=status, headers=headers)
