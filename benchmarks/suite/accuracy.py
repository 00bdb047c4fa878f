#!/usr/bin/env python
"""Accuracy benchmark on ETTh1: the DistilTS ablation over seeds, a tau sweep, and ground-truth
baselines at the students' papers' own settings beside their published numbers.

Ablation (default mode). For each horizon: train the PatchTST teacher when its directory is missing
(the documented `distilts train-teacher` command, early-stopped on validation), fill its teacher
cache once per hidden-token setting (`distilts teach`), then run `distilts distill` for every
student x variant x seed on that cache (real CLI, subprocesses, `--jobs` at a time). Variants:

  gt     ground truth only                  --no-kd --beta 0
  kd     + KD, uniform over the horizon     --tau 0 --beta 0
  hkd    + horizon-weighted KD              --tau TAU --beta 0
  fta    + FTA on all teacher tokens        --tau TAU --beta BETA --hidden-tokens 0   (the DistilTS code)
  fta16  + FTA on 16 pooled teacher tokens  --tau TAU --beta BETA --hidden-tokens 16  (bounds the cache)
  tauX   horizon-weighted KD at tau X       --tau X --beta 0      (the --tau-sweep rows)

Every cell is reported as mean ± sample std over `--seeds`; the hidden-state cache bytes of the fta
and fta16 caches are recorded; the tau sweep writes a PNG of test MSE per forecast step per tau.

Baselines (`--baselines`): each student trained on ground truth only at its paper's settings
(DLinear: L=336, Adam lr 0.005, batch 32; iTransformer: L=96, d_model=d_ff=256 (H 96/192) or
512 (H 336/720), 2 layers, 8 heads, Adam lr 1e-4, batch 32; both: 10 epochs, patience 3, LR halved
every epoch, train stride 1), at all four horizons, beside the published ETTh1 numbers.

Metrics: MSE/MAE on z-scored values (train statistics), standard ETTh1 test split, windows stride 1
(the `metrics.json` `distilts distill` writes).

    python -m benchmarks run accuracy --preset full
    python -m benchmarks run accuracy --preset full
    python -m benchmarks run accuracy --preset full
    python -m benchmarks run accuracy --preset full
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.support.benchlib import DISTILTS, ROOT, git_commit, machine_info, markdown_table, run_timed, text_table, write_outputs

STUDENTS = ("dlinear", "itransformer")
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "gt": ("ground truth only", ["--no-kd", "--beta", "0"]),
    "kd": ("+ KD (uniform)", ["--tau", "0", "--beta", "0"]),
    "hkd": ("+ horizon-weighted KD", ["--tau", "{tau}", "--beta", "0"]),
    "fta": ("+ FTA (all tokens)", ["--tau", "{tau}", "--beta", "{beta}", "--hidden-tokens", "0"]),
    "fta16": ("+ FTA (16 pooled tokens)", ["--tau", "{tau}", "--beta", "{beta}", "--hidden-tokens", "16"]),
}
# Published ETTh1 test MSE/MAE (normalized), by horizon.
PUBLISHED = {
    "dlinear": {"source": "Zeng et al., AAAI 2023 (DLinear), Table 2, L=336",
                96: (0.375, 0.399), 192: (0.405, 0.416), 336: (0.439, 0.443), 720: (0.472, 0.490)},
    "itransformer": {"source": "Liu et al., ICLR 2024 (iTransformer), full results table, L=96",
                     96: (0.386, 0.405), 192: (0.441, 0.436), 336: (0.487, 0.458), 720: (0.503, 0.491)},
    "patchtst": {"source": "Nie et al., ICLR 2023 (PatchTST/64), Table 3, L=512",
                 96: (0.370, 0.400), 192: (0.413, 0.429), 336: (0.422, 0.440), 720: (0.447, 0.468)},
}
# Ground-truth training at the papers' settings (official scripts; Adam = AdamW with weight decay 0).
PAPER_TRAIN = ["--no-kd", "--beta", "0", "--epochs", "10", "--patience", "3", "--batch-size", "32",
               "--lr-schedule", "step", "--weight-decay", "0", "--stride", "1"]


def paper_settings(student: str, horizon: int) -> tuple[int, list[str]]:
    """(lookback, distill flags) of `student` at its paper's ETTh1 setting for `horizon`."""
    if student == "dlinear":
        return 336, ["--lr", "0.005"]
    width = "256" if horizon <= 192 else "512"
    return 96, ["--lr", "0.0001", "--d-model", width, "--d-ff", width, "--e-layers", "2", "--n-heads", "8",
                "--dropout", "0.1"]


def teacher_dir(args, horizon: int) -> Path:
    """The teacher checkpoint for `horizon` (`--teacher-path` may hold '{lookback}' / '{horizon}'); with
    `--teacher-for H=H2` horizon H uses the teacher trained for H2 (its first H steps)."""
    horizon = dict(getattr(args, "teacher_for", None) or {}).get(horizon, horizon)
    return Path(args.teacher_path.format(lookback=args.lookback, horizon=horizon))


