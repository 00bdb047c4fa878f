"""Batch forecasting: every series of a long-format file (or M4 wide rows) with a D=1 artifact.

Streams the input block by block (`distilts.data.long.iter_blocks`: bounded memory), forecasts
each series from its last window or from given cutoffs (backtests), and streams the forecasts to
Parquet (or CSV) with timestamps continued at each series' own step. Series too short for a
window are skipped and reported by id, never dropped silently. Numpy + pyarrow + one backend.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distilts.data.long import (
    LongColumns,
    SeriesBlock,
    arrow_array,
    arrow_strings,
    column_names,
    detect_layout,
    iter_blocks,
)
from distilts.errors import DataError, require
from distilts.runtime.forecaster import Forecaster

FORECAST = "forecast"


@dataclass
class BatchReport:
    """What a batch forecast did: series forecast, windows run, skipped series with the reason."""

    series: int = 0
    windows: int = 0
    rows: int = 0
    seconds: float = 0.0
    predict_seconds: float = 0.0
    input_rows: int = 0
    input_series: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def add(self, other: BatchReport) -> None:
        self.series += other.series
        self.windows += other.windows
        self.rows += other.rows
        self.predict_seconds += other.predict_seconds
        self.input_rows += other.input_rows
        self.input_series += other.input_series
        self.skipped.extend(other.skipped)

    def summary(self, limit: int = 10) -> str:
        text = (
            f"{self.series} series, {self.windows} windows -> {self.rows} forecast rows in {self.seconds:.2f} s "
            f"({self.windows / max(self.seconds, 1e-9):,.0f} windows/s)"
        )
        if self.skipped:
            shown = "; ".join(f"{i}: {why}" for i, why in self.skipped[:limit])
            more = f" (and {len(self.skipped) - limit} more)" if len(self.skipped) > limit else ""
            text += f"\nskipped {len(self.skipped)} series: {shown}{more}"
        return text


def parse_cutoffs(cutoffs: Sequence[str] | None) -> list[tuple[str, int]] | None:
    """`-k` = the window ending k values before each series' end; else a timestamp (ISO) or an integer time."""
    if not cutoffs:
        return None
    out: list[tuple[str, int]] = []
    for c in cutoffs:
        c = str(c).strip()
        if c.lstrip("-").isdigit():
            v = int(c)
            out.append(("back", -v) if v < 0 else ("time", v))
            continue
        try:
            out.append(("time", int(np.datetime64(c.replace(" ", "T", 1), "s").astype(np.int64))))
        except ValueError:
            raise DataError(
                f"Cannot read cutoff {c!r}: use an ISO timestamp (2020-01-31 23:00), an integer "
                "time, or -k for k values before each series' end."
            ) from None
    return out


def forecast_block(
    fc: Forecaster, block: SeriesBlock, cutoffs: list[tuple[str, int]] | None = None, batch: int = 256
) -> tuple[dict, BatchReport]:
    """Forecast every series of a block; returns output columns (numpy arrays) and a report.

    Columns: `series` (index into block.ids), `time` (int64, continued at each series' step; step
    numbers 1..H after the window when the data has no timestamps), `forecast`, and `cutoff` when
    cutoffs are given.
    """
    L, H = fc.lookback, fc.horizon
    lengths = block.lengths
    rep = BatchReport(input_rows=int(block.offsets[-1]), input_series=len(block))
    ends, series = [], []
    for kind, value in cutoffs or [("back", 0)]:
        end = _window_ends(block, kind, value)
        ok = end >= L
        for s in np.flatnonzero(~ok):
            why = (
                f"{lengths[s]} values, needs {L}"
                if cutoffs is None
                else (
                    f"cutoff {_cut_label(block, kind, value)} is outside it"
                    if end[s] < 0
                    else f"{end[s]} values up to cutoff {_cut_label(block, kind, value)}, needs {L}"
                )
            )
            rep.skipped.append((block.ids[s], why))
        idx = np.flatnonzero(ok)
        series.append(idx)
        ends.append(block.offsets[idx] + end[idx])
    series_i = np.concatenate(series)
    end_abs = np.concatenate(ends)
    n = series_i.size
    y = np.empty((n, H), dtype=np.float32)
    t0 = time.perf_counter()
    for lo in range(0, n, batch):
        e = end_abs[lo : lo + batch]
        x = block.values[e[:, None] + np.arange(-L, 0)]
        y[lo : lo + batch] = fc.predict(x[..., None])[..., 0]
    rep.predict_seconds = time.perf_counter() - t0
    rep.series = int(np.unique(series_i).size)
    rep.windows = n
    rep.rows = n * H
    steps = np.arange(1, H + 1, dtype=np.int64)
    if block.times is not None:
        last_t = block.times[end_abs - 1]
        t = last_t[:, None] + block.steps()[series_i][:, None] * steps
    else:
        t = np.broadcast_to(steps, (n, H))
    cols = {"series": np.repeat(series_i, H), "time": t.reshape(-1), FORECAST: y.reshape(-1)}
    if cutoffs is not None:
        cols["cutoff"] = (
            block.times[end_abs - 1] if block.times is not None else (end_abs - block.offsets[series_i]) - 1
        ).repeat(H)
    return cols, rep


