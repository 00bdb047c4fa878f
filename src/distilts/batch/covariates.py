"""`distilts forecast ART --data HISTORY --future FILE`: forecasts of an artifact with covariate inputs.

HISTORY: long format (`unique_id, ds, y` + covariate columns; or item_id/timestamp/target) or one wide
table (a date column, the target columns and the covariate columns). FILE: the known-future covariates
over the horizon after each series' last timestamp (`unique_id, ds, <future columns>`; no id column for
a wide history). Per series the last `lookback` rows give the window, the past covariates and the first
part of the known-future ones, the future file the rest (calendar features are generated from the
timestamps by the Forecaster); static columns must hold one value per series.

Bad input ends in one DataError naming the column, the series and the first offending timestamp: a
covariate missing from a file, a future not covering the horizon, NaN in a covariate, a static value
that varies within a series. Numpy + pyarrow + one backend (no pandas, no torch).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distilts.batch.panel import FORECAST, BatchReport
from distilts.data.covariates import check_future_frame
from distilts.errors import DataError, require
from distilts.runtime.forecaster import Forecaster
from distilts.utils import atomic_write_bytes, atomic_write_text

ID_NAMES = ("unique_id", "item_id")
TIME_NAMES = ("ds", "timestamp", "date", "datetime", "time")
TARGET_NAMES = ("y", "target")


@dataclass
class Frame:
    """A table read into numpy: {column: array}, its source and its id / timestamp columns (None: absent)."""

    columns: dict[str, np.ndarray]
    source: str
    id: str | None
    time: str

    def need(self, names: list[str], what: str) -> None:
        """A DataError naming the first of `names` this table lacks."""
        for c in names:
            if c not in self.columns:
                raise DataError(
                    f"{self.source}: no {what} column '{c}' (columns are: {', '.join(self.columns)}). The artifact "
                    f"needs it; add the column or forecast with an artifact distilled without it."
                )


def read_frame(path: str | Path, id_column: str | None, time_column: str | None) -> Frame:
    """Read a CSV or Parquet file with pyarrow; timestamps as datetime64[s]."""
    require("pyarrow", "batch", "forecasting with a future file")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"File not found: {path}. Check the path given to --data / --future.")
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    else:
        import pyarrow.csv as pcsv

        table = pcsv.read_csv(path)
    cols = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    ident = id_column or next((c for c in ID_NAMES if c in cols), None)
    ts = time_column or next((c for c in TIME_NAMES if c in cols), None)
    if ident is not None and ident not in cols:
        raise DataError(f"{path}: no id column '{ident}' (columns are: {', '.join(cols)}).")
    if ts is None or ts not in cols:
        raise DataError(
            f"{path}: no timestamp column{f' {ts!r}' if ts else ''} (columns are: {', '.join(cols)}); an artifact with "
            "covariates needs the timestamps to line the future file up with the history. Name it with "
            "--timestamp-column."
        )
    try:
        cols[ts] = np.asarray(cols[ts]).astype("datetime64[s]")
    except (TypeError, ValueError):
        raise DataError(f"{path}: column '{ts}' does not hold timestamps.") from None
    if ident is not None:
        cols[ident] = np.asarray(cols[ident]).astype(str)
    return Frame(cols, str(path), ident, ts)


def _fmt(t: np.datetime64) -> str:
    return str(np.asarray(t).astype("datetime64[s]")).replace("T", " ")


def _series(frame: Frame) -> dict[str, np.ndarray]:
    """{series id: row indices sorted by time} ('series' for a table without an id column)."""
    n = len(frame.columns[frame.time])
    if frame.id is None:
        return {"series": np.argsort(frame.columns[frame.time], kind="stable")}
    ids = frame.columns[frame.id]
    order = np.lexsort((frame.columns[frame.time], ids))
    uniq, first = np.unique(ids[order], return_index=True)
    bounds = [*first[1:], n]
    return {str(u): order[lo:hi] for u, lo, hi in zip(uniq, first, bounds, strict=True)}


def _values(frame: Frame, column: str, rows: np.ndarray, sid: str, what: str) -> np.ndarray:
    """Float values of `column` at `rows`; a DataError naming the column, series and first NaN timestamp."""
    try:
        v = np.asarray(frame.columns[column][rows], dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{frame.source}: column '{column}' is not numeric.") from None
    bad = ~np.isfinite(v)
    if bad.any():
        t = frame.columns[frame.time][rows][int(np.argmax(bad))]
        raise DataError(
            f"{frame.source}: {what} '{column}' of series '{sid}' is missing (NaN) at {_fmt(t)}; covariates are "
            "never filled: complete the column."
        )
    return v


@dataclass
class LinedUp:
    """Every series' inputs, lined up for `Forecaster.predict`: the windows `[B, L, D]`, the keyword inputs
    (past, future, static, timestamps), the series ids and the horizon's timestamps per series."""

    values: np.ndarray
    inputs: dict[str, np.ndarray]
    ids: list[str]
    times: list[np.ndarray]
    targets: list[str]
    history: Frame
    report: BatchReport


