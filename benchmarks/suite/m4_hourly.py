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

The M4 recipe (issue 30): a global MLP ensemble (`--ensemble-lookbacks 2H,4H,7H --ensemble-losses smape,mae`:
one member per lookback and loss, averaged in one module; each MLP with a linear skip, `-O skip=true`),
per-window normalization (RevIN), equal windows per series
(`--sampling series`), compiled to `cortex-m7` (TFLite Micro, full int8, per-window I/O normalization) and
scored from that artifact: one row per teacher spec (`RECIPE_TEACHERS`: ground truth only, the PatchTST
teacher, the statsforecast teachers and a teacher ensemble), a teacher whose family is not registered here
being listed as skipped with the reason; and the quantile student's 80% interval coverage. Time per
forecast: the artifact's batch-1 call (profile/timing.py), a teacher's total time / 414.

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


# the M4 recipe (module doc): the student's options, then one student per teacher spec (None: ground truth only)
RECIPE = ["--student", "mlp", "-O", "skip=true", "--ensemble-lookbacks", "2H,4H,7H", "--ensemble-losses", "smape,mae",
          "--ensemble-combine", "median", "--season", M, "--sampling", "series", "--batch-size", 512, "--patience", 4]
# (M4 rows carry no dates: the statistical teachers get season 24; `{teacher}`: the PatchTST teacher's directory)
RECIPE_TEACHERS = {
    "gt": None,
    "patchtst": "patchtst",
    "autoets": "statsforecast:AutoETS?season=24",
    "autoarima": "statsforecast:AutoARIMA?season=24",
    "autotheta": "statsforecast:AutoTheta?season=24",
    "ensemble": "ensemble:patchtst={teacher}+statsforecast:AutoETS?season=24",
}
# the same recipe with more members (two initialisations per lookback and loss), ground truth only
RECIPE_SEEDS = {"gt-seeds2": 2}
# teacher assistant (docs/teachers.md): the 12-member ground-truth ensemble (`ASSISTANT`, 2 MiB) teaches the
# 6-member recipe, alone or beside AutoETS; `{assistant}`: its student directory
ASSISTANT = "gt-seeds2"
RECIPE_ASSISTED = {
    "assistant": "student",
    "assistant-autoets": "ensemble:student={assistant}+statsforecast:AutoETS?season=24",
}
# what a teacher assistant gives a student a size down: ONE MLP (the recipe's 7H member, MAE loss) for cortex-m4f,
# on ground truth and from the 12-member ensemble; all 50 epochs, the best validation epoch kept (with patience 4
# the ground-truth MLP stopped at epoch 7-15 on the noisy 414-window validation, which flattered the teacher)
SMALL = ["--student", "mlp", "-O", "skip=true", "--lookback", 7 * H, "--loss", "mae", "--season", M, "--sampling",
         "series", "--batch-size", 512, "--patience", 50]
RECIPE_SMALL = {"mlp1-gt": None, "mlp1-assistant": "student"}
SMALL_TARGET = "cortex-m4f"
SOURCES = {"assistant": "from the 12-member ensemble (teacher assistant)",
           "assistant-autoets": "from the 12-member ensemble + AutoETS (inverse-MSE weights)",
           "mlp1-assistant": "from the 12-member ensemble (teacher assistant)"}
RECIPE_KINDS = [*RECIPE_TEACHERS, *RECIPE_SEEDS, *RECIPE_ASSISTED, *RECIPE_SMALL]
QUANTILE_LEVELS = "0.1,0.5,0.9"  # the 80% interval is [q0.1, q0.9]
STATS_MODELS = ("SeasonalNaive", "AutoETS", "AutoTheta", "AutoARIMA")


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