def train_teacher_cmd(args, horizon: int) -> list:
    """The documented command that trains the PatchTST teacher for one horizon."""
    horizon = dict(args.teacher_for).get(horizon, horizon)
    return [*DISTILTS, "train-teacher", "--data", args.data, "--lookback", args.lookback, "--horizon", horizon,
            "--out", teacher_dir(args, horizon), "--epochs", args.teacher_epochs, "--patience", args.teacher_patience,
            "--stride", args.teacher_stride, "--d-model", args.teacher_d_model, "--layers", args.teacher_layers,
            "--heads", args.teacher_heads, "--ffn-dim", args.teacher_ffn_dim, "--dropout", args.teacher_dropout,
            "--batch-size", args.teacher_batch_size, "--lr", args.teacher_lr, "--device", "cpu"]


def teach_cmd(args, horizon: int, hidden_tokens: int | None = None) -> list:
    """Fill the teacher cache (with hidden states pooled to `hidden_tokens`, 0 = all; None = forecasts only)."""
    hidden = [] if hidden_tokens is None else ["--hidden", "--hidden-tokens", hidden_tokens]
    return [*DISTILTS, "teach", "--teacher", args.teacher, "--teacher-path", teacher_dir(args, horizon),
            "--data", args.data, "--lookback", args.lookback, "--horizon", horizon, "--stride", args.stride,
            *hidden, "--cache-dir", args.cache_dir, "--device", "cpu", "--quiet"]


def variant_flags(args, variant: str) -> list[str]:
    if variant.startswith("tau"):
        return ["--tau", variant[3:], "--beta", "0"]
    return [f.format(tau=args.tau, beta=args.beta) for f in VARIANTS[variant][1]]


def variant_label(variant: str) -> str:
    return f"horizon-weighted KD, tau {variant[3:]}" if variant.startswith("tau") else VARIANTS[variant][0]


def sweep_variant(args, tau: float) -> str:
    """The ablation variant a sweep point coincides with (so it is run once), else 'tau<X>'."""
    if tau == 0:
        return "kd"
    return "hkd" if tau == args.tau else f"tau{tau:g}"


def distill_cmd(args, horizon: int, student: str, variant: str, out: Path, seed: int | None = None) -> list:
    seed = args.seeds[0] if seed is None else seed
    common = ["--data", args.data, "--student", student, "--horizon", horizon, "--seed", seed, "--device", "cpu",
              "--quiet", "--out", out]
    if args.baselines:
        lookback, flags = paper_settings(student, horizon)
        return [*DISTILTS, "distill", *common, "--lookback", lookback, *PAPER_TRAIN, *flags, *args.distill_args]
    return [*DISTILTS, "distill", *common, "--teacher", args.teacher, "--teacher-path", teacher_dir(args, horizon),
            "--lookback", args.lookback, "--epochs", args.epochs, "--stride", args.stride, "--cache-dir", args.cache_dir,
            *variant_flags(args, variant), *args.distill_args]


def cells(args) -> list[tuple[int, str, str, int]]:
    """(horizon, student, variant, seed) of every run, in run order, without duplicates."""
    out: list[tuple[int, str, str, int]] = []
    for horizon in args.horizons:
        for student in args.students:
            if horizon not in args.student_horizons.get(student, [horizon]):
                continue
            variants = ["gt"] if args.baselines else args.student_variants.get(student, args.variants)
            out += [(horizon, student, v, s) for v in variants for s in args.seeds]
    if args.tau_sweep and not args.baselines:
        out += [(args.sweep_horizon, args.sweep_student, sweep_variant(args, t), s)
                for t in args.tau_sweep for s in args.seeds]
    return list(dict.fromkeys(out))


def run_dir(args, horizon: int, student: str, variant: str, seed: int) -> Path:
    lookback = paper_settings(student, horizon)[0] if args.baselines else args.lookback
    return Path(args.work_dir) / "students" / f"{student}-L{lookback}-H{horizon}-{variant}-s{seed}"


def parse_eval(stdout: str, model_dir: Path) -> dict[str, float]:
    """Test MSE/MAE from `distilts eval --json` output (or the metrics.json distill/eval write)."""
    text = stdout.strip()
    try:
        data = json.loads(text[text.index("{"):])
    except ValueError:
        data = json.loads((model_dir / "metrics.json").read_text())
    test = data.get("test", data)
    return {"mse": float(test["mse"]), "mae": float(test["mae"])}


# -- teachers ------------------------------------------------------------------------------------
def hidden_settings(args, horizon: int, todo: list[tuple[int, str, str, int]]) -> list[int | None]:
    """The teacher caches a horizon's runs need: None (forecasts only) or hidden tokens (0 = all)."""
    variants = {v for h, _, v, _ in todo if h == horizon}
    need = [0] if "fta" in variants else []
    need += [16] if "fta16" in variants else []
    return need or [None]


