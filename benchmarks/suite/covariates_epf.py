"""Covariates: EPF day-ahead prices with known-future covariates and calendar, and ETTh1 "MS" with past-only loads.

EPF (../shared/data/epf: BE, DE, FR hourly prices with two known-future exogenous series, the day-ahead load
and generation forecasts; 70 days per market): day-ahead forecasts, H=24 from midnight with L=168, at rolling
daily origins over the last `days` days of each market. Every model is one per market, trained on what precedes
the first origin, as AutoARIMA is fitted per market:
- the student with the known-future columns Exogenous1, Exogenous2 and `--calendar COUNTRY` (`distilts distill`
  on the market's long-format file cut before the test days; 56 days of data teach hour and weekday, and the
  calendar drops month and holidays, whose yearly cycle the data cannot cover), and the same student without them.
  DLinear's recipe: MAE loss (November's 700-870 EUR/MWh spikes in BE/FR would dominate an MSE), no window
  normalization (one series: its own scale), and the covariate map over the day's hours (`future_map=horizon`);
- statsforecast's AutoARIMA (season 24) refitted at each origin on the preceding `arima_days` days with the same
  exogenous columns (`X_df`: Exogenous1, Exogenous2 and the calendar's hour and weekday); its forecasts are a
  cached fixture (fitting takes about a minute per forecast).
Scores: MAE per market in EUR/MWh over all origins, and time per forecast (the student: one window through the
PyTorch student, `distilts.profile.timing`; AutoARIMA: fit + forecast).
Goal (issue 28): the student with covariates >= 15% lower MAE than without, and below AutoARIMA.

ETTh1 "MS": OT as the target with the six load columns as past-only covariates, against OT alone (standard
ETT split, z-scored MSE/MAE on the test part, H=96): a table whichever way it comes out.

    python -m benchmarks run covariates_epf --preset full
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.fixtures import run_cli
from benchmarks.harness import Context, Record

H, L = 24, 168
MARKETS = ("BE", "DE", "FR")
EXOGENOUS = ("Exogenous1", "Exogenous2")
LOADS = ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL")
ETT_H, ETT_L = 96, 336
# ground truth only, on the CPU
RECIPE = ["--no-kd", "--beta", "0", "--device", "cpu"]
# DLinear's reference recipe (LTSF-Linear's ETTh1 script) for the ETTh1 "MS" table
ETT_FLAGS = ["--weight-decay", "0", "--lr-schedule", "step", "--lr", "0.005", "--patience", 3]
# each student's EPF recipe (one student per market); epochs and patience come from the preset
EPF_FLAGS = {
    "dlinear": [
        "--loss",
        "mae",
        "--no-revin",
        "-O",
        "future_map=horizon",
        "--weight-decay",
        "0",
        "--lr-schedule",
        "cosine",
        "--lr",
        "0.002",
    ],
    "tide": [
        "-O",
        "hidden_size=128",
        "-O",
        "decoder_output_dim=8",
        "-O",
        "final_decoder_hidden=32",
        "-O",
        "dropout=0.3",
        "--loss",
        "mae",
        "--weight-decay",
        "0",
        "--lr-schedule",
        "cosine",
        "--lr",
        "0.001",
    ],
}


def epf_frames(epf_dir: Path) -> dict[str, Any]:
    """Each market's hourly frame (ds, y, Exogenous1, Exogenous2), sorted by time."""
    import pandas as pd

    df = pd.read_csv(epf_dir / "epf-with-ex-vars.csv", parse_dates=["ds"])
    return {m: df[df.unique_id == m][["ds", "y", *EXOGENOUS]].reset_index(drop=True) for m in MARKETS}


def training_file(frame: Any, market: str, days: int, path: Path) -> Path:
    """The market's long-format file cut before its first test origin (what its students train on)."""
    cut = frame.iloc[: len(frame) - days * H].assign(unique_id=market)
    cut[["unique_id", "ds", "y", *EXOGENOUS]].to_csv(path, index=False)
    return path


