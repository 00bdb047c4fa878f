"""Batch forecasting throughput and growth: windows/s against the raw backend session, time and peak RSS
from 414 to 100,000 series, one process against Ray with 2 workers.

The series beyond M4 Hourly's 414 are REPLICATED M4 Hourly series (series i is M4 series i mod 414
under a new id, with made-up hourly timestamps): the scale figures measure reading, validation,
windowing, inference and writing, not forecast quality.

    python -m benchmarks run batch_scale --preset full
    python -m benchmarks run batch_scale --preset full

Each scale runs `distilts.batch.panel.forecast_file` in its own process (peak RSS = that process's
ru_maxrss, the whole Python process); the raw session figure is the artifact's own session called on
[256, L, 1] arrays already in memory, with the same threads, in the same process right after (this
machine is shared, so both figures are taken under the same load). "Forecast stage" is the time in
`forecast_block`'s loop: cutting the windows out of the series and running the backend. Writes benchmarks/results/batch_scale.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.support.benchlib import ROOT, git_commit, machine_info, markdown_table, text_table, write_outputs
from distilts.profile import timing

M4 = ROOT.parent / "shared" / "data" / "m4"


def make_file(n_series: int, path: Path) -> Path:
    """Long-format Parquet of `n_series` replicated M4 Hourly series (item_id, timestamp, target)."""
    if path.exists():
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq

    from distilts.data.panel import load_panel

    m4 = load_panel(M4 / "Hourly-train.csv")
    start = np.datetime64("2020-01-01T00:00:00", "s").astype(np.int64)
    tmp = path.with_suffix(".tmp")
    schema = pa.schema([("item_id", pa.string()), ("timestamp", pa.timestamp("s")), ("target", pa.float32())])
    with pq.ParquetWriter(tmp, schema, compression="zstd", use_dictionary=["item_id"],
                          column_encoding={"timestamp": "DELTA_BINARY_PACKED"}) as w:
        for lo in range(0, n_series, 2000):
            idx = np.arange(lo, min(lo + 2000, n_series))
            src = idx % len(m4)
            lens = m4.lengths[src]
            ids = np.repeat(np.array([f"{m4.ids[s]}-r{i // len(m4)}" for i, s in zip(idx, src)]), lens)
            t = np.concatenate([start + 3600 * np.arange(n) for n in lens])
            v = np.concatenate([m4.series(s) for s in src])
            w.write_table(pa.table({"item_id": ids, "timestamp": pa.array(t, pa.timestamp("s")), "target": v},
                                   schema=schema), row_group_size=1 << 20)
    os.replace(tmp, path)
    return path


def worker(artifact: str, data: str, out: str, threads: int, batch: int) -> None:
    """One scale point in this process: forecast every series, print the report and peak RSS as JSON."""
    import resource

    from distilts.batch.panel import forecast_file
    from distilts.runtime.forecaster import Forecaster

    fc = Forecaster.load(artifact, threads=threads, mode="throughput")
    x = np.zeros((batch, fc.lookback, 1), np.float32)
    for _ in range(20):  # the same warm-up as the raw session figure gets
        fc.predict(x)
    rep = forecast_file(fc, data, out, batch=batch, progress=False)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    raw = raw_session(artifact, threads, batch)  # the same process, right after: the same machine load
    print(json.dumps({"raw_windows_per_s": raw, "series": rep.series, "windows": rep.windows, "rows_out": rep.rows, "rows_in": rep.input_rows,
                      "seconds": rep.seconds, "predict_seconds": rep.predict_seconds, "skipped": len(rep.skipped),
                      "peak_rss_mb": rss}))


def raw_session(artifact: str, threads: int, batch: int, seconds: float = 3.0) -> float:
    """Windows/s of the artifact's backend session alone on [batch, L, 1] arrays in memory."""
    from distilts.runtime.forecaster import Forecaster

    fc = Forecaster.load(artifact, threads=threads, mode="throughput")
    sess = next(iter(fc.sessions.values()))
    x = np.random.default_rng(0).normal(size=(batch, fc.lookback, 1)).astype(np.float32) * 100 + 1000
    for _ in range(20):
        sess.run(x)
    return timing.throughput(lambda: sess.run(x), batch, budget_s=seconds)["windows_per_s"]


