#!/usr/bin/env python
"""Scale benchmark: how the teacher cache and distillation cost grow with variates, rows and ranks.

On synthetic wide data (D variates x N rows, Parquet), with a tiny random-weight TimeMoE on CPU:
  teach    `distilts teach --hidden` (1 rank: `python -m distilts`; 2 ranks: `torchrun --standalone
           --nproc-per-node 2 -m distilts`): fill time, bytes on disk (forecasts, hidden states), peak RSS
  distill  one epoch of DLinear + KD + FTA on that cache (`scale.py --worker-distill`, the same under
           torchrun): seconds per epoch (with validation), peak RSS
and a projection of the cache size at real size (Electricity, Traffic; TimeMoE-50M hidden states).

    python -m benchmarks run scale --preset full
    python -m benchmarks run scale --preset full
    python -m benchmarks run scale --preset full

Peak RSS is the largest single process (the max over ranks; `ru_maxrss` of the waited-for children).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.support.benchlib import ROOT, git_commit, machine_info, markdown_table, text_table, write_outputs

SRC = ROOT / "src"
OUT = ROOT / "benchmarks" / "runs" / "scale"
TOKENS = 16  # --hidden-tokens default
# real datasets (variates, rows) and the TimeMoE-50M hidden width
REAL = {"electricity": (321, 26304), "traffic": (862, 17544)}
D_MODEL_50M = 384


# -- data ---------------------------------------------------------------------------------------
def write_wide_parquet(path: Path, n_vars: int, n_rows: int, seed: int = 0) -> Path:
    """Hourly synthetic series: per-variate daily/weekly seasonality with random phase, trend and noise."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    t = np.arange(n_rows, dtype=np.float32)[:, None]
    phase = rng.uniform(0, 2 * np.pi, (1, n_vars)).astype(np.float32)
    amp = rng.uniform(0.5, 2.0, (1, n_vars)).astype(np.float32)
    values = (amp * np.sin(2 * np.pi * t / 24 + phase) + 0.5 * np.sin(2 * np.pi * t / 168 + 2 * phase)
              + 1e-4 * t * rng.normal(size=(1, n_vars)).astype(np.float32)
              + 0.2 * rng.normal(size=(n_rows, n_vars)).astype(np.float32)).astype(np.float32)
    dates = np.datetime64("2020-01-01T00:00:00", "s") + np.arange(n_rows) * np.timedelta64(3600, "s")
    cols = {"date": pa.array(dates)} | {f"v{i}": pa.array(values[:, i]) for i in range(n_vars)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(pa.table(cols), tmp)
    os.replace(tmp, path)
    return path


# -- measured runs ------------------------------------------------------------------------------
def measured(cmd: list[str], env: dict) -> dict:
    """Run `cmd` in a fresh wrapper process: wall seconds, peak RSS of its largest descendant, stdout."""
    wrapper = [sys.executable, "-m", "benchmarks.suite.scale", "--measure", "--", *cmd]
    res = subprocess.run(wrapper, capture_output=True, text=True, cwd=ROOT, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-3000:]}\n{res.stdout[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _measure_main(cmd: list[str]) -> None:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        sys.stderr.write(res.stdout[-4000:] + res.stderr[-4000:])
        raise SystemExit(res.returncode)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"wall_s": wall, "peak_rss_mb": peak_kb / 1024, "stdout": res.stdout[-4000:]}))


def launcher(ranks: int) -> list[str]:
    if ranks == 1:
        return [sys.executable]
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    return [torchrun, "--standalone", f"--nproc-per-node={ranks}"]


def run_cell(data: Path, n_vars: int, n_rows: int, ranks: int, a: argparse.Namespace, teacher: Path,
             cache: Path, env: dict) -> dict:
    common = ["--data", str(data), "--lookback", str(a.lookback), "--horizon", str(a.horizon),
              "--stride", str(a.stride[n_vars]), "--cache-dir", str(cache)]
    teach = measured([*launcher(ranks), "-m", "distilts", "teach", "--teacher", "timemoe", "--teacher-path",
                      str(teacher), *common, "--parts", "train,val", "--hidden", "--hidden-tokens", str(TOKENS),
                      "--device", "cpu", "--batch-size", str(a.chunk), "--quiet"], env)
    entry = next(p for p in (cache / "teacher").iterdir() if (p / "meta.json").exists())
    fbytes = sum(p.stat().st_size for p in entry.glob("*.forecast.npy"))
    hbytes = sum(p.stat().st_size for p in entry.glob("*.hidden.npy"))
    meta = json.loads((entry / "meta.json").read_text())
    windows = sum(r["windows"] for r in meta["parts"].values())
    distill = measured([*launcher(ranks), "-m", "benchmarks.suite.scale", "--worker-distill", "--teacher-path", str(teacher), *common,
                        "--batch-size", str(a.batch_size)], env)
    worker = json.loads(distill["stdout"].strip().splitlines()[-1])
    return {"variates": n_vars, "rows": n_rows, "ranks": ranks, "stride": a.stride[n_vars], "windows": windows,
            "series": windows * n_vars, "teach_s": round(teach["wall_s"], 2),
            "series_per_s": round(windows * n_vars / teach["wall_s"], 1),
            "forecast_mb": fbytes / 1e6, "hidden_mb": hbytes / 1e6, "teach_peak_rss_mb": round(teach["peak_rss_mb"]),
            "train_windows": worker["train_windows"], "epoch_s": round(worker["epoch_s"], 2),
            "distill_wall_s": round(distill["wall_s"], 2), "distill_peak_rss_mb": round(distill["peak_rss_mb"]),
            "load_avg": round(os.getloadavg()[0], 2)}


