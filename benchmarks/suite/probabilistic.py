#!/usr/bin/env python
"""Probabilistic benchmark on ETTh1: a quantile PatchTST teacher vs quantile students, with the
baselines a user would otherwise pick.

Train one quantile PatchTST teacher for the longest horizon when missing (`distilts train-teacher
--quantiles deciles`, pinball loss; a PatchTST trained for H' serves every H <= H' with its first H
steps), fill its teacher cache with quantiles for each horizon (`distilts teach --quantiles`), then
run `distilts distill` (real CLI, subprocesses, `--jobs` at a time) for every variant x seed. Variants (DLinear unless --student):

  point    point student, + horizon-weighted KD        --tau TAU --beta 0
  qgt      quantile student, ground truth only (pinball)   --quantiles deciles --no-kd --beta 0
  qkd      + quantile KD (pinball vs the teacher's levels), uniform   --quantile-kd pinball --tau 0
  qhkd     + quantile KD (pinball), horizon-weighted                 --quantile-kd pinball --tau TAU
  qhkd-l2  + quantile KD (L2 between the quantile vectors), horizon-weighted   --quantile-kd l2 --tau TAU

Baselines on the same test windows:
  conformal  split-conformal quantiles around the point student: q_tau = point + the tau-quantile of
             the point student's signed validation residuals, per forecast step and variate
             (calibrated on the val part, stride 1)
  AutoETS / SeasonalNaive (statsforecast; `pip install -e ".[bench]"`): intervals at 20/40/60/80% give
             the 0.1 ... 0.9 levels; fitted on each window's lookback (normalized values, season 24). They
             are slow (one fit per window and variate), so they and every model beside them are scored on
             every `--stat-stride`-th test window in a second table.

Metrics (distilts.metrics): WQL, MASE of the median, MSE of the median, coverage / mean width / MSIS of
the 0.1-0.9 interval; normalized values, stride-1 test windows; mean ± std over `--seeds`.

    python -m benchmarks run probabilistic --preset full
    python -m benchmarks run probabilistic --preset full
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.support.benchlib import DISTILTS, ROOT, git_commit, machine_info, markdown_table, run_timed, text_table, write_outputs

VARIANTS: dict[str, tuple[str, list[str]]] = {
    "point": ("point student, + horizon-weighted KD", ["--tau", "{tau}", "--beta", "0"]),
    "qgt": ("quantile student, ground truth only", ["--quantiles", "deciles", "--no-kd", "--beta", "0"]),
    "qkd": ("+ quantile KD (pinball, uniform)", ["--quantiles", "deciles", "--quantile-kd", "pinball", "--tau", "0",
                                                 "--beta", "0"]),
    "qhkd": ("+ quantile KD (pinball, horizon-weighted)", ["--quantiles", "deciles", "--quantile-kd", "pinball",
                                                           "--tau", "{tau}", "--beta", "0"]),
    "qhkd-l2": ("+ quantile KD (L2, horizon-weighted)",
                ["--quantiles", "deciles", "--quantile-kd", "l2", "--tau", "{tau}", "--beta", "0"]),
}
LEVELS = tuple(round(0.1 * i, 1) for i in range(1, 10))
METRICS = ("wql", "mase", "mse", "coverage", "width", "msis")


# -- commands --------------------------------------------------------------------------------------
def teacher_dir(args, horizon: int | None = None) -> Path:
    """The one teacher, trained for the longest horizon (it serves every horizon)."""
    return Path(args.work_dir) / "teachers" / f"patchtst-q-L{args.lookback}-H{max(args.horizons)}"


def train_teacher_cmd(args, horizon: int | None = None) -> list:
    return [*DISTILTS, "train-teacher", "--data", args.data, "--lookback", args.lookback,
            "--horizon", max(args.horizons),
            "--quantiles", "deciles", "--out", teacher_dir(args, horizon), "--epochs", args.teacher_epochs,
            "--patience", args.teacher_patience, "--stride", args.teacher_stride, "--d-model", args.teacher_d_model,
            "--layers", args.teacher_layers, "--heads", args.teacher_heads, "--ffn-dim", 2 * args.teacher_d_model,
            "--batch-size", 128, "--device", "cpu"]


def teach_cmd(args, horizon: int) -> list:
    return [*DISTILTS, "teach", "--teacher", "patchtst", "--teacher-path", teacher_dir(args, horizon),
            "--data", args.data, "--lookback", args.lookback, "--horizon", horizon, "--stride", 1, "--quantiles",
            "--cache-dir", args.cache_dir, "--device", "cpu", "--quiet"]


def distill_cmd(args, horizon: int, variant: str, seed: int) -> list:
    flags = [f.format(tau=args.tau) for f in VARIANTS[variant][1]]
    return [*DISTILTS, "distill", "--data", args.data, "--student", args.student, "--teacher", "patchtst",
            "--teacher-path", teacher_dir(args, horizon), "--lookback", args.lookback, "--horizon", horizon,
            "--epochs", args.epochs, "--stride", 1, "--max-train-windows", args.max_train_windows, "--seed", seed,
            "--cache-dir", args.cache_dir, "--device", "cpu", "--quiet", "--out", run_dir(args, horizon, variant, seed),
            *flags]


def run_dir(args, horizon: int, variant: str, seed: int) -> Path:
    return Path(args.work_dir) / "students" / f"{args.student}-L{args.lookback}-H{horizon}-{variant}-s{seed}"


# -- scoring ---------------------------------------------------------------------------------------
def score(q: np.ndarray, y: np.ndarray, x: np.ndarray, season: int) -> dict[str, float]:
    from distilts.metrics import probabilistic_scores

    s = probabilistic_scores(q, y, x, LEVELS, season=season)
    iv = s["interval"]
    return {"wql": s["wql"], "mase": s["mase"], "mse": float(np.mean((q[..., 4] - y) ** 2)),
            "coverage": iv["coverage"], "width": iv["mean_width"], "msis": iv["msis"], "crossings": s["crossings"]}


def predict_dir(model_dir: Path, windows) -> np.ndarray:
    """A student directory's forecasts on `windows` ([N, H, D] or [N, H, D, Q])."""
    import torch

    from distilts.distill.evaluate import predict
    from distilts.students import load_student_dir

    torch.set_num_threads(1)
    model, _ = load_student_dir(model_dir)
    return predict(model, windows, 256, "cpu")


