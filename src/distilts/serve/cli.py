"""`distilts serve`: module level imports click only (lazy CLI)."""

from __future__ import annotations

import click


@click.command(name="serve")
@click.argument("path", metavar="ARTIFACT_OR_STORE", type=click.Path(file_okay=False))
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 for every interface; put a proxy with TLS in front).",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Backend threads per forecast call (default: the artifact target's, else 1).",
)
@click.option(
    "--mode",
    type=click.Choice(["latency", "throughput"]),
    default=None,
    help="Backend settings (default: the artifact target's mode, else throughput); docs/runtime.md.",
)
@click.option(
    "--max-batch",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Most windows one request may carry (bigger ones get 413); also sets the body size limit.",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Server processes sharing the port, each with its own loaded model (HTTP and JSON work is "
    "bound to one core per process).",
)
@click.option(
    "--max-queue",
    type=click.IntRange(min=0),
    default=64,
    show_default=True,
    help="Forecasts that may wait for a worker; beyond, an immediate 503 with Retry-After.",
)
@click.option(
    "--deadline",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds a request may wait for a worker before it gets 503 (a request may ask less with the "
    "header X-Deadline-Ms).",
)
@click.option("--name", default=None, help="Model name in the Open Inference Protocol (default: the directory name).")
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="One log line per request.")
def serve(
    path: str,
    host: str,
    port: int,
    threads: int | None,
    mode: str | None,
    max_batch: int,
    processes: int,
    max_queue: int,
    deadline: float,
    name: str | None,
    access_log: bool,
) -> None:
    """Serve forecasts of an artifact, or of a model store's current version, over HTTP (pip install "distilts[serve]").

    \b
    POST /forecast  {"window": [[...D values], ... L rows]} or {"windows": [B][L][D]},
                    optional "columns", "last_timestamp", "step_seconds"
    /v2/...         the Open Inference Protocol (KServe v2; tritonclient, KServe), binary tensors too
    GET  /health    200 when the golden self-check passes
    GET  /model     backend, precision, lookback, horizon, columns, verification
    GET  /stats, /metrics (Prometheus), /docs, /openapi.json
    A store (`distilts deploy ART --to STORE`) is reloaded when its current version changes or on
    SIGHUP: the new version is self-checked beside the old one, which keeps serving if it fails.
    Every answer names the version in the header X-Model-Version.
    Stops gracefully on Ctrl-C / SIGTERM (requests in flight are answered first).
    """
    from distilts.serve.server import serve_artifact

    serve_artifact(
        path,
        host,
        port,
        threads,
        mode,
        max_batch,
        processes,
        max_queue,
        deadline,
        name,
        access_log,
        log=lambda s: click.echo(s, err=True),
    )