def origins(frame: Any, days: int) -> list[int]:
    """Row index of each daily origin (midnight) over the last `days` days."""
    first = len(frame) - days * H
    rows = [first + d * H for d in range(days)]
    assert all(frame.ds[r].hour == 0 for r in rows), "EPF rows are expected to start at midnight"
    return rows


def student_forecasts(student_dir: Path, frame: Any, rows: list[int]) -> tuple[np.ndarray, dict]:
    """[origins, H] raw-scale forecasts of a saved student (covariates normalized with its own train statistics,
    calendar features generated from the timestamps) and the timing of one forecast."""
    import torch

    from distilts.calendar import calendar_features
    from distilts.profile.timing import per_call
    from distilts.students import load_student_dir

    model, config = load_student_dir(student_dir)
    mean, std = config["scaler"]["mean"][0], config["scaler"]["std"][0]
    cov = config.get("covariates")
    y = frame.y.to_numpy(np.float64)
    out, calls = [], []
    for r in rows:
        x = torch.tensor((y[r - L : r] - mean) / std, dtype=torch.float32)[None, :, None]
        kw = {}
        if cov:
            span = slice(r - L, r + H)
            raw = frame[list(EXOGENOUS)].to_numpy(np.float64)[span]
            cal = calendar_features(frame.ds.to_numpy()[span], cov["calendar"]) if cov["calendar"] else None
            fut = raw if cal is None else np.concatenate([raw, cal], axis=1)
            stats = cov["stats"]["future"]
            fut = (fut - np.asarray(stats["mean"])) / np.asarray(stats["std"])
            kw["future"] = torch.tensor(fut, dtype=torch.float32)[None]
        with torch.no_grad():
            out.append(model(x, **kw)[0, :, 0].numpy() * std + mean)
        calls.append((x, kw))

    def one() -> None:
        with torch.no_grad():
            model(calls[0][0], **calls[0][1])

    return np.stack(out), per_call(one, warmup=5, iters=100, budget_s=2.0).summary()


def arima_forecasts(frame: Any, rows: list[int], arima_days: int) -> tuple[np.ndarray, float]:
    """[origins, H] AutoARIMA forecasts with X_df (the exogenous columns and the calendar's hour and weekday),
    refitted at each origin on the preceding `arima_days` days; seconds per forecast (fit included)."""
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA

    from distilts.calendar import calendar_features

    cal = calendar_features(frame.ds.to_numpy(), {"features": ["hour_of_day", "day_of_week"], "country": None})
    data = frame.assign(unique_id="m", hour=cal[:, 0], weekday=cal[:, 1])
    cols = ["unique_id", "ds", *EXOGENOUS, "hour", "weekday"]
    out, wall = [], 0.0
    for r in rows:
        hist = data.iloc[r - arima_days * H : r][cols[:2] + ["y"] + cols[2:]]
        t0 = time.perf_counter()
        fc = StatsForecast(models=[AutoARIMA(season_length=24)], freq="h").forecast(
            df=hist, h=H, X_df=data.iloc[r : r + H][cols]
        )
        wall += time.perf_counter() - t0
        out.append(pd.to_numeric(fc["AutoARIMA"]).to_numpy())
    return np.stack(out), wall / len(rows)


def cached_arima(ctx: Context, market: str, frame: Any, days: int, arima_days: int) -> tuple[np.ndarray, float]:
    """`arima_forecasts` of one market, computed once (a cached fixture: about a minute per forecast)."""
    rows = origins(frame, days)

    def build(tmp: Path) -> None:
        pred, s_per = arima_forecasts(frame, rows, arima_days)
        np.save(tmp / "forecasts.npy", pred)
        (tmp / "timing.json").write_text(json.dumps({"s_per_forecast": s_per}))

    params = {"market": market, "days": days, "arima_days": arima_days, "rows": rows, "L": L, "H": H}
    d = ctx.fixtures.cached("covariates-epf-arima", params, build)
    return np.load(d / "forecasts.npy"), json.loads((d / "timing.json").read_text())["s_per_forecast"]


