#!/usr/bin/env python
"""Speed benchmark: compiled students vs the physical reference, the PyTorch student and teachers, on one machine.

For each student (DLinear, iTransformer) x format (onnx, openvino, tflite) x precision (fp32, int8):
`distilts compile`, then in a fresh subprocess per row (benchmarks/support/speed_worker.py): batch-1 latency
(median, p95) of `Forecaster.predict` and of the backend's raw session call, batch-256 throughput of
both, peak RSS, file size and test MSE on the same ETTh1 windows. Next to them: the physical
reference (a numpy GEMM of the folded DLinear weights, same thread count), the PyTorch student
(eager) and the teachers: the PatchTST teacher actually distilled (trained here) and TimeMoE-50M
built at real size from its published config with RANDOM weights (only its cost is measured, never
its forecasts; Chronos-T5 tiny/small on request: they take 1-15 min per call). Every ratio is
computed from the same run. The int8-vs-fp32 verdict comes from alternating rounds of both artifacts in one
process after the rows (benchmarks/suite/int8_pairs.py), not from the rows' one-after-another times.

    python -m benchmarks run speed --preset full
    python -m benchmarks run speed --preset full
    python -m benchmarks run speed --preset full
    python -m benchmarks run speed --preset full
    python -m benchmarks report   # RESULTS.md from the stored records
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.support.benchlib import DISTILTS, ROOT, git_commit, machine_info, markdown_table, run_timed, text_table, write_outputs
from benchmarks.suite.int8_pairs import pair

SHARED = ROOT.parent / "shared"
STUDENTS = ("dlinear", "itransformer")
FORMATS = ("onnx", "openvino", "tflite")
PRECISIONS = ("fp32", "int8")
# real-size teachers built from published configs with random weights: name -> (family, config file)
REAL_SIZE_TEACHERS = {
    "timemoe-50m": ("timemoe", "timemoe-50m.json"),
    "chronos-t5-tiny": ("chronos", "chronos-t5-tiny.json"),
    "chronos-t5-small": ("chronos", "chronos-t5-small.json"),
}
# newer families: configs in benchmarks/teacher-configs (see its README); None = defined by the package itself
NEW_TEACHER_CONFIGS = Path(__file__).resolve().parents[1] / "teacher-configs"
REAL_SIZE_TEACHERS.update({
    "chronos-2": ("chronos-2", NEW_TEACHER_CONFIGS / "chronos-2.json"),
    "moirai-2.0-r-small": ("moirai-2", NEW_TEACHER_CONFIGS / "moirai-2.0-r-small.json"),
    "timesfm-2.5-200m": ("timesfm", None),
})


WORKER = ["-m", "benchmarks.support.speed_worker"]


# --- one row = one fresh process: benchmarks/support/speed_worker.py (the runtime's profile worker + raw calls) ----
def measure(spec: dict, inputs: Path, y_true: np.ndarray | None, scaler: tuple[np.ndarray, np.ndarray],
            work: Path, log: Path) -> dict:
    """Time one model in its own interpreter (so peak RSS is its own), with the same BLAS/OpenMP threads.

    spec: kind (artifact | student | teacher | reference), path, name (teacher family), horizon, iters,
    warmup, budget_s, batches (throughput batch sizes), weights (reference). Returns flat numbers, or
    {'error': ...}.
    """
    wdir = Path(tempfile.mkdtemp(prefix="row-", dir=work))
    full = {"threads": None, "predict_batch": 64, "predict": y_true is not None, **spec, "inputs": str(inputs),
            "out": str(wdir)}
    (wdir / "spec.json").write_text(json.dumps(full))
    t = full["threads"]
    env = {k: str(t) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")} if t else None
    try:
        wall, _ = run_timed([sys.executable, *WORKER, wdir / "spec.json"], log=log, env=env)
    except RuntimeError as exc:
        return {"error": str(exc).strip().splitlines()[-1][:300]}
    res = json.loads((wdir / "result.json").read_text())
    lat = res["latency_ms"]
    out: dict[str, Any] = {"latency_ms_median": lat["p50"], "latency_ms_p95": lat["p95"], "latency_calls": lat["n"],
                           "load_s": res["load_s"], "peak_rss_mb": res["rss_mb"]["peak"],
                           "baseline_rss_mb": res["rss_mb"]["baseline"], "process_wall_s": wall,
                           "backend": res.get("backend"), "param_count": res.get("param_count"),
                           "load_avg": os.getloadavg()[0]}
    for t in res.get("throughput", []):
        out["throughput_wps"], out["throughput_batch"] = t["windows_per_s"], t["batch"]
    if "raw_latency_ms" in res:
        out["raw_ms_median"] = res["raw_latency_ms"]["p50"]
    for t in res.get("raw_throughput", []):
        out["raw_throughput_wps"] = t["windows_per_s"]
    if y_true is not None:
        pred = np.load(wdir / "pred.npy")
        if spec["kind"] == "artifact":  # raw-scale forecasts -> normalized scale
            pred = (pred - scaler[0]) / scaler[1]
        out["test_mse"] = float(np.mean((pred.astype(np.float64) - y_true) ** 2))
        out["test_mae"] = float(np.mean(np.abs(pred.astype(np.float64) - y_true)))
    return out


# --- orchestration -------------------------------------------------------------------------------
def prepare_windows(data: str, lookback: int, horizon: int, n: int, work: Path) -> dict:
    """Save the ETTh1 test windows every row runs on: raw (artifacts) and normalized (torch) inputs."""
    from distilts.data import load_dataset

    ds = load_dataset(data)
    w = ds.windows("test", lookback, horizon)
    idx = np.unique(np.linspace(0, len(w) - 1, num=min(n, len(w))).round().astype(np.int64))
    x, y = w.batch(idx)
    files = {"raw": work / f"x_raw-L{lookback}-H{horizon}.npy", "normalized": work / f"x_norm-L{lookback}-H{horizon}.npy",
             "teacher": work / f"x_teacher-L{lookback}-H{horizon}.npy"}
    np.save(files["raw"], ds.scaler.inverse(x))
    np.save(files["normalized"], x)
    np.save(files["teacher"], x[:1])  # real-size teachers: batch-1 latency only, on the first window (each call of a
    # real-size teacher takes seconds to a minute on one CPU thread; their forecasts are not used)
    return {"source": str(data), "part": "test", "windows": int(len(idx)), "lookback": lookback, "horizon": horizon,
            "n_variates": int(x.shape[2]), "files": {k: str(v) for k, v in files.items()}, "y": y,
            "scaler": (ds.scaler.mean.astype(np.float32), ds.scaler.std.astype(np.float32))}


def train_students(args, work: Path, log: Path) -> dict[str, dict]:
    """Student dirs to time: given with --student-dir, else trained quickly (ground truth only)."""
    given = dict(s.split("=", 1) for s in args.student_dir)
    out = {}
    for name in args.students:
        if name in given:
            out[name] = {"path": given[name], "trained_here": False}
            continue
        d = work / "students" / f"{name}-L{args.lookback}-H{args.horizon}"
        if not (d / "config.json").exists():
            cmd = [*DISTILTS, "distill", "--data", args.data, "--student", name, "--lookback", args.lookback,
                   "--horizon", args.horizon, "--no-kd", "--beta", "0", "--epochs", args.student_epochs,
                   "--stride", args.train_stride, "--seed", 0, "--out", d]
            wall, _ = run_timed(cmd, log)
            print(f"trained {name} in {wall:.1f} s (ground truth only; weights do not change speed)", flush=True)
        out[name] = {"path": str(d), "trained_here": True}
    return out


def compile_cmd(student_dir: str, fmt: str, prec: str, out_root: Path, batch: int) -> list:
    """The `distilts compile` call for one format x precision; it writes OUT_ROOT/<fmt>-<prec>/.

    TFLite is a fixed-batch format: compiled at batch 1 (latency) and `batch` (throughput), so the
    throughput row runs a real batch-`batch` graph, not 256 batch-1 calls."""
    cmd = [*DISTILTS, "compile", student_dir, "--target", fmt, "--out", out_root]
    if prec == "int8":
        cmd.append("--int8")
    if fmt == "tflite":
        cmd += ["--batch", 1, "--batch", batch]
    return cmd


def folded_weights(student_dir: str, path: Path, log: Path) -> Path:
    """The folded DLinear weights as .npz, written by a subprocess (this process stays torch-free)."""
    if not path.exists():
        run_timed([sys.executable, *WORKER, "--fold", student_dir, path], log=log)
    return path


def real_size_teacher(name: str, work: Path) -> str:
    """Directory of `name` built from its published config with random weights (official layout)."""
    family, cfg_file = REAL_SIZE_TEACHERS[name]
    d = work / "random-teachers" / name
    if (d / "config.json").exists():
        return str(d)
    cfg = json.loads((SHARED / "teacher-configs" / cfg_file).read_text()) if cfg_file else None
    if family in ("chronos-2", "moirai-2", "timesfm"):
        from distilts.teachers import chronos2, moirai2, timesfm

        module = {"chronos-2": chronos2, "moirai-2": moirai2, "timesfm": timesfm}[family]
        module.save_random_checkpoint(d, tiny=False, **({"config_overrides": cfg} if cfg else {}))
    elif family == "timemoe":
        from distilts.teachers import timemoe

        timemoe.save_random_checkpoint(d, config_overrides=cfg, tiny=False)
    else:
        from distilts.teachers import chronos

        chronos.save_random_checkpoint(d, variant="chronos", tiny=False, config_overrides=cfg)
    return str(d)


def measure_all(args) -> dict:
    """Compile and time every row; returns the JSON record."""
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "speed.log"
    win = prepare_windows(args.data, args.lookback, args.horizon, args.windows, work)
    files, y, scaler = win.pop("files"), win.pop("y"), win.pop("scaler")
    timing = {"iters": args.reps, "warmup": 10, "budget_s": args.budget_s, "batches": [args.batch],
              "horizon": args.horizon, "threads": args.threads}
    rows: list[dict] = []

    def add(row: dict, spec: dict, inputs: str, with_accuracy: bool = True) -> None:
        res = measure({**timing, **spec}, Path(inputs), y if with_accuracy else None, scaler, work, log)
        row.update(res)
        rows.append(row)
        msg = res.get("error") or (f"{res['latency_ms_median']:.3f} ms/window (b=1), "
                                   f"{res.get('throughput_wps', float('nan')):.0f} windows/s (b={args.batch})"
                                   + (f"; raw session {res['raw_ms_median']:.3f} ms" if "raw_ms_median" in res else "")
                                   + f"; load avg {res['load_avg']:.1f}")
        print(f"{row['model']:>18} {row['format']:>9} {row['precision']:>5}: {msg}", flush=True)

    students = train_students(args, work, log)
    for name, st in students.items():
        if name == "dlinear":  # the physical reference: numpy GEMM of the folded weights, same threads
            weights = folded_weights(st["path"], work / f"folded-{name}-L{args.lookback}-H{args.horizon}.npz", log)
            add({"model": name, "role": "reference", "format": "numpy-gemm", "precision": "fp32"},
                {"kind": "reference", "weights": str(weights)}, files["raw"], with_accuracy=False)
            for fmt in ("openvino", "onnx"):  # each runtime's per-call floor: a graph with no arithmetic
                if fmt in args.formats:
                    add({"model": name, "role": "floor", "format": f"{fmt}-floor", "precision": "fp32"},
                        {"kind": "floor", "backend": fmt}, files["raw"], with_accuracy=False)
        size = Path(st["path"], "model.safetensors").stat().st_size
        add({"model": name, "role": "student", "format": "pytorch", "precision": "fp32", "size_bytes": size},
            {"kind": "student", "path": st["path"]}, files["normalized"])
        for fmt in args.formats:
            for prec in args.precisions:
                # `distilts compile` writes OUT/<format>-<precision>/ (manifest.json inside)
                root = work / "artifacts" / f"{name}-L{args.lookback}-H{args.horizon}"
                out = root / f"{fmt}-{prec}"
                row = {"model": name, "role": "student", "format": fmt, "precision": prec, "artifact": str(out)}
                try:
                    if not (out / "manifest.json").exists():
                        row["compile_s"], _ = run_timed(compile_cmd(st["path"], fmt, prec, root, args.batch), log)
                    man = json.loads((out / "manifest.json").read_text())
                    # size: the model files of batch-1 inference (OpenVINO: .xml + .bin; TFLite holds one
                    # file per compiled batch, so only the batch-1 file counts); all files in artifact_bytes
                    row["artifact_bytes"] = sum(m["size"] for m in man["models"])
                    row["size_bytes"] = sum(m["size"] for m in man["models"] if m.get("batch") in (None, 1))
                    row["verify_rel_mse"] = man.get("verification", {}).get("rel_mse")
                    row["int8_method"] = (man.get("quantization") or {}).get("method")
                except (RuntimeError, OSError, KeyError, ValueError) as exc:
                    row["error"] = f"compile: {str(exc).strip().splitlines()[-1][:300]}"
                    rows.append(row)
                    print(f"{name:>18} {fmt:>9} {prec:>5}: {row['error']}", flush=True)
                    continue
                add(row, {"kind": "artifact", "path": str(out)}, files["raw"])

    for tname in args.teachers:
        if tname == "patchtst":
            if not Path(args.patchtst_path).exists():
                print(f"patchtst teacher: {args.patchtst_path} missing (run accuracy.py first), skipped", flush=True)
                continue
            row = {"model": "patchtst", "role": "teacher", "format": "pytorch", "precision": "fp32",
                   "weights": "trained here", "size_bytes": _dir_size(args.patchtst_path)}
            add(row, {"kind": "teacher", "name": "patchtst", "path": args.patchtst_path, "predict_batch": 256},
                files["normalized"])
            continue
        try:
            path = real_size_teacher(tname, work)
        except Exception as exc:  # noqa: BLE001 - a teacher family that is not built yet must not stop the run
            rows.append({"model": tname, "role": "teacher", "format": "pytorch", "precision": "fp32",
                         "error": f"build: {type(exc).__name__}: {str(exc)[:200]}"})
            print(f"{tname}: could not build ({type(exc).__name__}: {exc})", flush=True)
            continue
        row = {"model": tname, "role": "teacher", "format": "pytorch", "precision": "fp32",
               "weights": "random (cost only)", "size_bytes": _dir_size(path)}
        add(row, {"kind": "teacher", "name": REAL_SIZE_TEACHERS[tname][0], "path": path, "iters": args.teacher_reps,
                  "warmup": 1, "batches": [], "budget_s": 120.0, "predict_batch": 1}, files["teacher"],
            with_accuracy=False)

    pairs = int8_pairs(rows, args)
    return {"benchmark": "speed", "machine": machine_info(), "commit": git_commit(), "args": vars(args),
            "windows": win, "rows": rows, "speedup_latency_b1": pairwise_speedups(rows), "int8_pairs": pairs,
            "notes": ["latency: batch 1, p50 and p95 of `Forecaster.predict` over timed calls after warm-up, one "
                      "fresh process per row (benchmarks/support/speed_worker.py: the runtime's profile worker plus raw calls)",
                      "raw call: the backend's own session call on a contiguous float32 batch in the same process; "
                      "predict - raw is the runtime's per-call overhead (input checks, padding, copies)",
                      "reference: numpy GEMM of the folded DLinear weights (x^T W + b, [B, D, H], no output "
                      "transpose), the same BLAS thread count; 'x reference' = row time / reference time (b=1: latency; "
                      "b=256: inverse throughput)",
                      f"throughput: windows/s of `Forecaster.predict` at batch {args.batch}, from the median call "
                      f"time (>= 7 calls and >= 1 s after a warm-up); 'b={args.batch} x faster than eager' = row "
                      "throughput / eager throughput",
                      "load avg: the 1-minute load average when each row finished is in the JSON (load_avg)",
                      "int8 vs fp32 verdict: after every row, both artifacts of a student x format loaded in one "
                      "process and timed in alternating (ABBA) rounds of `Forecaster.predict` calls at b=1 and "
                      f"b={args.batch} (benchmarks/suite/int8_pairs.py); 'no slower' = median over rounds of int8 round "
                      "time / the fp32 round beside it <= 1.05 (the rows above are timed one after another, so "
                      "their int8/fp32 ratios swing with the machine's load); ratios in the JSON (int8_pairs)",
                      "peak RSS: ru_maxrss of the row's process (interpreter + its libraries + model + timing)",
                      "test MSE: normalized values, on the same evenly spaced ETTh1 test windows for every row",
                      "real-size teachers have RANDOM weights: their cost is real, their forecasts are not used"]}


def int8_pairs(rows: list[dict], args) -> list[dict]:
    """int8 vs fp32 of each student x format with both artifacts, in alternating rounds in this process
    (benchmarks/suite/int8_pairs.py), at b=1 and b=`args.batch`; run after every row, so no row's peak RSS
    includes the runtimes loaded here."""
    ok = {(r["model"], r["format"], r["precision"]): r for r in rows if r["role"] == "student" and "artifact" in r
          and not r.get("error")}
    out = []
    for (model, fmt, prec), r in ok.items():
        if prec != "int8" or (model, fmt, "fp32") not in ok:
            continue
        for batch in dict.fromkeys((1, args.batch)):
            res = {"model": model, **pair(fmt, Path(r["artifact"]).parent, batch, 30, args.budget_s, args.threads)}
            out.append(res)
            print(f"{model:>18} {fmt:>9} int8 / fp32 at b={batch}, paired rounds: {res['ratio_paired']:.2f}",
                  flush=True)
    return out


def _dir_size(path: str) -> int:
    return sum(p.stat().st_size for p in Path(path).glob("*.safetensors"))


def row_label(r: dict) -> str:
    if r["format"] in ("pytorch", "numpy-gemm") or r["role"] == "floor":
        return f"{r['model']} {r['format']}"
    return f"{r['model']} {r['format']} {r['precision']}"


def pairwise_speedups(rows: list[dict]) -> dict[str, dict[str, float]]:
    """speedup[a][b] = latency(b) / latency(a): how many times faster row a is than row b (batch 1)."""
    ok = [r for r in rows if r.get("latency_ms_median")]
    return {row_label(a): {row_label(b): b["latency_ms_median"] / a["latency_ms_median"] for b in ok} for a in ok}


COLUMNS = [("label", "model / format / precision"), ("weights", "weights"), ("latency_ms_median", "b=1 median ms"),
           ("raw_ms_median", "b=1 raw call ms"), ("overhead_us", "predict - raw us"), ("latency_ms_p95", "b=1 p95 ms"),
           ("throughput_wps", "b=256 windows/s"), ("x_ref", "b=1 x reference"), ("x_ref_tp", "b=256 x reference"),
           ("x_vs_eager", "x faster than eager"), ("x_vs_eager_tp", "b=256 x faster than eager"),
           ("size_kb", "size KB"), ("peak_rss_mb", "peak RSS MB"), ("test_mse", "test MSE"),
           ("x_vs_teacher", "x faster than teacher"), ("error", "note")]


def columns(record: dict) -> list[tuple[str, str]]:
    """COLUMNS with the throughput header naming the batch size actually used."""
    batch = record["args"].get("batch", 256)
    cols = [(k, h.replace("b=256", f"b={batch}")) for k, h in COLUMNS]
    big = _real_size_teacher(record["rows"])
    if big:  # also the speedup over the first real-size (random-weight) teacher, e.g. TimeMoE-50M
        cols.insert(cols.index(("x_vs_teacher", "x faster than teacher")) + 1,
                    ("x_vs_real_teacher", f"x faster than {big['model']}"))
    return cols


def _real_size_teacher(rows: list[dict]) -> dict | None:
    return next((r for r in rows if r["role"] == "teacher" and r.get("weights", "").startswith("random")
                 and r.get("latency_ms_median")), None)


def table_rows(record: dict) -> list[dict]:
    """Rows for the table, with sizes in KB and the speedups vs the eager student and the teacher."""
    rows = record["rows"]
    eager = {r["model"]: r for r in rows if r["role"] == "student" and r["format"] == "pytorch"}
    ref = {r["model"]: r for r in rows if r["role"] == "reference" and r.get("latency_ms_median")}
    teacher = next((r for r in rows if r["role"] == "teacher" and r.get("latency_ms_median")), None)
    out = []
    for r in rows:
        t = {**r, "label": row_label(r), "size_kb": r["size_bytes"] / 1024 if r.get("size_bytes") else None}
        lat = r.get("latency_ms_median")
        if lat and r["role"] == "student" and eager.get(r["model"], {}).get("latency_ms_median"):
            t["x_vs_eager"] = eager[r["model"]]["latency_ms_median"] / lat
            if r.get("throughput_wps") and eager[r["model"]].get("throughput_wps"):
                t["x_vs_eager_tp"] = r["throughput_wps"] / eager[r["model"]]["throughput_wps"]
        if lat and r["role"] in ("student", "floor") and r["model"] in ref:  # how many times the reference's time
            t["x_ref"] = lat / ref[r["model"]]["latency_ms_median"]
            if r.get("throughput_wps") and ref[r["model"]].get("throughput_wps"):
                t["x_ref_tp"] = ref[r["model"]]["throughput_wps"] / r["throughput_wps"]
        if lat and r.get("raw_ms_median"):
            t["overhead_us"] = 1000.0 * (lat - r["raw_ms_median"])
        # speedups over the teachers, shown for the rows that are faster (all ratios: speedup_latency_b1)
        if lat and teacher and teacher["latency_ms_median"] >= lat:
            t["x_vs_teacher"] = teacher["latency_ms_median"] / lat
        big = _real_size_teacher(rows)
        if lat and big and big["latency_ms_median"] >= lat:
            t["x_vs_real_teacher"] = big["latency_ms_median"] / lat
        out.append(t)
    return out


def target_checks(record: dict) -> list[str]:
    """The speed targets (docs/compile.md), each row met or missed, with the raw-call figure that tells a slow
    graph from runtime call overhead."""
    trows = [t for t in table_rows(record) if t["role"] == "student" and t["format"] != "pytorch"
             and t.get("latency_ms_median")]
    out = []
    ref = [t for t in trows if t["model"] == "dlinear" and t["precision"] == "fp32" and t.get("x_ref")]
    if ref:
        ref_lat = {r["model"]: r["latency_ms_median"] for r in record["rows"] if r["role"] == "reference"
                   and r.get("latency_ms_median")}
        floors = {t["format"].removesuffix("-floor"): t for t in table_rows(record) if t["role"] == "floor"
                  and t.get("x_ref")}
        parts = []
        for t in ref:
            raw = f", raw call {t['raw_ms_median'] / ref_lat['dlinear']:.2f}x" if t.get("raw_ms_median") else ""
            if t["format"] in floors:
                raw += f"; a no-arithmetic graph costs {floors[t['format']]['x_ref']:.2f}x"
            parts.append(f"{t['format']} {t['x_ref']:.2f}x ({'met' if t['x_ref'] <= 2 else 'MISSED'}{raw})")
        out.append("DLinear fp32 <= 2x the reference at b=1: " + "; ".join(parts))
    for key, what in (("x_vs_eager", "b=1"), ("x_vs_eager_tp", f"b={record['args'].get('batch', 256)}")):
        miss = [f"{t['label']} {t[key]:.2f}x" for t in trows if t.get(key) is not None and t[key] <= 1]
        n = sum(t.get(key) is not None for t in trows)
        out.append(f"faster than PyTorch eager at {what}: {n - len(miss)} of {n} artifacts"
                   + (f"; MISSED: {', '.join(miss)}" if miss else ""))
    if record.get("int8_pairs"):  # alternating rounds in one process (records before them: the rows' own times)
        slower = [f"{p['model']} {p['format']} b={p['batch']} int8/fp32 {p['ratio_paired']:.2f}"
                  for p in record["int8_pairs"] if p["verdict"] != "yes"]
        out.append("int8 no slower than fp32 on the same backend (paired rounds, int8/fp32 <= 1.05): "
                   + ("met" if not slower else "MISSED: " + "; ".join(slower)))
        return out + _overhead_check(trows)
    fp32 = {(t["model"], t["format"]): t for t in trows if t["precision"] == "fp32"}
    slower = []
    for t in trows:
        f = fp32.get((t["model"], t["format"]))
        if t["precision"] == "int8" and f:
            if t["latency_ms_median"] > f["latency_ms_median"]:
                slower.append(f"{t['model']} {t['format']} b=1 {t['latency_ms_median']:.3f} vs {f['latency_ms_median']:.3f} ms")
            if t.get("throughput_wps") and f.get("throughput_wps") and t["throughput_wps"] < f["throughput_wps"]:
                slower.append(f"{t['model']} {t['format']} b=256 {t['throughput_wps']:,.0f} vs {f['throughput_wps']:,.0f}/s")
    out.append("int8 no slower than fp32 on the same backend: " + ("met" if not slower else
                                                                   "MISSED: " + "; ".join(slower)))
    return out + _overhead_check(trows)


def _overhead_check(trows: list[dict]) -> list[str]:
    over = [t for t in trows if t.get("overhead_us") is not None]
    big = [f"{t['label']} {t['overhead_us']:.0f} us" for t in over if t["overhead_us"] > 20]
    return [f"Forecaster.predict <= 20 us over the raw call at b=1: {len(over) - len(big)} of {len(over)}"
            + (f"; MISSED: {', '.join(big)}" if big else "")]


def markdown(record: dict) -> str:
    """The Markdown report of one run."""
    m, a, w = record["machine"], record["args"], record["windows"]
    trows = table_rows(record)
    teacher = next((r for r in record["rows"] if r["role"] == "teacher" and r.get("latency_ms_median")), None)
    lines = [
        f"## Speed: students vs teachers (ETTh1, L={w['lookback']}, H={w['horizon']}, D={w['n_variates']})",
        "",
        f"Machine: {m['processor']}, {m['cpu_count']} cores visible, {a['threads'] or 'default'} thread(s) per "
        f"backend; {m['platform']}; torch {m.get('torch', '?')}; {m['date']}; commit {record.get('commit')}.",
        "",
        markdown_table(trows, columns(record)),
        "",
        "Targets (docs/compile.md, 'Speed targets'), this run:",
        *[f"- {line}" for line in target_checks(record)],
        "",
        f"'x faster than teacher' is relative to {teacher['model'] if teacher else 'the first teacher timed'} "
        "(batch-1 median latency). Teachers marked 'random (cost only)' are built at real size from their "
        "published configs with random weights: their latency/size/memory are real, their forecasts are "
        "meaningless and not reported.",
        *[f"- {n}" for n in record["notes"]],
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(SHARED / "data" / "ETTh1.csv"))
    p.add_argument("--lookback", type=int, default=512)
    p.add_argument("--horizon", type=int, default=96)
    p.add_argument("--students", nargs="*", default=list(STUDENTS), choices=STUDENTS)
    p.add_argument("--student-dir", action="append", default=[], metavar="NAME=DIR",
                   help="use this trained student dir (e.g. from accuracy.py) instead of training one")
    p.add_argument("--student-epochs", type=int, default=1, help="weights do not change speed; test MSE is informational")
    p.add_argument("--train-stride", type=int, default=8)
    p.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    p.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    p.add_argument("--teachers", nargs="*", default=["patchtst", "timemoe-50m"],
                   choices=["patchtst", *REAL_SIZE_TEACHERS],
                   help="teachers to time (default: the PatchTST teacher and TimeMoE-50M; the Chronos-T5 rows "
                        "take 1-15 min per call on one core)")
    p.add_argument("--patchtst-path", default=None,
                   help="trained PatchTST teacher dir for L/H (default: accuracy.py's teacher dir)")
    p.add_argument("--threads", type=int, default=1, help="threads per backend (same for every row)")
    p.add_argument("--reps", type=int, default=200, help="timed batch-1 calls per student row")
    p.add_argument("--budget-s", type=float, default=10.0, help="max seconds of timed calls per student row")
    p.add_argument("--teacher-reps", type=int, default=2, help="timed batch-1 calls per real-size teacher")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--windows", type=int, default=512, help="test windows (throughput batch + accuracy)")
    p.add_argument("--work-dir", default=str(ROOT / "benchmarks" / "runs" / "speed"))
    p.add_argument("--out-json", default=None)
    p.add_argument("--out-md", default=None)
    p.add_argument("--quick", action="store_true", help="L=96, fewer reps, chronos-t5-tiny as the random teacher")
    p.add_argument("--smoke", action="store_true", help="< 1 min: dlinear, onnx fp32 only, no real-size teachers")
    # presets change defaults only: a flag given on the command line still wins (e.g. --quick --windows 64)
    pre, _ = p.parse_known_args(argv)
    if pre.quick or pre.smoke:
        p.set_defaults(lookback=96, reps=50, budget_s=3.0, windows=256, student_epochs=1, train_stride=8,
                       teachers=["patchtst", "chronos-t5-tiny"])
    if pre.smoke:
        p.set_defaults(students=["dlinear"], formats=["onnx"], precisions=["fp32"], teachers=[], reps=20,
                       budget_s=1.0, batch=64, windows=64)
    default_work = p.get_default("work_dir")
    args = p.parse_args(argv)
    if args.work_dir == default_work and (args.quick or args.smoke):
        args.work_dir += "-quick"
    if args.patchtst_path is None:  # the teacher accuracy.py trained (its --quick teachers for --quick)
        tdir = "accuracy-quick-teachers" if args.quick or args.smoke else "teachers"
        args.patchtst_path = str(ROOT / "benchmarks" / "runs" / tdir /
                                 f"patchtst16-etth1-L{args.lookback}-H{args.horizon}")
    args.out_json = args.out_json or str(Path(args.work_dir) / "speed.json")
    args.out_md = args.out_md or str(Path(args.work_dir) / "speed.md")
    return args


def render(json_path: str, md_path: str | None = None) -> None:
    """Rewrite the Markdown table of a finished run from its JSON record (no timing is redone)."""
    record = json.loads(Path(json_path).read_text())
    md_path = md_path or str(Path(json_path).with_suffix(".md"))
    Path(md_path).write_text(markdown(record).rstrip() + "\n")
    print(f"wrote {md_path}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--render"]:
        return render(*argv[1:3])
    args = parse_args(argv)
    t0 = time.perf_counter()
    record = measure_all(args)
    record["wall_s"] = time.perf_counter() - t0
    md = markdown(record)
    write_outputs(record, md, args.out_json, args.out_md)
    print()
    print(text_table(table_rows(record), columns(record)))
    print("\n".join(target_checks(record)))
    print(f"\nwrote {args.out_json} and {args.out_md} in {record['wall_s']:.0f} s")


# --- the harness entry (benchmarks/harness.py): the presets as this module's options -----------------------
PRESETS: dict[str, dict] = {"quick": {"smoke": True}, "full": {}}


def run(ctx, **params):
    from benchmarks.support import script

    return script.run_main(ctx, sys.modules[__name__], params, takes_argv=True)

if __name__ == "__main__":
    main()
