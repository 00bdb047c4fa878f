"""Statistical teachers through statsforecast: `statsforecast:AutoARIMA|AutoETS|AutoTheta|MSTL|SeasonalNaive`.

Unlike a foundation model, a statistical model is fitted to one series. The teacher is bound to the
dataset whose windows it forecasts (`bind`): each series (each variate of a table, each series of a
panel) is fitted ONCE on its raw training part, then applied at every window's forecast origin with
the model's `forward` (the fitted parameters, no refit; MSTL re-decomposes and forwards its trend
model) on the series' raw history up to that origin: from the series start, not only the student's
lookback, so an ETS model's seasonal states keep the phase they were fitted with (a window-only
context starts at an arbitrary phase and measured 10x worse on a daily cycle). The work runs in
worker processes over series (`n_jobs`, default all cores). Forecasts are mapped to the normalized
scale of the windows with each series' own statistics.

Quantiles come from the prediction intervals: level q < 0.5 is the lower end of the 100(1-2q)%
interval, q > 0.5 the upper end of the 100(2q-1)% one, 0.5 the point forecast (the intervals are
symmetric about it). The native levels are the deciles.

A series whose fit fails, or a window whose forward fails or is not finite, gets a SeasonalNaive
forecast of that window instead; `fallbacks` records them (series id -> reason) for the cache's
metadata and the student card. There are no hidden states, so FTA cannot use these teachers.
"""

from __future__ import annotations

import concurrent.futures
import importlib.metadata
import inspect
import multiprocessing
import os
import warnings
from typing import Any, cast

import numpy as np
import statsforecast.models as sf_models

from distilts.errors import DistiltsError, require
from distilts.metrics import seasonality
from distilts.quantiles import DECILES
from distilts.teachers.base import Teacher, TeacherOutput
from distilts.teachers.spec import STATS_MODELS, StatSpec, parse_stat, stat_identity

FALLBACK = "SeasonalNaive"
CHUNK_WINDOWS = 2048  # windows per cache chunk at least: enough series per chunk to keep the workers busy


def statsforecast_version() -> str:
    return importlib.metadata.version("statsforecast")


def interval_columns(levels: tuple[float, ...]) -> tuple[list[int | float], list[str]]:
    """(interval levels in %, forecast columns in the order of `levels`) for quantile levels `levels`."""
    cols: list[str] = []
    pct: set[int | float] = set()
    for q in levels:
        width = round(abs(1 - 2 * q) * 100, 6)
        if width == 0:
            cols.append("mean")
            continue
        w = int(width) if float(width).is_integer() else width
        pct.add(w)
        cols.append(f"{'lo' if q < 0.5 else 'hi'}-{w}")
    return sorted(pct, key=float), cols


def build_model(spec: StatSpec, season: int) -> Any:
    """The statsforecast model of `spec` with `season_length=season`; unknown options are a DistiltsError."""
    cls = getattr(sf_models, spec.model)
    params = inspect.signature(cls).parameters
    bad = [k for k in spec.options if k not in params or k == "season_length"]
    if bad:
        valid = ", ".join(k for k in params if k not in ("season_length", "alias", "prediction_intervals"))
        raise DistiltsError(
            f"statsforecast {spec.model} has no option {', '.join(bad)}: use season=N or some of {valid}."
        )
    kwargs = dict(spec.options)
    if "season_length" in params:
        kwargs["season_length"] = season
    return cls(**kwargs)


def series_task(
    spec: StatSpec,
    season: int,
    fitted: Any,
    train_end: int,
    history: np.ndarray,
    ends: np.ndarray,
    horizon: int,
    levels: tuple,
) -> tuple[Any, np.ndarray, str | None]:
    """One series' work: fit on `history[:train_end]` (unless `fitted`), then forecast from every origin in
    `ends` (the model applied to `history[:end]`); returns (fitted model, forecasts `[n, 1 + Q, H]`: point then
    the levels, the reason of a fallback)."""
    pct, cols = interval_columns(levels)
    out = np.empty((len(ends), 1 + len(cols), horizon))
    history = np.asarray(history, np.float64)
    reason = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fitted is None:
            try:
                fitted = build_model(spec, season).fit(history[:train_end])
            except Exception as exc:  # statsforecast raises many kinds on a bad series
                fitted, reason = None, f"fit failed ({_short(exc)})"
        for i, end in enumerate(ends):
            ctx = history[: int(end)]
            try:
                if fitted is None:
                    raise ValueError("no fitted model")
                res = fitted.forward(y=ctx, h=horizon, level=pct or None)
                row = np.stack([res["mean"]] + [res[c] for c in cols])
                if not np.isfinite(row).all():
                    raise ValueError("non-finite forecast")
            except Exception as exc:
                reason = reason or f"forward failed ({_short(exc)})"
                row = _fallback(ctx, season, horizon, pct, cols)
            out[i] = row
    return fitted, out, reason


