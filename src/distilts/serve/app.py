"""The FastAPI application serving one loaded, self-checked `Forecaster`.

(No `from __future__ import annotations` here: FastAPI reads the handlers' annotations at runtime.)
"""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

import numpy as np

from distilts.errors import require
from distilts.runtime.forecaster import Forecaster
from distilts.serve.request import RequestError, parse_request


@dataclass(frozen=True)
class ServeOptions:
    max_batch: int = 256  # windows per request
    workers: int = 0  # predict calls at once; 0: the runtime's pool size

    def body_limit(self, fc: Forecaster) -> int:
        """Largest accepted body: 32 bytes per value of a full batch, plus 64 KiB."""
        return self.max_batch * fc.lookback * len(fc.columns) * 32 + 65536


def model_summary(fc: Forecaster) -> dict:
    """What `GET /model` answers: the manifest's facts a client needs."""
    raw = fc.manifest.raw
    return {"backend": fc.backend, "precision": fc.manifest.precision, "lookback": fc.lookback,
            "horizon": fc.horizon, "columns": fc.columns, "freq_seconds": fc.manifest.freq_seconds,
            "student": {k: v for k, v in (raw.get("student") or {}).items() if k != "dir"}, "target": fc.manifest.target, "verification": raw.get("verification"),
            "quantization": raw.get("quantization"), "created_by": raw.get("created_by"),
            "created_at": raw.get("created_at"), "batch_sizes": fc.batch_sizes,
            "runtime": {"threads": fc.threads, "mode": fc.mode, "workers": fc.settings.workers,
                        "backend_version": next(iter(fc.sessions.values())).version}}


def create_app(fc: Forecaster, options: ServeOptions | None = None):
    """A FastAPI app for `fc` (POST /forecast, GET /health, GET /model)."""
    require("fastapi", "serve", "distilts serve")
    orjson = require("orjson", "serve", "distilts serve")
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response

    opts = options or ServeOptions()
    workers = opts.workers or fc.settings.workers
    # forecasts run off the event loop, at most `workers` at once (the runtime's pool size); requests
    # beyond that queue here. (Micro-batching queued requests was measured and did not help: RESULTS.md.)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="distilts-predict")
    limit = opts.body_limit(fc)

    @asynccontextmanager
    async def lifespan(app):
        yield
        pool.shutdown(wait=True)  # graceful shutdown: uvicorn has drained the requests in flight

    from distilts import __version__

    app = FastAPI(title=f"distilts forecast server: {fc.manifest.directory.name}", version=__version__,
                  lifespan=lifespan)
    app.state.forecaster = fc
    app.state.timings = {"parse_s": 0.0, "infer_s": 0.0, "encode_s": 0.0, "requests": 0, "windows": 0}

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.post("/forecast")
    async def forecast(request: Request) -> Response:
        """Body: {"window": [L][D]} or {"windows": [B][L][D]}, optional "columns", "last_timestamp",
        "step_seconds". Answers {"columns", "forecast" ([H][D] or [B][H][D]), "timestamps"?}."""
        t0 = time.perf_counter()
        try:
            body = await _read_body(request, limit)
            req = parse_request(body, fc, opts.max_batch)
        except RequestError as exc:
            return error(exc.status, exc.message)
        t1 = time.perf_counter()
        y = await asyncio.get_running_loop().run_in_executor(pool, fc.predict, req.x)
        t2 = time.perf_counter()
        if not np.isfinite(y).all():  # finite input, overflowing forecast: never send a partial answer
            return error(422, "The forecast is not finite for this input: its values are far outside the range "
                              "the model was trained on. Check the units and scale of the window.")
        out: dict = {"columns": fc.columns, "forecast": np.ascontiguousarray(y[0] if req.single else y)}
        if req.timestamps is not None:
            out["timestamps"] = req.timestamps[0] if req.single else req.timestamps
        # float32 values in their shortest form that reads back to the same float32
        text = orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY)
        t3 = time.perf_counter()
        tm = app.state.timings
        tm["parse_s"] += t1 - t0
        tm["infer_s"] += t2 - t1
        tm["encode_s"] += t3 - t2
        tm["requests"] += 1
        tm["windows"] += len(req.x)
        return Response(text, media_type="application/json")

    @app.get("/health")
    async def health() -> Response:
        """200 when the artifact still reproduces its golden forecast, 503 otherwise."""
        try:
            await asyncio.get_running_loop().run_in_executor(None, fc.self_check)
        except Exception as exc:  # noqa: BLE001 - any failure means: do not send traffic here
            return error(503, f"self-check failed: {exc}")
        return JSONResponse({"status": "ok", "self_check": "passed", "backend": fc.backend,
                             "precision": fc.manifest.precision})

    @app.get("/model")
    async def model() -> Response:
        return JSONResponse(model_summary(fc))

    @app.get("/stats")
    async def stats() -> Response:
        """Where the server's time went (seconds summed over the requests answered)."""
        return JSONResponse({**app.state.timings, "workers": workers})

    return app


async def _read_body(request, limit: int) -> bytes:
    """The request body, refusing (413) anything over `limit` bytes before reading it all."""
    size = request.headers.get("content-length")
    too_big = RequestError(413, f"The body is over this server's limit of {limit} bytes (set by --max-batch); "
                                "send fewer windows per request.")
    if size is not None and size.isdigit() and int(size) > limit:
        raise too_big
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


ENV = "DISTILTS_SERVE_CONFIG"  # how `distilts serve --processes N` passes its settings to each process


def app_from_config(config: dict):
    """Load the artifact of `config` (artifact_dir, threads, mode, max_batch) and build its app."""
    fc = Forecaster.load(config["artifact_dir"], threads=config.get("threads"), mode=config.get("mode"))
    return create_app(fc, ServeOptions(max_batch=config.get("max_batch", 256)))


def app_from_env():
    """uvicorn factory for server processes: the config `distilts serve` put in $DISTILTS_SERVE_CONFIG."""
    import json
    import os

    return app_from_config(json.loads(os.environ[ENV]))

