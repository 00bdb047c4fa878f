"""`distilts serve`: module level imports click only (lazy CLI)."""

from __future__ import annotations

import click


@click.command(name="serve")
@click.argument("artifact_dir", type=click.Path(file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for every interface; put a proxy with TLS in front).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Backend threads per forecast call (default: the artifact target's, else 1).")
@click.option("--mode", type=click.Choice(["latency", "throughput"]), default=None,
              help="Backend settings (default: the artifact target's mode, else throughput); docs/runtime.md.")
@click.option("--max-batch", type=click.IntRange(min=1), default=256, show_default=True,
              help="Most windows one request may carry (bigger ones get 413); also sets the body size limit.")
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Server processes sharing the port, each with its own loaded model (HTTP and JSON work is "
                   "bound to one core per process).")
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="One log line per request.")
def serve(artifact_dir: str, host: str, port: int, threads: int | None, mode: str | None, max_batch: int,
          processes: int, access_log: bool) -> None:
    """Serve forecasts of a compiled artifact over HTTP (needs pip install "distilts[serve]").

    \b
    POST /forecast  {"window": [[...D values], ... L rows]} or {"windows": [B][L][D]},
                    optional "columns", "last_timestamp", "step_seconds"
    GET  /health    200 when the golden self-check passes
    GET  /model     backend, precision, lookback, horizon, columns, verification
    Stops gracefully on Ctrl-C / SIGTERM (requests in flight are answered first).
    """
    import json
    import os

    from distilts.errors import require

    uvicorn = require("uvicorn", "serve", "distilts serve")
    from distilts.runtime.manifest import read_manifest
    from distilts.serve.app import ENV, app_from_config

    if mode is None:  # a server answers many callers at once: throughput unless the target says otherwise
        mode = (read_manifest(artifact_dir, verify_checksums=False).target or {}).get("mode") or "throughput"
    config = {"artifact_dir": artifact_dir, "threads": threads, "mode": mode, "max_batch": max_batch}
    app = app_from_config(config)  # checksums + golden self-check here, before any port is opened
    fc = app.state.forecaster
    click.echo(f"serving {artifact_dir} ({fc.backend}-{fc.manifest.precision}, L={fc.lookback}, H={fc.horizon}, "
               f"{len(fc.columns)} columns; {fc.mode} mode, {fc.threads} thread(s) x {fc.settings.workers} "
               f"worker(s){f' x {processes} processes' if processes > 1 else ''}) on http://{host}:{port}", err=True)
    common = {"host": host, "port": port, "access_log": access_log, "log_level": "info",
              "timeout_graceful_shutdown": 30}
    if processes == 1:
        uvicorn.run(app, **common)
    else:  # each process imports the app factory and loads (and self-checks) its own Forecaster
        os.environ[ENV] = json.dumps(config)
        uvicorn.run("distilts.serve.app:app_from_env", factory=True, workers=processes, **common)
