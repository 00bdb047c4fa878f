#!/usr/bin/env python
"""Operating `distilts serve`: model updates under load, and overload, driven by wrk.

1. Deploys under load: `distilts serve STORE` while wrk posts one window at 64 connections; meanwhile 20
   `distilts deploy` runs alternate two good artifacts (ONNX and TFLite builds of one DLinear, which answer
   slightly different numbers), one of them a deliberately corrupted copy (its golden forecast altered:
   `deploy` refuses it) and one corrupted copy switched in behind deploy's back (the server refuses it and
   keeps serving). wrk checks every answer against the exact answer of the version its X-Model-Version
   header names. Then `distilts deploy --rollback` and the server follows.
2. Overload: `distilts serve ARTIFACT --max-queue Q` with requests of --batch windows (OIP binary tensors,
   so each forecast goes to the worker pool). First at capacity (workers + Q connections), then at 4x that
   many connections: answers must be 200 or 503 (no timeouts), with a bounded p99; the server's RSS is
   sampled every 0.5 s.

    python -m benchmarks run serve_ops --preset full
    python -m benchmarks report   # RESULTS.md from the stored records

Writes OUT/serve-ops.json and .md (OUT: benchmarks/runs/serve).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

from benchmarks.support.benchlib import DISTILTS, ROOT, git_commit, machine_info, markdown_table, write_outputs
from benchmarks.suite.serve import bench_args, build_artifacts, test_windows
from benchmarks.suite.serve_stack import oip_body
from benchmarks.support.wrk import Wrk, answer, distilts_server, stats



def corrupt(src: str, dst: Path) -> Path:
    """A copy whose golden forecast no longer matches what the model computes (a bad build)."""
    shutil.rmtree(dst, ignore_errors=True)
    art = Path(shutil.copytree(src, dst))
    man = json.loads((art / "manifest.json").read_text())
    out = np.asarray(man["golden"]["output"])
    out.flat[0] += 10 * max(man["scaler"]["std"])
    man["golden"]["output"] = out.tolist()
    (art / "manifest.json").write_text(json.dumps(man))
    return art


def wait_version(url: str, body: bytes, version: str, seconds: float = 30) -> float:
    t0 = time.monotonic()
    while answer(url, body)[0] != version:
        if time.monotonic() - t0 > seconds:
            raise RuntimeError(f"the server did not switch to {version} in {seconds} s")
        time.sleep(0.05)
    return time.monotonic() - t0


def ok_latency_buckets(url: str) -> dict[float, float]:
    """The server's histogram of 200 answers to infer: upper bound (s) -> cumulative count."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as r:
        text = r.read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        if fam.name == "distilts_request_seconds":
            for smp in fam.samples:
                if smp.name.endswith("_bucket") and smp.labels.get("endpoint") == "infer":
                    out[float(smp.labels["le"])] = smp.value
    return out


def p99_bound(before: dict, after: dict) -> float:
    """The smallest histogram bound holding 99% of the 200s answered between `before` and `after`."""
    diff = {le: after[le] - before.get(le, 0.0) for le in sorted(after)}
    total = diff[float("inf")]
    return next(le for le, n in diff.items() if n >= 0.99 * total)


def deploy(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*DISTILTS, "deploy", *map(str, args)], capture_output=True, text=True, cwd=ROOT)


