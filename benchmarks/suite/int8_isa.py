#!/usr/bin/env python
"""int8 per instruction set: which onnxruntime int8 settings saturate where.

Builds a student's ONNX int8 candidates with full-range and reduced-range (7-bit) weights (and the
weight-only candidate, which has no int8 arithmetic), then runs
each (and the fp32 export) on three CPUs: this one (natively), an x86 WITHOUT VNNI (qemu-x86_64
-cpu Haswell: AVX2 only, onnxruntime's u8 x s8 kernels add pairs of products in saturating int16) and
arm64 (the emulated Raspberry Pi of scripts/arm64-device.sh). Prints rel-MSE / max abs error vs the
PyTorch student (normalized units, held-out test windows) and writes JSON.

    python -m benchmarks run int8_isa --preset full
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

RUN = """
import sys, numpy as np, onnxruntime as ort
x = np.load(sys.argv[1]); out = {}
for f in sys.argv[3:]:
    s = ort.InferenceSession(f, providers=["CPUExecutionProvider"])
    out[f.rsplit("/", 1)[-1]] = s.run(None, {"x": x})[0]
np.savez(sys.argv[2], **out)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("student")
    ap.add_argument("--data", default=None)
    ap.add_argument("--windows", type=int, default=256, help="test windows (default: compile's 256)")
    ap.add_argument("--calib-windows", type=int, default=256)
    ap.add_argument("--json", default="benchmarks/results/int8_isa.json")
    a = ap.parse_args()

    from distilts.device import arm64
    from distilts.compile import verify
    from distilts.compile.backends import onnx as onnx_export
    from distilts.compile.data import load_compile_data
    from distilts.compile.wrapper import torch_predict, wrap_student
    from distilts.students import load_student_dir
    from distilts.runtime.arch import host_isa

    model, config = load_student_dir(a.student)
    wrapper = wrap_student(model, config)
    data = load_compile_data(config, a.data)
    x, calib = data.windows("test", a.windows), data.windows("train", a.calib_windows)
    ref = torch_predict(wrapper, x)
    mean, std = (np.asarray(config["scaler"][k], np.float64) for k in ("mean", "std"))
    dev = arm64.find_device(["onnx"]) or arm64.build(["onnx"])
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        fp32 = d / "fp32.onnx"
        onnx_export.export_onnx(wrapper, int(config["lookback"]), len(config["columns"]), fp32)
        files = [fp32]
        for rr in (False, True):
            for method, (p, _) in onnx_export.int8_candidates(fp32, d, calib, reduce_range=rr).items():
                if not (rr and method == "weights-int8"):  # weight-only: no reduce_range variant
                    files.append(p.rename(d / f"{method}{'-reduce_range' if rr else ''}.onnx"))
        np.save(d / "x.npy", x)
        script = d / "run.py"
        script.write_text(RUN)
        args = [str(script), str(d / "x.npy"), "OUT", *map(str, files)]
        cpus = {f"{host_isa()} (this CPU)": [sys.executable],
                "avx2, no VNNI (qemu-x86_64 -cpu Haswell)": [str(dev.home / "qemu-x86_64"), "-cpu", "Haswell",
                                                             sys.executable],
                "arm64 (emulated Pi)": None}
        table: dict[str, dict[str, dict]] = {}
        for cpu, argv in cpus.items():
            out = d / f"{len(table)}.npz"
            run_args = [str(out) if a_ == "OUT" else a_ for a_ in args]
            if argv is None:
                res = dev.run(run_args, ["onnx"])
            else:
                res = subprocess.run([*argv, *run_args], capture_output=True, text=True)
            if res.returncode != 0:
                print(f"{cpu}: failed: {res.stderr[-500:]}", file=sys.stderr)
                continue
            preds = np.load(out)
            table[cpu] = {k.removesuffix(".onnx"): {m: v for m, v in verify.errors(preds[k], ref, mean, std).items()
                                                    if m != "max_abs_err_raw"} for k in preds.files}
    methods = list(next(iter(table.values())))
    print(f"rel-MSE / max abs error vs the PyTorch student ({len(x)} test windows, normalized units), "
          f"{Path(a.student).name}")
    print("| candidate | " + " | ".join(table) + " |")
    print("|---|" + "---|" * len(table))
    for m in methods:
        print(f"| {m} | " + " | ".join(f"{t[m]['rel_mse']:.2e} / {t[m]['max_abs_err']:.3f}" for t in table.values())
              + " |")
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps({"student": str(a.student), "windows": len(x), "results": table}, indent=2))
    return 0


# --- the harness entry (benchmarks/harness.py): the presets as this module's options -----------------------
PRESETS: dict[str, dict] = {"quick": {"lookback": 96, "horizon": 24, "windows": 64, "calib_windows": 64},
           "full": {"lookback": 512, "horizon": 96, "windows": 256, "calib_windows": 256}}


def run(ctx, lookback: int, horizon: int, windows: int, calib_windows: int):
    import json as _json

    from benchmarks.support import script

    student = ctx.fixtures.student("dlinear", lookback=lookback, horizon=horizon)
    out = Path(tempfile.mkdtemp(prefix="int8-isa-")) / "int8_isa.json"
    script.call_main(sys.modules[__name__], {"_args": [str(student)], "windows": windows,
                                             "calib_windows": calib_windows, "json": str(out)}, takes_argv=False)
    payload = _json.loads(out.read_text())
    rows = [{"cpu": cpu, "candidate": cand, **errs} for cpu, table in payload["results"].items()
            for cand, errs in table.items()]
    return script.rows_records(ctx, rows, {"lookback": lookback, "horizon": horizon})

if __name__ == "__main__":
    sys.exit(main())