def statsforecast_forecasts(
    ids: list[str], train: list[np.ndarray], cache: Path, models: tuple[str, ...] = STATS_MODELS
) -> dict[str, np.ndarray]:
    """statsforecast's `models` (season 24; fit + predict timed on all cores), each computed once and cached
    in `cache` (an .npz: the forecasts and `<model>_seconds`)."""
    out: dict[str, np.ndarray] = {}
    if cache.exists():
        z = np.load(cache)
        out = {k: z[k] for k in z.files}
    missing = [m for m in models if m not in out]
    if not missing:
        return out
    import pandas as pd
    import statsforecast.models as sfm
    from statsforecast import StatsForecast

    df = pd.concat([pd.DataFrame({"unique_id": i, "ds": np.arange(len(v)), "y": v}) for i, v in zip(ids, train)])
    for name in missing:
        t0 = time.perf_counter()
        fc = StatsForecast(models=[getattr(sfm, name)(season_length=M)], freq=1, n_jobs=-1).forecast(df=df, h=H)
        col = [c for c in fc.columns if c not in ("unique_id", "ds")][0]
        out[name] = np.stack([fc[fc.unique_id == i][col].to_numpy() for i in ids])
        out[f"{name}_seconds"] = np.array(time.perf_counter() - t0)
        print(f"  statsforecast {name}: {float(out[f'{name}_seconds']):.0f} s", flush=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.stem + ".partial.npz")
        np.savez(tmp, **out)
        tmp.replace(cache)
    return out


# --- the M4 recipe: distilled ensembles on a microcontroller ---------------------------------------
def teacher_missing(spec: str | None) -> str | None:
    """Why a teacher spec cannot run on this branch (its family, or an ensemble member's, is not registered);
    None when it can (or for ground truth only)."""
    if spec is None:
        return None
    import importlib.util

    from distilts.teachers import TEACHERS

    family = spec.split(":", 1)[0]
    if family in TEACHERS:
        return None
    if family in ("statsforecast", "ensemble") and importlib.util.find_spec("distilts.teachers.spec") is not None:
        return None  # the teacher specifications of issue 30 (distilts.teachers.spec) are on this branch
    return f"teacher '{family}' is not on this branch (`distilts distill --teacher {spec}`)"


def label_of(source: str, seeds: int, kind: str = "") -> str:
    if kind in RECIPE_SMALL:
        return f"one MLP (lookback 7H, MAE loss; the recipe's largest member), {source}"
    return f"M4 recipe: MLP ensemble (3 lookbacks x 2 losses{f' x {seeds} seeds' if seeds > 1 else ''}), {source}"


def recipe_dir(runs: Path, kind: str, epochs: int, seed: int = 0) -> Path:
    return runs / (f"{kind if kind in RECIPE_SMALL else 'mlp-ens-' + kind}-e{epochs}" + (f"-s{seed}" if seed else ""))


def recipe_student(kind: str, spec: str | None, teacher_dir: Path, args, runs: Path, data: Path, log: Path,
                   timings: dict, extra: list | None = None, epochs: int | None = None, seed: int = 0,
                   target: str = "cortex-m7") -> Path:
    """Distil the recipe's student from teacher `spec` (None: ground truth only) for `epochs` (default: the
    recipe's) with `--seed seed` and compile it for cortex-m7; returns the artifact directory (both steps cached,
    per epoch count and seed; the assistant teacher is always seed 0's)."""
    epochs = epochs or args.recipe_epochs
    out = recipe_dir(runs, kind, epochs, seed)
    if not (out / "metrics.json").exists():
        assistant = recipe_dir(runs, ASSISTANT, args.recipe_epochs)
        if spec is None:
            teach = ["--no-kd", "--beta", "0"]
        else:
            teach = ["--teacher", spec.format(teacher=teacher_dir, assistant=assistant), "--beta", "0",
                     "--cache-dir", runs / "cache"]
            if spec in ("patchtst", "student"):
                teach += ["--teacher-path", teacher_dir if spec == "patchtst" else assistant]
        print(f"distilling the M4 recipe ({kind}) ...", flush=True)
        timings[f"distill_recipe_{kind}_s"], _ = run_timed(
            [*DISTILTS, "distill", *(extra or RECIPE), "--data", data, "--horizon", H, "--stride", args.recipe_stride,
             "--epochs", epochs, "--device", "cpu", "--quiet", "--out", out, *teach,
             *(["--seed", seed] if seed else [])], log)
    return compiled(out, kind, log, timings, target)


def compiled(student: Path, kind: str, log: Path, timings: dict, target: str = "cortex-m7") -> Path:
    """The student's artifact for the microcontroller `target` (compiled once)."""
    art = student / "artifacts" / f"tflm-int8-{target}"
    if not (art / "manifest.json").exists():
        print(f"compiling the M4 recipe ({kind}) for {target} ...", flush=True)
        timings[f"compile_recipe_{kind}_s"], _ = run_timed([*DISTILTS, "compile", student, "--target", target], log)
    return art