def _worker_distill(a: argparse.Namespace) -> None:
    """One epoch of DLinear + KD + FTA on the cached teacher outputs (rank 0 prints a JSON line)."""
    import torch

    from distilts.data import load_dataset
    from distilts import distributed
    from distilts.cache.entry import fill_teacher_cache
    from distilts.students import build_student
    from distilts.distill.config import TrainConfig
    from distilts.distill.trainer import TrainData, train

    torch.set_num_threads(1)
    with distributed.session("cpu") as comm:
        ds = load_dataset(a.data)
        cache = fill_teacher_cache(ds, "timemoe", a.teacher_path, a.lookback, a.horizon, parts=("train", "val"),
                                     stride=a.stride, hidden=True, hidden_tokens=TOKENS, cache_dir=a.cache_dir,
                                     device="cpu", progress=False)
        train_w = ds.windows("train", a.lookback, a.horizon, a.stride)
        data = TrainData(train_w, ds.windows("val", a.lookback, a.horizon, a.stride),
                         cache.forecasts("train"), cache.hidden("train"))
        torch.manual_seed(0)
        model = build_student("dlinear", a.lookback, a.horizon, len(ds.columns))
        with tempfile.TemporaryDirectory() as tmp:
            result = train(model, data, TrainConfig(epochs=1, batch_size=a.batch_size, device="cpu"),
                           Path(tmp) / "run", progress=False)
        if comm.is_main:
            print(json.dumps({"epoch_s": result.wall_s, "train_windows": len(train_w)}))


# -- projection ---------------------------------------------------------------------------------
def projection(lookback: int = 512, horizon: int = 96) -> list[dict]:
    """Cache bytes of Electricity and Traffic (70/10/20 split) for TimeMoE-50M at L=512, H=96."""
    from distilts.data.split import standard_split
    from distilts.cache.entry import entry_bytes

    settings = [  # (label, train/val stride, hidden tokens kept T', parts with hidden states)
        ("distill defaults (FTA on): stride 1, T'=16, hidden for train", 1, TOKENS, ("train",)),
        ("`teach --hidden` defaults: stride 1, T'=16, hidden for train+val+test", 1, TOKENS, ("train", "val", "test")),
        ("all 512 tokens (--hidden-tokens 0), hidden for train", 1, lookback, ("train",)),
        ("--stride 4 --hidden-tokens 8, hidden for train", 4, 8, ("train",)),
        ("forecasts only (--teacher-hidden online, or --beta 0)", 1, 0, ()),
    ]
    rows = []
    for name, (n_vars, n_rows) in REAL.items():
        split = standard_split(n_rows, "ratio")
        for label, stride, tokens, hidden_parts in settings:
            total = {"forecast": 0, "hidden": 0}
            windows = 0
            for part in ("train", "val", "test"):
                lo, hi = split.part(part)
                s = stride if part != "test" else 1  # distill scores the test part at stride 1
                n = len(range(max(lo, lookback), hi - horizon + 1, s))
                b = entry_bytes(n, horizon, n_vars, tokens if part in hidden_parts else 0, D_MODEL_50M)
                total["forecast"] += b["forecast"]
                total["hidden"] += b["hidden"]
                windows += n
            rows.append({"dataset": name, "variates": n_vars, "rows": n_rows, "settings": label, "windows": windows,
                         "forecast_gb": total["forecast"] / 1e9, "hidden_gb": total["hidden"] / 1e9,
                         "total_gb": (total["forecast"] + total["hidden"]) / 1e9})
    return rows


# -- report -------------------------------------------------------------------------------------
GRID_COLS = [("variates", "D"), ("rows", "rows"), ("ranks", "ranks"), ("stride", "stride"), ("windows", "windows"),
             ("series", "series (windows x D)"), ("teach_s", "fill s"), ("series_per_s", "series/s"),
             ("forecast_mb", "forecasts MB"), ("hidden_mb", "hidden MB"), ("teach_peak_rss_mb", "fill peak RSS MB"),
             ("train_windows", "train windows"), ("epoch_s", "distill s/epoch"),
             ("distill_peak_rss_mb", "distill peak RSS MB"), ("load_avg", "load avg")]
