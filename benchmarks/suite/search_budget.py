"""`distilts search` under a device budget: what it chooses, the accuracy the budget costs, and its wall time.

Runs the documented command (a subprocess; resumable: an interrupted run continues its study in
benchmarks/runs/search-<case>) for each case, then reads what it left: the chosen student, its test
MSE (ETTh1, H=96, normalized) and figures, whether it fits, the most accurate trial with no budget, trial
counts by verdict, wall time and trials per hour on this machine. Goals (issue 27): on rpi4 with a 0.5 ms
budget, a test MSE at least as good as the quickstart's hand-chosen DLinear (0.3715); on cortex-m4f with
256 KiB flash and 64 KiB RAM, a student that fits and verifies. The quick preset is a 3-trial search on
the synthetic series (plumbing only).

    python -m benchmarks run search_budget --preset full --set teacher_path=runs/quickstart/teacher-patchtst
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.fixtures import DISTILTS, ROOT, run_cli
from benchmarks.harness import BenchmarkError, Context, Record

QUICKSTART_MSE = 0.3715  # README: the quickstart's DLinear (KD from its PatchTST teacher), test MSE
CASES: dict[str, dict[str, Any]] = {
    "rpi4": {"args": ["--target", "rpi4", "--max-latency-ms", "0.5"], "teacher": True},
    "cortex-m4f": {"args": ["--target", "cortex-m4f", "--max-flash-kib", "256", "--max-ram-kib", "64"],
                   "teacher": False},
    "synthetic-m4f": {"args": ["--target", "cortex-m4f", "--max-flash-kib", "64", "--max-ram-kib", "32"],
                      "teacher": False, "synthetic": True},
}


def _teacher(ctx: Context, teacher_path: str | None, data: Path) -> str:
    if teacher_path:
        return str(ROOT / teacher_path)

    def build(tmp: Path) -> None:  # the quickstart's teacher command
        run_cli(["train-teacher", "--data", data, "--lookback", 512, "--horizon", 96, "--stride", 4, "--epochs", 5,
                 "--out", tmp / "teacher"], ctx.log)

    return str(ctx.fixtures.cached("teacher", {"data": "etth1", "lookback": 512, "horizon": 96, "epochs": 5},
                                   build) / "teacher")


def run(ctx: Context, cases: list[str], trials: int, jobs: list[int], epochs: int, lookback_max: int, horizon: int,
        timeout_min: float | None = None, teacher_path: str | None = None, fresh: bool = False) -> Iterator[Record]:
    """The cases' searches run at the same time (case i with jobs[i] worker processes), then are read."""
    procs: dict[str, tuple[subprocess.Popen, list[str], Path, float]] = {}
    for case, n_jobs in zip(cases, jobs, strict=True):
        spec = CASES[case]
        out = ROOT / "benchmarks" / "runs" / f"search-{case}-{trials}"
        if fresh:
            shutil.rmtree(out, ignore_errors=True)
        args = [*spec["args"], "--trials", trials, "--jobs", n_jobs, "--epochs", epochs, "--lookback-max",
                lookback_max, "--horizon", horizon, "--out", out]
        if timeout_min:
            args += ["--timeout-min", timeout_min]
        if not spec.get("synthetic"):
            data = ctx.fixtures.data("etth1")
            args += ["--data", data]
            if spec["teacher"]:
                args += ["--teacher", "patchtst", "--teacher-path", _teacher(ctx, teacher_path, data)]
        args = [str(a) for a in args]
        ctx.log("$ distilts search " + " ".join(args))
        out.parent.mkdir(parents=True, exist_ok=True)
        log = open(out.parent / f"search-{case}-{trials}.log", "a")
        procs[case] = (subprocess.Popen([*DISTILTS, "search", *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT),
                       args, out, time.perf_counter())
    for case, (proc, args, out, t0) in procs.items():
        proc.wait()
        wall = time.perf_counter() - t0
        if not (out / "trials.json").exists():
            raise BenchmarkError(f"distilts search ({case}) failed: see {out.parent / f'search-{case}-{trials}.log'}")
        doc = json.loads((out / "trials.json").read_text())
        trials_rec = doc["trials"]
        pareto = json.loads((out / "pareto.json").read_text())
        chosen = pareto.get("chosen_record") or next((t for t in trials_rec if t["number"] == pareto["chosen"]), None)
        trained = [t for t in trials_rec if t.get("val_mse") is not None]
        best = min(trained, key=lambda t: t["val_mse"]) if trained else None
        counts: dict[str, int] = {}
        for t in trials_rec:
            counts[t["status"]] = counts.get(t["status"], 0) + 1
        params = {"case": case, "command": "distilts search " + " ".join(args).replace(str(ROOT) + "/", ""),
                  "trials": len(trials_rec), "verdicts": counts, "search_wall_s": round(doc["wall_s"], 1),
                  "chosen": chosen and chosen["label"], "figures": chosen and chosen.get("figures"),
                  "folded": chosen and chosen.get("folded"),
                  "unbudgeted_best": best and best["label"], "unbudgeted_best_test_mse": best and best["test_mse"]}
        ctx.log(f"{case}: chosen {params['chosen']}, {len(trials_rec)} trials in {doc['wall_s'] / 60:.1f} min")
        yield ctx.record("chosen_test_mse", chosen and chosen["test_mse"], "normalized MSE", params)
        yield ctx.record("fits", chosen is not None, "bool", params)
        yield ctx.record("trials_per_hour", len(trials_rec) / max(doc["wall_s"], 1e-9) * 3600, "trials/h", params,
                         note=f"this run's wall {wall:.0f} s (a resumed search counts only its last part)")
        if case == "rpi4" and chosen is not None:
            yield ctx.record("beats_quickstart", chosen["test_mse"] <= QUICKSTART_MSE, "bool", params,
                             note=f"quickstart DLinear test MSE {QUICKSTART_MSE}")


def report(records: list[dict]) -> str:
    by: dict[str, dict[str, Any]] = {}
    for r in records:
        by.setdefault(r["params"]["case"], {"p": r["params"]})[r["metric"]] = r["value"]
    lines = ["| case | chosen | test MSE | figures | fits | most accurate, no budget (test MSE) | trials (verdicts) | "
             "wall | trials/h |", "|---|---|---|---|---|---|---|---|---|"]
    for case, row in by.items():
        p = row["p"]
        f = p.get("figures") or {}
        figs = ", ".join(x for x in (f"{f['latency_ms']:.3f} ms" if f.get("latency_ms") is not None else "",
                                     f"flash {f['flash_kib']:.1f} KiB" if f.get("flash_kib") is not None else "",
                                     f"RAM {f['ram_kib']:.1f} KiB" if f.get("ram_kib") is not None else "") if x)
        mse = row.get("chosen_test_mse")
        lines.append(f"| {case} | {p['chosen']} | {'' if mse is None else f'{mse:.4f}'} | {figs} | {row['fits']} | "
                     f"{p['unbudgeted_best']} ({p['unbudgeted_best_test_mse'] or 0:.4f}) | {p['trials']} "
                     f"({', '.join(f'{v} {k}' for k, v in p['verdicts'].items())}) | "
                     f"{p['search_wall_s'] / 60:.0f} min | "
                     f"{row['trials_per_hour']:.0f} |")
    cmds = sorted({r["params"]["command"] for r in records})
    return "\n".join(lines) + "\n\nCommands:\n\n" + "\n".join(f"    {c}" for c in cmds)


PRESETS = {
    "quick": {"cases": ["synthetic-m4f"], "trials": 3, "jobs": [1], "epochs": 1, "lookback_max": 48, "horizon": 12},
    "full": {"cases": ["rpi4", "cortex-m4f"], "trials": 40, "jobs": [2, 1], "epochs": 8, "lookback_max": 512,
             "horizon": 96, "timeout_min": 80},
}
