#!/usr/bin/env python
"""What each backend setting gives: batch-1 call time and batched throughput, one row per setting.

Rows: onnxruntime graph optimisation level, intra-op threads and spinning; OpenVINO performance hint,
inference precision and the way a call is made (`infer({0: x})`, shared memory, a pre-set input
tensor as the runtime does); LiteRT threads; and `Forecaster.predict` in latency and throughput mode
next to its session call (the runtime's own overhead). Same artifacts as benchmarks/suite/serve.py.

    python -m benchmarks run runtime_settings --preset full

Writes OUT/runtime_settings.{json,md} (OUT: benchmarks/runs/serve).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from benchmarks.support.benchlib import ROOT, git_commit, machine_info, markdown_table, text_table, write_outputs
from benchmarks.suite.serve import build_artifacts, paired_us, per_call_us


def onnx_rows(path: Path, x1: np.ndarray, xb: np.ndarray, s: float) -> list[dict]:
    import onnxruntime as ort

    rows = []
    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    for name, threads, spin in [("all", 1, "1"), ("basic", 1, "1"), ("disable", 1, "1"), ("all", 2, "1"),
                                ("all", 2, "0")]:
        o = ort.SessionOptions()
        o.graph_optimization_level = levels[name]
        o.intra_op_num_threads, o.inter_op_num_threads = threads, 1
        o.add_session_config_entry("session.intra_op.allow_spinning", spin)
        sess = ort.InferenceSession(str(path / "model.onnx"), o, providers=["CPUExecutionProvider"])
        rows.append({"backend": "onnx", "setting": f"graph opt {name}, intra threads {threads}, spinning {spin}",
                     "b1": lambda sess=sess: sess.run(["y"], {"x": x1}),
                     "batched": lambda sess=sess: sess.run(["y"], {"x": xb})})
    return rows


def openvino_rows(path: Path, x1: np.ndarray, xb: np.ndarray, s: float) -> list[dict]:
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(path / "model.xml"))
    rows = []
    default = core.compile_model(model, "CPU")
    default_prec = str(default.get_property("INFERENCE_PRECISION_HINT"))
    for hint, prec in [("LATENCY", "f32"), ("THROUGHPUT", "f32"), ("LATENCY", None)]:
        cfg = {"PERFORMANCE_HINT": hint, **({"INFERENCE_PRECISION_HINT": prec} if prec else {})}
        if hint == "LATENCY":
            cfg["INFERENCE_NUM_THREADS"] = 1
        cm = core.compile_model(model, "CPU", cfg)
        label = f"{hint}, precision {prec or 'default (' + default_prec + ')'}"
        calls = {"infer({0: x})": lambda req, x: req.infer({0: x}),
                 "infer(share_inputs, share_outputs)":
                     lambda req, x: req.infer({0: x}, share_inputs=True, share_outputs=True)}
        for call, fn in calls.items():
            if prec is None and call != "infer({0: x})":
                continue
            r1, rb = cm.create_infer_request(), cm.create_infer_request()
            rows.append({"backend": "openvino", "setting": f"{label}, {call}",
                         "b1": lambda fn=fn, r1=r1: fn(r1, x1), "batched": lambda fn=fn, rb=rb: fn(rb, xb)})
        if prec:  # the runtime's call: a pre-set input tensor sharing a numpy buffer, output copied
            def preset(x):
                req, buf = cm.create_infer_request(), np.empty_like(x)
                req.set_input_tensor(ov.Tensor(buf, shared_memory=True))

                def call():
                    np.copyto(buf, x)
                    req.infer()
                    return req.get_output_tensor(0).data.copy()
                return call
            rows.append({"backend": "openvino", "setting": f"{label}, pre-set shared input tensor (runtime)",
                         "b1": preset(x1), "batched": preset(xb)})
    return rows


def tflite_rows(path: Path, x1: np.ndarray, xb: np.ndarray, s: float) -> list[dict]:
    from ai_edge_litert import interpreter as lite

    rows = []
    files = {int(p.stem.split("-b")[-1]): p for p in path.glob("model-b*.tflite")}
    def make(b: int, threads: int):
        it = lite.Interpreter(model_path=str(files[b]), num_threads=threads)
        it.allocate_tensors()
        i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
        x = x1 if b == 1 else np.ascontiguousarray(np.resize(xb, (b, *xb.shape[1:])))

        def call():
            it.set_tensor(i, x)
            it.invoke()
            return it.get_tensor(o)
        return call
    for threads in (1, 2):
        rows.append({"backend": "tflite", "setting": f"num_threads {threads}", "b1": make(1, threads),
                     "batched": make(max(files), threads), "batch": max(files)})
    return rows


def forecaster_rows(path: Path, x1: np.ndarray, xb: np.ndarray, s: float) -> list[dict]:
    from distilts.runtime import Forecaster

    rows = []
    for mode in ("latency", "throughput"):
        fc = Forecaster.load(path, threads=1, mode=mode)
        sess = fc.sessions.get(1) or fc.sessions[None]
        rows.append({"backend": fc.backend, "setting": f"Forecaster {mode} mode, 1 thread: predict",
                     "b1": lambda fc=fc: fc.predict(x1[0]), "batched": lambda fc=fc: fc.predict(xb),
                     "session": lambda sess=sess: sess.run(x1)})
    return rows


def stub_overhead_us(path: Path, x1: np.ndarray, seconds: float) -> dict:
    """`Forecaster.predict` over a session that returns a ready array: the runtime's own cost per call
    (input checks and dispatch), free of the backend's timing noise."""
    from distilts.runtime import Forecaster

    fc = Forecaster.load(path, threads=1)
    y = np.zeros((1, fc.horizon, len(fc.columns)), np.float32)

    class Stub:
        batch = 1

        def run(self, x):
            return y

    real = fc.sessions.get(1) or fc.sessions[None]
    fc._one = Stub()
    stub_us = per_call_us(lambda: fc.predict(x1[0]), seconds)
    call_us = per_call_us(lambda: fc._one.run(x1), seconds)
    fc._one = real
    return {"backend": fc.backend, "setting": "Forecaster.predict over a stub session (runtime's own cost)",
            "b1_us": stub_us - call_us, "batch": None, "batched_wps": None}