def _window_ends(block: SeriesBlock, kind: str, value: int) -> np.ndarray:
    """Per series, the end (exclusive, relative to the series) of the input window; -1 when outside it."""
    n = block.lengths
    if kind == "back":
        end = n - value
        return np.where(end > 0, end, -1)
    if block.times is None:
        end = np.full(n.shape, value + 1)  # an integer cutoff on data without times: a row position
        return np.where(end <= n, end, -1)
    t0 = block.times[block.offsets[:-1]]
    step = np.where(block.steps() > 0, block.steps(), 1)
    k = (value - t0) // step
    on_grid = (value - t0) % step == 0
    inside = on_grid & (k >= 0) & (k < n)
    return np.where(inside, k + 1, -1)


def _cut_label(block: SeriesBlock, kind: str, value: int) -> str:
    if kind == "back":
        return f"-{value}"
    if block.time_kind == "datetime":
        return str(np.datetime64(value, "s")).replace("T", " ")
    return str(value)


def to_table(block: SeriesBlock, cols: dict, names: LongColumns):
    """The block's forecasts as a pyarrow Table: id, timestamp (or step), forecast[, cutoff]."""
    pa = require("pyarrow", "parquet", "writing batch forecasts")
    time_type = pa.timestamp("s") if block.time_kind == "datetime" else pa.int64()
    ids = arrow_strings(pa, block.ids).take(arrow_array(pa, cols["series"], pa.int64()))
    arrays = [ids, arrow_array(pa, cols["time"], time_type), arrow_array(pa, cols[FORECAST], pa.float32())]
    fields = [names.id or "id", (names.timestamp if block.times is not None else None) or "step", FORECAST]
    if "cutoff" in cols:
        arrays.append(arrow_array(pa, cols["cutoff"], time_type))
        fields.append("cutoff")
    return pa.Table.from_arrays(arrays, names=fields)


def resolved_columns(path: Path, columns: LongColumns, layout: str) -> LongColumns:
    if layout == "m4" or (layout == "auto" and detect_layout(path) == "m4"):
        return LongColumns("id", None, None)
    return columns.resolve(column_names(path), str(path))


def forecast_file(
    fc: Forecaster,
    data: str | Path,
    out: str | Path,
    columns: LongColumns = LongColumns(),
    layout: str = "auto",
    cutoffs: Sequence[str] | None = None,
    batch: int = 256,
    block_rows: int | None = None,
    progress: bool = True,
) -> BatchReport:
    """Forecast every series in `data` and write `out` (.parquet or .csv) atomically; returns the report."""
    if len(fc.columns) != 1:
        raise DataError(
            f"Batch forecasting of long-format data needs a univariate (D=1) artifact; this one forecasts "
            f"{len(fc.columns)} columns ({', '.join(fc.columns)}). Distil a global student on long-format data, "
            "or forecast this wide table with `distilts forecast ART --data FILE.csv` (without --id-column)."
        )
    require("pyarrow", "parquet", "batch forecasting")
    data, out = Path(data), Path(out)
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise DataError(f"--out {out}: batch forecasts are written as .parquet or .csv; name the file so.")
    names = resolved_columns(data, columns, layout)
    cuts = parse_cutoffs(cutoffs)
    t0 = time.perf_counter()
    total = BatchReport()
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    kw = {} if block_rows is None else {"block_rows": block_rows}
    try:
        with _Progress(data, progress) as bar:
            for table, rep in iter_forecast_tables(fc, iter_blocks(data, columns, layout, **kw), names, cuts, batch):
                total.add(rep)
                if writer is None:
                    writer = _writer(tmp, out.suffix.lower(), table.schema)
                writer.write_table(table) if hasattr(writer, "write_table") else writer.write(table)
                bar.update(rep.input_rows, rep.input_series)
        if writer is None:
            raise DataError(f"{data} holds no series.")
        writer.close()
        writer = None
        os.replace(tmp, out)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    total.seconds = time.perf_counter() - t0
    return total


def _writer(path: Path, suffix: str, schema):
    if suffix == ".csv":
        import pyarrow.csv as pcsv

        return pcsv.CSVWriter(str(path), schema)
    import pyarrow.parquet as pq

    return pq.ParquetWriter(str(path), schema)


class _Progress:
    """Rows read so far on stderr (of the total for Parquet, whose metadata gives it); click's bar."""

    def __init__(self, data: Path, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.total = None
        if data.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            self.total = pq.ParquetFile(data).metadata.num_rows
        self.bar: Any = None
        self.series = 0

    def __enter__(self) -> _Progress:
        if self.enabled and self.total:
            import click

            self.bar = click.progressbar(length=self.total, label="forecast", file=sys.stderr).__enter__()
        return self

    def update(self, rows: int, series: int) -> None:
        self.series += series
        if self.bar is not None:
            self.bar.update(rows)
        elif self.enabled:
            print(f"\rforecast: {self.series} series", end="", file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
        elif self.enabled:
            print(file=sys.stderr)


def iter_forecast_tables(
    fc: Forecaster, blocks: Iterator[SeriesBlock], names: LongColumns, cutoffs: list[tuple[str, int]] | None, batch: int
):
    """(table, report) per block: the shared core of the one-process and Ray engines."""
    for block in blocks:
        cols, rep = forecast_block(fc, block, cutoffs, batch)
        yield to_table(block, cols, names), rep
