#!/usr/bin/env python
"""int8 vs fp32 of the same backend, timed A/B interleaved in one process (robust to a shared machine).

`benchmarks/suite/speed.py` times each row in its own process one after another, so on a loaded machine two
rows of the same graph can differ by 2x at batch 256. This script loads an fp32 and an int8 artifact of
one backend side by side and alternates short rounds of `Forecaster.predict` calls between them, so both
see the same load; it reports the median and the minimum per-call time of each and their ratios.
`benchmarks/suite/speed.py` calls `pair` after its rows for its own int8-vs-fp32 verdict.

    python -m benchmarks run int8_pairs --preset full
    python -m benchmarks run int8_pairs --preset full
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if __name__ == "__main__":  # one BLAS/OpenMP thread before numpy loads (not when benchmarks/suite/speed.py imports `pair`)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from benchmarks.support.benchlib import ROOT, git_commit, machine_info, markdown_table, text_table, write_outputs

FORMATS = ("onnx", "openvino", "tflite")
COLUMNS = [("format", "format"), ("batch", "batch"), ("fp32_ms", "fp32 median ms"), ("int8_ms", "int8 median ms"),
           ("ratio_median", "int8 / fp32 (median)"), ("fp32_min_ms", "fp32 min ms"), ("int8_min_ms", "int8 min ms"),
           ("ratio_min", "int8 / fp32 (min)"), ("ratio_paired", "int8 / fp32 (paired rounds)"), ("int8_method", "int8 method"), ("verdict", "int8 no slower?")]


def pair(fmt: str, root: Path, batch: int, rounds: int, budget_s: float, threads: int | None = 1) -> dict:
    """Alternate rounds of predict calls between the fp32 and int8 artifacts of `fmt` (ROOT/<fmt>-<precision>)."""
    from distilts.runtime import Forecaster

    fcs = {p: Forecaster.load(root / f"{fmt}-{p}", threads=threads) for p in ("fp32", "int8")}
    L, D = fcs["fp32"].lookback, len(fcs["fp32"].columns)
    x = np.random.default_rng(0).normal(size=(batch, L, D)).astype(np.float32)
    calls = max(3, int(2000 / batch))
    for fc in fcs.values():
        fc.predict(x)
    per: dict[str, list[float]] = {p: [] for p in fcs}
    start = time.perf_counter()
    for r in range(rounds):
        for p in (("fp32", "int8") if r % 2 == 0 else ("int8", "fp32")):  # ABBA: no order bias
            fc = fcs[p]
            t = time.perf_counter()
            for _ in range(calls):
                fc.predict(x)
            per[p].append((time.perf_counter() - t) / calls * 1e3)
        if time.perf_counter() - start > budget_s:
            break
    med = {p: float(np.median(v)) for p, v in per.items()}
    mn = {p: float(np.min(v)) for p, v in per.items()}
    paired = float(np.median(np.asarray(per["int8"]) / np.asarray(per["fp32"])))  # rounds side by side share the load
    return {"format": fmt, "batch": batch, "fp32_ms": med["fp32"], "int8_ms": med["int8"],
            "ratio_median": med["int8"] / med["fp32"], "fp32_min_ms": mn["fp32"], "int8_min_ms": mn["int8"],
            "ratio_min": mn["int8"] / mn["fp32"], "ratio_paired": paired, "rounds": len(per["fp32"]), "calls_per_round": calls,
            "int8_method": (fcs["int8"].manifest.raw.get("quantization") or {}).get("method"),
            "verdict": "yes" if paired <= 1.05 else "NO"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--artifacts", default=str(ROOT / "benchmarks" / "runs" / "speed" / "artifacts" / "dlinear-L512-H96"))
    p.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    p.add_argument("--batches", nargs="+", type=int, default=[1, 256])
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--budget-s", type=float, default=20.0, help="max seconds per pair and batch")
    p.add_argument("--out-json", default=str(ROOT / "benchmarks" / "runs" / "int8_pairs" / "int8_pairs.json"))
    p.add_argument("--out-md", default=str(ROOT / "benchmarks" / "runs" / "int8_pairs" / "int8_pairs.md"))
    args = p.parse_args()
    root = Path(args.artifacts)
    t0 = time.perf_counter()
    rows = [pair(f, root, b, args.rounds, args.budget_s) for f in args.formats for b in args.batches]
    print(text_table(rows, COLUMNS))
    info = machine_info()
    md = (f"## int8 vs fp32, interleaved (`benchmarks/suite/int8_pairs.py`)\n\nMachine: {info.get('processor')}, "
          f"1 thread per backend, load average {os.getloadavg()[0]:.1f}; commit {git_commit()}; artifacts {root}.\n\n"
          + markdown_table(rows, COLUMNS)
          + "\n\n'int8 no slower?': yes when the median over rounds of (int8 round time / the fp32 round beside it) "
            "is at most 1.05: adjacent rounds (ABBA order) share the machine's load, so their ratio is the "
            "load-robust figure; medians and minimums of each are shown too.\n")
    write_outputs({"args": vars(args), "machine": info, "commit": git_commit(), "rows": rows,
                   "seconds": time.perf_counter() - t0}, md, args.out_json, args.out_md)
    print(f"wrote {args.out_json} and {args.out_md}")


# --- the harness entry (benchmarks/harness.py): the presets as this module's options -----------------------
PRESETS: dict[str, dict] = {"quick": {"rounds": 5, "budget_s": 3.0, "batches": [1]}, "full": {}}


def run(ctx, **params):
    import tempfile

    from benchmarks.support import script

    student = ctx.fixtures.student("dlinear", lookback=512, horizon=96)
    root = Path(tempfile.mkdtemp(prefix="int8-pairs-"))
    for fmt in FORMATS:
        for int8 in (False, True):
            (root / f"{fmt}-{'int8' if int8 else 'fp32'}").symlink_to(ctx.fixtures.artifact(student, fmt, int8=int8))
    return script.run_main(ctx, sys.modules[__name__], {**params, "artifacts": str(root)}, takes_argv=False)

if __name__ == "__main__":
    main()