def measure(rows: list[dict], seconds: float, rounds: int = 5) -> None:
    """Per-call times of every row's callables, in `rounds` round-robin passes (median kept), so that a
    load that comes and goes on a shared machine hits every row alike. The Forecaster rows also get
    their session call timed in alternation with predict (paired_us)."""
    keys = [(r, k) for r in rows for k in ("b1", "batched")]
    times: dict[int, list[float]] = {i: [] for i in range(len(keys))}
    for _ in range(rounds):
        for i, (r, k) in enumerate(keys):
            times[i].append(per_call_us(r[k], seconds / rounds, 50 if k == "b1" else 5))
    for i, (r, k) in enumerate(keys):
        us = float(np.median(times[i]))
        if k == "b1":
            r["b1_us"] = us
        else:
            r["batched_wps"] = r["batch"] / us * 1e6
    for r in rows:
        if "session" in r:
            r["session_us"], r["b1_us"], r["overhead_us"] = paired_us(r["session"], r["b1"], seconds)
        for k in ("b1", "batched", "session"):
            r.pop(k, None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifact", action="append", default=[])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "ETTh1.csv"))
    p.add_argument("--lookback", type=int, default=512)
    p.add_argument("--horizon", type=int, default=96)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seconds", type=float, default=2.0, help="seconds per measurement (over all rounds)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "runs" / "serve"))
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    arts = [Path(a) for a in (args.artifact or build_artifacts(args, out, out / "serve.log"))]
    load_before = os.getloadavg()[0]
    rows = []
    for art in arts:
        man = json.loads((art / "manifest.json").read_text())
        rng = np.random.default_rng(0)
        x1 = rng.normal(0, 1, (1, man["lookback"], len(man["columns"]))).astype(np.float32)
        xb = np.ascontiguousarray(np.repeat(x1, args.batch, axis=0))
        backend_rows = {"onnx": onnx_rows, "openvino": openvino_rows, "tflite": tflite_rows}[man["backend"]]
        these = backend_rows(art, x1, xb, args.seconds) + forecaster_rows(art, x1, xb, args.seconds)
        for r in these:
            r.setdefault("batch", args.batch)
        measure(these, args.seconds)
        these.append(stub_overhead_us(art, x1, args.seconds))
        for r in these:
            rows.append(r)
            print(f"{r['backend']:>9} {r['setting']:<75} b=1 {r['b1_us']:8.1f} us  b={r['batch']} "
                  f"{r['batched_wps'] or 0:9.0f} windows/s", flush=True)
    payload = {"args": vars(args), "machine": machine_info(), "commit": git_commit(), "load_before": load_before,
               "load_after": os.getloadavg()[0], "rows": rows}
    cols = [("backend", "backend"), ("setting", "setting"), ("b1_us", "batch-1 us/call"),
            ("session_us", "session.run us"), ("overhead_us", "predict overhead us"),
            ("batch", "batch"), ("batched_wps", "batched windows/s")]
    m = payload["machine"]
    md = (f"### Runtime settings per backend (DLinear L={args.lookback} H={args.horizon}, fp32)\n\n"
          f"Machine: {m['processor']}, {m['cpu_count']} cores; {m['date']}; commit {payload['commit']}; load average "
          f"{load_before:.2f} before, {payload['load_after']:.2f} after.\n\n" + markdown_table(rows, cols, digits=1))
    write_outputs(payload, md, out / "runtime_settings.json", out / "runtime_settings.md")
    print(text_table(rows, cols, digits=1))


# --- the harness entry (benchmarks/harness.py): the presets as this module's options -----------------------
PRESETS: dict[str, dict] = {"quick": {"seconds": 0.3}, "full": {}}


def run(ctx, **params):
    from benchmarks.support import script

    return script.run_main(ctx, sys.modules[__name__], params, takes_argv=False)

if __name__ == "__main__":
    main()