def deploys_under_load(a: str, b: str, body: bytes, args, out: Path, log: Path) -> dict:
    from distilts.deploy.store import Store

    store = Store(out / "ops-store")
    shutil.rmtree(store.root, ignore_errors=True)
    bad = corrupt(a, out / "ops-corrupt")
    bad2 = corrupt(b, out / "ops-corrupt-2")
    va = store.deploy(a)
    srv = distilts_server(str(store.root), log, "--name", "m")
    try:
        vb = store.deploy(b)
        wait_version(srv.url, body, vb)
        expect = {vb: answer(srv.url, body)[1]}
        store.switch(va)
        wait_version(srv.url, body, va)
        expect[va] = answer(srv.url, body)[1]
        load = Wrk(f"{srv.url}/forecast", body, args.connections, 3600, expect=expect)
        time.sleep(2)
        events, good = [], [b, a]
        for i in range(args.deploys):
            t0 = time.monotonic()
            if i == args.deploys // 2:  # a corrupted artifact through deploy: refused on this machine
                r = deploy(bad, "--to", store.root)
                events.append({"deploy": i + 1, "artifact": "corrupted", "exit": r.returncode,
                               "refused_by": "deploy" if r.returncode and "Refusing" in r.stderr + r.stdout else "?",
                               "current": store.current()})
            elif i == args.deploys // 2 + 2:  # a corrupted version switched in behind deploy's back
                before = stats(srv.url)["reloads"]["refused"]
                vbad = store.add(bad2, check=False)
                store.switch(vbad)
                while stats(srv.url)["reloads"]["refused"] == before:
                    time.sleep(0.05)
                events.append({"deploy": i + 1, "artifact": "corrupted, switched without deploy", "exit": None,
                               "refused_by": "server", "serving": stats(srv.url)["version"]})
            else:
                r = deploy(good[i % 2], "--to", store.root)
                vid = store.current()
                switch_s = wait_version(srv.url, body, vid) if r.returncode == 0 else None
                events.append({"deploy": i + 1, "artifact": ["B", "A"][i % 2], "exit": r.returncode, "version": vid,
                               "deploy_s": time.monotonic() - t0, "switch_s": switch_s})
            time.sleep(args.pause)
        time.sleep(1)
        result = load.result(stop=True)
        before = store.current()
        r = deploy("--rollback", "--to", store.root)
        back = store.current()
        rollback_s = wait_version(srv.url, body, back)
        final = stats(srv.url)
    finally:
        srv.stop()
    return {"load": result, "events": events, "versions": list(expect), "rollback": {
        "exit": r.returncode, "from": before, "to": back, "server_followed_s": rollback_s},
        "server": {k: final[k] for k in ("version", "reloads", "refused")}}


