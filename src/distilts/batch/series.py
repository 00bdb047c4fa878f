"""Inputs and outputs of `distilts forecast`: series for an artifact, continued timestamps, CSV, plot.

Numpy + stdlib csv only (matplotlib, lazily, for the plot).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distilts.data.series import TimeSeries, default_names, is_data_row, load_series
from distilts.data.synthetic import synthetic_series
from distilts.errors import DataError, require
from distilts.quantiles import column_name, format_level
from distilts.runtime.forecaster import Forecaster


@dataclass
class ForecastResult:
    """H forecast rows after data row `at_row` (0-based), with their timestamps (or step numbers)."""

    values: np.ndarray  # [H, D] raw scale
    columns: list[str]
    at_row: int
    dates: np.ndarray | None  # [H] datetime64[s], or None when the data has no dates
    history: np.ndarray  # [L, D] the input window
    history_dates: np.ndarray | None
    actual: np.ndarray | None  # rows after at_row present in the data (up to H), for plots
    quantiles: np.ndarray | None = None  # [H, D, Q] of a quantile artifact (values = the 0.5 level)
    levels: tuple[float, ...] | None = None


def read_header(path: Path) -> list[str] | None:
    """Column names of a CSV/TSV file (None for other types or unreadable files)."""
    if path.suffix.lower() not in (".csv", ".txt", ".tsv") or not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8-sig") as f:
        row = next(csv.reader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ","), None)
    if not row:
        return None
    row = [h.strip() for h in row]
    return default_names(row) if is_data_row(row) else row


def load_for_artifact(
    path: str | Path | None, columns: list[str], date_column: str | None = None, fill: str | None = None
) -> TimeSeries:
    """The artifact's variates (in the manifest's order) from a CSV, or from the built-in synthetic series."""
    if path is None:
        series = synthetic_series()
        missing = [c for c in columns if c not in series.columns]
        if missing:
            raise DataError(
                f"The artifact forecasts columns {', '.join(columns)}, but the built-in synthetic series has "
                f"{', '.join(series.columns)}. Pass the data the model was trained on with --data FILE."
            )
        idx = [series.columns.index(c) for c in columns]
        return TimeSeries(series.values[:, idx], list(columns), series.dates, series.source)
    path = Path(path)
    header = read_header(path)
    if header is not None:
        missing = [c for c in columns if c not in header]
        if missing:
            raise DataError(
                f"{path} lacks column(s) {', '.join(missing)} that the artifact forecasts (its columns, from "
                f"manifest.json: {', '.join(columns)}). The file has: {', '.join(header)}. Rename the "
                "columns or pass the data the model was trained on."
            )
    return load_series(path, columns, date_column, fill)


def forecast_at(fc: Forecaster, series: TimeSeries, at_row: int | None = None) -> ForecastResult:
    """Forecast the H steps after data row `at_row` (default: the last row) from the L rows ending there."""
    n = len(series)
    L, H = fc.lookback, fc.horizon
    row = n - 1 if at_row is None else at_row
    if row < 0:
        row += n
    if not 0 <= row < n:
        raise DataError(f"--at-row {at_row} is outside the data, which has rows 0..{n - 1}.")
    if row + 1 < L:
        raise DataError(
            f"Forecasting after row {row} leaves {row + 1} rows of history; the model needs a window of {L} "
            f"rows ({L} x {len(fc.columns)}: {', '.join(fc.columns)}). Use --at-row {L - 1} or later, or more data."
        )
    window = series.values[row + 1 - L : row + 1]
    levels = fc.levels
    quantiles = fc.predict_quantiles(window) if levels is not None else None
    values = fc.predict(window) if quantiles is None or levels is None else quantiles[..., levels.index(0.5)]
    dates = hist_dates = None
    if series.dates is not None and series.freq is not None:
        step = series.freq
        dates = series.dates[row] + step * np.arange(1, H + 1)
        hist_dates = series.dates[row + 1 - L : row + 1]
    actual = series.values[row + 1 : row + 1 + H] if row + 1 < n else None
    return ForecastResult(values, list(fc.columns), row, dates, window, hist_dates, actual, quantiles, fc.levels)


def _fmt_date(d: np.datetime64) -> str:
    return str(d.astype("datetime64[s]")).replace("T", " ")


def forecast_csv(res: ForecastResult) -> str:
    """CSV text: a `date` column (continued at the data's median step) or `step` (1..H), then the variates
    (the median for a quantile artifact), then every level of each variate (`OT_q0.1`, ..., `OT_q0.9`)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    qcols = [column_name(c, q) for c in res.columns for q in (res.levels or ())]
    w.writerow(["date" if res.dates is not None else "step", *res.columns, *qcols])
    for i, row in enumerate(res.values):
        key = _fmt_date(res.dates[i]) if res.dates is not None else str(i + 1)
        levels = res.quantiles[i].reshape(-1) if res.quantiles is not None else ()
        w.writerow([key, *(f"{float(v):.7g}" for v in row), *(f"{float(v):.7g}" for v in levels)])
    return buf.getvalue()


def plot_forecast(res: ForecastResult, path: str | Path, title: str = "") -> Path:
    """PNG: per variate, the input window, the forecast, and the actual values when the data has them."""
    require("matplotlib", "plot", "--plot")
    import matplotlib  # the optional `plot` extra, checked by require() just above

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = len(res.columns)
    L, H = len(res.history), len(res.values)
    xh = res.history_dates if res.history_dates is not None else np.arange(-L + 1, 1)
    xf = res.dates if res.dates is not None else np.arange(1, H + 1)
    fig, axes = plt.subplots(d, 1, figsize=(9, 1.9 * d + 0.6), sharex=True, squeeze=False)
    for j, ax in enumerate(axes[:, 0]):
        ax.plot(xh, res.history[:, j], color="0.35", lw=1.2, label="input window")
        if res.actual is not None and len(res.actual):
            ax.plot(xf[: len(res.actual)], res.actual[:, j], color="tab:green", lw=1.2, label="actual")
        if res.quantiles is not None and res.levels is not None:  # one band per symmetric pair of levels
            _bands(ax, xf, res.quantiles[:, j], res.levels)
        ax.plot(
            xf,
            res.values[:, j],
            color="tab:orange",
            lw=1.6,
            marker="." if res.quantiles is None else None,
            label="forecast" if res.quantiles is None else "median",
        )
        ax.axvline(xh[-1], color="0.7", lw=0.8, ls="--")
        ax.set_ylabel(res.columns[j], fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, loc="upper left", ncol=4)
    fig.suptitle(title or f"Forecast of {H} steps after row {res.at_row}", fontsize=10)
    fig.autofmt_xdate()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _bands(ax, x: np.ndarray, q: np.ndarray, levels: tuple[float, ...]) -> None:
    """Shade between level i and level Q-1-i (the central intervals), labelling the outermost."""
    pairs = [(i, len(levels) - 1 - i) for i in range(len(levels) // 2)]
    for k, (lo, hi) in enumerate(pairs):
        label = (
            (
                f"{format_level(levels[lo])}-{format_level(levels[hi])} "
                f"({round((levels[hi] - levels[lo]) * 100):g}% interval)"
            )
            if k == 0
            else None
        )
        ax.fill_between(
            x, q[:, lo], q[:, hi], color="tab:blue", alpha=0.15 + 0.3 * k / max(len(pairs), 1), lw=0, label=label
        )
