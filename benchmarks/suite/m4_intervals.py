"""Calibrated intervals on M4 Hourly: the quantile MLP's 80% interval before and after split-conformal calibration.

The quantile student of the M4 benchmark (`m4_hourly`: MLP, lookback auto, levels 0.1/0.5/0.9, `--sampling
series`, ground truth only) is distilled once; `distilts distill` calibrates its intervals on the validation
windows (the H values before each series' test part: one window per series) by split conformal prediction
(`distill/intervals.py`). Both the calibrated student and the same weights without the calibration are compiled
for cortex-m7 (TFLite Micro, full int8) and scored on the 414 x 48 test values: coverage of [q0.1, q0.9], its
mean width relative to |y|, and the median's sMAPE/MASE/OWA (unchanged by the calibration).
Goal (issue 30): coverage within 5 points of the nominal 80%.

    python -m benchmarks run m4_intervals --preset full
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.fixtures import run_cli
from benchmarks.harness import Context, Record
from benchmarks.suite import m4_hourly as m4

LEVELS = "0.1,0.5,0.9"


def student(ctx: Context, epochs: int, stride: int) -> Path:
    """The calibrated quantile MLP (a cached fixture), as `m4_hourly` distils it."""
    params = {"epochs": epochs, "stride": stride, "levels": LEVELS, "H": m4.H}

    def build(tmp: Path) -> None:
        t0 = time.perf_counter()
        run_cli(["distill", "--student", "mlp", "--lookback", "auto", "--quantiles", LEVELS, "--sampling", "series",
                 "--batch-size", 512, "--patience", 4, "--data", ctx.fixtures.data("m4-hourly") / "Hourly-train.csv", "--horizon", m4.H,
                 "--stride", stride, "--epochs", epochs, "--no-kd", "--beta", "0", "--device", "cpu", "--quiet",
                 "--out", tmp / "student"], ctx.log)
        (tmp / "wall.json").write_text(json.dumps({"wall_s": time.perf_counter() - t0}))

    return ctx.fixtures.cached("m4-intervals", params, build) / "student"


def uncalibrated(calibrated: Path, work: Path) -> Path:
    """The same weights without the calibration (config.json's `intervals` dropped)."""
    out = work / "uncalibrated"
    if not (out / "config.json").exists():
        tmp = work / "uncalibrated.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        config = json.loads((calibrated / "config.json").read_text())
        config.pop("intervals", None)
        shutil.copy(calibrated / "model.safetensors", tmp / "model.safetensors")
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        tmp.replace(out)
    return out


def cortex_m7(ctx: Context, student_dir: Path) -> Path:
    art = student_dir / "artifacts" / "tflm-int8-cortex-m7"
    if not (art / "manifest.json").exists():
        run_cli(["compile", student_dir, "--target", "cortex-m7"], ctx.log)
    return art


def run(ctx: Context, epochs: int, stride: int) -> Iterator[Record]:
    calibrated = student(ctx, epochs, stride)
    work = calibrated.parent
    ids, train, test = m4.read_m4()
    naive = m4.score("Naive2", np.stack([m4.naive2(v) for v in train]), train, test, {})
    intervals = json.loads((calibrated / "config.json").read_text()).get("intervals", {})
    for name, sdir in (("calibrated", calibrated), ("not calibrated", uncalibrated(calibrated, work))):
        art = cortex_m7(ctx, sdir)
        row, q = m4.artifact_row(name, art, train, test, naive)
        cov = m4.coverage_row(name, q, test, [0.1, 0.5, 0.9])
        p = {"model": f"quantile MLP ({LEVELS}), ground truth only, cortex-m7 int8, {name}", "epochs": epochs,
             "stride": stride, "val_windows": intervals.get("windows"),
             "val_coverage": (intervals.get("val_coverage_after") if name == "calibrated"
                              else intervals.get("val_coverage_before") or {}).get("0.8")}
        yield ctx.record("coverage_80", cov["coverage_80"], "share", p,
                         note=f"within 5 points of 80%: {abs(cov['coverage_80'] - 0.8) <= 0.05}")
        yield ctx.record("rel_width", cov["rel_width"], "mean width / |y|", p)
        for metric in ("smape", "mase", "owa"):
            yield ctx.record(metric, row[metric], "", p)
        yield ctx.record("artifact_kib", row["size_kib"], "KiB", p)
        ctx.log(f"{name}: coverage {cov['coverage_80']:.3f}, width {cov['rel_width']:.3f}, OWA {row['owa']:.3f}")


def report(records: list[dict]) -> str:
    rows: dict[str, dict[str, Any]] = {}
    for r in records:
        rows.setdefault(r["params"]["model"], {"p": r["params"]})[r["metric"]] = r["value"]
    lines = ["M4 Hourly, 414 series x 48 test values; the 80% interval [q0.1, q0.9] of the compiled artifact:", "",
             "| model | test coverage | within 5 points | mean width / abs(y) | validation coverage | sMAPE | MASE | OWA |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for model, row in rows.items():
        val = row["p"].get("val_coverage")
        lines.append(f"| {model} | {row['coverage_80']:.3f} | {'yes' if abs(row['coverage_80'] - 0.8) <= 0.05 else 'no'} | "
                     f"{row['rel_width']:.3f} | {'' if val is None else f'{val:.3f}'} | {row['smape']:.3f} | "
                     f"{row['mase']:.3f} | {row['owa']:.3f} |")
    return "\n".join(lines)


PRESETS = {
    "quick": {"epochs": 1, "stride": 16},
    "full": {"epochs": 25, "stride": 2},
}
