#!/usr/bin/env python
"""`distilts serve` against the ceiling of its own HTTP stack, measured with wrk (not the server's own code).

Two servers run side by side, each one process on loopback, access logs off, the same uvicorn (httptools,
uvloop): `distilts serve ARTIFACT` and benchmarks/support/bare_app.py (a FastAPI route that reads the body, parses it
with orjson and answers a fixed body of the size of a real answer). wrk posts one real ETTh1 window (DLinear
L=512 H=96, 7 columns) at 1, 8 and 64 connections; the two servers alternate, --repeats times per level, and
the table gives medians. Server CPU per request (psutil) is given too: it depends much less on what else the
machine runs than req/s. Then the Open Inference Protocol route with binary tensors (tritonclient's default
encoding) at batch 1 and 256. Before the load, the answers are checked against `Forecaster.predict`.

    python -m benchmarks run serve_stack --preset full
    python -m benchmarks run serve_stack --preset full
    python -m benchmarks report   # RESULTS.md from the stored records

Writes OUT/serve-stack.json and .md (OUT: benchmarks/runs/serve).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import urllib.request
from pathlib import Path

import numpy as np

from benchmarks.support.benchlib import git_commit, machine_info, markdown_table, write_outputs
from benchmarks.suite.serve import bench_args, build_artifacts, test_windows
from benchmarks.support.wrk import bare_server, distilts_server, wrk



def post(url: str, body: bytes, headers: dict) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, data=body, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, dict(r.headers), r.read()


def oip_body(x: np.ndarray) -> tuple[bytes, str]:
    """A binary-tensor infer request as tritonclient sends it: JSON header + raw little-endian FP32."""
    head = json.dumps({"inputs": [{"name": "window", "shape": list(x.shape), "datatype": "FP32",
                                   "parameters": {"binary_data_size": x.nbytes}}],
                       "parameters": {"binary_data_output": True}}).encode()
    return head + np.ascontiguousarray(x, dtype="<f4").tobytes(), str(len(head))


def check_answers(url: str, name: str, fc, xs: np.ndarray) -> dict:
    """The JSON route and the binary OIP route against predict (bit-exact counts)."""
    exact = 0
    for x in xs[:8]:
        _, _, body = post(f"{url}/forecast", json.dumps({"window": x.tolist()}).encode(),
                          {"Content-Type": "application/json"})
        exact += np.array_equal(np.asarray(json.loads(body)["forecast"], np.float32), fc.predict(x))
    body, hl = oip_body(xs[:8])
    _, headers, out = post(f"{url}/v2/models/{name}/infer", body, {"Inference-Header-Content-Length": hl})
    n = int({k.lower(): v for k, v in headers.items()}["inference-header-content-length"])
    y = np.frombuffer(out[n:], dtype="<f4").reshape(8, fc.horizon, -1)
    return {"forecast_exact": f"{exact}/8", "oip_binary_exact": bool(np.array_equal(y, fc.predict(xs[:8])))}


def measure(srv, body: bytes, c: int, seconds: float, **kw) -> dict:
    cpu0 = srv.cpu_s()
    row = wrk(f"{srv.url}{kw.pop('path', '/forecast')}", body, c, seconds, **kw)
    row["cpu_us_per_req"] = (srv.cpu_s() - cpu0) / max(1, row["requests"]) * 1e6
    row["load_avg"] = os.getloadavg()[0]
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifact", default=None, help="an artifact directory (default: build DLinear ONNX fp32)")
    p.add_argument("--levels", type=int, nargs="+", default=[1, 8, 64])
    p.add_argument("--seconds", type=float, default=4.0, help="seconds per wrk run")
    p.add_argument("--repeats", type=int, default=5, help="alternating runs per server and level")
    p.add_argument("--oip-batches", type=int, nargs="+", default=[1, 256])
    args = bench_args(p, render)
    if args is None:  # --render: printed
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "serve-stack.log"
    art = args.artifact or build_artifacts(args, out, log)[0]
    from distilts.runtime import Forecaster

    fc = Forecaster.load(art)
    xs = test_windows(args.data, fc.lookback, fc.horizon, 256)
    body = json.dumps({"window": xs[-1].tolist()}).encode()
    import orjson

    answer = orjson.dumps({"columns": fc.columns, "forecast": fc.predict(xs[-1])}, option=orjson.OPT_SERIALIZE_NUMPY)
    load_before = os.getloadavg()[0]
    ours = distilts_server(art, log, "--name", "m")
    bare = bare_server(len(answer), log)
    try:
        checks = check_answers(ours.url, "m", fc, xs)
        print("answers:", checks, flush=True)
        runs: list[dict] = []
        for rep in range(args.repeats):
            for c in args.levels:
                for label, srv in (("bare", bare), ("distilts", ours)) if rep % 2 == 0 else \
                        (("distilts", ours), ("bare", bare)):
                    row = {"server": label, "repeat": rep, **measure(srv, body, c, args.seconds)}
                    runs.append(row)
                    print(f"  rep {rep} c={c:>2} {label:>8}: {row['rps']:7.0f} req/s  p50 {row['p50_ms']:.2f} ms  "
                          f"p99 {row['p99_ms']:.2f} ms  cpu {row['cpu_us_per_req']:.0f} us/req  errors "
                          f"{row['errors'] + row['other_status']}", flush=True)
        oip = []
        for b in args.oip_batches:
            ob, hl = oip_body(xs[:b])
            row = {"batch": b, **measure(ours, ob, 8, args.seconds, path="/v2/models/m/infer",
                                          headers={"Inference-Header-Content-Length": hl},
                                          content_type="application/octet-stream")}
            row["windows_per_s"] = row["rps"] * b
            oip.append(row)
            print(f"  OIP binary b={b}: {row['rps']:.0f} req/s = {row['windows_per_s']:.0f} windows/s, "
                  f"p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms", flush=True)
    finally:
        ours.stop()
        bare.stop()
    payload = {"args": vars(args), "machine": machine_info(), "commit": git_commit(), "artifact": art,
               "backend": fc.backend, "load_before": load_before, "load_after": os.getloadavg()[0],
               "body_bytes": len(body), "answer_bytes": len(answer), "checks": checks, "runs": runs, "oip": oip}
    md = render(payload)
    write_outputs(payload, md, out / "serve-stack.json", out / "serve-stack.md")
    print(md)


def summary(payload: dict) -> list[dict]:
    """Per level: medians of each server's runs and the ratio distilts / bare."""
    rows = []
    for c in payload["args"]["levels"]:
        med = {}
        for s in ("bare", "distilts"):
            rs = [r for r in payload["runs"] if r["server"] == s and r["connections"] == c]
            med[s] = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req")}
            med[s]["errors"] = sum(r["errors"] + r["other_status"] for r in rs)
            med[s]["n"] = len(rs)
        pairs = [(a["rps"], b["rps"]) for a in payload["runs"] for b in payload["runs"]
                 if a["server"] == "distilts" and b["server"] == "bare" and a["connections"] == b["connections"] == c
                 and a["repeat"] == b["repeat"]]
        rows.append({"connections": c, "bare_rps": med["bare"]["rps"], "rps": med["distilts"]["rps"],
                     "ratio": med["distilts"]["rps"] / med["bare"]["rps"],
                     "pair_ratio": statistics.median(a / b for a, b in pairs),
                     "cpu_ratio": med["bare"]["cpu_us_per_req"] / med["distilts"]["cpu_us_per_req"],
                     "bare_p50": med["bare"]["p50_ms"], "p50": med["distilts"]["p50_ms"],
                     "bare_p99": med["bare"]["p99_ms"], "p99": med["distilts"]["p99_ms"],
                     "bare_cpu": med["bare"]["cpu_us_per_req"], "cpu": med["distilts"]["cpu_us_per_req"],
                     "errors": med["bare"]["errors"] + med["distilts"]["errors"], "runs": med["distilts"]["n"]})
    return rows