def overload(a: str, xs: np.ndarray, args, log: Path) -> dict:
    body, hl = oip_body(xs[:args.overload_batch])
    srv = distilts_server(a, log, "--name", "m", "--max-queue", str(args.max_queue))
    rss: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        t0 = time.monotonic()
        while not stop.wait(0.5):
            rss.append((time.monotonic() - t0, srv.rss_mib()))

    try:
        workers = stats(srv.url)["workers"]
        cap = workers + args.max_queue
        kw = {"headers": {"Inference-Header-Content-Length": hl}, "content_type": "application/octet-stream"}
        url = f"{srv.url}/v2/models/m/infer"
        at_cap = Wrk(url, body, cap, args.seconds, **kw).result()
        t = threading.Thread(target=sample, daemon=True)
        t.start()
        hist0 = ok_latency_buckets(srv.url)
        over = Wrk(url, body, 4 * cap, args.overload_seconds, **kw).result()
        over["ok_p99_bound_s"] = p99_bound(hist0, ok_latency_buckets(srv.url))
        stop.set()
        t.join()
        final = stats(srv.url)
    finally:
        srv.stop()
    mib = [m for _, m in rss]
    k = max(1, len(mib) // 5)
    return {"workers": workers, "max_queue": args.max_queue, "batch": args.overload_batch, "at_capacity": at_cap,
            "overload": over, "rss_mib": {"first_fifth": float(np.mean(mib[:k])), "last_fifth": float(np.mean(mib[-k:])),
                                          "max": max(mib), "min": min(mib), "samples": len(mib)},
            "server_rejected": final["rejected"]}


def render(payload: dict) -> str:
    m, d, o = payload["machine"], payload["deploys"], payload["overload"]
    ld = d["load"]
    good = [e for e in d["events"] if e.get("switch_s") is not None]
    lines = ["### Operating the server: deploys under load, overload (wrk)", "",
             f"Machine: {m['processor']}, {m['cpu_count']} cores, shared with other jobs; {m['date']}; commit "
             f"{payload.get('commit')}. `python -m benchmarks run serve_ops --preset full`.", "",
             f"**{len(d['events'])} deploys while wrk ran at {ld['connections']} connections** "
             f"({len(good)} good ones alternating two artifacts, one corrupted through `distilts deploy`, one "
             "corrupted switched in without deploy):", "",
             markdown_table([ld], [("requests", "requests"), ("rps", "req/s"), ("ok", "200 with the answer of the "
                                   "version named"), ("wrong", "200 with another answer"), ("unknown_version",
                                   "unknown version"), ("s503", "503"), ("other_status", "other status"),
                                   ("errors", "socket errors/timeouts"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
                                   ("max_ms", "max ms")], digits=2), "",
             f"Good deploys: `distilts deploy` (copy, checksums + self-check in a new process, atomic switch) took "
             f"{np.median([e['deploy_s'] for e in good]):.2f} s median; the server answered with the new version "
             f"{np.median([e['switch_s'] for e in good]):.2f} s (median, max "
             f"{max(e['switch_s'] for e in good):.2f} s) after deploy returned. "
             + "; ".join(f"deploy {e['deploy']} ({e['artifact']}): refused by {e['refused_by']}"
                         for e in d["events"] if "refused_by" in e)
             + f". Server: {d['server']['reloads']} reloads. `distilts deploy --rollback`: exit "
             f"{d['rollback']['exit']}, {d['rollback']['from']} -> {d['rollback']['to']}, served "
             f"{d['rollback']['server_followed_s']:.2f} s later.", "",
             f"**Overload**: {o['batch']} windows per request (OIP binary tensors), {o['workers']} workers, "
             f"--max-queue {o['max_queue']}: capacity = {o['workers'] + o['max_queue']} concurrent requests.", "",
             markdown_table([{"run": "at capacity", **o["at_capacity"]}, {"run": "4x capacity", **o["overload"]}],
                            [("run", "run"), ("connections", "connections"), ("requests", "requests"),
                             ("ok", "200"), ("s503", "503"), ("other_status", "other"), ("timeouts", "timeouts"),
                             ("errors", "socket errors"), ("rps", "req/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
                             ("max_ms", "max ms")], digits=2), "",
             f"Server RSS during the 4x run ({o['rss_mib']['samples']} samples, every 0.5 s): first fifth "
             f"{o['rss_mib']['first_fifth']:.1f} MiB, last fifth {o['rss_mib']['last_fifth']:.1f} MiB, max "
             f"{o['rss_mib']['max']:.1f} MiB. Rejected by the server: {o['server_rejected']}."
             + (f" 99% of the 200s were answered within {o['overload']['ok_p99_bound_s'] * 1e3:.0f} ms of their "
                "arrival (server side, `distilts_request_seconds` histogram bucket)." if "ok_p99_bound_s" in o["overload"]
                else ""), ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--overload-batch", type=int, default=128, help="windows per request in the overload runs")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--deploys", type=int, default=20)
    p.add_argument("--pause", type=float, default=0.5, help="seconds between deploys")
    p.add_argument("--max-queue", type=int, default=4)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--overload-seconds", type=float, default=30)
    args = bench_args(p, render)
    if args is None:  # --render: printed
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "serve-ops.log"
    arts = build_artifacts(args, out, log)
    a, b = arts[0], arts[2]  # onnx-fp32, tflite-fp32
    from distilts.runtime import Forecaster

    fc = Forecaster.load(a)
    xs = test_windows(args.data, fc.lookback, fc.horizon, max(args.overload_batch, 8))
    body = json.dumps({"window": xs[-1].tolist()}).encode()
    dep = deploys_under_load(a, b, body, args, out, log)
    print(json.dumps(dep["load"]), flush=True)
    ov = overload(a, xs, args, log)
    print(json.dumps({k: ov[k] for k in ("at_capacity", "overload", "rss_mib")}), flush=True)
    payload = {"args": vars(args), "machine": machine_info(), "commit": git_commit(), "deploys": dep, "overload": ov,
               "load_avg": os.getloadavg()[0]}
    md = render(payload)
    write_outputs(payload, md, out / "serve-ops.json", out / "serve-ops.md")
    print(md)


# --- the harness entry (benchmarks/harness.py): the presets as this module's options -----------------------
PRESETS: dict[str, dict] = {"quick": {"deploys": 3, "seconds": 3, "overload_seconds": 4, "connections": 8}, "full": {}}


def run(ctx, **params):
    from benchmarks.support import script

    return script.run_main(ctx, sys.modules[__name__], params, takes_argv=False)

if __name__ == "__main__":
    main()