def conformal(point_dir: Path, dataset, args, horizon: int) -> tuple[np.ndarray, dict]:
    """Split-conformal quantiles on the test windows around the point student, calibrated on val."""
    val = dataset.windows("val", args.lookback, horizon, 1)
    test = dataset.windows("test", args.lookback, horizon, 1)
    resid = val.targets() - predict_dir(point_dir, val)  # [N_val, H, D]
    offsets = np.quantile(resid, LEVELS, axis=0).transpose(1, 2, 0)  # [H, D, Q]
    q = predict_dir(point_dir, test)[..., None] + offsets[None]
    return q.astype(np.float32), {"calibration_windows": len(val)}


def statsforecast_quantiles(model: str, x: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """AutoETS / SeasonalNaive 0.1 ... 0.9 quantiles `[N, H, D, 9]` fitted on each window's lookback."""
    from statsforecast.models import AutoETS, SeasonalNaive

    out = np.zeros((x.shape[0], horizon, x.shape[2], len(LEVELS)), np.float32)
    for n in range(x.shape[0]):
        for d in range(x.shape[2]):
            m = AutoETS(season_length=season) if model == "AutoETS" else SeasonalNaive(season_length=season)
            f = m.forecast(y=x[n, :, d].astype(np.float64), h=horizon, level=[20, 40, 60, 80])
            cols = [f["lo-80"], f["lo-60"], f["lo-40"], f["lo-20"], f["mean"], f["hi-20"], f["hi-40"], f["hi-60"],
                    f["hi-80"]]
            out[n, :, d] = np.stack(cols, axis=-1)
    return np.sort(out, axis=-1)  # statsforecast's levels are ordered; sort guards float ties


# -- the grid --------------------------------------------------------------------------------------
def prepare_teacher(args, horizon: int, log: Path) -> dict[str, Any]:
    tdir = teacher_dir(args, horizon)
    info: dict[str, Any] = {"horizon": horizon, "path": str(tdir)}
    if not (tdir / "config.json").exists():
        cmd = train_teacher_cmd(args, horizon)
        print(f"training the quantile teacher: distilts {' '.join(map(str, cmd[3:]))}", flush=True)
        info["train_wall_s"], _ = run_timed(cmd, log, env=_env(args))
    info["train_command"] = "distilts " + " ".join(map(str, train_teacher_cmd(args, horizon)[3:]))
    tj = json.loads((tdir / "training.json").read_text())
    info["training"] = {k: tj.get(k) for k in ("test", "val", "train")}
    info["teach_wall_s"], _ = run_timed(teach_cmd(args, horizon), log, env=_env(args))
    stride = train_stride(args, horizon)
    if stride > 1:  # the train windows the runs use (--max-train-windows): cached once, before the parallel jobs,
        cmd = teach_cmd(args, horizon)  # with quantiles (quantile students) and without (the point student)
        cmd[cmd.index("--stride") + 1] = stride
        run_timed([*cmd, "--parts", "train"], log, env=_env(args))
        run_timed([c for c in cmd if c != "--quantiles"] + ["--parts", "train"], log, env=_env(args))
    return info


def train_stride(args, horizon: int) -> int:
    """The train-window stride `distilts distill --max-train-windows` picks (DistillSpec.train_stride)."""
    from distilts.data import load_dataset

    n = len(load_dataset(args.data).windows("train", args.lookback, horizon, 1))
    return max(1, -(-n // args.max_train_windows))


def _env(args) -> dict[str, str]:
    return {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}


def run_cell(args, horizon: int, variant: str, seed: int, log: Path) -> dict[str, Any]:
    out = run_dir(args, horizon, variant, seed)
    row: dict[str, Any] = {"horizon": horizon, "variant": variant, "seed": seed, "dir": str(out)}
    cmd = distill_cmd(args, horizon, variant, seed)
    row["command"] = "distilts " + " ".join(map(str, cmd[3:]))
    if not (out / "metrics.json").exists() or args.fresh:
        row["distill_wall_s"], _ = run_timed(cmd, log, env=_env(args))
    metrics = json.loads((out / "metrics.json").read_text())
    row["epochs_run"] = json.loads((out / "config.json").read_text())["train"]["epochs_run"]
    row["point_mse"] = metrics["test"]["mse"]
    teacher = (metrics.get("teacher") or {}).get("test") or {}
    if teacher.get("quantiles"):
        row["teacher_wql"] = teacher["quantiles"]["wql"]
    return row


def evaluate(args, rows: list[dict], teachers: list[dict]) -> dict[str, Any]:
    """Score every run, the teacher and the baselines on the same windows (all and subsampled)."""
    from distilts.data import load_dataset
    from distilts.metrics import seasonality
    from distilts.teachers import load_teacher

    dataset = load_dataset(args.data)
    season = seasonality(3600)
    full, sub = [], []
    for horizon in args.horizons:
        test = dataset.windows("test", args.lookback, horizon, 1)
        x, y = test.inputs(), test.targets()
        pick = np.arange(0, len(test), args.stat_stride)
        preds: dict[str, list[tuple[int, np.ndarray]]] = {}
        for r in (r for r in rows if r["horizon"] == horizon):
            p = predict_dir(Path(r["dir"]), test)
            if r["variant"] == "point":
                q, _ = conformal(Path(r["dir"]), dataset, args, horizon)
                preds.setdefault("conformal", []).append((r["seed"], q))
            else:
                preds.setdefault(r["variant"], []).append((r["seed"], p))
        teacher = load_teacher("patchtst", str(teacher_dir(args, horizon)), "cpu")
        tq = np.concatenate([teacher.predict(xb, horizon, quantiles=True).quantiles
                             for _, xb, _ in test.iter_batches(256)])
        preds["teacher"] = [(0, tq)]
        for name, runs in preds.items():
            for which, idx, table in (("all", slice(None), full), ("sub", pick, sub)):
                scores = [score(q[idx], y[idx], x[idx], season) for _, q in runs]
                table.append({"horizon": horizon, "model": name, "seeds": len(runs), "windows": len(y[idx]),
                              **_mean_std(scores)})
        if not args.no_stat:
            for model in ("AutoETS", "SeasonalNaive"):
                t0 = time.perf_counter()
                q = statsforecast_quantiles(model, x[pick], horizon, season)
                s = score(q, y[pick], x[pick], season)
                sub.append({"horizon": horizon, "model": model, "seeds": 1, "windows": len(pick),
                            **{k: (v, None) for k, v in s.items()}, "fit_wall_s": time.perf_counter() - t0})
                print(f"[H={horizon}] {model}: WQL {s['wql']:.4f} coverage {s['coverage']:.3f}", flush=True)
    return {"all": full, "sub": sub}


def _mean_std(scores: list[dict]) -> dict[str, tuple[float, float | None]]:
    out = {}
    for k in scores[0]:
        vals = [float(s[k]) for s in scores]
        out[k] = (statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else None)
    return out


def _pm(cell, digits: int = 4) -> str:
    mean, std = cell
    return f"{mean:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")


def flat(table: list[dict]) -> list[dict]:
    labels = {"teacher": "teacher: quantile PatchTST", "conformal": "point student + split conformal (val)",
              **{k: v[0] for k, v in VARIANTS.items()}, "AutoETS": "statsforecast AutoETS",
              "SeasonalNaive": "statsforecast SeasonalNaive"}
    rows = []
    for r in table:
        rows.append({"H": r["horizon"], "model": labels.get(r["model"], r["model"]), "seeds": r["seeds"],
                     "windows": r["windows"], "wql": _pm(r["wql"]), "mase": _pm(r["mase"], 3), "mse": _pm(r["mse"]),
                     "coverage": _pm(r["coverage"], 3), "width": _pm(r["width"], 3), "msis": _pm(r["msis"], 2),
                     "crossings": int(r["crossings"][0])})
    return rows


COLUMNS = [("H", "H"), ("model", "model"), ("seeds", "seeds"), ("windows", "test windows"), ("wql", "WQL"),
           ("mase", "MASE"), ("mse", "MSE (median)"), ("coverage", "80% coverage"), ("width", "80% width"),
           ("msis", "MSIS"), ("crossings", "crossings")]


def markdown(rec: dict) -> str:
    a = rec["args"]
    lines = [f"# Probabilistic students on ETTh1 (L={a['lookback']}, {a['student']}, seeds {a['seeds']})", "",
             f"Machine: {rec['machine'].get('processor')}, {rec['machine'].get('cpu_count')} cores; commit "
             f"{rec.get('commit')}; {rec['machine'].get('date')}.", "",
             "All stride-1 test windows (normalized values; mean ± std over seeds):", "",
             markdown_table(flat(rec["scores"]["all"]), COLUMNS)]
    if rec["scores"]["sub"]:
        lines += ["", f"Every {a['stat_stride']}th test window, with the statsforecast baselines:", "",
                  markdown_table(flat(rec["scores"]["sub"]), COLUMNS)]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "ETTh1.csv"))
    p.add_argument("--lookback", type=int, default=512)
    p.add_argument("--horizons", type=int, nargs="+", default=[96, 336])
    p.add_argument("--student", default="dlinear", choices=["dlinear", "itransformer"])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--tau", type=float, default=1.0)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--max-train-windows", type=int, default=3000, help="evenly spaced train windows per run")
    p.add_argument("--teacher-epochs", type=int, default=4)
    p.add_argument("--teacher-patience", type=int, default=2)
    p.add_argument("--teacher-stride", type=int, default=4)
    p.add_argument("--teacher-d-model", type=int, default=16)
    p.add_argument("--teacher-layers", type=int, default=3)
    p.add_argument("--teacher-heads", type=int, default=4)
    p.add_argument("--stat-stride", type=int, default=48, help="test-window stride of the statsforecast table")
    p.add_argument("--no-stat", action="store_true", help="skip the statsforecast baselines")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--fresh", action="store_true", help="rerun students whose directory is complete")
    p.add_argument("--work-dir", default=str(ROOT / "benchmarks" / "runs" / "probabilistic"))
    p.add_argument("--smoke", action="store_true", help="L=96, H=24, 1 seed, tiny teacher, 2 epochs")
    pre, _ = p.parse_known_args(argv)
    if pre.smoke:
        p.set_defaults(lookback=96, horizons=[24], seeds=[0], epochs=2, max_train_windows=500, teacher_epochs=2,
                       teacher_stride=8, teacher_layers=1, stat_stride=200,
                       work_dir=str(ROOT / "benchmarks" / "runs" / "probabilistic-smoke"))
    args = p.parse_args(argv)
    args.cache_dir = str(Path(args.work_dir) / "cache")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "probabilistic.log"
    t0 = time.perf_counter()
    teachers = [prepare_teacher(args, h, log) for h in args.horizons]
    cells = [(h, v, s) for h in args.horizons for v in args.variants for s in args.seeds]
    print(f"{len(cells)} runs, {args.jobs} at a time", flush=True)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(lambda c: run_cell(args, *c, log), cells))
    rec = {"args": {k: v for k, v in vars(args).items()}, "machine": machine_info(), "commit": git_commit(),
           "teachers": teachers, "runs": rows}
    rec["scores"] = evaluate(args, rows, teachers)
    rec["wall_s"] = time.perf_counter() - t0
    write_outputs(rec, markdown(rec), work / "probabilistic.json", work / "probabilistic.md")
    print()
    print(text_table(flat(rec["scores"]["all"]), COLUMNS))
    if rec["scores"]["sub"]:
        print()
        print(text_table(flat(rec["scores"]["sub"]), COLUMNS))
    print(f"\nwrote {work / 'probabilistic.json'} and {work / 'probabilistic.md'} in {rec['wall_s']:.0f} s")


# --- the harness entry (benchmarks/harness.py): the presets as this module's options -----------------------
PRESETS: dict[str, dict] = {"quick": {"smoke": True}, "full": {"jobs": 2}}


def run(ctx, **params):
    from benchmarks.support import script

    return script.run_main(ctx, sys.modules[__name__], params, takes_argv=True)

if __name__ == "__main__":
    main()