def with_combine(student: Path, combine: str) -> Path:
    """A copy of an ensemble student directory whose members are combined by `combine` (the same weights: the
    combination is not trained, each member is; docs/design.md)."""
    out = student.with_name(f"{student.name}-{combine}")
    if not (out / "config.json").exists():
        import shutil

        config = json.loads((student / "config.json").read_text())
        config["student"]["kwargs"]["combine"] = combine
        tmp = out.with_name(out.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        shutil.copy(student / "model.safetensors", tmp / "model.safetensors")
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        tmp.replace(out)
    return out


def artifact_row(label: str, art: Path, train: list[np.ndarray], test: np.ndarray, naive: dict,
                 teacher_ms: float | None = None) -> tuple[dict, np.ndarray]:
    """Score an artifact's forecasts of the 414 series (from the raw train values), with its size, its
    microcontroller figures and its batch-1 time per forecast; returns the row and the forecasts
    (`[S, H]`, or `[S, H, Q]` for a quantile artifact)."""
    from distilts.profile.timing import per_call
    from distilts.runtime.forecaster import Forecaster

    fc = Forecaster.load(art, threads=1)
    man = json.loads((art / "manifest.json").read_text())
    x = np.stack([v[-fc.lookback:] for v in train])[:, :, None].astype(np.float32)
    levels = None if fc.manifest.levels is None else list(fc.manifest.levels)
    f = fc.predict(x)[..., 0] if levels is None else fc.predict_quantiles(x)[:, :, 0, :]
    median = f if levels is None else f[..., levels.index(0.5)]
    ms = per_call(lambda: fc.predict(x[0]), warmup=5, iters=200, budget_s=3.0).median_ms
    fits = (man.get("mcu") or {}).get("fits") or {}
    row = score(label, median, train, test, naive, params=man["student"]["param_count"],
                size_kib=sum(m["size"] for m in man["models"] if not m.get("role")) / 1024,  # model files only
                arena_kib=fits.get("sram_needed_bytes", 0) / 1024 or None,
                fits=bool(fits) and fits["sram_needed_bytes"] <= fits["sram_bytes"]
                and fits["flash_needed_bytes"] <= fits["flash_bytes"],
                ms=ms, speedup=None if teacher_ms is None else teacher_ms / ms)
    return row, f


def coverage_row(label: str, q: np.ndarray, test: np.ndarray, levels: list[float]) -> dict:
    """The [q0.1, q0.9] interval over every test value: coverage (nominal 80%) and mean width relative to |y|."""
    lo, hi = q[..., levels.index(0.1)], q[..., levels.index(0.9)]
    inside = (test >= lo) & (test <= hi)
    return {"model": label, "coverage_80": float(inside.mean()), "nominal": 0.8,
            "within_5_points": bool(abs(inside.mean() - 0.8) <= 0.05),
            "rel_width": float(np.mean((hi - lo) / np.maximum(np.abs(test), 1e-9)))}


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
    ap.add_argument("--stats-models", default=",".join(STATS_MODELS), help="statsforecast models (season 24)")
    ap.add_argument("--recipe-teachers", default=",".join(RECIPE_KINDS),
                    help=f"M4 recipe students to distil, by teacher: {', '.join(RECIPE_KINDS)} "
                    "(empty: none)")
    ap.add_argument("--recipe-epochs", type=int, default=50)
    ap.add_argument("--recipe-seeds", default="0", help="seeds of every recipe student, e.g. 0,1 (a row per seed, "
                    "and the seed table)")
    ap.add_argument("--quantile-epochs", type=int, default=25, help="epochs of the quantile student (its own row)")
    ap.add_argument("--recipe-stride", type=int, default=2)
    ap.add_argument("--no-quantile", action="store_true", help="skip the quantile student (80%% interval coverage)")
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
    S = len(ids)
    rows: list[dict] = []
    n2 = np.stack([naive2(v) for v in train])
    naive = score("Naive2 (computed here)", n2, train, test, {})
    rows.append(score("Naive2 (computed here)", n2, train, test, naive))
    t0 = time.perf_counter()
    ft = teacher_forecasts(teacher, train, args.lookback)
    teacher_ms = (time.perf_counter() - t0) * 1000 / S
    rows.append(score("PatchTST teacher (trained here, global)", ft, train, test, naive, seconds=teacher_ms * S / 1000,
                      ms=teacher_ms, params=json.loads((teacher / "config.json").read_text()).get("param_count")))
    for (kind, name), art in arts.items():
        f, wall = artifact_forecasts(art, ids, runs, data)
        label = {"kd": "DLinear distilled from the teacher", "gt": "DLinear on ground truth only"}[kind]
        params = json.loads((students[kind] / "config.json").read_text()).get("param_count")
        rows.append(score(f"{label} ({name})", f, train, test, naive, seconds=wall, params=params))
    stats: dict[str, np.ndarray] = {}
    if not args.no_stats:
        models = tuple(m for m in args.stats_models.split(",") if m)
        stats = statsforecast_forecasts(ids, train, runs / "statsforecast.npz", models)
        for col in models:
            sec = float(stats[f"{col}_seconds"])
            rows.append(score(f"statsforecast {col}", stats[col], train, test, naive, seconds=sec, ms=sec * 1000 / S))
    skipped: list[dict] = []
    recipe_ms: dict[str, float] = {}  # kind -> the artifact's ms per forecast (an assistant's teacher time)
    run_seeds = [int(v) for v in str(args.recipe_seeds).split(",") if v != ""]
    by_seed: dict[str, dict[int, float]] = {}  # label -> seed -> OWA (the seed table)
    for kind, run_seed in ((k, r) for k in args.recipe_teachers.split(",") if k for r in run_seeds):
        spec = RECIPE_TEACHERS.get(kind, RECIPE_ASSISTED.get(kind, RECIPE_SMALL.get(kind)))
        seeds = RECIPE_SEEDS.get(kind, 1)
        source = SOURCES.get(kind) or ("ground truth only" if spec is None else "from " + spec.replace("={teacher}", ""))
        label = label_of(source, seeds, kind)
        small = kind in RECIPE_SMALL
        assisted = spec is not None and "student" in spec  # taught by the assistant (alone or in an ensemble)
        if assisted and ASSISTANT not in recipe_ms:
            skipped.append({"model": label, "skipped": f"needs the {ASSISTANT} student (seed 0) first "
                            f"(--set recipe_teachers=...,{ASSISTANT},{kind})"})
            continue
        if why := teacher_missing(spec):
            skipped.append({"model": label, "skipped": why.replace("{teacher}", "<teacher dir>")})
            continue
        extra = SMALL if small else ([*RECIPE, "--ensemble-seeds", seeds] if seeds > 1 else None)
        target = SMALL_TARGET if small else "cortex-m7"
        art = recipe_student(kind, spec, teacher, args, runs, data, log, timings, extra=extra, seed=run_seed,
                             target=target)
        model = (spec or "").split(":")[-1].split("?")[0]  # a statistical teacher: its fit + predict time per series
        t_ms = teacher_ms if spec == "patchtst" else (
            float(stats[f"{model}_seconds"]) * 1000 / S if f"{model}_seconds" in stats else None)
        if assisted:  # the assistant's own artifact time (+ AutoETS's in the ensemble)
            t_ms = recipe_ms[ASSISTANT] + (t_ms or 0.0)
        seed_label = f", seed {run_seed}" if len(run_seeds) > 1 else ""
        row = artifact_row(f"{label}{seed_label}{'' if small else ', median'} ({target} int8)", art, train, test,
                           naive, t_ms)[0]
        if run_seed == 0:
            recipe_ms[kind] = row["ms"]
        by_seed.setdefault(label, {})[run_seed] = row["owa"]
        rows.append(row)
        if kind == "gt" and run_seed == run_seeds[0]:  # what the median adds: the same members averaged
            mean = compiled(with_combine(art.parents[1], "mean"), f"{kind}-mean", log, timings)
            rows.append(artifact_row(f"{label}, mean (cortex-m7 int8)", mean, train, test, naive)[0])
    intervals: list[dict] = []
    if not args.no_quantile:
        qopts = ["--student", "mlp", "--lookback", "auto", "--quantiles", QUANTILE_LEVELS, "--sampling", "series",
                 "--batch-size", 512, "--patience", 4]
        art = recipe_student("quantile-gt", None, teacher, args, runs, data, log, timings, extra=qopts,
                             epochs=args.quantile_epochs)
        row, q = artifact_row("quantile MLP (0.1/0.5/0.9), ground truth only (cortex-m7 int8): median", art, train,
                              test, naive)
        rows.append(row)
        intervals.append(coverage_row(row["model"].split(":")[0], q, test, [0.1, 0.5, 0.9]))
    for p in PUBLISHED:
        rows.append({**p, "owa": 0.5 * (p["smape"] / PUBLISHED[0]["smape"] + p["mase"] / PUBLISHED[0]["mase"])})

    cols = [("model", "model"), ("smape", "sMAPE"), ("mase", "MASE"), ("owa", "OWA"), ("params", "params"),
            ("size_kib", "artifact KiB"), ("arena_kib", "SRAM KiB"), ("ms", "ms per forecast"),
            ("speedup", "x faster than its teacher"), ("seconds", "forecast s (414 series)")]
    print(text_table(rows, cols))
    settings = {k: v for k, v in vars(args).items() if k not in ("runs", "out")}
    md = (f"## M4 Hourly (414 series, horizon 48, competition protocol)\n\n"
          f"`python -m benchmarks run m4_hourly --preset full` (settings {settings}); commit {git_commit()}.\n\n"
          + markdown_table(rows, cols) + "\n")
    if intervals:
        md += "\nQuantile student, 80% interval [q0.1, q0.9] on the 414 x 48 test values:\n\n" + markdown_table(
            intervals, [("model", "model"), ("coverage_80", "coverage"), ("nominal", "nominal"),
                        ("within_5_points", "within 5 points"), ("rel_width", "mean width / |y|")]) + "\n"
    seed_rows = [{"model": label, **{f"seed {k}": v for k, v in owas.items()},
                  "mean": float(np.mean(list(owas.values()))),
                  "spread": float(max(owas.values()) - min(owas.values()))} for label, owas in by_seed.items()]
    if len(run_seeds) > 1 and seed_rows:
        md += "\nOWA of the M4 recipe by seed (each teacher's effect against the seed-to-seed spread):\n\n" + \
            markdown_table(seed_rows, [("model", "model"), *((f"seed {k}", f"seed {k}") for k in run_seeds),
                                       ("mean", "mean OWA"), ("spread", "max - min")]) + "\n"
    if skipped:
        md += "\nSkipped (teacher not on this branch):\n\n" + "\n".join(f"- {r['model']}: {r['skipped']}"
                                                                          for r in skipped) + "\n"
    write_outputs({"settings": settings, "machine": machine_info(), "timings": timings, "rows": rows,
                   "intervals": intervals, "seeds": seed_rows, "skipped": skipped}, md, f"{args.out}.json", f"{args.out}.md")
    print(f"-> {args.out}.json, {args.out}.md")


# --- the harness entry (benchmarks/harness.py): the presets as this module's options -----------------------
PRESETS: dict[str, dict] = {
    # quick: the whole chain at toy settings (1-epoch teacher and students, 4 windows per series, no statsforecast)
    "quick": {"lookback": 336, "epochs": 1, "teacher_epochs": 1, "teacher_layers": 1, "stride": 8,
              "max_windows_per_series": 4, "no_stats": True, "recipe_teachers": "gt", "recipe_epochs": 1,
              "quantile_epochs": 1,
              "recipe_stride": 16, "no_quantile": True, "runs": str(ROOT / "benchmarks" / "runs" / "m4h-quick")},
    # full: ~30 min on 2 cores beyond statsforecast (AutoARIMA's fit is the longest step; cached once computed)
    "full": {"lookback": 336, "epochs": 10, "teacher_epochs": 4, "teacher_layers": 2, "stride": 4,
             "max_windows_per_series": 32, "no_stats": False,
             "recipe_teachers": ",".join(RECIPE_KINDS),
             "recipe_epochs": 50, "recipe_seeds": "0,1", "quantile_epochs": 25, "recipe_stride": 2,
             "no_quantile": False,
             "runs": str(ROOT / "benchmarks" / "runs" / "m4h")},
}


def run(ctx, **params):
    from benchmarks.support import script

    return script.run_main(ctx, sys.modules[__name__], params, takes_argv=False)

if __name__ == "__main__":
    main()
