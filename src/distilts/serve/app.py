"""The FastAPI application: POST /forecast, the Open Inference Protocol (/v2/...), health, model, stats, metrics.

It serves `holder.current` (a plain artifact, or a model store's current version that is hot-reloaded:
models.py). Cheap forecasts run on the event loop, others on a pool of `workers` threads behind a
bounded queue (admission.py). Every answer names the version in the header X-Model-Version.
(No `from __future__ import annotations` here: FastAPI reads the handlers' annotations at runtime.)
"""

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from distilts.errors import require
from distilts.runtime.forecaster import Forecaster
from distilts.serve import oip
from distilts.serve.admission import Admission, Rejected, run_before
from distilts.serve.models import INLINE_S, ModelHolder, Served
from distilts.serve.request import RequestError, parse_request

VERSION_HEADER = "x-model-version"
NOT_FINITE = (
    "The forecast is not finite for this input: its values are far outside the range the model was "
    "trained on. Check the units and scale of the window."
)


@dataclass(frozen=True)
class ServeOptions:
    max_batch: int = 256  # windows per request
    workers: int = 0  # predict calls at once; 0: the runtime's pool size
    max_queue: int = 64  # forecasts waiting for a worker; beyond: 503 + Retry-After
    deadline_s: float = 10.0  # a request still waiting for a worker after this long gets 503
    name: str = ""  # model name in the Open Inference Protocol (default: the artifact's or store's dir name)
    inline_s: float = INLINE_S  # requests estimated to take less predict time run on the event loop

    def body_limit(self, fc: Forecaster) -> int:
        """Largest accepted body: 32 bytes per value of a full batch, plus 64 KiB."""
        return self.max_batch * fc.lookback * len(fc.columns) * 32 + 65536


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