def render(payload: dict) -> str:
    a, m = payload["args"], payload["machine"]
    lines = ["### Serving against the HTTP stack's ceiling (wrk)", "",
             f"Machine: {m['processor']}, {m['cpu_count']} cores, shared with other jobs (load average "
             f"{payload['load_before']:.1f} before, {payload['load_after']:.1f} after); {m['date']}; commit "
             f"{payload.get('commit')}. {payload['backend']} DLinear L={a['lookback']} H={a['horizon']}, one "
             f"window per request ({payload['body_bytes']:,} bytes in, {payload['answer_bytes']:,} out); wrk 1 "
             f"thread, {a['seconds']} s per run, {a['repeats']} alternating runs per server and level (medians). "
             f"bare = benchmarks/support/bare_app.py (FastAPI + uvicorn + orjson parse, fixed answer of the same size). "
             f"Answers checked before the load: {payload['checks']}.", "",
             markdown_table(summary(payload), [
                 ("connections", "connections"), ("bare_rps", "bare req/s"), ("rps", "distilts req/s"),
                 ("ratio", "ratio of medians"), ("pair_ratio", "median of paired ratios"),
                 ("bare_p50", "bare p50 ms"), ("p50", "distilts p50 ms"), ("bare_p99", "bare p99 ms"),
                 ("p99", "distilts p99 ms"), ("bare_cpu", "bare CPU us/req"), ("cpu", "distilts CPU us/req"),
                 ("cpu_ratio", "CPU ratio"), ("errors", "errors")], digits=2), "",
             "CPU ratio = bare's server CPU per request / distilts' (what the ratio of req/s would be on an "
             "otherwise idle core).", "", "Open Inference Protocol, binary tensors (8 connections):", "",
             markdown_table(payload["oip"], [("batch", "windows/request"), ("rps", "req/s"),
                                             ("windows_per_s", "windows/s"), ("p50_ms", "p50 ms"),
                                             ("p99_ms", "p99 ms"), ("cpu_us_per_req", "CPU us/req"),
                                             ("errors", "errors")], digits=2), ""]
    return "\n".join(lines)


# --- the harness entry (benchmarks/harness.py): the presets as this module's options -----------------------
PRESETS: dict[str, dict] = {"quick": {"levels": [1, 8], "seconds": 1.0, "repeats": 1, "oip_batches": [1]}, "full": {}}


def run(ctx, **params):
    from benchmarks.support import script

    return script.run_main(ctx, sys.modules[__name__], params, takes_argv=False)

if __name__ == "__main__":
    main()