def run_point(artifact: str, data: Path, out: Path, threads: int, batch: int) -> dict:
    res = subprocess.run([sys.executable, "-m", "benchmarks.suite.batch_scale", "--worker", artifact, str(data), str(out), str(threads),
                          str(batch)], capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def ray_point(artifact: str, data: Path, out: Path, workers: int) -> dict:
    import ray

    from distilts.batch.ray_engine import forecast_ray

    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        t0 = time.perf_counter()
        rep = forecast_ray(artifact, data, out, workers=workers, range_rows=max(1, _rows(data) // (2 * workers)))
        return {"seconds": time.perf_counter() - t0, "series": rep.series, "windows": rep.windows}
    finally:
        ray.shutdown()


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def same_numbers(one: Path, ray_dir: Path) -> float:
    """Max abs difference of the forecasts, rows matched by (id, timestamp)."""
    import pyarrow.dataset as pads

    a = pads.dataset(str(one)).to_table().sort_by([("item_id", "ascending"), ("timestamp", "ascending")])
    b = pads.dataset(str(ray_dir)).to_table().sort_by([("item_id", "ascending"), ("timestamp", "ascending")])
    if a.num_rows != b.num_rows or a.column("item_id") != b.column("item_id") or \
            a.column("timestamp") != b.column("timestamp"):
        return float("inf"), float("inf")
    fa, fb = a.column("forecast").to_numpy().astype(np.float64), b.column("forecast").to_numpy().astype(np.float64)
    diff = np.abs(fa - fb)
    return float(diff.max()), float(np.max(diff / np.maximum(np.abs(fa), 1e-12)))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        a, d, o, t, b = sys.argv[2:7]
        worker(a, d, o, int(t), int(b))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifact", default=str(ROOT / "benchmarks/runs/m4h/dlinear-kd/artifacts/onnx-fp32"))
    ap.add_argument("--series", default="414,10000,100000")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--ray-series", type=int, default=10000)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--work", default=str(ROOT / "benchmarks/runs/scale"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/batch_scale"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    raw = raw_session(args.artifact, args.threads, args.batch)
    print(f"raw session, batch {args.batch}, {args.threads} threads: {raw:,.0f} windows/s", flush=True)
    rows = []
    for n in [int(s) for s in args.series.split(",")]:
        data = make_file(n, work / f"series-{n}.parquet")
        r = run_point(args.artifact, data, work / f"forecasts-{n}.parquet", args.threads, args.batch)
        r.update(n_series=n, file_mb=data.stat().st_size / 2**20,
                 stage_windows_per_s=r["windows"] / r["predict_seconds"],
                 end_to_end_windows_per_s=r["windows"] / r["seconds"])
        r["stage_vs_raw"] = r["stage_windows_per_s"] / r["raw_windows_per_s"]
        rows.append(r)
        print(text_table([r], COLS), flush=True)
    ray_row = None
    if not args.no_ray:
        n = args.ray_series
        data = make_file(n, work / f"series-{n}.parquet")
        one = run_point(args.artifact, data, work / f"forecasts-{n}.parquet", 1, args.batch)
        two = ray_point(args.artifact, data, work / f"ray-{n}", workers=2)
        ray_row = {"n_series": n, "one_process_1_thread_s": one["seconds"], "ray_2_workers_s": two["seconds"],
                   "same_rows": True}
        ray_row["max_abs_diff"], ray_row["max_rel_diff"] = same_numbers(work / f"forecasts-{n}.parquet",
                                                                       work / f"ray-{n}")
        ray_row["same_rows"] = ray_row["max_abs_diff"] != float("inf")
        print(ray_row, flush=True)
    md = (f"## Batch forecasting: throughput and growth\n\n`python -m benchmarks run batch_scale --preset full` (artifact "
          f"`{Path(args.artifact).relative_to(ROOT) if Path(args.artifact).is_relative_to(ROOT) else args.artifact}`, "
          f"batch {args.batch}, {args.threads} threads); commit {git_commit()}. Series beyond 414 are replicated "
          f"M4 Hourly series.\n\nRaw session at batch {args.batch}: {raw:,.0f} windows/s.\n\n"
          + markdown_table(rows, COLS) + "\n")
    if ray_row:
        md += ("\n" + markdown_table([ray_row], [("n_series", "series"), ("one_process_1_thread_s", "one process s"),
                                                ("ray_2_workers_s", "Ray, 2 workers s"),
                                                ("same_rows", "same ids and timestamps"),
                                                ("max_abs_diff", "max abs diff"), ("max_rel_diff", "max rel diff")],
                                  digits=9) + "\n")
    write_outputs({"machine": machine_info(), "settings": vars(args), "raw_session_windows_per_s": raw,
                   "rows": rows, "ray": ray_row}, md, f"{args.out}.json", f"{args.out}.md")
    print(f"-> {args.out}.json, {args.out}.md")


COLS = [("n_series", "series"), ("rows_in", "rows read"), ("file_mb", "file MB"), ("seconds", "total s"),
        ("end_to_end_windows_per_s", "windows/s end to end"), ("stage_windows_per_s", "windows/s forecast stage"),
        ("raw_windows_per_s", "raw session windows/s"), ("stage_vs_raw", "stage / raw session"),
        ("peak_rss_mb", "peak RSS MB")]


# --- the harness entry (benchmarks/harness.py): the presets as this module's options -----------------------
PRESETS: dict[str, dict] = {"quick": {"series": "414,2000", "no_ray": True, "m4_preset": "quick"},
               "full": {"series": "414,10000,100000", "no_ray": False, "m4_preset": "full"}}


def run(ctx, m4_preset: str, **params):
    from benchmarks import harness
    from benchmarks.suite import m4_hourly
    from benchmarks.support import script

    runs = Path(m4_hourly.PRESETS[m4_preset]["runs"])
    artifact = runs / "dlinear-kd" / "artifacts" / "onnx-fp32"
    if not (artifact / "manifest.json").exists():
        ctx.log(f"building the M4 global DLinear: the m4_hourly benchmark, {m4_preset} preset")
        harness.run("m4_hourly", m4_preset, write=False, log=ctx.log)
    return script.run_main(ctx, sys.modules[__name__], {**params, "artifact": str(artifact)}, takes_argv=False)

if __name__ == "__main__":
    main()
