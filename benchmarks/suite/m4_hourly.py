"""M4 Hourly with the competition's protocol: each series' train values -> its 48 test values.

One run, side by side: a PatchTST teacher trained here as a global model (all 414 series pooled),
the global DLinear distilled from it (compiled to ONNX fp32 and TFLite int8, forecast with
`distilts forecast` from the M4 file), the same DLinear on ground truth only, Naive2 (the
competition's benchmark: seasonally adjusted naive, 90% ACF seasonality test, classical
multiplicative decomposition), and statsforecast's SeasonalNaive, AutoETS and AutoTheta (season 24;
the `bench` extra). Scores: sMAPE, MASE (m = 24, in-sample seasonal naive of each series' train
values) and OWA against Naive2, as the competition computed them; next to the published table.

    python -m benchmarks run m4_hourly --preset full
    python -m benchmarks run m4_hourly --preset full

Every step is cached under benchmarks/runs/m4h/ (teacher, students, artifacts, the statsforecast
forecasts), so a rerun only recomputes what is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.support.benchlib import DISTILTS, ROOT, git_commit, machine_info, markdown_table, run_timed, text_table, write_outputs

M4 = ROOT.parent / "shared" / "data" / "m4"
H, M = 48, 24
# the organisers' "Evaluation and Ranks.xlsx", sheet "Point Forecasts-Frequency", Hourly (data/README.md)
PUBLISHED = [
    {"model": "published: Naive2", "smape": 18.383, "mase": 2.395},
    {"model": "published: Theta", "smape": 18.138, "mase": 2.455},
    {"model": "published: ES-RNN (Smyl, id 118, overall winner)", "smape": 9.328, "mase": 0.893},
    {"model": "published: best hourly entry (id 238)", "smape": 8.913, "mase": 0.801},
]


# --- the competition's metrics and benchmark ------------------------------------------------------
def smape(y: np.ndarray, f: np.ndarray) -> float:
    return float(np.mean(200.0 * np.abs(y - f) / (np.abs(y) + np.abs(f))))


def mase_scale(train: np.ndarray, m: int = M) -> float:
    return float(np.mean(np.abs(train[m:] - train[:-m])))


def seasonality_test(x: np.ndarray, m: int = M) -> bool:
    """The M4 code's 90% test: |ACF(m)| beyond 1.645 * sqrt((1 + 2 sum_{k<m} ACF(k)^2) / n)."""
    x = x - x.mean()
    denom = float(np.sum(x * x))
    acf = np.array([np.sum(x[k:] * x[: len(x) - k]) / denom for k in range(m + 1)])
    limit = 1.645 * np.sqrt((1 + 2 * np.sum(acf[1:m] ** 2)) / len(x))
    return bool(abs(acf[m]) > limit)


