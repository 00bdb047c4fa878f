"""Operations: GET /health (golden self-check), /model, /stats, /metrics (Prometheus).
(No `from __future__ import annotations`: FastAPI reads the handlers' annotations at run time.)
"""

import asyncio
from typing import Any

from distilts.serve.context import VERSION_HEADER, ServerContext, model_summary, response


def register(app: Any, ctx: ServerContext) -> None:
    """Add the operations routes to `app`."""
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    holder, opts, adm, error = ctx.holder, ctx.opts, ctx.adm, ctx.error
    timings, workers = ctx.timings, ctx.workers

    @app.get("/health")
    async def health() -> Response:
        """200 when the artifact still reproduces its golden forecast, 503 otherwise."""
        served = holder.current
        try:
            await asyncio.get_running_loop().run_in_executor(None, served.fc.self_check)
        except Exception as exc:
            return response(error(503, f"self-check failed: {exc}", served, "health"))
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
