"""Runs inside the emulated arm64 device (numpy + the runtime backends, no torch): a batch of tasks in one
process, so the emulator's slow start is paid once.

    python -m distilts.device.worker REQUEST.json

REQUEST: {"tasks": [{"id", "kind": "files", "backend", "files": [[path, batch], ...], "x": X.npy (X.npz: an
artifact's named inputs), "out": OUT.npy}, {"id", "kind": "artifact", "dir": DIR, "x": X.npy, "out": OUT.npy}]}.
"files" runs each model file on the raw windows in X (OUT: [n_files, N, H, D]); "artifact" loads a finished
artifact with `Forecaster.load` (checksums + golden self-check for this architecture) and forecasts X.
Writes REQUEST.result.json: {"machine", "python", "tasks": {id: {"ok", "error", "version", "seconds"}}}.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from distilts.runtime import Forecaster
from distilts.runtime.backends import BACKENDS
from distilts.runtime.batching import run_file


def _load_inputs(path: str) -> np.ndarray | dict[str, np.ndarray]:
    """X.npy: raw windows; X.npz: an artifact's named inputs (x, past, future, static)."""
    if path.endswith(".npz"):
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    return np.load(path)


def _run(task: dict) -> dict:
    x = _load_inputs(task["x"])
    if task["kind"] == "files":
        outs = [run_file(task["backend"], Path(p), b, x) for p, b in task["files"]]
        np.save(task["out"], np.stack(outs))
        return {"version": BACKENDS[task["backend"]].version()}
    fc = Forecaster.load(task["dir"])
    np.save(task["out"], fc.predict_inputs(x) if isinstance(x, dict) else fc.predict(x))
    return {"version": next(iter(fc.sessions.values())).version, "golden_isa": fc.manifest.golden_isa}


def main(argv: list[str]) -> int:
    req_path = Path(argv[0])
    req = json.loads(req_path.read_text())
    results = {}
    for task in req["tasks"]:
        t0 = time.perf_counter()
        try:
            res = {"ok": True, **_run(task)}
        except Exception as exc:  # reported per task: one failing artifact must not hide the others
            res = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        res["seconds"] = round(time.perf_counter() - t0, 2)
        results[task["id"]] = res
    out = {"machine": platform.machine(), "python": platform.python_version(), "tasks": results}
    req_path.with_suffix(".result.json").write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