def distill(ctx: Context, kind: str, params: dict, args: list) -> Path:
    """A student directory built once (a cached fixture) by `distilts distill ARGS`."""

    def build(tmp: Path, args=args) -> None:
        t0 = time.perf_counter()
        run_cli(["distill", *args, "--quiet", "--out", tmp / "student"], ctx.log)
        (tmp / "wall.json").write_text(json.dumps({"wall_s": time.perf_counter() - t0}))

    return ctx.fixtures.cached(kind, params, build)


def run_epf(ctx: Context, student: str, epochs: int, days: int, arima_days: int, arima: bool) -> Iterator[Record]:
    frames = epf_frames(ctx.fixtures.data("epf"))
    work = ctx.fixtures.root / "covariates_epf"
    work.mkdir(parents=True, exist_ok=True)
    variants = {
        "with covariates": lambda m: ["--future-covariates", ",".join(EXOGENOUS), "--calendar", m],
        "without": lambda m: [],
    }
    forecasts: dict[str, dict[str, np.ndarray]] = {}
    timing: dict[str, Any] = {}
    for name, extra_of in variants.items():
        forecasts[name] = {}
        for m, frame in frames.items():
            extra = extra_of(m)
            params = {
                "student": student,
                "market": m,
                "epochs": epochs,
                "days": days,
                "extra": extra,
                "L": L,
                "H": H,
                "flags": [str(f) for f in EPF_FLAGS[student]],
            }
            train = training_file(frame, m, days, work / f"epf-train-{m}-{days}d.csv")
            args = [
                *("--student", student, "--data", train, "--lookback", L, "--horizon", H),
                *RECIPE,
                *EPF_FLAGS[student],
                *("--epochs", epochs, "--patience", epochs),
                *extra,
            ]
            d = distill(ctx, "covariates-epf", params, args)
            forecasts[name][m], timing[name] = student_forecasts(d / "student", frame, origins(frame, days))
    if arima:
        forecasts["AutoARIMA + X_df"] = {}
        timing["AutoARIMA + X_df"] = {}
        for m, frame in frames.items():
            forecasts["AutoARIMA + X_df"][m], timing["AutoARIMA + X_df"][m] = cached_arima(
                ctx, m, frame, days, arima_days
            )
            ctx.log(f"AutoARIMA {m}: {timing['AutoARIMA + X_df'][m]:.1f} s per forecast")
    for name, by_market in forecasts.items():
        maes = {}
        for m, pred in by_market.items():
            frame = frames[m]
            truth = np.stack([frame.y.to_numpy()[r : r + H] for r in origins(frame, days)])
            maes[m] = float(np.mean(np.abs(pred - truth)))
        if name == "AutoARIMA + X_df":
            ms = 1000 * float(np.mean(list(timing[name].values())))
            stats = None
        else:
            ms, stats = timing[name]["median_ms"], timing[name]
        p = {
            "dataset": "epf",
            "model": name if name.startswith("Auto") else f"{student} {name}",
            "days": days,
            "lookback": L,
            "horizon": H,
            "epochs": epochs,
            "arima_days": arima_days,
        }
        for m, v in maes.items():
            yield ctx.record("mae", v, "EUR/MWh", {**p, "market": m})
        yield ctx.record("mae", float(np.mean(list(maes.values()))), "EUR/MWh", {**p, "market": "mean"})
        yield ctx.record("ms_per_forecast", ms, "ms", p, stats=stats)
        ctx.log(f"{name}: MAE {maes} ({ms:.2f} ms per forecast)")


def run_ett_ms(ctx: Context, student: str, epochs: int, max_train_windows: int | None) -> Iterator[Record]:
    data = ctx.fixtures.data("etth1")
    limit = ["--max-train-windows", max_train_windows] if max_train_windows else []
    for name, extra in (("OT + past-only loads (MS)", ["--past-covariates", ",".join(LOADS)]), ("OT alone", [])):
        params = {"student": student, "epochs": epochs, "limit": max_train_windows, "extra": extra}
        args = [
            "--student",
            student,
            "--data",
            data,
            "--columns",
            "OT",
            "--lookback",
            ETT_L,
            "--horizon",
            ETT_H,
            *RECIPE,
            *ETT_FLAGS,
            "--batch-size",
            32,
            "--epochs",
            epochs,
            *limit,
            *extra,
        ]
        d = distill(ctx, "covariates-ett-ms", params, args)
        test = json.loads((d / "student" / "metrics.json").read_text())["test"]
        p = {"dataset": "etth1", "model": f"{student} {name}", "lookback": ETT_L, "horizon": ETT_H, "epochs": epochs}
        yield ctx.record("test_mse", test["mse"], "normalized MSE", p)
        yield ctx.record("test_mae", test["mae"], "normalized MAE", p)
        ctx.log(f"ETTh1 {name}: test MSE {test['mse']:.4f} MAE {test['mae']:.4f}")