def prepare_teacher(args, horizon: int, todo, prior: dict, log: Path) -> dict[str, Any]:
    """Train (if missing) and cache the teacher of `horizon`; its test metrics and cache sizes."""
    tdir = teacher_dir(args, horizon)
    info: dict[str, Any] = {"horizon": horizon, "teacher": args.teacher, "path": str(tdir)}
    if f"{tdir}#H{horizon}" in prior:
        print(f"[H={horizon}] teacher: kept from {args.out_json}", flush=True)
        return {**prior[f"{tdir}#H{horizon}"], "resumed": True}
    if args.teacher == "patchtst" and not (tdir / "config.json").exists():
        cmd = train_teacher_cmd(args, horizon)
        print(f"[H={horizon}] training the PatchTST teacher: distilts {' '.join(map(str, cmd[3:]))}", flush=True)
        info["train_wall_s"], _ = run_timed(cmd, log, env=_env(args))
        info["train_command"] = "distilts " + " ".join(map(str, cmd[3:]))
    training = tdir / "training.json"
    if training.exists():
        tj = json.loads(training.read_text())
        info["training"] = {"test": tj["test"], "val": tj["val"], "params": tj["model"]["param_count"],
                            "model": tj["model"], "epochs_run": tj["train"]["epochs_run"],
                            "best_epoch": tj["train"]["best_epoch"], "wall_s": tj["train"]["wall_s"],
                            "train_stride": tj["train"]["train_stride"], "lr": tj["train"]["lr"],
                            "batch_size": tj["train"]["batch_size"], "patience": tj["train"]["patience"]}
        if tj["horizon"] == horizon:
            info["test"] = {**tj["test"], "source": f"{training} (stride-1 test windows)"}
        else:
            info["trained_horizon"] = tj["horizon"]
    info["caches"] = []
    for tokens in hidden_settings(args, horizon, todo):
        wall, _ = run_timed(teach_cmd(args, horizon, tokens), log, env=_env(args))
        info["caches"].append({"hidden_tokens": tokens, "teach_wall_s": wall, **cache_sizes(args, horizon, tokens)})
    if args.stride != 1:  # `distilts distill` scores on stride-1 test windows: cache them once, before the jobs
        run_timed([*DISTILTS, "teach", "--teacher", args.teacher, "--teacher-path", tdir, "--data", args.data,
                   "--lookback", args.lookback, "--horizon", horizon, "--stride", 1, "--parts", "test",
                   "--cache-dir", args.cache_dir, "--device", "cpu", "--quiet"], log, env=_env(args))
    if "test" not in info:
        info["test"] = teacher_test_metrics(args, horizon)
    print(f"[H={horizon}] teacher test MSE {info['test']['mse']:.4f} MAE {info['test']['mae']:.4f}; caches "
          + ", ".join(f"{c['hidden_tokens']} hidden tokens: {c['hidden_bytes'] / 1e6:.1f} MB" for c in info["caches"]),
          flush=True)
    return info


def cache_sizes(args, horizon: int, tokens: int | None) -> dict[str, Any]:
    """Bytes of the cache entry `distilts teach` just filled (hidden states of the train part apart)."""
    from distilts.data import load_dataset
    from distilts.cache.entry import fill_teacher_cache

    cache = fill_teacher_cache(load_dataset(args.data), args.teacher, str(teacher_dir(args, horizon)), args.lookback,
                                 horizon, stride=args.stride, hidden=tokens is not None,
                                 hidden_tokens=tokens or 0, cache_dir=args.cache_dir, progress=False, device="cpu")
    hidden = cache.directory / "train.hidden.npy"
    shape = list(np.load(hidden, mmap_mode="r").shape) if hidden.exists() else None
    return {"cache": str(cache.directory), "cache_bytes": cache.size_bytes,
            "hidden_bytes": hidden.stat().st_size if hidden.exists() else 0, "train_hidden_shape": shape}


def teacher_test_metrics(args, horizon: int) -> dict[str, Any]:
    """Teacher test MSE/MAE on the stride-1 test windows (a teacher not trained by train-teacher)."""
    from distilts.data import load_dataset
    from distilts.teachers import load_teacher

    windows = load_dataset(args.data).windows("test", args.lookback, horizon, 1)
    teacher = load_teacher(args.teacher, str(teacher_dir(args, horizon)), "cpu")
    pred = np.concatenate([teacher.predict(x, horizon).forecast for _, x, _ in windows.iter_batches(256)])
    y = windows.targets().astype(np.float64)
    return {"mse": float(np.mean((pred - y) ** 2)), "mae": float(np.mean(np.abs(pred - y))),
            "source": "teacher run on the stride-1 test windows"}


# -- the grid ------------------------------------------------------------------------------------
def _env(args) -> dict[str, str]:
    return {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}