def _fallback(ctx: np.ndarray, season: int, horizon: int, pct: list[int | float], cols: list[str]) -> np.ndarray:
    level = cast(list[int], pct) or None  # statsforecast takes float levels too (its hints say int)
    res = sf_models.SeasonalNaive(season_length=min(season, len(ctx))).forecast(y=ctx, h=horizon, level=level)
    row = np.stack([res["mean"]] + [res[c] for c in cols])
    return np.where(np.isfinite(row), row, res["mean"][None])


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__


class SeriesView:
    """The raw series behind a dataset's windows: train parts, per-series z-score, forecast origins.
    Series are the variates of a table (`[N, D]`) or the series of a panel (D = 1)."""

    def __init__(self, dataset: Any, horizon: int) -> None:
        self.panel = getattr(dataset, "panel", None)
        if self.panel is not None:
            self.ids = list(self.panel.ids)
            self.mean, self.std = dataset.series_stats(horizon)
            self.train_end = dataset.train_ends(horizon)
        else:
            self.values_2d = np.asarray(dataset.series.values)
            self.ids = list(dataset.columns)
            self.mean = np.asarray(dataset.scaler.mean, np.float64)
            self.std = np.asarray(dataset.scaler.std, np.float64)
            self.train_end = np.full(len(self.ids), dataset.split.train[1], np.int64)

    def values(self, s: int, end: int) -> np.ndarray:
        """The first `end` raw values of series `s`."""
        if self.panel is not None:
            return np.asarray(self.panel.series(s)[:end], np.float64)
        return np.asarray(self.values_2d[:end, s], np.float64)

    def origins(self, windows: Any, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(series index `[B*D]`, forecast origin relative to the series start `[B*D]`) of windows `idx`,
        rows window-major (window b, variate d at row b*D + d)."""
        starts = np.asarray(windows.starts)[idx]
        if self.panel is not None:
            series = np.asarray(windows.series_index)[idx]
            return series, starts - self.panel.offsets[series]
        d = self.values_2d.shape[1]
        return np.tile(np.arange(d), len(idx)), np.repeat(starts, d)


class StatsForecastTeacher(Teacher):
    """A statsforecast model per series, fitted once on the train part and applied to every window."""

    quantile_levels = DECILES
    chunk_windows = CHUNK_WINDOWS

    def __init__(self, spec: StatSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.season: int | None = spec.season
        self.fallbacks: dict[str, str] = {}
        self._view: SeriesView | None = None
        self._fitted: dict[int, Any] = {}
        self._pool: concurrent.futures.Executor | None = None
        self._ray_task: Any = None
        self._ray_started = False
        super().__init__(spec.name, stat_identity(spec), "cpu", 0)

    def bind(self, dataset: Any, lookback: int, horizon: int) -> None:
        """Fit to `dataset`'s series from now on: resolve the season (the spec's, else the data frequency's)
        and refuse one longer than the windows' history."""
        freq = getattr(dataset.series, "freq", None)
        season = self.spec.season or seasonality(None if freq is None else int(freq / np.timedelta64(1, "s")))
        if season > lookback:
            raise DistiltsError(
                f"--teacher {self.spec.name}: season {season} is longer than the {lookback}-step history each "
                f"window gives the model: pass a shorter season (e.g. {self.spec.name.split('?')[0]}?season="
                f"{lookback}) or --lookback {season} or more."
            )
        self.season, self._view, self._fitted = season, SeriesView(dataset, horizon), {}

    def check_window(self, lookback: int, horizon: int) -> None:
        if self._view is None:
            return
        assert self.season is not None
        short = np.flatnonzero((self._view.train_end > 0) & (self._view.train_end < self.season))
        if short.size:
            ids = [self._view.ids[i] for i in short[:3]]
            raise DistiltsError(
                f"--teacher {self.spec.name}: season {self.season} is longer than the training part of {short.size} "
                f"series (e.g. {', '.join(ids)}): pass ?season=N with N at most "
                f"{int(self._view.train_end[short].min())}, or leave those series out."
            )

    def predict(
        self,
        x: np.ndarray,
        horizon: int,
        hidden: bool = False,
        quantiles: bool = False,
        covariates: dict[str, np.ndarray] | None = None,
    ) -> TeacherOutput:
        raise DistiltsError(
            f"The {self.name} teacher is fitted per series: it forecasts the windows of a dataset through the teacher "
            "cache (`distilts teach` / `distilts distill`), not loose windows."
        )

    def predict_windows(self, windows: Any, idx: np.ndarray, horizon: int, quantiles: bool = False) -> TeacherOutput:
        """Forecasts `[B, H, D]` (and quantiles `[B, H, D, Q]`) of windows `idx` of the bound dataset, on the
        windows' normalized scale."""
        if self._view is None or self.season is None:
            raise DistiltsError(f"The {self.name} teacher must be bound to a dataset first (teach/distill do it).")
        view = self._view
        series, ends = view.origins(windows, idx)
        rows = np.empty((len(series), 1 + len(DECILES), horizon))
        tasks = {int(s): np.flatnonzero(series == s) for s in np.unique(series)}
        args: dict[int, tuple[Any, ...]] = {}
        for s, r in tasks.items():
            fitted, train_end = self._fitted.get(s), int(view.train_end[s])
            need = int(ends[r].max()) if fitted is not None else max(int(ends[r].max()), train_end)
            args[s] = (self.spec, self.season, fitted, train_end, view.values(s, need), ends[r])
        for s, (fitted, out, reason) in self._run(args, horizon):
            self._fitted[s] = fitted
            rows[tasks[s]] = out
            if reason and view.ids[s] not in self.fallbacks:
                self.fallbacks[view.ids[s]] = f"{reason}: {FALLBACK} for the windows it failed on"
        rows = (rows - view.mean[series][:, None, None]) / view.std[series][:, None, None]
        b, d = len(idx), len(series) // max(len(idx), 1)
        point = rows[:, 0].reshape(b, d, horizon).transpose(0, 2, 1)
        q = None
        if quantiles:
            q = np.sort(rows[:, 1:], axis=1).reshape(b, d, -1, horizon).transpose(0, 3, 1, 2)  # never crossing
        return TeacherOutput(
            np.ascontiguousarray(point, np.float32), None, None if q is None else np.ascontiguousarray(q, np.float32)
        )

    def _run(self, args: dict[int, tuple[Any, ...]], horizon: int):
        if self.spec.address is not None:
            yield from self._run_ray(args, horizon)
            return
        jobs = min(self.spec.n_jobs or os.cpu_count() or 1, len(args))
        if jobs <= 1:
            for s, a in args.items():
                yield s, series_task(*a, horizon, DECILES)  # type: ignore[call-arg]  # a: the first six
            return
        if self._pool is None:  # spawn: the parent may hold torch's threads
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self.spec.n_jobs or os.cpu_count(), mp_context=multiprocessing.get_context("spawn")
            )
        futures = {s: self._pool.submit(series_task, *a, horizon, DECILES) for s, a in args.items()}  # type: ignore[call-arg]
        for s, fut in futures.items():
            yield s, fut.result()

    def _run_ray(self, args: dict[int, tuple], horizon: int):
        """The series as Ray tasks on the cluster at `address` ("local": a Ray started here, stopped at close)."""
        ray = require("ray", "ray", f"the {self.name} teacher on a Ray cluster")
        if self._ray_task is None:
            if not ray.is_initialized():
                address = None if self.spec.address == "local" else self.spec.address
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
                self._ray_started = True
            self._ray_task = ray.remote(num_cpus=1)(series_task)
        refs = {s: self._ray_task.remote(*a, horizon, DECILES) for s, a in args.items()}
        for s, ref in refs.items():
            yield s, ray.get(ref)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        if self._ray_started:
            import ray

            ray.shutdown()
            self._ray_started, self._ray_task = False, None

    @property
    def info(self) -> dict:
        return {
            **super().info,
            "kind": "statistical",
            "model": self.spec.model,
            "season": self.season,
            "options": dict(self.spec.options),
            "statsforecast": statsforecast_version(),
            "fallbacks": dict(self.fallbacks),
        }


def load(spec: str) -> StatsForecastTeacher:
    """The statistical teacher of `statsforecast:MODEL[?options]` (not fitted until bound to a dataset)."""
    parsed = parse_stat(spec)
    assert parsed.model in STATS_MODELS
    build_model(parsed, parsed.season or 1)  # unknown options fail now, before any window
    return StatsForecastTeacher(parsed)