def run(
    ctx: Context,
    students: list[str],
    epochs: int,
    days: int,
    arima_days: int,
    arima: bool,
    ett_epochs: int,
    ett_max_train_windows: int | None,
) -> Iterator[Record]:
    for i, student in enumerate(students):
        yield from run_epf(ctx, student, epochs, days, arima_days, arima and i == 0)
    yield from run_ett_ms(ctx, "dlinear", ett_epochs, ett_max_train_windows)


def report(records: list[dict]) -> str:
    epf: dict[str, dict[str, Any]] = {}
    ett: dict[str, dict[str, Any]] = {}
    for r in records:
        p = r["params"]
        if p["dataset"] == "epf":
            row = epf.setdefault(p["model"], {})
            row[p.get("market", "ms") if r["metric"] == "mae" else "ms"] = r["value"]
        else:
            ett.setdefault(p["model"], {})[r["metric"]] = r["value"]
    lines = [
        "EPF day-ahead (H=24 from midnight, L=168, rolling daily origins over the last days of each market; one model "
        "per market trained on what precedes the first origin, AutoARIMA refitted at each origin; MAE in EUR/MWh; "
        "AutoARIMA's time is its fit + forecast, measured when its cached forecasts were made):",
        "",
        "| model | " + " | ".join(MARKETS) + " | mean | time per forecast |",
        "|---|---|---|---|---|---|",
    ]
    for model, row in epf.items():
        lines.append(
            f"| {model} | "
            + " | ".join(f"{row.get(m, float('nan')):.2f}" for m in MARKETS)
            + f" | {row.get('mean', float('nan')):.2f} | {row['ms']:.2f} ms |"
        )
    lines.append("")
    for model, row in epf.items():
        if model.endswith(" with covariates") and model.replace("with covariates", "without") in epf:
            gain = 1 - row["mean"] / epf[model.replace("with covariates", "without")]["mean"]
            student = model.split()[0]
            lines.append(
                f"Covariates change {student}'s mean MAE by {-gain:+.1%} (goal: at least 15% lower: "
                f"{'met' if gain >= 0.15 else 'not met'})."
            )
            if "AutoARIMA + X_df" in epf:
                vs = row["mean"] / epf["AutoARIMA + X_df"]["mean"] - 1
                lines.append(
                    f"{student} with covariates against AutoARIMA + X_df: {vs:+.1%} mean MAE (goal: below it: "
                    f"{'met' if vs < 0 else 'not met'}), {epf['AutoARIMA + X_df']['ms'] / row['ms']:,.0f}x less time "
                    "per forecast."
                )
    lines += [
        "",
        'ETTh1 "MS" (OT target, H=96, L=336, standard split, z-scored test metrics):',
        "",
        "| model | test MSE | test MAE |",
        "|---|---|---|",
    ]
    for model, row in ett.items():
        lines.append(f"| {model} | {row['test_mse']:.4f} | {row['test_mae']:.4f} |")
    return "\n".join(lines)


PRESETS = {
    "quick": {
        "students": ["dlinear"],
        "epochs": 2,
        "days": 2,
        "arima_days": 14,
        "arima": True,
        "ett_epochs": 1,
        "ett_max_train_windows": 512,
    },
    "full": {
        "students": ["dlinear", "tide"],
        "epochs": 40,
        "days": 14,
        "arima_days": 28,
        "arima": True,
        "ett_epochs": 10,
        "ett_max_train_windows": None,
    },
}