def run_cell(args, cell: tuple[int, str, str, int], log: Path) -> dict[str, Any]:
    horizon, student, variant, seed = cell
    out = run_dir(args, horizon, student, variant, seed)
    row: dict[str, Any] = {"horizon": horizon, "student": student, "variant": variant, "seed": seed,
                           "variant_label": variant_label(variant), "dir": str(out)}
    cmd = distill_cmd(args, horizon, student, variant, out, seed)
    row["command"] = "distilts " + " ".join(map(str, cmd[3:]))
    try:
        row["distill_wall_s"], _ = run_timed(cmd, log, env=_env(args))
        metrics = json.loads((out / "metrics.json").read_text())
        cfg = json.loads((out / "config.json").read_text())
        row.update(mse=metrics["test"]["mse"], mae=metrics["test"]["mae"], mse_by_step=metrics["test"]["mse_by_step"],
                   val_mse=metrics["val"]["mse"], param_count=cfg.get("param_count"), lookback=cfg["lookback"],
                   loss=cfg.get("loss"), epochs_run=cfg["train"]["epochs_run"], best_epoch=cfg["train"]["best_epoch"],
                   train_wall_s=cfg["train"]["wall_s"])
    except (RuntimeError, OSError, ValueError, KeyError) as exc:
        row["error"] = str(exc).strip().splitlines()[-1][:300]
    return row


def measure_all(args) -> dict:
    """Run the grid; returns the JSON record."""
    work = Path(args.work_dir)
    log = work / ("baselines.log" if args.baselines else "accuracy.log")
    todo = cells(args)
    prior_rows, prior_teachers = previous_results(args)
    if args.render:  # no runs: the report of the finished rows (and teachers) only
        todo = [c for c in todo if str(run_dir(args, *c)) in prior_rows]
        teachers = [t for t in prior_teachers.values() if any(t["horizon"] == h for h, *_ in todo)]
        rows = [{**prior_rows[str(run_dir(args, *c))], "resumed": True} for c in todo]
        return record(args, rows, teachers)
    rows: list[dict[str, Any]] = []
    teachers: list[dict[str, Any]] = []
    lock = threading.Lock()

    def save() -> None:  # keep partial results if a long run is stopped
        rec = record(args, rows, teachers)
        write_outputs(rec, markdown(rec), args.out_json, args.out_md)
        if not args.baselines and args.tau_sweep:
            plot_tau_sweep(rec, Path(args.out_md).with_name(Path(args.out_md).stem + "-tau-sweep.png"))

    if not args.baselines:  # one thread per horizon: each fills its own cache entries
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            teachers += pool.map(lambda h: prepare_teacher(args, h, todo, prior_teachers, log),
                                 list(dict.fromkeys(h for h, *_ in todo)))
        save()
    print(f"{len(todo)} runs, {args.jobs} at a time", flush=True)

    def one(cell) -> None:
        out = run_dir(args, *cell)
        if str(out) in prior_rows and (out / "config.json").exists():
            row = {**prior_rows[str(out)], "resumed": True}
        else:
            row = run_cell(args, cell, log)
        with lock:
            rows.append(row)
            print(f"[H={cell[0]}] {cell[1]:>12} {cell[2]:>6} s{cell[3]}: " + (row.get("error") or
                  f"MSE {row['mse']:.4f} MAE {row['mae']:.4f} ({row.get('distill_wall_s', 0):.0f} s)"), flush=True)
            save()

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(one, todo))
    return record(args, rows, teachers)


RESUME_KEYS = ("data", "lookback", "teacher", "epochs", "stride", "tau", "beta", "distill_args", "baselines", "teacher_for",
               "teacher_epochs", "teacher_stride", "teacher_d_model", "teacher_layers")


def previous_results(args) -> tuple[dict[str, dict], dict[str, dict]]:
    """Finished rows (by student dir) and teachers (by checkpoint dir) of an earlier run with the same
    settings, from its JSON: a stopped benchmark restarted with the same command skips them."""
    rows: dict[str, dict] = {}
    teachers: dict[str, dict] = {}
    if args.fresh:
        return rows, teachers
    for path in [Path(args.out_json), *map(Path, args.resume_from)]:
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        old_args = old.get("args", {})  # a key an older record lacks is not checked
        if any(k in old_args and old_args[k] != getattr(args, k) for k in RESUME_KEYS):
            print(f"{path}: written with other settings, not resumed", flush=True)
            continue
        rows.update({r["dir"]: r for r in old.get("rows", []) if r.get("mse") is not None and not r.get("error")})
        teachers.update({f"{t['path']}#H{t.get('horizon')}": t for t in old.get("teachers", []) if t.get("test")})
    return rows, teachers