def create_app(model: "Forecaster | ModelHolder", options: ServeOptions | None = None):
    """A FastAPI app serving `model`: a loaded Forecaster, or a ModelHolder (a store's current version)."""
    require("fastapi", "serve", "distilts serve")
    orjson = require("orjson", "serve", "distilts serve")
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from distilts import __version__
    from distilts.serve.schema import (
        ErrorBody,
        InferResponse,
        ModelMetadata,
        ServerMetadata,
        forecast_models,
        install_openapi,
    )

    holder = model if isinstance(model, ModelHolder) else ModelHolder.of(model)
    opts = options or ServeOptions()
    first = holder.current.fc
    workers = opts.workers or first.settings.workers
    pool = ThreadPoolExecutor(workers, thread_name_prefix="distilts-predict")
    adm = Admission(workers, opts.max_queue, opts.deadline_s)
    adm.set_version(None, holder.current.version)
    adm.count_reloads(holder.reloads)
    name = opts.name or holder.path.name
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(app):
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # only in the main thread
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, holder.reload, True))
        holder.watch(stop)
        yield
        stop.set()
        pool.shutdown(wait=True)  # graceful shutdown: uvicorn has drained the requests in flight

    def swapped(new: Served, old: Served) -> None:
        adm.set_version(old.version, new.version)
        app.openapi_schema = None  # the new version may have another shape

    holder.on_swap.append(swapped)

    app = FastAPI(
        title=f"distilts forecast server: {name}",
        version=__version__,
        lifespan=lifespan,
        description="Forecasts from a compiled distilts artifact: POST /forecast (JSON windows) or the "
        "Open Inference Protocol (KServe v2) under /v2. Every answer names the model "
        f"version in the header {VERSION_HEADER}.",
    )
    app.state.holder = holder
    app.state.admission = adm
    timings = app.state.timings = {"parse_s": 0.0, "infer_s": 0.0, "encode_s": 0.0, "requests": 0, "windows": 0}
    ok_forecast = adm.requests.labels("forecast", "200")
    ok_infer = adm.requests.labels("infer", "200")
    lat_forecast, lat_infer = adm.latency.labels("forecast"), adm.latency.labels("infer")

    def error(status: int, message: str, served: Served, endpoint: str, headers: dict | None = None) -> Answer:
        adm.requests.labels(endpoint, str(status)).inc()
        return (
            status,
            orjson.dumps({"error": message}),
            {"content-type": "application/json", VERSION_HEADER: served.version, **(headers or {})},
        )

    def busy(exc: Rejected, served: Served, endpoint: str) -> Answer:
        return error(503, exc.message, served, endpoint, {"retry-after": adm.retry_after})

    async def predict(
        served: Served, x: np.ndarray, headers: Mapping[str, str], arrived: float, quantiles: bool = False
    ) -> np.ndarray:
        """The forecast of `x` (every level `[B, H, D, Q]` with `quantiles`): on the loop when cheap, else on
        the pool behind the bounded queue."""
        fn = served.fc.predict_quantiles if quantiles else served.fc.predict
        if len(x) * served.window_s <= opts.inline_s:  # a thread hop would cost more than the forecast
            return fn(x)
        deadline = adm.deadline(headers.get("x-deadline-ms"), arrived)
        adm.admit()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, run_before, deadline, fn, x)
        except Rejected as exc:
            adm.reject(exc.reason)
            raise
        finally:
            adm.done()

    async def forecast(headers: Mapping[str, str], receive) -> Answer:
        """POST /forecast (see the route's documentation below)."""
        t0 = time.perf_counter()
        served = holder.current  # this request stays on this version to its end
        fc = served.fc
        try:
            body = await _receive_body(receive, headers, opts.body_limit(fc))
            req = parse_request(body, fc, opts.max_batch)
            t1 = time.perf_counter()
            levels = fc.levels  # a quantile model answers every level from one inference
            y = await predict(served, req.x, headers, t0, quantiles=levels is not None)
        except RequestError as exc:
            return error(exc.status, exc.message, served, "forecast")
        except Rejected as exc:
            return busy(exc, served, "forecast")
        t2 = time.perf_counter()
        if not np.isfinite(y).all():  # finite input, overflowing forecast: never send a partial answer
            return error(422, NOT_FINITE, served, "forecast")
        yq = None
        if levels is not None:
            yq, y = y, y[..., levels.index(0.5)]
        out: dict = {"columns": fc.columns, "forecast": np.ascontiguousarray(y[0] if req.single else y)}
        if yq is not None:
            out["quantiles"] = {
                "levels": list(levels or ()),
                "values": np.ascontiguousarray(yq[0] if req.single else yq),
            }
        if req.timestamps is not None:
            out["timestamps"] = req.timestamps[0] if req.single else req.timestamps
        # float32 values in their shortest form that reads back to the same float32
        text = orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY)
        t3 = time.perf_counter()
        timings["parse_s"] += t1 - t0
        timings["infer_s"] += t2 - t1
        timings["encode_s"] += t3 - t2
        timings["requests"] += 1
        timings["windows"] += len(req.x)
        ok_forecast.inc()
        lat_forecast.observe(t3 - t0)
        return 200, text, {"content-type": "application/json", VERSION_HEADER: served.version}

    async def forecast_route(request: Request) -> Response:
        """Body: {"window": [L][D]} or {"windows": [B][L][D]}, optional "columns", "last_timestamp",
        "step_seconds". Answers {"columns", "forecast" ([H][D] or [B][H][D]), "timestamps"?}; 4xx naming the
        problem; 503 with Retry-After when the queue is full or the deadline passed (X-Deadline-Ms)."""
        return _response(await forecast(request.headers, request.receive))

    app.add_api_route(
        "/forecast",
        forecast_route,
        methods=["POST"],
        summary="Forecast from raw windows",
        response_class=Response,
        responses={
            200: {"model": forecast_models(first, opts.max_batch)["ForecastAnswer"], "description": "The forecast"},
            **{s: {"model": ErrorBody} for s in (400, 413, 422, 503)},
        },
    )

    @app.get("/health")
    async def health() -> Response:
        """200 when the artifact still reproduces its golden forecast, 503 otherwise."""
        served = holder.current
        try:
            await asyncio.get_running_loop().run_in_executor(None, served.fc.self_check)
        except Exception as exc:
            return _response(error(503, f"self-check failed: {exc}", served, "health"))
        return JSONResponse(
            {
                "status": "ok",
                "self_check": "passed",
                "backend": served.fc.backend,
                "precision": served.fc.manifest.precision,
            },
            headers={VERSION_HEADER: served.version},
        )

    @app.get("/model")
    async def model_info() -> Response:
        served = holder.current
        return JSONResponse(
            {**model_summary(served.fc), "version": served.version}, headers={VERSION_HEADER: served.version}
        )

    @app.get("/stats")
    async def stats() -> Response:
        """Where the server's time went (seconds summed over /forecast answers), the queue and the reloads."""
        return JSONResponse(
            {
                **timings,
                "workers": workers,
                "max_queue": opts.max_queue,
                "queue_depth": max(0, adm.pending - workers),
                "rejected": adm.counts,
                "version": holder.current.version,
                "reloads": holder.reloads,
                "refused": holder.refused,
            }
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus text format."""
        return Response(generate_latest(adm.registry), media_type=CONTENT_TYPE_LATEST)

    # --- the Open Inference Protocol (KServe v2 REST) -----------------------------------------------------
    @app.get("/v2", response_model=ServerMetadata, tags=["Open Inference Protocol"])
    async def server_metadata() -> Response:
        return JSONResponse({"name": "distilts", "version": __version__, "extensions": ["binary_tensor_data"]})

    @app.get("/v2/health/live", tags=["Open Inference Protocol"])
    async def live() -> Response:
        return Response(status_code=200)

    @app.get("/v2/health/ready", tags=["Open Inference Protocol"])
    async def ready() -> Response:
        return Response(status_code=200)

    def resolve(model_name: str, version: str | None) -> Served:
        served = holder.current
        if model_name != name:
            raise RequestError(404, f"Unknown model {model_name!r}; this server serves {name!r}.")
        if version is not None and version != served.version:
            raise RequestError(404, f"Model {name!r} has no version {version!r}; it serves version {served.version!r}.")
        return served

    async def model_metadata(model_name: str, version: str | None = None) -> Response:
        try:
            served = resolve(model_name, version)
        except RequestError as exc:
            return _response(error(exc.status, exc.message, holder.current, "metadata"))
        return JSONResponse(oip.metadata(name, served.version, served.fc), headers={VERSION_HEADER: served.version})

    async def model_ready(model_name: str, version: str | None = None) -> Response:
        try:
            served = resolve(model_name, version)
        except RequestError as exc:
            return _response(error(exc.status, exc.message, holder.current, "ready"))
        return Response(status_code=200, headers={VERSION_HEADER: served.version})

    async def infer(headers: Mapping[str, str], receive, model_name: str, version: str | None = None) -> Answer:
        """KServe v2 inference: JSON tensors, or JSON + binary tensor data (Inference-Header-Content-Length)."""
        t0 = time.perf_counter()
        served = holder.current
        try:
            served = resolve(model_name, version)
            body = await _receive_body(receive, headers, opts.body_limit(served.fc))
            call = oip.parse_infer(body, headers.get(oip.HEADER), served.fc, opts.max_batch)
            y = await predict(served, call.x, headers, t0)
        except RequestError as exc:
            return error(400 if exc.status in (413, 422) else exc.status, exc.message, served, "infer")
        except Rejected as exc:
            return busy(exc, served, "infer")
        if not np.isfinite(y).all():
            return error(400, NOT_FINITE, served, "infer")
        text, out_headers = oip.encode_infer(name, served.version, call, {oip.OUTPUT: y})
        ok_infer.inc()
        lat_infer.observe(time.perf_counter() - t0)
        return 200, text, {**out_headers, VERSION_HEADER: served.version}

    async def infer_route(request: Request, model_name: str, version: str | None = None) -> Response:
        """KServe v2 inference: JSON tensors, or JSON + binary tensor data (Inference-Header-Content-Length)."""
        return _response(await infer(request.headers, request.receive, model_name, version))

    tag: dict[str, Any] = {"tags": ["Open Inference Protocol"]}
    errors: dict[int | str, dict[str, Any]] = {s: {"model": ErrorBody} for s in (400, 404, 503)}
    for prefix in ("/v2/models/{model_name}", "/v2/models/{model_name}/versions/{version}"):
        app.add_api_route(
            prefix,
            model_metadata,
            methods=["GET"],
            response_model=ModelMetadata,
            responses={404: {"model": ErrorBody}},
            **tag,
        )
        app.add_api_route(prefix + "/ready", model_ready, methods=["GET"], responses={404: {"model": ErrorBody}}, **tag)
        app.add_api_route(
            prefix + "/infer",
            infer_route,
            methods=["POST"],
            response_class=Response,
            responses={200: {"model": InferResponse}, **errors},
            **tag,
        )

    # the two hot paths skip FastAPI's routing and request objects (the routes above document them)
    fast = {"/forecast": forecast, f"/v2/models/{name}/infer": lambda h, r: infer(h, r, name)}
    app.add_middleware(FastPaths, routes=fast)
    install_openapi(
        app,
        forecast_models(first, opts.max_batch),
        {
            ("/forecast", "post"): "ForecastRequest",
            ("/v2/models/{model_name}/infer", "post"): "InferRequest",
            ("/v2/models/{model_name}/versions/{version}/infer", "post"): "InferRequest",
        },
        lambda: {"model_name": name, "version": holder.current.version},
    )
    return app


Answer = tuple  # (status, body bytes, headers {lower-case name: value})


def _response(answer: Answer):
    from fastapi.responses import Response

    status, body, headers = answer
    return Response(body, status_code=status, headers=headers)


class FastPaths:
    """ASGI middleware answering POST on a few exact paths straight from the ASGI messages (no routing,
    request or response objects); everything else goes on to the app."""

    def __init__(self, app, routes: dict) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope, receive, send) -> None:
        handler = self.routes.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if handler is None:
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        status, body, out = await handler(headers, receive)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-length", str(len(body)).encode()),
                    *((k.encode(), v.encode()) for k, v in out.items()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _receive_body(receive, headers, limit: int) -> bytes:
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


ENV = "DISTILTS_SERVE_CONFIG"  # how `distilts serve --processes N` passes its settings to each process


def app_from_config(config: dict):
    """Load the artifact or store of `config` (path, threads, mode and ServeOptions fields) and build its app."""
    holder = ModelHolder(config["path"], threads=config.get("threads"), mode=config.get("mode"))
    fields = ("max_batch", "workers", "max_queue", "deadline_s", "name")
    return create_app(holder, ServeOptions(**{k: config[k] for k in fields if config.get(k) is not None}))


def app_from_env():
    """uvicorn factory for server processes: the config `distilts serve` put in $DISTILTS_SERVE_CONFIG."""
    import json
    import os

    return app_from_config(json.loads(os.environ[ENV]))