PROJ_COLS = [("dataset", "dataset"), ("variates", "D"), ("rows", "rows"), ("settings", "settings"),
             ("windows", "windows (train+val+test)"), ("forecast_gb", "forecasts GB"), ("hidden_gb", "hidden GB"),
             ("total_gb", "total GB")]


def render(payload: dict) -> str:
    a = payload["args"]
    lines = [f"Scale grid: tiny TimeMoE (d_model 32, 2 layers, random weights), L={a['lookback']}, H={a['horizon']}, "
             f"--hidden-tokens {TOKENS} (float16), parts train+val, chunk {a['chunk']} windows; DLinear + KD + FTA, "
             f"1 epoch, global batch {a['batch_size']}; CPU, 1 torch thread per rank.", ""]
    if payload.get("rows"):
        lines += [markdown_table(payload["rows"], GRID_COLS), ""]
    lines += [f"Projection at real size (TimeMoE-50M, d_model {D_MODEL_50M}, float16 hidden states, L=512, H=96, "
              "70/10/20 split; windows = train + val at the stride + test at stride 1; "
              "`python -m benchmarks run scale --preset full`):", "",
              markdown_table(payload["projection"], PROJ_COLS)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--measure"]:
        return _measure_main(argv[2:] if argv[1:2] == ["--"] else argv[1:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variates", type=int, nargs="+", default=[7, 64, 321])
    p.add_argument("--rows", type=int, nargs="+", default=[20_000, 100_000])
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--lookback", type=int, default=96)
    p.add_argument("--horizon", type=int, default=24)
    p.add_argument("--strides", default="7=48,64=192,321=768",
                   help="window stride per variate count (cut to fit the time box; D=x,...)")
    p.add_argument("--chunk", type=int, default=64, help="teach --batch-size (windows per chunk)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--project-only", action="store_true")
    p.add_argument("--reproject", type=Path, help="recompute the projection of a scale.json and re-render its .md")
    p.add_argument("--out", type=Path, default=OUT)
    # worker mode (run by the benchmark itself, under torchrun for 2 ranks)
    p.add_argument("--worker-distill", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--teacher-path", help=argparse.SUPPRESS)
    p.add_argument("--stride", type=int, help=argparse.SUPPRESS)
    p.add_argument("--cache-dir", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker_distill:
        return _worker_distill(a)
    if a.reproject:
        payload = json.loads(a.reproject.read_text())
        payload["projection"] = projection()
        write_outputs(payload, render(payload), a.reproject, a.reproject.with_suffix(".md"))
        return print(render(payload))
    if a.smoke:
        a.variates, a.rows, a.strides = [7, 64], [4000], "7=24,64=96"
    a.stride = {int(k): int(v) for k, v in (kv.split("=") for kv in a.strides.split(","))}
    payload: dict[str, Any] = {"benchmark": "scale", "args": {k: v for k, v in vars(a).items() if k != "out"},
                               "machine": machine_info(), "commit": git_commit(), "rows": [],
                               "projection": projection()}
    a.out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = a.out / "scale.json", a.out / "scale.md"
    if not a.project_only:
        from distilts.teachers.timemoe import save_random_checkpoint

        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
               "OMP_NUM_THREADS": "1"}
        work = Path(tempfile.mkdtemp(prefix="distilts-scale-"))
        teacher = save_random_checkpoint(work / "tiny-timemoe", seed=0)
        for n_rows in a.rows:
            for n_vars in a.variates:
                data = write_wide_parquet(work / f"wide-{n_vars}x{n_rows}.parquet", n_vars, n_rows)
                for ranks in a.ranks:
                    cache = work / f"cache-{n_vars}-{n_rows}-{ranks}"
                    row = run_cell(data, n_vars, n_rows, ranks, a, teacher, cache, env)
                    payload["rows"].append(row)
                    print(text_table([row], GRID_COLS), flush=True)
                    write_outputs(payload, render(payload), json_path, md_path)  # partial results survive a kill
                    subprocess.run(["rm", "-rf", str(cache)], check=False)
    write_outputs(payload, render(payload), json_path, md_path)
    print(render(payload))
    print(f"\nwrote {json_path} and {md_path}")


# --- the harness entry (benchmarks/harness.py): the presets as this module's options -----------------------
PRESETS: dict[str, dict] = {"quick": {"smoke": True}, "full": {}}


def run(ctx, **params):
    from benchmarks.support import script

    return script.run_main(ctx, sys.modules[__name__], params, takes_argv=True)

if __name__ == "__main__":
    main()
