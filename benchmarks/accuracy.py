#!/usr/bin/env python
"""Accuracy benchmark: teacher vs distilled students on ETTh1, one row per loss ablation.

For each horizon: (train the PatchTST teacher if its directory is missing, with the documented
`distilts train-teacher` command), cache the teacher once with `distilts teach --hidden`, then for
each student x variant run `distilts distill` and `distilts eval` (real CLI, subprocesses) on that
same cache. Variants (the DistilTS ablation):

  gt    ground truth only            --no-kd --beta 0
  kd    + KD, uniform over horizon   --tau 0 --beta 0
  hkd   + horizon-weighted KD        --tau 1 --beta 0   (tau: the horizon-weight temperature;
                                                         tau 0 = uniform weights)
  fta   + FTA (full method)          --tau 1 --beta 0.1 (beta: weight of the Factorized
                                                         Temporal Alignment loss)

Metrics: MSE/MAE on z-scored values (train statistics), standard ETTh1 test split, stride 1.

    python benchmarks/accuracy.py                 # full: L=512, H in 96 192 336 720, 2 students x 4 variants
    python benchmarks/accuracy.py --quick         # minutes: L=96, H=96, few epochs, train stride 4
    python benchmarks/accuracy.py --smoke         # < 1 min: tiny teacher, DLinear, gt + fta, 1 epoch
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import DISTILTS, ROOT, git_commit, machine_info, markdown_table, run_timed, text_table, write_outputs  # noqa: E402

STUDENTS = ("dlinear", "itransformer")
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "gt": ("ground truth only", ["--no-kd", "--beta", "0"]),
    "kd": ("+ KD (uniform)", ["--tau", "0", "--beta", "0"]),
    "hkd": ("+ horizon-weighted KD", ["--tau", "{tau}", "--beta", "0"]),
    "fta": ("+ FTA (full)", ["--tau", "{tau}", "--beta", "{beta}"]),
}


def teacher_dir(args, horizon: int) -> Path:
    """The teacher checkpoint for `horizon` (`--teacher-path` may hold '{lookback}' / '{horizon}')."""
    return Path(args.teacher_path.format(lookback=args.lookback, horizon=horizon))


def train_teacher_cmd(args, horizon: int) -> list:
    """The documented command that trains the PatchTST teacher for one horizon."""
    return [*DISTILTS, "train-teacher", "--data", args.data, "--lookback", args.lookback, "--horizon", horizon,
            "--out", teacher_dir(args, horizon), "--epochs", args.teacher_epochs, "--stride", args.teacher_stride,
            "--d-model", args.teacher_d_model, "--layers", args.teacher_layers, "--device", "cpu"]


def teach_cmd(args, horizon: int) -> list:
    return [*DISTILTS, "teach", "--teacher", args.teacher, "--teacher-path", teacher_dir(args, horizon),
            "--data", args.data, "--lookback", args.lookback, "--horizon", horizon, "--stride", args.stride,
            "--hidden", "--hidden-tokens", args.hidden_tokens, "--cache-dir", args.cache_dir, "--device", "cpu",
            "--quiet"]


def distill_cmd(args, horizon: int, student: str, variant: str, out: Path) -> list:
    flags = [f.format(tau=args.tau, beta=args.beta) for f in VARIANTS[variant][1]]
    return [*DISTILTS, "distill", "--teacher", args.teacher, "--teacher-path", teacher_dir(args, horizon),
            "--data", args.data, "--student", student, "--lookback", args.lookback, "--horizon", horizon,
            "--epochs", args.epochs, "--stride", args.stride, "--seed", args.seed, "--cache-dir", args.cache_dir,
            "--hidden-tokens", args.hidden_tokens, "--device", "cpu", "--out", out, *flags]


def eval_cmd(args, model_dir: Path) -> list:
    return [*DISTILTS, "eval", model_dir, "--data", args.data, "--json"]


def teacher_metrics(args, horizon: int) -> dict[str, Any]:
    """Teacher test MSE/MAE on the stride-1 test windows: from the cached forecasts (the very numbers
    the students learn from) when the cache has stride 1, else by running the teacher on them."""
    from distilts.data import load_dataset
    from distilts.distill.cache import ensure_teacher_cache

    ds = load_dataset(args.data)
    windows = ds.windows("test", args.lookback, horizon, 1)
    y = windows.targets().astype(np.float64)
    if args.stride == 1:
        cache = ensure_teacher_cache(ds, args.teacher, str(teacher_dir(args, horizon)), args.lookback, horizon,
                                     stride=1, hidden=True, hidden_tokens=args.hidden_tokens,
                                     cache_dir=args.cache_dir, progress=False, device="cpu")
        pred = np.asarray(cache.forecasts("test"), dtype=np.float64)
        source = f"cache {cache.directory}"
    else:
        from distilts.distill.teachers import load_teacher

        teacher = load_teacher(args.teacher, str(teacher_dir(args, horizon)), "cpu")
        pred = np.concatenate([teacher.predict(x, horizon).forecast for _, x, _ in windows.iter_batches(256)])
        source = "teacher run on the stride-1 test windows (the cache has a coarser stride)"
    return {"mse": float(np.mean((pred - y) ** 2)), "mae": float(np.mean(np.abs(pred - y))),
            "test_windows": int(len(y)), "source": source}


def parse_eval(stdout: str, model_dir: Path) -> dict[str, float]:
    """Test MSE/MAE from `distilts eval --json` output (or the metrics.json it writes)."""
    text = stdout.strip()
    try:
        data = json.loads(text[text.index("{"):])
    except ValueError:
        data = json.loads((model_dir / "metrics.json").read_text())
    test = data.get("test", data)
    return {"mse": float(test["mse"]), "mae": float(test["mae"])}


def run(args) -> dict:
    """Run the grid; returns the JSON record (rows in run order)."""
    work = Path(args.work_dir)
    log = work / "accuracy.log"
    rows: list[dict[str, Any]] = []
    teachers: list[dict[str, Any]] = []
    prior_rows, prior_teachers = previous_results(args)

    def save() -> None:  # keep partial results if a long run is stopped
        write_outputs(record(args, rows, teachers), markdown(record(args, rows, teachers)), args.out_json, args.out_md)

    for horizon in args.horizons:
        t_info: dict[str, Any] = {"horizon": horizon, "teacher": args.teacher, "path": str(teacher_dir(args, horizon))}
        if str(teacher_dir(args, horizon)) in prior_teachers:  # resumed: teacher trained and cached before
            t_info = {**prior_teachers[str(teacher_dir(args, horizon))], "resumed": True}
            teachers.append(t_info)
            print(f"[H={horizon}] teacher: kept from {args.out_json} (test MSE {t_info['test']['mse']:.4f})", flush=True)
        if t_info.get("resumed"):
            pass
        elif args.teacher == "patchtst" and not (teacher_dir(args, horizon) / "config.json").exists():
            cmd = train_teacher_cmd(args, horizon)
            print(f"[H={horizon}] training the PatchTST teacher: {' '.join(map(str, cmd[3:]))}", flush=True)
            t_info["train_wall_s"], _ = run_timed(cmd, log)
            t_info["train_command"] = "distilts " + " ".join(map(str, cmd[3:]))
        training = teacher_dir(args, horizon) / "training.json"
        if training.exists() and not t_info.get("resumed"):
            tj = json.loads(training.read_text())
            t_info["training"] = {"test": tj["test"], "val": tj["val"], "params": tj["model"]["param_count"],
                                  "epochs_run": tj["train"]["epochs_run"], "best_epoch": tj["train"]["best_epoch"],
                                  "wall_s": tj["train"]["wall_s"], "train_stride": tj["train"]["train_stride"]}
        if not t_info.get("resumed"):
            t_info["teach_wall_s"], _ = run_timed(teach_cmd(args, horizon), log)
            t_info["test"] = teacher_metrics(args, horizon)
            teachers.append(t_info)
            print(f"[H={horizon}] teacher cached in {t_info['teach_wall_s']:.1f} s: test MSE "
                  f"{t_info['test']['mse']:.4f} MAE {t_info['test']['mae']:.4f}", flush=True)
            save()
        for student in args.students:
            if horizon not in args.student_horizons.get(student, [horizon]):
                continue  # --student-horizons: this student only at some horizons (time budget)
            for variant in args.variants:
                out = work / "students" / f"{student}-L{args.lookback}-H{horizon}-{variant}-s{args.seed}"
                row: dict[str, Any] = {"horizon": horizon, "student": student, "variant": variant,
                                       "variant_label": VARIANTS[variant][0], "seed": args.seed, "dir": str(out)}
                if str(out) in prior_rows and (out / "config.json").exists():  # finished in an earlier run
                    rows.append({**prior_rows[str(out)], "resumed": True})
                    print(f"[H={horizon}] {student:>12} {variant:>4}: kept from {args.out_json} "
                          f"(MSE {rows[-1]['mse']:.4f})", flush=True)
                    continue
                try:
                    row["distill_wall_s"], _ = run_timed(distill_cmd(args, horizon, student, variant, out), log)
                    row["eval_wall_s"], stdout = run_timed(eval_cmd(args, out), log)
                    row.update(parse_eval(stdout, out))
                    cfg = json.loads((out / "config.json").read_text())
                    row["param_count"] = cfg.get("param_count")
                    row["loss"] = cfg.get("loss")
                except (RuntimeError, OSError, ValueError, KeyError) as exc:
                    row["error"] = str(exc).strip().splitlines()[-1][:300]
                rows.append(row)
                print(f"[H={horizon}] {student:>12} {variant:>4}: " + (row.get("error") or
                      f"MSE {row['mse']:.4f} MAE {row['mae']:.4f} ({row['distill_wall_s']:.0f} s)"), flush=True)
                save()
    return record(args, rows, teachers)


def previous_results(args) -> tuple[dict[str, dict], dict[str, dict]]:
    """Finished rows (by student dir) and teachers (by checkpoint dir) of an earlier run with the same
    settings, from its JSON: a stopped benchmark restarted with the same command skips them."""
    path = Path(args.out_json)
    if args.fresh or not path.exists():
        return {}, {}
    try:
        old = json.loads(path.read_text())
    except ValueError:
        return {}, {}
    keys = ("data", "lookback", "teacher", "epochs", "stride", "tau", "beta", "hidden_tokens", "seed",
            "teacher_epochs", "teacher_stride", "teacher_d_model", "teacher_layers")
    if any(old.get("args", {}).get(k) != getattr(args, k) for k in keys):
        print(f"{path}: written with other settings, not resumed", flush=True)
        return {}, {}
    rows = {r["dir"]: r for r in old.get("rows", []) if r.get("mse") is not None and not r.get("error")}
    teachers = {t["path"]: t for t in old.get("teachers", []) if t.get("test")}
    return rows, teachers


def record(args, rows: list[dict], teachers: list[dict]) -> dict:
    return {"benchmark": "accuracy", "machine": machine_info(), "commit": git_commit(), "args": vars(args),
            "variants": {k: {"label": v[0], "flags": [f.format(tau=args.tau, beta=args.beta) for f in v[1]]}
                         for k, v in VARIANTS.items() if k in args.variants},
            "metrics": "MSE/MAE on z-scored values (train statistics), ETTh1 test split, windows stride 1",
            "teachers": teachers, "rows": rows}


def summary_rows(rec: dict) -> list[dict]:
    """One row per horizon x student with the variants side by side, plus the teacher's row."""
    out = []
    for t in rec["teachers"]:
        h = t["horizon"]
        out.append({"horizon": h, "model": f"teacher ({t['teacher']})", "params": (t.get("training") or {}).get("params"),
                    **{f"{v}_mse": t["test"]["mse"] if v == "gt" else None for v in rec["variants"]},
                    **{f"{v}_mae": t["test"]["mae"] if v == "gt" else None for v in rec["variants"]}})
        for student in dict.fromkeys(r["student"] for r in rec["rows"] if r["horizon"] == h):
            row: dict[str, Any] = {"horizon": h, "model": student}
            for r in rec["rows"]:
                if r["horizon"] == h and r["student"] == student:
                    row[f"{r['variant']}_mse"], row[f"{r['variant']}_mae"] = r.get("mse"), r.get("mae")
                    row["params"] = r.get("param_count")
            out.append(row)
    return out