def line_up(
    fc: Forecaster,
    data_path: str | Path,
    future_path: str | Path | None,
    id_column: str | None = None,
    time_column: str | None = None,
    target_column: str | None = None,
) -> LinedUp:
    """Read the history and the future file and cut every series' inputs (DataError on bad covariates)."""
    cols = fc.input_columns
    L, H = fc.lookback, fc.horizon
    hist = read_frame(data_path, id_column, time_column)
    targets = list(fc.columns)
    if not all(c in hist.columns for c in targets) and len(targets) == 1:
        alias = target_column or next((c for c in TARGET_NAMES if c in hist.columns), None)
        targets = [alias] if alias else targets
    hist.need(targets, "target")
    hist.need(cols.get("past", []) + cols.get("future", []) + cols.get("static", []), "covariate")
    fut_cols = cols.get("future", [])
    fut = None
    if fut_cols:
        if future_path is None:
            raise DataError(
                f"This artifact takes the known-future covariates {', '.join(fut_cols)}: pass them over the "
                f"{H} steps after each series' end with --future FILE."
            )
        fut = read_frame(future_path, id_column if hist.id else None, time_column)
        fut.need(fut_cols, "known-future covariate")
    fut_rows = _series(fut) if fut is not None else {}
    inputs: dict[str, list[np.ndarray]] = {"values": [], "past": [], "future": [], "static": [], "timestamps": []}
    out_ids: list[str] = []
    out_times: list[np.ndarray] = []
    rep = BatchReport()
    for sid, rows in _series(hist).items():
        rep.input_series += 1
        rep.input_rows += len(rows)
        if len(rows) < L:
            rep.skipped.append((sid, f"{len(rows)} rows, fewer than the lookback {L}"))
            continue
        times = hist.columns[hist.time][rows]
        step = np.median(np.diff(times)) if len(times) > 1 else None
        if step is None or step <= np.timedelta64(0, "s"):
            rep.skipped.append((sid, "no regular time step"))
            continue
        last = rows[-L:]
        horizon_t = times[-1] + step * np.arange(1, H + 1)
        inputs["values"].append(np.stack([_values(hist, c, last, sid, "target") for c in targets], axis=-1))
        if "past" in cols:
            inputs["past"].append(np.stack([_values(hist, c, last, sid, "covariate") for c in cols["past"]], -1))
        if "static" in cols:
            inputs["static"].append(np.array([_static(hist, c, rows, sid) for c in cols["static"]]))
        if fut_cols:
            assert fut is not None  # future columns come from the future file
            inputs["future"].append(_future_block(hist, fut, fut_rows, sid, last, horizon_t, fut_cols))
        inputs["timestamps"].append(np.concatenate([times[-L:], horizon_t]))
        out_ids.append(sid)
        out_times.append(horizon_t)
    if not out_ids:
        raise DataError(f"{data_path}: no series has the {L} rows of history this artifact needs.")
    kw = {k: np.stack(v) for k, v in inputs.items() if v and k != "values"}
    if not fc.calendar_columns:
        kw.pop("timestamps", None)
    return LinedUp(np.stack(inputs["values"]).astype(np.float32), kw, out_ids, out_times, targets, hist, rep)


