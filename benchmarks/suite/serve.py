#!/usr/bin/env python
"""Serving benchmark: `distilts serve` under 1, 8, 32 and 128 concurrent HTTP requests, per backend.

For each artifact (default: DLinear L=512 H=96 on ETTh1, compiled to ONNX, OpenVINO and TFLite fp32):
1. in this process, the raw runtime: batch-1 time of the session call and of `Forecaster.predict`
   (the runtime's overhead), batched throughput at the artifact's batch, and a thread-scaling table
   (1, 2, 4, 8 threads sharing one Forecaster); plus the per-request cost of parsing a request body
   and encoding an answer;
2. `distilts serve ARTIFACT --host 127.0.0.1 --no-access-log` in a subprocess, driven by wrk (1 thread,
   benchmarks/support/wrk.py, the load path every serving benchmark shares) at each concurrency level for
   --seconds, posting one test window. Its answer is first checked bit for bit against the serial
   forecast; then "exact" counts answers byte-identical to it, "wrong" the other 200 answers, "errors"
   non-200 answers and socket errors. The server's /stats says where its time went.
   (Records before wrk, e.g. benchmarks/results/serve.json, came from keep-alive `http.client` threads
   in this process cycling 64 windows, at most --requests per level; "wrong" there meant outside the
   golden tolerance. They still render.)

    python -m benchmarks run serve --preset full
    python -m benchmarks run serve --preset full
    python -m benchmarks report   # RESULTS.md from the stored records

Loopback only. Writes OUT/serve.json and OUT/serve.md (OUT: benchmarks/runs/serve).
Against the ceiling of the HTTP stack itself, with wrk as the client: benchmarks/suite/serve_stack.py; deploys under
load and overload: benchmarks/suite/serve_ops.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from benchmarks.support.benchlib import DISTILTS, ROOT, git_commit, machine_info, markdown_table, run_timed, text_table, write_outputs
from benchmarks.support.wrk import answer, distilts_server, stats, wrk

SHARED = ROOT.parent / "shared"


# --- artifacts and windows -----------------------------------------------------------------------
def build_artifacts(args, work: Path, log: Path) -> list[str]:
    """DLinear trained briefly on ETTh1 (weights do not change speed), compiled to every backend, fp32."""
    student = work / f"dlinear-L{args.lookback}-H{args.horizon}"
    if not (student / "config.json").exists():
        run_timed([*DISTILTS, "distill", "--data", args.data, "--student", "dlinear", "--lookback", args.lookback,
                   "--horizon", args.horizon, "--no-kd", "--beta", "0", "--epochs", 1, "--stride", 16, "--seed", 0,
                   "--quiet", "--out", student], log)
    out = work / "artifacts"
    names = ["onnx-fp32", "openvino-fp32", "tflite-fp32"]
    if not all((out / n / "manifest.json").exists() for n in names):
        run_timed([*DISTILTS, "compile", student, "--target", "onnx,openvino,tflite", "--batch", 1, "--batch",
                   args.batch, "--out", out], log)
    return [str(out / n) for n in names]


def test_windows(data: str, lookback: int, horizon: int, n: int) -> np.ndarray:
    """n raw ETTh1 test windows, evenly spaced."""
    from distilts.data import load_dataset

    ds = load_dataset(data)
    w = ds.windows("test", lookback, horizon)
    idx = np.unique(np.linspace(0, len(w) - 1, num=min(n, len(w))).round().astype(np.int64))
    x, _ = w.batch(idx)
    return np.ascontiguousarray(ds.scaler.inverse(x), dtype=np.float32)


# --- the raw runtime, in this process --------------------------------------------------------------
def per_call_us(fn, budget_s: float, min_calls: int = 50) -> float:
    """Median of 5 repeats of the mean time of `fn()` in microseconds."""
    for _ in range(20):
        fn()
    t0 = time.perf_counter()
    n = 0
    while n < min_calls or time.perf_counter() - t0 < budget_s / 5:
        fn()
        n += 1
    reps = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        reps.append((time.perf_counter() - t) / n * 1e6)
    return float(np.median(reps))


def paired_us(fa, fb, budget_s: float, reps: int = 9) -> tuple[float, float, float]:
    """Medians of `fa()` and `fb()` times (us) and of their per-repeat difference, measured alternately
    so that a noisy machine slows both alike."""
    n = max(50, int(budget_s / reps / 2 / (per_call_us(fa, 0.05) * 1e-6)))
    a, b = [], []
    for _ in range(reps):
        for fn, acc in ((fa, a), (fb, b)):
            t = time.perf_counter()
            for _ in range(n):
                fn()
            acc.append((time.perf_counter() - t) / n * 1e6)
    return float(np.median(a)), float(np.median(b)), float(np.median(np.subtract(b, a)))


def thread_scaling(fc, xs: np.ndarray, threads: int, seconds: float) -> float:
    """Batch-1 windows/s of `threads` threads sharing one Forecaster."""
    stop = time.perf_counter() + seconds
    counts = [0] * threads

    def worker(k: int) -> None:
        i = k
        while time.perf_counter() < stop:
            fc.predict(xs[i % len(xs)])
            counts[k] += 1
            i += 1

    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts) / (time.perf_counter() - t0)


def raw_runtime(art: str, xs: np.ndarray, args) -> dict:
    from distilts.runtime import Forecaster
    from distilts.serve.request import parse_request

    fc = Forecaster.load(art, mode=args.mode)  # the server's settings
    sess1 = fc.sessions[1] if 1 in fc.sessions else fc.sessions[None]
    x1 = xs[:1]
    target, fixed = fc.manifest.target or {}, [b for b in fc.batch_sizes if b is not None]
    batch = int(target.get("batch") or (max(fixed) if fixed else 64))  # the batch the artifact was built for
    xb = np.ascontiguousarray(np.resize(xs, (batch, *xs.shape[1:])))
    body = json.dumps({"window": xs[0].tolist()}).encode()
    y = fc.predict(xs[0])
    import orjson

    session_us, predict_us, overhead_us = paired_us(lambda: sess1.run(x1), lambda: fc.predict(xs[0]), args.micro_s * 2)
    out = {"artifact": art, "backend": fc.backend, "precision": fc.manifest.precision, "threads": fc.threads,
           "mode": fc.mode, "workers": fc.settings.workers, "batch": batch, "session_us": session_us,
           "predict_us": predict_us, "overhead_us": overhead_us,
           "parse_us": per_call_us(lambda: parse_request(body, fc, 256), args.micro_s),
           "encode_us": per_call_us(lambda: orjson.dumps({"columns": fc.columns, "forecast": y},
                                                         option=orjson.OPT_SERIALIZE_NUMPY), args.micro_s)}
    out["batched_wps"] = batch / per_call_us(lambda: fc.predict(xb), args.micro_s, min_calls=5) * 1e6
    out["scaling_wps"] = {t: thread_scaling(fc, xs, t, args.scaling_s) for t in (1, 2, 4, 8)}
    other = "latency" if args.mode == "throughput" else "throughput"
    fc2 = Forecaster.load(art, mode=other)
    out["scaling_other"] = {"mode": other, "predict_us": per_call_us(lambda: fc2.predict(xs[0]), args.micro_s),
                            "wps": {t: thread_scaling(fc2, xs, t, args.scaling_s) for t in (1, 2, 4, 8)}}
    return out


# --- the server, in a subprocess, under wrk (benchmarks/support/wrk.py: the load path of every serving benchmark) ---
def serve_levels(art: str, xs: np.ndarray, ref: np.ndarray, args, log: Path) -> dict:
    """`distilts serve ART` under wrk at each level, posting the last window; its answer is first checked
    against `ref` (bit-exact), then wrk compares every answer with it byte for byte."""
    srv = distilts_server(art, log, "--mode", args.mode, "--processes", str(args.processes))
    try:
        body = json.dumps({"window": xs[-1].tolist()}).encode()
        version, exact = answer(srv.url, body)
        got = np.asarray(json.loads(exact)["forecast"], dtype=np.float32)
        checked = {"answer_bit_exact": bool(np.array_equal(got, ref[-1]))}
        levels = []
        for c in args.levels:
            before = stats(srv.url)
            row = wrk(f"{srv.url}/forecast", body, c, args.seconds, expect={version: exact})
            after = stats(srv.url)
            row.update(concurrency=c, exact=row["ok"], ok=row["ok"] + row["wrong"] + row["unknown_version"],
                       errors=row["errors"] + row["s503"] + row["other_status"])
            n = max(1, after["requests"] - before["requests"])
            for k in ("parse_s", "infer_s", "encode_s"):
                row[k.replace("_s", "_ms")] = (after[k] - before[k]) / n * 1e3
            row["rest_ms"] = row["mean_ms"] - row["parse_ms"] - row["infer_ms"] - row["encode_ms"]
            row["load_avg"] = os.getloadavg()[0]
            levels.append(row)
            print(f"  {Path(art).name:>14} c={c:>3}: {row['rps']:7.0f} req/s, p50 {row['p50_ms']:.2f} ms, p99 "
                  f"{row['p99_ms']:.2f} ms, errors {row['errors']}, wrong {row['wrong']}, exact {row['exact']}/{row['ok']}",
                  flush=True)
    finally:
        code = srv.stop()  # graceful shutdown (SIGINT)
    return {"levels": levels, "shutdown_exit_code": code, **checked}


def bench_args(p: argparse.ArgumentParser, render: Callable[[dict], str],
               out: Path = ROOT / "benchmarks" / "runs" / "serve") -> argparse.Namespace | None:
    """Add what `build_artifacts` reads (--data, --lookback, --horizon, --batch), --out and --render to a
    serving benchmark's parser and parse; with --render, print `render` of that JSON record and return None."""
    p.add_argument("--data", default=str(SHARED / "data" / "ETTh1.csv"))
    p.add_argument("--lookback", type=int, default=512)
    p.add_argument("--horizon", type=int, default=96)
    p.add_argument("--batch", type=int, default=32, help="TFLite batch file compiled next to batch 1")
    p.add_argument("--out", default=str(out))
    p.add_argument("--render", default=None, help="print the table of this JSON record (nothing is run)")
    args = p.parse_args()
    if args.render:
        print(render(json.loads(Path(args.render).read_text())))
        return None
    return args