def columns(rec: dict) -> list[tuple[str, str]]:
    cols = [("horizon", "H"), ("model", "model"), ("params", "params")]
    for v, meta in rec["variants"].items():
        cols += [(f"{v}_mse", f"{meta['label']} MSE"), (f"{v}_mae", "MAE")]
    return cols


def markdown(rec: dict) -> str:
    """The Markdown report: the side-by-side table, then per-run details (seed, wall times)."""
    a, m = rec["args"], rec["machine"]
    lines = [f"## Accuracy: teacher vs students on ETTh1 (L={a['lookback']}, teacher {a['teacher']})", "",
             f"Machine: {m['processor']}, {m['cpu_count']} cores; {m['date']}; commit {rec.get('commit')}. "
             f"{rec['metrics']}. Teacher row: its test MSE/MAE (in the first column pair).", "",
             markdown_table(summary_rows(rec), columns(rec), digits=4), "",
             "Variants: " + "; ".join(f"**{v['label']}** `{' '.join(v['flags'])}`" for v in rec["variants"].values()),
             "", "### Runs", "",
             markdown_table([{**t, "mse": t["test"]["mse"], "what": f"teacher H={t['horizon']}",
                              "wall": t.get("teach_wall_s"), "train": t.get("train_wall_s")} for t in rec["teachers"]],
                            [("what", "teacher"), ("train", "train-teacher s (this run)"), ("wall", "teach (cache) s"),
                             ("mse", "test MSE")]),
             "",
             markdown_table(rec["rows"], [("horizon", "H"), ("student", "student"), ("variant", "variant"),
                                          ("seed", "seed"), ("distill_wall_s", "distill s"), ("eval_wall_s", "eval s"),
                                          ("mse", "MSE"), ("mae", "MAE"), ("error", "error")], digits=4)]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "ETTh1.csv"))
    p.add_argument("--lookback", type=int, default=512)
    p.add_argument("--horizons", type=int, nargs="+", default=[96, 192, 336, 720])
    p.add_argument("--students", nargs="+", default=list(STUDENTS), choices=STUDENTS)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--teacher", default="patchtst", help="teacher family (patchtst, timemoe, chronos, moirai)")
    p.add_argument("--teacher-path", default=None,
                   help="checkpoint dir; may contain {lookback} and {horizon}. Default for patchtst: "
                        "benchmarks/runs/teachers/patchtst-etth1-L{lookback}-H{horizon} (trained when missing)")
    p.add_argument("--teacher-epochs", type=int, default=8)
    p.add_argument("--teacher-stride", type=int, default=2, help="train-window stride of the teacher")
    p.add_argument("--teacher-d-model", type=int, default=64)
    p.add_argument("--teacher-layers", type=int, default=3)
    p.add_argument("--epochs", type=int, default=10, help="student epochs")
    p.add_argument("--stride", type=int, default=1, help="window stride of the teacher cache and student training")
    p.add_argument("--tau", type=float, default=1.0, help="horizon-weight temperature of the hkd/fta variants")
    p.add_argument("--beta", type=float, default=0.1, help="FTA loss weight of the fta variant")
    p.add_argument("--hidden-tokens", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", default=str(ROOT / "benchmarks" / "runs" / "accuracy"))
    p.add_argument("--cache-dir", default=None, help="teacher cache root (default: WORK_DIR/cache)")
    p.add_argument("--out-json", default=None)
    p.add_argument("--out-md", default=None)
    p.add_argument("--student-horizons", action="append", default=[], metavar="STUDENT=H[,H...]",
                   help="run STUDENT only at these horizons (e.g. itransformer=96 when time is short)")
    p.add_argument("--fresh", action="store_true", help="do not resume: rerun rows already in --out-json")
    p.add_argument("--quick", action="store_true", help="L=96, H=96, 3 epochs, stride 4 (minutes on 2 cores)")
    p.add_argument("--smoke", action="store_true", help="< 1 min: tiny teacher, dlinear, gt + fta, 1 epoch")
    # presets change defaults only: a flag given on the command line still wins (e.g. --quick --epochs 5)
    pre, _ = p.parse_known_args(argv)
    if pre.quick or pre.smoke:
        p.set_defaults(lookback=96, horizons=[96], epochs=3, stride=4, teacher_epochs=3, teacher_stride=4)
    if pre.smoke:
        p.set_defaults(students=["dlinear"], variants=["gt", "fta"], epochs=1, stride=16, lookback=48, horizons=[24],
                       teacher_epochs=1, teacher_stride=16, teacher_d_model=16, teacher_layers=1)
    args = p.parse_args(argv)
    try:
        args.student_horizons = {k: [int(h) for h in v.split(",")]
                                 for k, v in (s.split("=", 1) for s in args.student_horizons)}
    except ValueError:
        p.error("--student-horizons takes STUDENT=H[,H...], e.g. itransformer=96")
    default_work = args.work_dir == p.get_default("work_dir")
    if default_work and (args.quick or args.smoke):
        args.work_dir += "-smoke" if args.smoke else "-quick"
    if args.teacher_path is None:
        if args.teacher != "patchtst":
            p.error(f"--teacher {args.teacher} needs --teacher-path (a local checkpoint directory)")
        tdir = "teachers" if not (args.quick or args.smoke) or not default_work else Path(args.work_dir).name + "-teachers"
        args.teacher_path = str(ROOT / "benchmarks" / "runs" / tdir / "patchtst-etth1-L{lookback}-H{horizon}")
    args.cache_dir = args.cache_dir or str(Path(args.work_dir) / "cache")
    args.out_json = args.out_json or str(Path(args.work_dir) / "accuracy.json")
    args.out_md = args.out_md or str(Path(args.work_dir) / "accuracy.md")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    Path(args.work_dir).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rec = run(args)
    rec["wall_s"] = time.perf_counter() - t0
    write_outputs(rec, markdown(rec), args.out_json, args.out_md)
    print()
    print(text_table(summary_rows(rec), columns(rec), digits=4))
    print(f"\nwrote {args.out_json} and {args.out_md} in {rec['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