def forecast_with_future(
    fc: Forecaster,
    data_path: str | Path,
    future_path: str | Path | None,
    out_path: str | Path,
    id_column: str | None = None,
    time_column: str | None = None,
    target_column: str | None = None,
    predict=None,
) -> BatchReport:
    """Forecast the horizon after every series of `data_path` with the known-future covariates of
    `future_path`; write `id, timestamp, forecast` rows (a column per target for several) to `out_path`.
    predict: `(values, **inputs) -> [B, H, D]` (default `fc.predict`, here; the Ray engine passes its own)."""
    t0 = time.perf_counter()
    lined = line_up(fc, data_path, future_path, id_column, time_column, target_column)
    rep = lined.report
    t1 = time.perf_counter()
    y = (predict or fc.predict)(lined.values, **lined.inputs)  # [B, H, D]
    rep.predict_seconds = time.perf_counter() - t1
    rep.series = rep.windows = len(lined.ids)
    rep.rows = len(lined.ids) * fc.horizon
    _write(out_path, lined.history, lined.ids, lined.times, y, lined.targets)
    rep.seconds = time.perf_counter() - t0
    return rep


def _static(frame: Frame, column: str, rows: np.ndarray, sid: str) -> float:
    """The one value of a static covariate in a series; a DataError at the first timestamp where it changes."""
    v = _values(frame, column, rows, sid, "static covariate")
    changed = np.flatnonzero(v != v[0])
    if changed.size:
        t = frame.columns[frame.time][rows][changed[0]]
        raise DataError(
            f"{frame.source}: static covariate '{column}' varies within series '{sid}' (first change at {_fmt(t)}); "
            "a static covariate holds one value per series."
        )
    return float(v[0])


def _future_block(
    hist: Frame, fut: Frame, fut_rows: dict, sid: str, last: np.ndarray, horizon_t: np.ndarray, columns: list[str]
) -> np.ndarray:
    """`[L + H, F]`: the history's last L rows of the known-future columns, then the future file's H rows."""
    rows = fut_rows.get(sid if fut.id is not None else "series", np.zeros(0, np.int64))
    ft = fut.columns[fut.time][rows]
    where = f"{fut.source} (series '{sid}')" if fut.id is not None else fut.source
    # the data stage's rule: every column present, finite, and covering each horizon timestamp
    check_future_frame({c: fut.columns[c][rows] for c in columns}, ft, columns, horizon_t, where)
    pos = np.searchsorted(ft, horizon_t)
    frows = rows[pos]
    past_part = np.stack([_values(hist, c, last, sid, "known-future covariate") for c in columns], -1)
    future_part = np.stack([_values(fut, c, frows, sid, "known-future covariate") for c in columns], -1)
    return np.concatenate([past_part, future_part])


def _write(path, hist: Frame, ids: list[str], times: list[np.ndarray], y: np.ndarray, targets: list[str]) -> None:
    """`id, timestamp, forecast` rows (CSV or Parquet by suffix; one forecast column per target when several)."""
    H = y.shape[1]
    names = [FORECAST] if len(targets) == 1 else [f"{FORECAST}:{c}" for c in targets]
    id_name, t_name = hist.id or "id", hist.time
    path = Path(path)
    all_ids = np.repeat(np.array(ids), H)
    all_t = np.concatenate(times)
    flat = y.reshape(-1, y.shape[-1])
    if path.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols = {id_name: pa.array(all_ids), t_name: pa.array(all_t)}
        cols.update({n: pa.array(flat[:, j]) for j, n in enumerate(names)})
        buf = pa.BufferOutputStream()
        pq.write_table(pa.table(cols), buf)
        atomic_write_bytes(path, buf.getvalue().to_pybytes())
        return
    lines = [",".join([id_name, t_name, *names])]
    for i in range(len(all_ids)):
        vals = ",".join(f"{v:.6g}" for v in flat[i])
        lines.append(f"{all_ids[i]},{_fmt(all_t[i])},{vals}")
    atomic_write_text(path, "\n".join(lines) + "\n")