# -- reports -------------------------------------------------------------------------------------
def record(args, rows: list[dict], teachers: list[dict]) -> dict:
    order = {c: i for i, c in enumerate(cells(args))}
    rows = sorted(rows, key=lambda r: order.get((r["horizon"], r["student"], r["variant"], r["seed"]), 1 << 30))
    return {"benchmark": "accuracy-baselines" if args.baselines else "accuracy", "machine": machine_info(),
            "commit": git_commit(), "args": vars(args),
            "variants": {v: {"label": variant_label(v), "flags": variant_flags(args, v)}
                         for v in dict.fromkeys(r["variant"] for r in rows)} if not args.baselines else {},
            "metrics": "MSE/MAE on z-scored values (train statistics), ETTh1 test split, windows stride 1",
            "teachers": teachers, "rows": rows, "cells": aggregate(rows)}


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def aggregate(rows: list[dict]) -> list[dict]:
    """One record per (horizon, student, variant): mean and sample std over seeds."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("mse") is not None:
            groups.setdefault((r["horizon"], r["student"], r["variant"]), []).append(r)
    out = []
    for (h, student, variant), rs in groups.items():
        mse, mse_sd = mean_std([r["mse"] for r in rs])
        mae, mae_sd = mean_std([r["mae"] for r in rs])
        out.append({"horizon": h, "student": student, "variant": variant, "n": len(rs), "seeds": [r["seed"] for r in rs],
                    "mse": mse, "mse_std": mse_sd, "mae": mae, "mae_std": mae_sd, "params": rs[0].get("param_count"),
                    "lookback": rs[0].get("lookback"), "distill_wall_s": statistics.fmean(
                        [r.get("distill_wall_s") or 0.0 for r in rs])})
    return out


def pm(mean: float | None, std: float | None, digits: int = 4) -> str:
    if mean is None:
        return "–"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def summary_rows(rec: dict, key: str = "mse") -> list[dict]:
    """One row per horizon x student with the variants side by side ('mean ± std'), plus the teachers."""
    variants = [v for v in rec["variants"] if not v.startswith("tau")]
    out = []
    for h in dict.fromkeys(c["horizon"] for c in rec["cells"]):
        for t in rec["teachers"]:
            if t["horizon"] == h:
                out.append({"horizon": h, "model": f"teacher ({t['teacher']})",
                            "params": (t.get("training") or {}).get("params"), "gt": f"{t['test'][key]:.4f}"})
        for student in dict.fromkeys(c["student"] for c in rec["cells"] if c["horizon"] == h):
            row: dict[str, Any] = {"horizon": h, "model": student}
            for c in rec["cells"]:
                if c["horizon"] == h and c["student"] == student and c["variant"] in variants:
                    row[c["variant"]] = pm(c[key], c[f"{key}_std"])
                    row["params"], row["n"] = c["params"], c["n"]
            out.append(row)
    return out


def columns(rec: dict, key: str = "mse") -> list[tuple[str, str]]:
    cols = [("horizon", "H"), ("model", "model"), ("params", "params"), ("n", "seeds")]
    return cols + [(v, f"{meta['label']} {key.upper()}") for v, meta in rec["variants"].items()
                   if not v.startswith("tau")]


def baseline_rows(rec: dict) -> list[dict]:
    out = []
    for c in rec["cells"]:
        pub = PUBLISHED[c["student"]].get(c["horizon"])
        out.append({"student": c["student"], "L": c["lookback"], "horizon": c["horizon"], "n": c["n"],
                    "mse": pm(c["mse"], c["mse_std"]), "mae": pm(c["mae"], c["mae_std"]),
                    "pub_mse": pub[0], "pub_mae": pub[1], "ratio": c["mse"] / pub[0] if pub else None})
    return out


def teacher_rows(rec: dict) -> list[dict]:
    out = []
    for t in rec["teachers"]:
        tr = t.get("training") or {}
        pub = PUBLISHED["patchtst"].get(t["horizon"]) if t["teacher"] == "patchtst" else None
        trained = f" (first {t['horizon']} steps of the H={t['trained_horizon']} teacher)" if t.get("trained_horizon") else ""
        out.append({"horizon": f"{t['horizon']}{trained}", "params": tr.get("params"),
                    "size": "d_model {d_model}, {layers} layers, d_ff {ffn_dim}".format(**{"ffn_dim": "?", **tr["model"]})
                    if tr.get("model") else None,
                    "epochs": f"{tr.get('best_epoch')} of {tr.get('epochs_run')}" if tr else None,
                    "stride": tr.get("train_stride"), "val": (tr.get("val") or {}).get("mse"),
                    "mse": t["test"]["mse"], "mae": t["test"]["mae"],
                    "pub_mse": pub[0] if pub else None, "pub_mae": pub[1] if pub else None,
                    "ratio": t["test"]["mse"] / pub[0] if pub else None,
                    "caches": "; ".join(f"{'all' if c['hidden_tokens'] == 0 else c['hidden_tokens']} tokens: "
                                        f"{c['hidden_bytes'] / 1e6:.1f} MB {c['train_hidden_shape']}"
                                        for c in t.get("caches", []) if c["hidden_tokens"] is not None) or "–"})
    return out


def sweep_cells(rec: dict) -> list[dict]:
    a = rec["args"]
    if not a.get("tau_sweep"):
        return []
    out = []
    for tau in a["tau_sweep"]:
        v = "kd" if tau == 0 else "hkd" if tau == a["tau"] else f"tau{tau:g}"
        rs = [r for r in rec["rows"] if r["horizon"] == a["sweep_horizon"] and r["student"] == a["sweep_student"]
              and r["variant"] == v and r.get("mse_by_step")]
        if not rs:
            continue
        by_step = np.mean([r["mse_by_step"] for r in rs], axis=0)
        q = max(1, len(by_step) // 4)
        mse, sd = mean_std([r["mse"] for r in rs])
        out.append({"tau": tau, "variant": v, "n": len(rs), "mse": pm(mse, sd), "mse_mean": mse,
                    "first_quarter": float(by_step[:q].mean()), "last_quarter": float(by_step[-q:].mean()),
                    "by_step": by_step.tolist()})
    return out


def plot_tau_sweep(rec: dict, path: Path) -> None:
    """Test MSE per forecast step for each tau (mean over seeds), and its difference to tau 0."""
    sweep = sweep_cells(rec)
    if not sweep:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = rec["args"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    base = next((np.asarray(s["by_step"]) for s in sweep if s["tau"] == 0), None)
    for s in sweep:
        y = np.asarray(s["by_step"])
        top.plot(np.arange(1, len(y) + 1), y, label=f"tau {s['tau']:g} (MSE {s['mse_mean']:.4f}, n={s['n']})", lw=1)
        if base is not None:
            bottom.plot(np.arange(1, len(y) + 1), y - base, label=f"tau {s['tau']:g}", lw=1)
    top.set_ylabel("test MSE at step")
    top.set_title(f"{a['sweep_student']}, ETTh1, L={a['lookback']}, H={a['sweep_horizon']}: horizon-weighted KD, "
                  f"mean over seeds {a['seeds']}", fontsize=9)
    top.legend(fontsize=8)
    bottom.axhline(0, color="k", lw=0.5)
    bottom.set_ylabel("MSE minus tau 0 (uniform KD)")
    bottom.set_xlabel("forecast step")
    bottom.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def markdown(rec: dict) -> str:
    a, m = rec["args"], rec["machine"]
    head = (f"Machine: {m['processor']}, {m['cpu_count']} cores; {m['date']}; commit {rec.get('commit')}. "
            f"{rec['metrics']}. Cells: mean ± sample std over seeds {a['seeds']} (n = seeds that finished).")
    runs = markdown_table(rec["rows"], [("horizon", "H"), ("student", "student"), ("variant", "variant"),
                                        ("seed", "seed"), ("epochs_run", "epochs"), ("best_epoch", "best"),
                                        ("distill_wall_s", "distill s"), ("mse", "MSE"), ("mae", "MAE"),
                                        ("error", "error")], digits=4)
    if a.get("baselines"):
        return "\n".join([
            "## Ground-truth baselines at the papers' settings vs published ETTh1 numbers", "", head, "",
            markdown_table(baseline_rows(rec), [("student", "student"), ("L", "L"), ("horizon", "H"), ("n", "seeds"),
                                                ("mse", "MSE (ours)"), ("mae", "MAE (ours)"), ("pub_mse", "MSE (paper)"),
                                                ("pub_mae", "MAE (paper)"), ("ratio", "ours / paper MSE")], digits=3),
            "", "Published: " + "; ".join(f"{k}: {PUBLISHED[k]['source']}" for k in ("dlinear", "itransformer")),
            "", "Settings: `" + " ".join(PAPER_TRAIN) + "` plus, per student: DLinear `--lookback 336 --lr 0.005`; "
            "iTransformer `--lookback 96 --lr 0.0001 --e-layers 2 --n-heads 8 --dropout 0.1 --d-model/--d-ff 256` "
            "(H 96, 192) or `512` (H 336, 720).", "", "### Runs", "", runs])
    lines = [f"## Accuracy: teacher vs students on ETTh1 (L={a['lookback']}, teacher {a['teacher']})", "", head, "",
             "### Test MSE", "", markdown_table(summary_rows(rec, "mse"), columns(rec, "mse")), "",
             "### Test MAE", "", markdown_table(summary_rows(rec, "mae"), columns(rec, "mae")), "",
             "Variants: " + "; ".join(f"**{v['label']}** `{' '.join(v['flags'])}`" for k, v in rec["variants"].items()
                                      if not k.startswith("tau")), ""]
    if rec["teachers"]:
        lines += ["### Teachers (PatchTST trained here) vs published PatchTST/64", "",
                  markdown_table(teacher_rows(rec), [("horizon", "H"), ("params", "params"), ("size", "size"),
                                                     ("epochs", "best epoch of run"), ("stride", "train stride"),
                                                     ("val", "val MSE"), ("mse", "test MSE"), ("mae", "test MAE"),
                                                     ("pub_mse", "PatchTST/64 MSE"), ("pub_mae", "MAE"),
                                                     ("ratio", "ours / paper"), ("caches", "FTA hidden-state cache (train)")],
                                 digits=4),
                  "", f"Published: {PUBLISHED['patchtst']['source']}.", ""]
    sweep = sweep_cells(rec)
    if sweep:
        lines += [f"### Tau sweep: {a['sweep_student']}, H={a['sweep_horizon']}, horizon-weighted KD (`--beta 0`)", "",
                  markdown_table(sweep, [("tau", "tau"), ("n", "seeds"), ("mse", "test MSE"),
                                         ("first_quarter", "MSE, first quarter of steps"),
                                         ("last_quarter", "MSE, last quarter of steps")], digits=4), "",
                  f"Plot: `{Path(a['out_md']).stem}-tau-sweep.png` (MSE per step per tau, mean over seeds).", ""]
    lines += ["### Runs", "", runs]
    return "\n".join(lines)


def _keyed(items: list[str], what: str, p: argparse.ArgumentParser, cast=str) -> dict[str, list]:
    try:
        return {k: [cast(x) for x in v.split(",")] for k, v in (s.split("=", 1) for s in items)}
    except ValueError:
        p.error(f"{what} takes STUDENT=X[,X...], e.g. itransformer=96")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "ETTh1.csv"))
    p.add_argument("--baselines", action="store_true",
                   help="ground-truth students at their papers' settings vs the published numbers (no teacher)")
    p.add_argument("--lookback", type=int, default=512)
    p.add_argument("--horizons", type=int, nargs="+", default=[96, 192, 336, 720])
    p.add_argument("--students", nargs="+", default=list(STUDENTS), choices=STUDENTS)
    p.add_argument("--variants", nargs="+", default=["gt", "kd", "hkd"], choices=list(VARIANTS))
    p.add_argument("--student-variants", action="append", default=[], metavar="STUDENT=V[,V...]",
                   help="variants of one student (default for itransformer: gt,kd,hkd,fta,fta16)")
    p.add_argument("--student-horizons", action="append", default=[], metavar="STUDENT=H[,H...]",
                   help="run STUDENT only at these horizons (e.g. itransformer=96 when time is short)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--tau-sweep", type=float, nargs="*", default=[0, 0.5, 1, 2, 4],
                   help="tau values of the sweep (horizon-weighted KD, --beta 0); none = no sweep")
    p.add_argument("--sweep-student", default="dlinear", choices=STUDENTS)
    p.add_argument("--sweep-horizon", type=int, default=336)
    p.add_argument("--teacher", default="patchtst", help="teacher family (patchtst, timemoe, chronos, moirai)")
    p.add_argument("--teacher-path", default=None,
                   help="checkpoint dir; may contain {lookback} and {horizon}. Default for patchtst: "
                        "benchmarks/runs/teachers/patchtst16-etth1-L{lookback}-H{horizon} (trained when missing)")
    # the teacher: PatchTST at the size of PatchTST's own ETTh1 script, early-stopped on validation
    p.add_argument("--teacher-for", action="append", default=[], metavar="H=H2",
                   help="horizon H uses the teacher trained for H2 >= H (its first H steps), e.g. 192=720")
    p.add_argument("--teacher-epochs", type=int, default=20)
    p.add_argument("--teacher-patience", type=int, default=5)
    p.add_argument("--teacher-stride", type=int, default=1, help="train-window stride of the teacher")
    p.add_argument("--teacher-d-model", type=int, default=16)
    p.add_argument("--teacher-layers", type=int, default=3)
    p.add_argument("--teacher-heads", type=int, default=4)
    p.add_argument("--teacher-ffn-dim", type=int, default=128)
    p.add_argument("--teacher-dropout", type=float, default=0.3)
    p.add_argument("--teacher-batch-size", type=int, default=128)
    p.add_argument("--teacher-lr", type=float, default=1e-3)
    p.add_argument("--epochs", type=int, default=10, help="student epochs (early stopping, patience 3)")
    p.add_argument("--stride", type=int, default=1, help="window stride of the teacher cache and student training")
    p.add_argument("--tau", type=float, default=1.0, help="horizon-weight temperature of the hkd/fta variants")
    p.add_argument("--beta", type=float, default=0.3, help="FTA loss weight of the fta variants (DistilTS: 0.3)")
    p.add_argument("--distill-args", default="", help="extra `distilts distill` flags for every run (one string)")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (each one process)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--work-dir", default=str(ROOT / "benchmarks" / "runs" / "accuracy"))
    p.add_argument("--cache-dir", default=None, help="teacher cache root (default: WORK_DIR/cache)")
    p.add_argument("--out-json", default=None)
    p.add_argument("--out-md", default=None)
    p.add_argument("--fresh", action="store_true", help="do not resume: rerun rows already in --out-json")
    p.add_argument("--render", action="store_true",
                   help="run nothing: rewrite the report from the finished rows of --out-json and --resume-from")
    p.add_argument("--resume-from", nargs="*", default=[], metavar="JSON",
                   help="also keep finished rows from these JSONs (parts of the grid run separately)")
    p.add_argument("--quick", action="store_true", help="L=96, H=96, 3 epochs, stride 4, 1 seed (minutes)")
    p.add_argument("--smoke", action="store_true", help="< 2 min: tiny teacher, dlinear, gt + hkd, 1 epoch")
    pre, _ = p.parse_known_args(argv)  # presets change defaults only: flags on the command line still win
    if pre.quick or pre.smoke:
        p.set_defaults(lookback=96, horizons=[96], epochs=3, stride=4, teacher_epochs=3, teacher_stride=4, seeds=[0],
                       tau_sweep=[], sweep_horizon=96)
    if pre.smoke:
        p.set_defaults(students=["dlinear"], variants=["gt", "hkd"], epochs=1, stride=16, lookback=48, horizons=[24],
                       teacher_epochs=1, teacher_stride=16, teacher_d_model=16, teacher_layers=1, teacher_ffn_dim=32)
    args = p.parse_args(argv)
    args.student_horizons = _keyed(args.student_horizons, "--student-horizons", p, int)
    try:
        args.teacher_for = sorted([int(a), int(b)] for a, b in (s.split("=", 1) for s in args.teacher_for))
    except ValueError:
        p.error("--teacher-for takes H=H2, e.g. 192=720")
    args.student_variants = {"itransformer": ["gt", "kd", "hkd", "fta", "fta16"],
                             **_keyed(args.student_variants, "--student-variants", p)}
    bad = [v for vs in args.student_variants.values() for v in vs if v not in VARIANTS]
    if bad:
        p.error(f"unknown variant(s) {bad}; use {list(VARIANTS)}")
    args.distill_args = shlex.split(args.distill_args) if isinstance(args.distill_args, str) else args.distill_args
    default_work = args.work_dir == p.get_default("work_dir")
    if default_work and (args.quick or args.smoke):
        args.work_dir += "-smoke" if args.smoke else "-quick"
    if args.teacher_path is None:
        if args.teacher != "patchtst":
            p.error(f"--teacher {args.teacher} needs --teacher-path (a local checkpoint directory)")
        tdir = "teachers" if not (args.quick or args.smoke) or not default_work else Path(args.work_dir).name + "-teachers"
        args.teacher_path = str(ROOT / "benchmarks" / "runs" / tdir / "patchtst16-etth1-L{lookback}-H{horizon}")
    args.cache_dir = args.cache_dir or str(Path(args.work_dir) / "cache")
    name = "baselines" if args.baselines else "accuracy"
    args.out_json = args.out_json or str(Path(args.work_dir) / f"{name}.json")
    args.out_md = args.out_md or str(Path(args.work_dir) / f"{name}.md")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    Path(args.work_dir).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rec = measure_all(args)
    rec["wall_s"] = time.perf_counter() - t0
    write_outputs(rec, markdown(rec), args.out_json, args.out_md)
    if not args.baselines and args.tau_sweep:
        plot_tau_sweep(rec, Path(args.out_md).with_name(Path(args.out_md).stem + "-tau-sweep.png"))
    print()
    if args.baselines:
        print(text_table(baseline_rows(rec), [("student", "student"), ("L", "L"), ("horizon", "H"), ("mse", "MSE"),
                                              ("pub_mse", "paper"), ("ratio", "ratio")], digits=3))
    else:
        print(text_table(summary_rows(rec), columns(rec)))
    print(f"\nwrote {args.out_json} and {args.out_md} in {rec['wall_s']:.0f} s")


# --- the harness entry (benchmarks/harness.py): the presets as this module's options -----------------------
PRESETS: dict[str, dict] = {
    # quick: the old --smoke (tiny teacher, DLinear, gt + horizon-weighted KD, 1 epoch); full: the sized ablation
    "quick": {"smoke": True},
    "full": {"horizons": [96, 192, 336, 720], "student_horizons": ["itransformer=96"], "teacher_for": ["192=720", "336=720"],
             "epochs": 6, "stride": 4, "seeds": [0, 1, 2], "tau_sweep": [0, 0.5, 1, 2, 4], "sweep_horizon": 336, "jobs": 2,
             "teacher_epochs": 10, "teacher_stride": 4, "teacher_patience": 3},
}


def run(ctx, **params):
    from benchmarks.support import script

    return script.run_main(ctx, sys.modules[__name__], params, takes_argv=True)

if __name__ == "__main__":
    main()