# --- tables ---------------------------------------------------------------------------------------------
def render(payload: dict) -> str:
    a, m = payload["args"], payload["machine"]
    lines = ["### Serving: `distilts serve` under concurrent HTTP load", "",
             f"Machine: {m['processor']}, {m['cpu_count']} cores; {m['date']}; commit {payload.get('commit')}; "
             f"load average {payload['load_before']:.2f} before, {payload['load_after']:.2f} after. DLinear "
             f"L={a['lookback']} H={a['horizon']} (7 ETTh1 columns), fp32, {a.get('mode', 'throughput')} mode, one "
             f"window per request; "
             + (f"per level at most {a['requests']} requests or {a['seconds']} s" if "requests" in a else
                f"wrk (1 thread), {a['seconds']} s per level")
             + "; client and server share the machine.", ""]
    rows = []
    for art in payload["artifacts"]:
        raw = art["raw"]
        for run in art["serve"]:
            for lv in run["levels"]:
                rows.append({"backend": raw["backend"], "micro": run.get("micro_batch"), **lv,
                             "raw_b1": 1e6 / raw["predict_us"], "raw_batched": raw["batched_wps"]})
    micro = any(r["micro"] is not None for r in rows)  # records made before micro-batching was removed
    cols = [("backend", "backend"), *([("micro", "micro-batch")] if micro else []), ("concurrency", "concurrent"),
            ("requests", "requests"), ("rps", "req/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
            ("errors", "errors"), ("wrong", "wrong"), ("exact", "bit-exact"),
            *([("windows_per_call", "windows/call")] if micro else []),
            ("mean_ms", "mean ms"), ("parse_ms", "parse ms"), ("infer_ms", "infer ms"), ("encode_ms", "encode ms"),
            ("rest_ms", "HTTP+client ms"),
            ("raw_b1", "raw b=1 windows/s"), ("raw_batched", "raw batched windows/s")]
    lines += [markdown_table(rows, cols, digits=2), ""]
    lines += ["Where a request's time goes (means per request): parse = reading and validating the JSON body, infer = "
              "waiting for a worker and running the forecast, encode = writing the JSON answer, all measured inside the "
              "server (/stats); HTTP+client = the client's mean latency minus those three (uvicorn, FastAPI routing, "
              "the loopback and the client's own work). raw = `Forecaster.predict` in-process, batch 1 and at the "
              "artifact's batch.", "",
              "### Runtime: per-call cost at batch 1 and thread scaling (one shared Forecaster)", ""]
    rrows = []
    for art in payload["artifacts"]:
        raw = art["raw"]
        rrows.append({**raw, **{f"t{t}": v for t, v in raw["scaling_wps"].items()}})
        if "scaling_other" in raw:
            o = raw["scaling_other"]
            rrows.append({"backend": raw["backend"], "mode": o["mode"], "threads": raw["threads"],
                          "predict_us": o["predict_us"], **{f"t{t}": v for t, v in o["wps"].items()}})
    rcols = [("backend", "backend"), ("mode", "mode"), ("threads", "threads/call"), ("workers", "workers"),
             ("session_us", "session.run us"), ("predict_us", "predict us"), ("overhead_us", "predict overhead us"),
             ("parse_us", "parse body us"), ("encode_us", "encode answer us"), ("batch", "batch"),
             ("batched_wps", "batched windows/s"), ("t1", "1 thread w/s"), ("t2", "2 threads w/s"),
             ("t4", "4 threads w/s"), ("t8", "8 threads w/s")]
    lines += [markdown_table(rrows, rcols, digits=1), ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifact", action="append", default=[], help="artifact directory (repeatable; default: build)")
    p.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32, 128])
    p.add_argument("--seconds", type=float, default=8.0, help="seconds of wrk per level")
    p.add_argument("--processes", type=int, default=1, help="server processes (distilts serve --processes; /stats "
                   "then covers one process only)")
    p.add_argument("--mode", choices=["latency", "throughput"], default="throughput",
                   help="runtime mode of the server and of the raw runtime rows (serve's default: throughput)")
    p.add_argument("--micro-s", type=float, default=1.0, help="seconds per in-process micro-benchmark")
    p.add_argument("--scaling-s", type=float, default=2.0, help="seconds per thread-scaling point")
    p.add_argument("--windows", type=int, default=64, help="distinct test windows the in-process runtime rows cycle through")
    args = bench_args(p, render)
    if args is None:  # --render: printed
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "serve.log"
    load_before = os.getloadavg()[0]
    arts = args.artifact or build_artifacts(args, out, log)
    from distilts.runtime import Forecaster

    results = []
    for art in arts:
        fc = Forecaster.load(art)
        xs = test_windows(args.data, fc.lookback, fc.horizon, args.windows)
        ref = np.stack([fc.predict(x) for x in xs])  # the serial forecasts every answer is checked against
        raw = raw_runtime(art, xs, args)
        print(f"{Path(art).name}: session {raw['session_us']:.1f} us, predict {raw['predict_us']:.1f} us, "
              f"batched {raw['batched_wps']:.0f} windows/s at b={raw['batch']}, scaling "
              f"{ {t: round(v) for t, v in raw['scaling_wps'].items()} }", flush=True)
        results.append({"raw": raw, "serve": [serve_levels(art, xs, ref, args, log)]})
    payload = {"args": vars(args), "machine": machine_info(), "commit": git_commit(), "load_before": load_before,
               "load_after": os.getloadavg()[0], "artifacts": results}
    md = render(payload)
    write_outputs(payload, md, out / "serve.json", out / "serve.md")
    rows = [{"backend": a["raw"]["backend"], **lv} for a in results for s in a["serve"] for lv in s["levels"]]
    print(text_table(rows, [("backend", "backend"), ("concurrency", "c"), ("rps", "req/s"),
                            ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("errors", "errors"), ("wrong", "wrong")], 2))
    print(f"wrote {out / 'serve.json'} and {out / 'serve.md'}")


# --- the harness entry (benchmarks/harness.py): the presets as this module's options -----------------------
PRESETS: dict[str, dict] = {"quick": {"levels": [1, 8], "seconds": 1.0, "micro_s": 0.3, "scaling_s": 0.5}, "full": {}}


def run(ctx, **params):
    from benchmarks.support import script

    return script.run_main(ctx, sys.modules[__name__], params, takes_argv=False)

if __name__ == "__main__":
    main()
