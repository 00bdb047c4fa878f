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
    import json
    import os

    from distilts.errors import require

    uvicorn = require("uvicorn", "serve", "distilts serve")
    from distilts.deploy.store import Store, is_store
    from distilts.runtime.manifest import read_manifest
    from distilts.serve.app import ENV, app_from_config

    if mode is None:  # a server answers many callers at once: throughput unless the target says otherwise
        art = Store(path).current_dir() if is_store(path) else path
        mode = (read_manifest(art, verify_checksums=False).target or {}).get("mode") or "throughput"
    config = {
        "path": path,
        "threads": threads,
        "mode": mode,
        "max_batch": max_batch,
        "max_queue": max_queue,
        "deadline_s": deadline,
        "name": name,
    }
    app = app_from_config(config)  # checksums + golden self-check here, before any port is opened
    served = app.state.holder.current
    fc = served.fc
    click.echo(
        f"serving {path} version {served.version} ({fc.backend}-{fc.manifest.precision}, "
        f"L={fc.lookback}, H={fc.horizon}, "
        f"{len(fc.columns)} columns; {fc.mode} mode, {fc.threads} thread(s) x {fc.settings.workers} "
        f"worker(s){f' x {processes} processes' if processes > 1 else ''}) on http://{host}:{port}",
        err=True,
    )
    common = {
        "host": host,
        "port": port,
        "access_log": access_log,
        "log_level": "info",
        "timeout_graceful_shutdown": 30,
    }
    if processes == 1:
        uvicorn.run(app, **common)
    else:  # each process imports the app factory and loads (and self-checks) its own Forecaster
        os.environ[ENV] = json.dumps(config)
        uvicorn.run("distilts.serve.app:app_from_env", factory=True, workers=processes, **common)
