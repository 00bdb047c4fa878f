"""A tiny student with the covariate contract (`forward(x, past=None, future=None, static=None)`) saved as a
student directory, a wide CSV with a target and past / known-future / static covariate columns, and its
compiled artifacts (session-cached). The covariate students of `distilts.students` are tested with their own
data; this one keeps the deploy side (compile, runtime, batch, serve) testable on its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

LOOKBACK, HORIZON = 24, 6
CALENDAR = {"features": ["hour_of_day", "day_of_week", "month"], "country": None}  # `--calendar` without a country
N_ROWS = 720  # 30 days, hourly
_CACHE: dict = {}


class CovToy(nn.Module):
    """x, past and future covariates and static attributes, each through its own linear map to the horizon."""

    def __init__(
        self, lookback: int, horizon: int, n_variates: int, *, n_past: int = 1, n_future: int = 3, n_static: int = 1
    ) -> None:
        super().__init__()
        self.horizon = horizon
        self.covariate_dims = (n_past, n_future, n_static)
        self.x_map = nn.Linear(lookback, horizon)
        self.past_map = nn.Linear(lookback * n_past, horizon) if n_past else None
        self.future_map = nn.Linear((lookback + horizon) * n_future, horizon) if n_future else None
        self.static_map = nn.Linear(n_static, horizon) if n_static else None

    def forward(self, x, past=None, future=None, static=None):
        b = x.shape[0]
        y = self.x_map(x.transpose(1, 2)).transpose(1, 2)  # [B, H, D]
        for block, lin in ((past, self.past_map), (future, self.future_map), (static, self.static_map)):
            if lin is not None:
                y = y + lin(block.reshape(b, -1)).unsqueeze(-1)
        return y


def register() -> None:
    from distilts.students import STUDENTS

    if not dict.__contains__(STUDENTS, "covtoy"):
        STUDENTS.add("covtoy", "covariate_factory:CovToy")


def write_csv(path: Path) -> Path:
    """Hourly `date, load, hum, temp, site`: load follows temp (known-future) and the hour; hum is past-only."""
    rng = np.random.default_rng(0)
    t = np.arange(N_ROWS)
    dates = np.datetime64("2024-01-01T00:00") + t.astype("timedelta64[h]")
    temp = 10 + 5 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 1, N_ROWS)
    hum = 60 + 10 * np.cos(2 * np.pi * t / 48) + rng.normal(0, 2, N_ROWS)
    load = 100 + 3 * temp + 0.2 * hum + rng.normal(0, 1, N_ROWS)
    lines = ["date,load,hum,temp,site"]
    rows = zip(dates, load, hum, temp, strict=True)
    lines += [f"{str(d).replace('T', ' ')}:00,{a:.3f},{b:.3f},{c:.3f},7" for d, a, b, c in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def student_dir(tmp_path_factory, calendar: bool = True) -> Path:
    """The saved toy student (seeded weights) with past [hum], future [temp (+ calendar)], static [site]."""
    key = ("student", calendar)
    if key in _CACHE:
        return _CACHE[key]
    from distilts.calendar import calendar_columns
    from distilts.students.io import save_student_dir

    register()
    root = tmp_path_factory.mktemp("covstudent")
    csv = write_csv(root / "data.csv")
    cal = CALENDAR if calendar else None
    future = ["temp", *calendar_columns(cal)]
    n_cal = len(future) - 1
    torch.manual_seed(0)
    model = CovToy(LOOKBACK, HORIZON, 1, n_past=1, n_future=len(future), n_static=1)
    config = {
        "student": {"name": "covtoy", "kwargs": {"n_past": 1, "n_future": len(future), "n_static": 1}},
        "lookback": LOOKBACK,
        "horizon": HORIZON,
        "columns": ["load"],
        "n_variates": 1,
        "freq_seconds": 3600,
        "scaler": {"mean": [130.0], "std": [15.0]},
        "data": {  # what `distilts distill` records: the data stage reads the covariates again from these
            "source": str(csv),
            "split_scheme": "auto",
            "fill": None,
            "date_column": "date",
            "past_covariates": ["hum"],
            "future_covariates": ["temp"],
            "static_covariates": ["site"],
            "calendar": "" if calendar else None,
        },
        "covariates": {
            "past": ["hum"],
            "future": future,
            "static": ["site"],
            "calendar": cal,
            "stats": {
                "past": {"mean": [60.0], "std": [7.0]},
                "future": {"mean": [10.0] + [0.0] * n_cal, "std": [3.5] + [1.0] * n_cal},
                "static": {"mean": [5.0], "std": [2.0]},
            },
        },
    }
    out = save_student_dir(root / "covtoy", model, config)
    _CACHE[key] = out
    return out


def artifact(tmp_path_factory, fmt: str, int8: bool = False, calendar: bool = True) -> Path:
    """The compiled artifact of the toy student for format `fmt` (TFLite fp32 at batch 1 and 4, int8 at 1)."""
    key = ("artifact", fmt, int8, calendar)
    if key not in _CACHE:
        from distilts.compile.pipeline import compile_student
        from distilts.targets import resolve_job

        job = resolve_job(fmt, int8=int8, batches=((1,) if int8 else (1, 4)) if fmt == "tflite" else ())
        [res] = compile_student(
            student_dir(tmp_path_factory, calendar),
            [job],
            tmp_path_factory.mktemp("covart"),
            calib_windows=32,
            verify_windows=16,
        )
        _CACHE[key] = res.directory
    return _CACHE[key]


def window(csv: Path, end: int, calendar: bool = True) -> dict:
    """Raw inputs of the forecast from row `end` (exclusive) of the CSV, as `Forecaster.predict` takes them."""
    rows = [line.split(",") for line in csv.read_text().splitlines()[1:]]
    dates = np.array([r[0].replace(" ", "T") for r in rows], dtype="datetime64[s]")
    vals = np.array([[float(v) for v in r[1:]] for r in rows], np.float32)
    lo, hi = end - LOOKBACK, end + HORIZON
    out = {"values": vals[lo:end, 0:1], "past": vals[lo:end, 1:2], "future": vals[lo:hi, 2:3], "static": vals[0, 3:4]}
    if calendar:
        out["timestamps"] = dates[lo:hi]
    return out


def long_files(csv: Path, out: Path, ends: tuple[int, ...] = (600, 650)) -> tuple[Path, Path]:
    """A long-format history (`unique_id, ds, y, hum, temp, site`: one series per end row of the wide CSV, each
    its last rows up to that end) and the future file (`unique_id, ds, temp` over the horizon after each)."""
    lines = csv.read_text().splitlines()[1:]
    hist = ["unique_id,ds,y,hum,temp,site"]
    fut = ["unique_id,ds,temp"]
    for k, end in enumerate(ends):
        sid = f"S{k}"
        hist += [f"{sid},{row}" for row in lines[end - 2 * LOOKBACK : end]]
        fut += [f"{sid},{r.split(',')[0]},{r.split(',')[3]}" for r in lines[end : end + HORIZON]]
    (out / "history.csv").write_text("\n".join(hist) + "\n")
    (out / "future.csv").write_text("\n".join(fut) + "\n")
    return out / "history.csv", out / "future.csv"
