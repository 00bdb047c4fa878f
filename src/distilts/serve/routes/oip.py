"""The Open Inference Protocol (KServe v2 REST): server and model metadata, readiness, inference.
(No `from __future__ import annotations`: FastAPI reads the handlers' annotations at run time.)
"""

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from distilts.serve import oip
from distilts.serve.admission import Rejected
from distilts.serve.context import NOT_FINITE, VERSION_HEADER, Answer, ServerContext, receive_body, response
from distilts.serve.models import Served
from distilts.serve.request import RequestError


def register(app: Any, ctx: ServerContext) -> Any:
    """Add the /v2 routes to `app`; returns the raw inference handler `(headers, receive, model_name) -> Answer`."""
    from fastapi import Request
    from fastapi.responses import JSONResponse, Response

    from distilts import __version__
    from distilts.serve.schema import ErrorBody, InferResponse, ModelMetadata, ServerMetadata

    holder, opts, adm, name, error, busy, predict = (
        ctx.holder,
        ctx.opts,
        ctx.adm,
        ctx.name,
        ctx.error,
        ctx.busy,
        ctx.predict,
    )
    ok_infer, lat_infer = adm.requests.labels("infer", "200"), adm.latency.labels("infer")

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
            return response(error(exc.status, exc.message, holder.current, "metadata"))
        return JSONResponse(oip.metadata(name, served.version, served.fc), headers={VERSION_HEADER: served.version})

    async def model_ready(model_name: str, version: str | None = None) -> Response:
        try:
            served = resolve(model_name, version)
        except RequestError as exc:
            return response(error(exc.status, exc.message, holder.current, "ready"))
        return Response(status_code=200, headers={VERSION_HEADER: served.version})

    async def infer(headers: Mapping[str, str], receive, model_name: str, version: str | None = None) -> Answer:
        """KServe v2 inference: JSON tensors, or JSON + binary tensor data (Inference-Header-Content-Length)."""
        t0 = time.perf_counter()
        served = holder.current
        try:
            served = resolve(model_name, version)
            body = await receive_body(receive, headers, opts.body_limit(served.fc))
            call = oip.parse_infer(body, headers.get(oip.HEADER), served.fc, opts.max_batch)
            y = await predict(served, call.x, headers, t0, covariates=call.covariates)
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
        return response(await infer(request.headers, request.receive, model_name, version))

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

    return infer
