"""Forecaster speed: `Forecaster.predict` at batch 1 per backend vs the numpy GEMM reference.

A DLinear trained on ETTh1 (ground truth only: weights do not change its cost) is compiled with the
default passes (folded into one MatMul + Add, scaler included) to each format x precision; each
artifact is loaded through the public API (`distilts.Forecaster.load(dir, threads=1)`) and its
`predict(window)` on one raw window [L, D] is timed against the physical reference: a numpy GEMM of
the same folded weights (x^T W + b, the bare arithmetic, no input checks, no output transpose), with
BLAS capped at the same one thread. All callables are timed in interleaved rounds by
`distilts.profile.timing.interleaved`, so machine load falls on all alike; `x reference` is the ratio
of medians. The goal (issue 26): every backend within 2x of the reference.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from distilts.profile import timing

from benchmarks.harness import Context, Record
from benchmarks.report import table

PRESETS = {
    "quick": {"lookback": 512, "horizon": 96, "formats": ["onnx", "openvino", "tflite"], "precisions": ["fp32"],
              "rounds": 9, "budget_s": 20.0},
    "full": {"lookback": 512, "horizon": 96, "formats": ["onnx", "openvino", "tflite"],
             "precisions": ["fp32", "int8"], "rounds": 25, "budget_s": 60.0},
}


def folded_reference(student_dir) -> tuple[np.ndarray, np.ndarray]:
    """(W [L, H] or [D, L, H], b [D, H]) of the student folded with its scaler (torch, once, untimed)."""
    from distilts.compile.passes import fold_linear
    from distilts.students import load_student_dir

    model, config = load_student_dir(student_dir)
    folded = fold_linear.fold(model, config["scaler"]["mean"], config["scaler"]["std"])
    w = folded.weight.numpy()
    w = w.T if folded.shared else w  # stored as nn.Linear ([H, L])
    return np.ascontiguousarray(w, np.float32), np.ascontiguousarray(folded.bias.numpy().T, np.float32)


def gemm(w: np.ndarray, b: np.ndarray):
    """The reference: y [D, H] = x^T W + b for one raw window x [L, D]."""
    if w.ndim == 2:
        return lambda x: x.T @ w + b
    return lambda x: np.einsum("ld,dlh->dh", x, w) + b


def run(ctx: Context, lookback: int, horizon: int, formats: list[str], precisions: list[str], rounds: int,
        budget_s: float) -> Iterator[Record]:
    from distilts import Forecaster

    student = ctx.fixtures.student("dlinear", lookback=lookback, horizon=horizon)
    w, b = folded_reference(student)
    window = np.ascontiguousarray(np.random.default_rng(0).standard_normal((lookback, w.shape[-2] if w.ndim == 3
                                                                            else b.shape[0])), np.float32)
    fns: dict[str, Any] = {"numpy_gemm-fp32": (lambda f=gemm(w, b): f(window))}
    for fmt in formats:
        for precision in precisions:
            art = ctx.fixtures.artifact(student, fmt, int8=precision == "int8")
            fc = Forecaster.load(art, threads=1)
            fns[f"{fmt}-{precision}"] = (lambda fc=fc: fc.predict(window))
    with timing.threads(1):
        timings = timing.interleaved(fns, rounds=rounds, budget_s=budget_s, threads=1)
    ref = timings["numpy_gemm-fp32"].median_ms
    for name, t in timings.items():
        fmt, _, precision = name.partition("-")
        params = {"backend": fmt.replace("_", " "), "precision": precision, "lookback": lookback, "horizon": horizon,
                  "batch": 1, "threads": 1}
        yield ctx.record("predict_ms_b1", t.median_ms, "ms", params, t.summary())
        yield ctx.record("x_reference", t.median_ms / ref, "ratio", params)


def report(records: list[dict]) -> str:
    rows: dict[str, dict] = {}
    for r in records:
        p = r["params"]
        row = rows.setdefault(f"{p['backend']}-{p['precision']}", {"what": f"{p['backend']} {p['precision']}"})
        if r["metric"] == "predict_ms_b1":
            row["ms"] = r["value"] * 1000 if r["value"] is not None else None
            row["iqr"] = (r.get("stats") or {}).get("iqr_rel")
        else:
            row["ratio"] = r["value"]
            row["goal"] = "reference" if p["backend"] == "numpy gemm" else ("yes" if r["value"] <= 2.0 else "NO")
    p0 = records[0]["params"]
    return (f"DLinear L={p0['lookback']}, H={p0['horizon']}, ETTh1 (7 variates), batch 1, 1 thread; medians of "
            "interleaved rounds.\n\n" + table(list(rows.values()), [("what", "backend"), ("ms", "predict µs"),
                                                                     ("iqr", "IQR / median"), ("ratio", "x reference"),
                                                                     ("goal", "within 2x")]))
