"""`distilts serve` as a function: check the artifact (or store), then run uvicorn until stopped."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from distilts.errors import require


def serve_artifact(
    path: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    threads: int | None = None,
    mode: str | None = None,
    max_batch: int = 256,
    processes: int = 1,
    max_queue: int = 64,
    deadline: float = 10.0,
    name: str | None = None,
    access_log: bool = True,
    log: Callable[[str], None] = print,
) -> None:
    """Serve forecasts of an artifact directory or a model store (`distilts deploy`) over HTTP until stopped.

    The artifact is self-checked (checksums + golden pair) before any port opens; `mode` defaults to the
    artifact target's, else throughput. See `distilts serve --help` for the endpoints.
    """
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
    log(
        f"serving {path} version {served.version} ({fc.backend}-{fc.manifest.precision}, "
        f"L={fc.lookback}, H={fc.horizon}, "
        f"{len(fc.columns)} columns; {fc.mode} mode, {fc.threads} thread(s) x {fc.settings.workers} "
        f"worker(s){f' x {processes} processes' if processes > 1 else ''}) on http://{host}:{port}"
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
