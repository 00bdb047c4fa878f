#!/usr/bin/env python
"""Batch-1 cost of the quantile head: a compiled DLinear with 9 levels vs the same point DLinear.

Trains (or reuses) a point and a quantile (deciles, Q=9) DLinear on ETTh1 (L=512, H=96; 1 epoch:
the weights do not change the arithmetic), compiles both to every format x precision, then times
`Forecaster.predict` (point) and `Forecaster.predict_quantiles` (Q=9) on one window, 1 thread,
interleaved call by call in one process (so load on a shared machine hits both alike); median of
`--calls` calls each. The goal (issue 19): the quantile artifact under 2x the point one.

    python -m benchmarks run quantile_speed --preset full
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.support.benchlib import DISTILTS, ROOT, git_commit, machine_info, markdown_table, run_timed, text_table, write_outputs
from distilts.profile import timing

FORMATS = [("onnx", "fp32"), ("onnx", "int8"), ("openvino", "fp32"), ("openvino", "int8"), ("tflite", "fp32"),
           ("tflite", "int8")]


def student(args, work: Path, quantiles: bool, log: Path) -> Path:
    out = work / ("dlinear-q9" if quantiles else "dlinear-point")
    if not (out / "config.json").exists():
        run_timed([*DISTILTS, "distill", "--data", args.data, "--student", "dlinear", "--no-kd", "--beta", "0",
                   "--lookback", args.lookback, "--horizon", args.horizon, "--epochs", 1, "--max-train-windows", 500,
                   "--device", "cpu", "--quiet", "--out", out, *(["--quantiles", "deciles"] if quantiles else [])],
                  log)
    return out


def artifact(sdir: Path, fmt: str, prec: str, log: Path) -> Path:
    out = sdir / "artifacts" / f"{fmt}-{prec}"
    if not (out / "manifest.json").exists():
        run_timed([*DISTILTS, "compile", sdir, "--target", fmt, *(["--int8"] if prec == "int8" else [])], log)
    return out


def time_pair(point_dir: Path, q_dir: Path, x: np.ndarray, calls: int) -> dict:
    from distilts.runtime import Forecaster

    p, q = Forecaster.load(point_dir, threads=1), Forecaster.load(q_dir, threads=1)
    one = np.ascontiguousarray(x[0])
    # interleaved rounds of both (distilts.profile.timing): machine load falls on point and quantile alike
    t = timing.interleaved({"point": lambda: p.predict(one), "quantile": lambda: q.predict_quantiles(one)},
                           warmup=50, rounds=max(5, calls // 100), threads=1)
    mp, mq = t["point"].median_ms, t["quantile"].median_ms
    return {"point_ms": mp, "quantile_ms": mq, "ratio": mq / mp, "under_2x": mq < 2 * mp,
            "point_size": sum(m["size"] for m in p.manifest.raw["models"]),
            "quantile_size": sum(m["size"] for m in q.manifest.raw["models"]), "levels": len(q.levels)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "ETTh1.csv"))
    p.add_argument("--lookback", type=int, default=512)
    p.add_argument("--horizon", type=int, default=96)
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--work-dir", default=str(ROOT / "benchmarks" / "runs" / "quantile-speed"))
    args = p.parse_args(argv)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "quantile_speed.log"
    t0 = time.perf_counter()
    point, q9 = student(args, work, False, log), student(args, work, True, log)
    from distilts.data import load_dataset

    x = load_dataset(args.data).windows("test", args.lookback, args.horizon, 1).inputs(slice(0, 1))
    x = x * np.asarray(json.loads((point / "config.json").read_text())["scaler"]["std"]) + np.asarray(
        json.loads((point / "config.json").read_text())["scaler"]["mean"])  # raw values, as a device sees them
    rows = []
    for fmt, prec in FORMATS:
        res = time_pair(artifact(point, fmt, prec, log), artifact(q9, fmt, prec, log), x.astype(np.float32), args.calls)
        rows.append({"artifact": f"{fmt}-{prec}", **res})
        print(f"{fmt}-{prec}: point {res['point_ms']:.4f} ms, Q=9 {res['quantile_ms']:.4f} ms ({res['ratio']:.2f}x)",
              flush=True)
    cols = [("artifact", "artifact"), ("point_ms", "point b=1 ms"), ("quantile_ms", "Q=9 b=1 ms"),
            ("ratio", "ratio"), ("under_2x", "< 2x"), ("point_size", "point bytes"), ("quantile_size", "Q=9 bytes")]
    rec = {"machine": machine_info(), "commit": git_commit(), "args": vars(args), "rows": rows,
           "wall_s": time.perf_counter() - t0}
    md = (f"# Quantile DLinear (Q=9) vs point DLinear, batch 1, 1 thread (L={args.lookback}, H={args.horizon}, "
          f"ETTh1)\n\n{markdown_table(rows, cols, digits=4)}\n")
    write_outputs(rec, md, work / "quantile_speed.json", work / "quantile_speed.md")
    print()
    print(text_table(rows, cols, digits=4))


# --- the harness entry (benchmarks/harness.py): the presets as this module's options -----------------------
PRESETS: dict[str, dict] = {
    "quick": {"lookback": 96, "horizon": 24, "calls": 300,
              "work_dir": str(ROOT / "benchmarks" / "runs" / "quantile-speed-quick")},
    "full": {},
}


def run(ctx, **params):
    from benchmarks.support import script

    return script.run_main(ctx, sys.modules[__name__], params, takes_argv=True)

if __name__ == "__main__":
    main()
