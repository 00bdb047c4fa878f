"""POST /forecast: raw windows in, the forecast (and quantiles, timestamps) out; its fast path handler.
(No `from __future__ import annotations`: FastAPI reads the handlers' annotations at run time.)
"""

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from distilts.serve.admission import Rejected
from distilts.serve.context import NOT_FINITE, VERSION_HEADER, Answer, ServerContext, receive_body, response
from distilts.serve.request import RequestError, parse_request


def register(app: Any, ctx: ServerContext) -> Any:
    """Add POST /forecast to `app`; returns its raw handler `(headers, receive) -> Answer` (the fast path)."""
    from fastapi import Request
    from fastapi.responses import Response

    from distilts.serve.schema import ErrorBody, forecast_models

    holder, opts, adm, first, error, busy, predict, orjson = (
        ctx.holder,
        ctx.opts,
        ctx.adm,
        ctx.first,
        ctx.error,
        ctx.busy,
        ctx.predict,
        ctx.orjson,
    )
    timings = ctx.timings
    ok_forecast, lat_forecast = adm.requests.labels("forecast", "200"), adm.latency.labels("forecast")

    async def forecast(headers: Mapping[str, str], receive) -> Answer:
        """POST /forecast (see the route's documentation below)."""
        t0 = time.perf_counter()
        served = holder.current  # this request stays on this version to its end
        fc = served.fc
        try:
            body = await receive_body(receive, headers, opts.body_limit(fc))
            req = parse_request(body, fc, opts.max_batch)
            t1 = time.perf_counter()
            levels = fc.levels  # a quantile model answers every level from one inference
            y = await predict(served, req.x, headers, t0, quantiles=levels is not None, covariates=req.covariates)
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
        return response(await forecast(request.headers, request.receive))

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

    return forecast
