#!/usr/bin/env python
"""One row of benchmarks/suite/speed.py, in its own process: the runtime's profile worker plus the raw session call.

`python -m benchmarks.support.speed_worker SPEC.json` with the spec of `distilts.profile.worker` (its
batch-1 latency timer; throughput here is the median call time, see `time_throughput`), and:
- kind `artifact`: also times the backend's raw `session.run` at batch 1 and at each throughput batch
  (same process, same inputs), so `Forecaster.predict`'s own overhead is `predict - raw`;
- kind `reference`: the physical reference, a numpy GEMM of the folded DLinear weights (`weights`:
  an .npz with `weight` [L, H] shared or [D, L, H] per variate and `bias` [H, D]), no framework at all;
- kind `floor`: a backend's per-call floor: a model with no arithmetic (the first `horizon` steps of
  the window, so the same input and output shapes as a student) called through its runtime session.
numpy's BLAS threads are set by the caller through OPENBLAS_NUM_THREADS (before numpy loads).
`python -m benchmarks.support.speed_worker --fold STUDENT_DIR OUT.npz` writes those folded weights (torch is
imported in that process only: Linux keeps a process's peak RSS across fork + exec, so the parent
must stay small for the rows' peak RSS to be their own).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from distilts.profile.worker import artifact_model, load_model, predict_all, rss_mb, time_latency
from distilts.profile import timing


def time_throughput(fn, x: np.ndarray, batch: int, budget_s: float, min_calls: int = 7) -> dict:
    """Windows/s at `batch` from the MEDIAN call time (robust to a shared machine's load spikes, which
    inflate a mean over 3 calls several-fold): 1 warm-up, then at least `min_calls` calls and 1 s."""
    xb = np.ascontiguousarray(x[np.arange(batch) % len(x)])
    t = timing.per_call(lambda: fn(xb), warmup=1, iters=100_000, budget_s=max(1.0, budget_s), min_iters=min_calls)
    ms = t.samples_ms
    med = t.median_ms
    return {"batch": int(batch), "windows_per_s": 1000.0 * batch / med, "ms_per_batch_median": med,
            "ms_per_batch_min": float(np.min(ms)), "calls": len(ms)}


def reference_fn(weights: str):
    """y [B, D, H] = x^T W + b: the bare arithmetic of a folded DLinear (no output transpose)."""
    z = np.load(weights)
    w, b = z["weight"].astype(np.float32), np.ascontiguousarray(z["bias"].T, dtype=np.float32)  # b: [D, H]
    if w.ndim == 2:  # shared: one [B*D, L] x [L, H] GEMM
        def fn(x: np.ndarray) -> np.ndarray:
            n, L, D = x.shape
            return (np.ascontiguousarray(x.transpose(0, 2, 1)).reshape(n * D, L) @ w).reshape(n, D, -1) + b
    else:  # per variate: D GEMMs [B, L] x [L, H]
        def fn(x: np.ndarray) -> np.ndarray:
            return (np.matmul(x.transpose(2, 0, 1), w) + b[:, None, :]).transpose(1, 0, 2)
    return fn, {"backend": f"numpy {np.__version__} GEMM", "shared": w.ndim == 2}


def floor_fn(backend: str, lookback: int, horizon: int, n_variates: int, tmp: Path):
    """The runtime session of a no-arithmetic model `y = x[:, :horizon, :]` (backend: openvino | onnx)."""
    from distilts.runtime.backends import open_session

    if backend == "openvino":
        import openvino as ov
        from openvino import opset13 as ops

        x = ops.parameter([-1, lookback, n_variates], np.float32, name="x")
        i64 = lambda v: np.array([v], np.int64)  # noqa: E731
        y = ops.slice(x, i64(0), i64(horizon), i64(1), i64(1))
        path = tmp / "floor.xml"
        ov.save_model(ov.Model([y], [x]), str(path))
    else:
        import onnx
        from onnx import TensorProto, helper

        consts = [helper.make_tensor(n, TensorProto.INT64, [1], [v]) for n, v in
                  (("starts", 0), ("ends", horizon), ("axes", 1))]
        g = helper.make_graph([helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"])], "floor",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", lookback, n_variates])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", horizon, n_variates])],
                              consts)
        path = tmp / "floor.onnx"
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)]), str(path))
    sess = open_session(backend, path, batch=None, input_name="x", output_name="y", threads=1)
    return sess.run, {"backend": f"{backend} no-arithmetic graph ({sess.version})"}


def write_folded(student_dir: str, path: str) -> None:
    """The DLinear student + scaler folded exactly (distilts.compile.passes.fold_linear), as numpy arrays."""
    from distilts.compile.passes.fold_linear import fold
    from distilts.students import load_student_dir

    model, config = load_student_dir(student_dir)
    f = fold(model, config["scaler"]["mean"], config["scaler"]["std"])
    weight = f.weight.numpy().T if f.shared else f.weight.numpy()  # [L, H] or [D, L, H]
    np.savez(path, weight=weight, bias=f.bias.numpy())  # bias [H, D]


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    out = Path(spec["out"])
    x = np.load(spec["inputs"])
    base_cur, _ = rss_mb()
    t0 = time.perf_counter()
    raw: dict = {}
    if spec["kind"] == "reference":
        fn, facts = reference_fn(spec["weights"])
    elif spec["kind"] == "floor":
        fn, facts = floor_fn(spec["backend"], x.shape[1], int(spec["horizon"]), x.shape[2], out)
    elif spec["kind"] == "artifact":
        from distilts.runtime.forecaster import Forecaster

        fc = Forecaster.load(spec["path"], threads=spec.get("threads"))
        fn, facts = artifact_model(fc)
        raw = fc.sessions
    else:
        fn, facts = load_model(spec)
    load_s = time.perf_counter() - t0
    budget = float(spec.get("budget_s", 20.0))
    warmup, iters = int(spec.get("warmup", 10)), int(spec.get("iters", 200))
    result = {"load_s": load_s, "latency_ms": time_latency(fn, x, warmup, iters, budget),
              "throughput": [time_throughput(fn, x, int(b), budget / 4) for b in spec["batches"]], **facts}
    if raw:  # the backend's own call on a contiguous float32 batch of exactly its size
        s1 = raw.get(1) or raw.get(None)
        if s1 is not None:
            result["raw_latency_ms"] = time_latency(s1.run, np.ascontiguousarray(x, dtype=np.float32), warmup,
                                                    iters, budget)
        result["raw_throughput"] = [time_throughput(s.run, x, int(b), budget / 4) for b in spec["batches"]
                                    if (s := raw.get(int(b)) or raw.get(None)) is not None]
    if spec.get("predict", True):
        np.save(out / "pred.npy", predict_all(fn, x, int(spec.get("predict_batch", 64))).astype(np.float32))
    _, peak = rss_mb()
    result["rss_mb"] = {"baseline": base_cur, "peak": peak}
    (out / "result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    if sys.argv[1] == "--fold":
        write_folded(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1])
