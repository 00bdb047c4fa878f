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
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from distilts.errors import require
from distilts.runtime.forecaster import Forecaster
from distilts.serve.admission import Admission
from distilts.serve.context import (  # noqa: F401 - ServeOptions, model_summary: part of this module's API
    VERSION_HEADER,
    ServeOptions,
    ServerContext,
    model_summary,
)
from distilts.serve.models import ModelHolder, Served


def create_app(model: "Forecaster | ModelHolder", options: ServeOptions | None = None):
    """A FastAPI app serving `model`: a loaded Forecaster, or a ModelHolder (a store's current version).
    The routes live in distilts.serve.routes (forecast, ops, oip); the two hot paths also answer from
    FastPaths, straight from the ASGI messages."""
    require("fastapi", "serve", "distilts serve")
    orjson = require("orjson", "serve", "distilts serve")
    from fastapi import FastAPI

    from distilts import __version__
    from distilts.serve.routes import forecast as forecast_routes
    from distilts.serve.routes import oip as oip_routes
    from distilts.serve.routes import ops as ops_routes
    from distilts.serve.schema import forecast_models, install_openapi

    holder = model if isinstance(model, ModelHolder) else ModelHolder.of(model)
    opts = options or ServeOptions()
    workers = opts.workers or holder.current.fc.settings.workers
    pool = ThreadPoolExecutor(workers, thread_name_prefix="distilts-predict")
    adm = Admission(workers, opts.max_queue, opts.deadline_s)
    adm.set_version(None, holder.current.version)
    adm.count_reloads(holder.reloads)
    ctx = ServerContext(holder, opts, pool, adm, opts.name or holder.path.name, workers, orjson)
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
        title=f"distilts forecast server: {ctx.name}",
        version=__version__,
        lifespan=lifespan,
        description="Forecasts from a compiled distilts artifact: POST /forecast (JSON windows) or the "
        "Open Inference Protocol (KServe v2) under /v2. Every answer names the model "
        f"version in the header {VERSION_HEADER}.",
    )
    app.state.holder, app.state.admission, app.state.timings = holder, adm, ctx.timings
    forecast = forecast_routes.register(app, ctx)
    ops_routes.register(app, ctx)
    infer = oip_routes.register(app, ctx)
    # the two hot paths skip FastAPI's routing and request objects (the routes document them)
    app.add_middleware(
        FastPaths, routes={"/forecast": forecast, f"/v2/models/{ctx.name}/infer": lambda h, r: infer(h, r, ctx.name)}
    )
    install_openapi(
        app,
        forecast_models(ctx.first, opts.max_batch),
        {
            ("/forecast", "post"): "ForecastRequest",
            ("/v2/models/{model_name}/infer", "post"): "InferRequest",
            ("/v2/models/{model_name}/versions/{version}/infer", "post"): "InferRequest",
        },
        lambda: {"model_name": ctx.name, "version": holder.current.version},
    )
    return app


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