def seasonal_indices(x: np.ndarray, m: int = M) -> np.ndarray:
    """Classical multiplicative decomposition: centred 2 x m moving average, mean ratio per phase, normalised."""
    kernel = np.r_[0.5, np.ones(m - 1), 0.5] / m
    trend = np.convolve(x, kernel, mode="valid")  # aligned with x[m//2 : -m//2]
    ratio = x[m // 2: len(x) - m // 2] / trend
    phase = (np.arange(len(ratio)) + m // 2) % m
    idx = np.array([ratio[phase == p].mean() for p in range(m)])
    return idx / idx.mean()


def naive2(train: np.ndarray, h: int = H, m: int = M) -> np.ndarray:
    """Seasonally adjusted naive: the last deseasonalised value, reseasonalised (M4's Naive2)."""
    if not seasonality_test(train, m):
        return np.repeat(train[-1], h)
    s = seasonal_indices(train, m)
    phase = np.arange(len(train)) % m
    last = train[-1] / s[phase[-1]]
    return last * s[(len(train) + np.arange(h)) % m]


def score(name: str, f: np.ndarray, train: list[np.ndarray], test: np.ndarray, naive: dict, **extra) -> dict:
    s = float(np.mean([smape(test[i], f[i]) for i in range(len(test))]))
    m = float(np.mean([np.mean(np.abs(test[i] - f[i])) / mase_scale(train[i]) for i in range(len(test))]))
    owa = None if not naive else 0.5 * (s / naive["smape"] + m / naive["mase"])
    return {"model": name, "smape": s, "mase": m, "owa": owa, **extra}


# --- the models ---------------------------------------------------------------------------------
def read_m4() -> tuple[list[str], list[np.ndarray], np.ndarray]:
    from distilts.data.panel import load_panel

    tr, te = load_panel(M4 / "Hourly-train.csv"), load_panel(M4 / "Hourly-test.csv")
    assert tr.ids == te.ids
    return tr.ids, [np.asarray(tr.series(i), np.float64) for i in range(len(tr))], \
        np.stack([np.asarray(te.series(i), np.float64) for i in range(len(te))])


def long_parquet(path: Path) -> Path:
    """M4 Hourly's train series as long-format Parquet (unique_id, ds = step index, y), written once."""
    if not path.exists():
        import pandas as pd

        ids, train, _ = read_m4()
        frame = pd.concat([pd.DataFrame({"unique_id": i, "ds": np.arange(len(v)), "y": v}) for i, v in zip(ids, train)])
        tmp = path.with_suffix(".partial")
        frame.to_parquet(tmp, index=False)
        tmp.replace(path)
    return path


def teacher_forecasts(teacher_dir: Path, train: list[np.ndarray], lookback: int) -> np.ndarray:
    """The teacher as it was trained: per-series z-score with the train-part statistics (all but the last
    2H values), its forecast of the last window, back to the series' scale."""
    from distilts.teachers import load_teacher

    t = load_teacher("patchtst", str(teacher_dir), device="cpu")
    x, mu, sd = [], [], []
    for v in train:
        part = v[: len(v) - 2 * H]
        m_, s_ = part.mean(), part.std() or 1.0
        x.append((v[-lookback:] - m_) / s_)
        mu.append(m_)
        sd.append(s_)
    out = np.concatenate([t.predict(np.stack(x)[lo: lo + 128, :, None].astype(np.float32), H).forecast
                          for lo in range(0, len(x), 128)])[..., 0]
    return out * np.array(sd)[:, None] + np.array(mu)[:, None]


def artifact_forecasts(art: Path, ids: list[str], runs: Path, data: Path) -> tuple[np.ndarray, float]:
    import pyarrow.parquet as pq

    out = runs / f"forecast-{art.name}.parquet"
    wall, _ = run_timed([*DISTILTS, "forecast", art, "--data", data, "--out", out])
    t = pq.read_table(out).to_pydict()
    by_id: dict[str, list[float]] = {}
    id_col = "id" if "id" in t else "unique_id"  # M4 wide rows name it id; long format keeps its own name
    for i, v in zip(t[id_col], t["forecast"]):
        by_id.setdefault(i, []).append(v)
    return np.array([by_id[i] for i in ids], dtype=np.float64), wall


def statsforecast_forecasts(ids: list[str], train: list[np.ndarray], cache: Path) -> dict[str, np.ndarray]:
    """SeasonalNaive, AutoETS and AutoTheta (season 24) from statsforecast, computed once and cached."""
    if cache.exists():
        z = np.load(cache)
        return {k: z[k] for k in z.files}
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, AutoTheta, SeasonalNaive

    df = pd.concat([pd.DataFrame({"unique_id": i, "ds": np.arange(len(v)), "y": v}) for i, v in zip(ids, train)])
    out: dict[str, np.ndarray] = {}
    for model in (SeasonalNaive(season_length=M), AutoETS(season_length=M), AutoTheta(season_length=M)):
        t0 = time.perf_counter()
        fc = StatsForecast(models=[model], freq=1, n_jobs=-1).forecast(df=df, h=H)
        col = [c for c in fc.columns if c not in ("unique_id", "ds")][0]
        out[col] = np.stack([fc[fc.unique_id == i][col].to_numpy() for i in ids])
        out[f"{col}_seconds"] = np.array(time.perf_counter() - t0)
        print(f"  statsforecast {col}: {float(out[f'{col}_seconds']):.0f} s", flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lookback", type=int, default=336)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--teacher-epochs", type=int, default=4)
    ap.add_argument("--teacher-layers", type=int, default=2)
    ap.add_argument("--stride", type=int, default=4)
    ap.add_argument("--max-windows-per-series", type=int, default=32)
    ap.add_argument("--runs", default=str(ROOT / "benchmarks" / "runs" / "m4h"))
    ap.add_argument("--no-stats", action="store_true", help="skip statsforecast (the bench extra)")
    ap.add_argument("--parquet", action="store_true",
                    help="feed distilts the series as long-format Parquet (unique_id, ds, y) instead of M4 wide rows")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "m4_hourly"))
    args = ap.parse_args()
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    log = runs / "commands.log"
    data = long_parquet(runs / "Hourly-train.parquet") if args.parquet else M4 / "Hourly-train.csv"
    common = ["--data", data, "--lookback", args.lookback, "--horizon", H, "--stride", args.stride,
              "--max-windows-per-series", args.max_windows_per_series]
    timings: dict[str, float] = {}

    teacher = runs / "teacher"
    if not (teacher / "config.json").exists():
        print("training the PatchTST teacher (global, all series pooled) ...", flush=True)
        timings["train_teacher_s"], _ = run_timed([*DISTILTS, "train-teacher", *common, "--out", teacher,
                                                   "--epochs", args.teacher_epochs, "--layers", args.teacher_layers,
                                                   "--patience", 2, "--device", "cpu"], log)
    students = {"kd": runs / "dlinear-kd", "gt": runs / "dlinear-gt"}
    for kind, out in students.items():
        if not (out / "metrics.json").exists():
            print(f"distilling the global DLinear ({kind}) ...", flush=True)
            extra = ["--teacher", "patchtst", "--teacher-path", teacher] if kind == "kd" else ["--no-kd", "--beta", "0"]
            timings[f"distill_{kind}_s"], _ = run_timed(
                [*DISTILTS, "distill", "--student", "dlinear", *common, "--epochs", args.epochs,
                 "--device", "cpu", "--quiet", "--out", out, *extra], log)
    arts = {}
    for kind, target in (("kd", ["--target", "onnx"]), ("kd", ["--target", "tflite", "--int8"]),
                         ("gt", ["--target", "onnx"])):
        name = "tflite-int8" if "--int8" in target else "onnx-fp32"
        art = students[kind] / "artifacts" / name
        if not (art / "manifest.json").exists():
            print(f"compiling {kind} -> {name} ...", flush=True)
            run_timed([*DISTILTS, "compile", students[kind], *target], log)
        arts[(kind, name)] = art

    ids, train, test = read_m4()
    rows: list[dict] = []
    n2 = np.stack([naive2(v) for v in train])
    naive = score("Naive2 (computed here)", n2, train, test, {})
    rows.append(score("Naive2 (computed here)", n2, train, test, naive))
    t0 = time.perf_counter()
    ft = teacher_forecasts(teacher, train, args.lookback)
    rows.append(score("PatchTST teacher (trained here, global)", ft, train, test, naive,
                      seconds=time.perf_counter() - t0,
                      params=json.loads((teacher / "config.json").read_text()).get("param_count")))
    for (kind, name), art in arts.items():
        f, wall = artifact_forecasts(art, ids, runs, data)
        label = {"kd": "DLinear distilled from the teacher", "gt": "DLinear on ground truth only"}[kind]
        params = json.loads((students[kind] / "config.json").read_text()).get("param_count")
        rows.append(score(f"{label} ({name})", f, train, test, naive, seconds=wall, params=params))
    if not args.no_stats:
        stats = statsforecast_forecasts(ids, train, runs / "statsforecast.npz")
        for col in ("SeasonalNaive", "AutoETS", "AutoTheta"):
            rows.append(score(f"statsforecast {col}", stats[col], train, test, naive,
                              seconds=float(stats[f"{col}_seconds"])))
    for p in PUBLISHED:
        rows.append({**p, "owa": 0.5 * (p["smape"] / PUBLISHED[0]["smape"] + p["mase"] / PUBLISHED[0]["mase"])})

    cols = [("model", "model"), ("smape", "sMAPE"), ("mase", "MASE"), ("owa", "OWA"), ("params", "params"),
            ("seconds", "forecast s (414 series)")]
    print(text_table(rows, cols))
    settings = {k: v for k, v in vars(args).items() if k not in ("runs", "out")}
    md = (f"## M4 Hourly (414 series, horizon 48, competition protocol)\n\n"
          f"`python -m benchmarks run m4_hourly --preset full` (settings {settings}); commit {git_commit()}.\n\n"
          + markdown_table(rows, cols) + "\n")
    write_outputs({"settings": settings, "machine": machine_info(), "timings": timings, "rows": rows},
                  md, f"{args.out}.json", f"{args.out}.md")
    print(f"-> {args.out}.json, {args.out}.md")


# --- the harness entry (benchmarks/harness.py): the presets as this module's options -----------------------
PRESETS: dict[str, dict] = {
    # quick: the whole chain at toy settings (1-epoch teacher and students, 4 windows per series, no statsforecast)
    "quick": {"lookback": 336, "epochs": 1, "teacher_epochs": 1, "teacher_layers": 1, "stride": 8,
              "max_windows_per_series": 4, "no_stats": True, "runs": str(ROOT / "benchmarks" / "runs" / "m4h-quick")},
    "full": {"lookback": 336, "epochs": 10, "teacher_epochs": 4, "teacher_layers": 2, "stride": 4,
             "max_windows_per_series": 32, "no_stats": False, "runs": str(ROOT / "benchmarks" / "runs" / "m4h")},
}


def run(ctx, **params):
    from benchmarks.support import script

    return script.run_main(ctx, sys.modules[__name__], params, takes_argv=False)

if __name__ == "__main__":
    main()
