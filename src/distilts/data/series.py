"""Load a multivariate time series from CSV or Parquet and validate it.

A series is a date column (optional) plus numeric variates. Problems are reported with the file,
column and row, and the fix; missing values are never filled unless a fill policy is given.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from distilts.data.policies import FILL_POLICIES
from distilts.errors import DataError

DATE_NAMES = ("date", "datetime", "timestamp", "time", "ds")


@dataclass
class TimeSeries:
    """Values `[N, D]` (float32), their column names, and optional timestamps."""

    values: np.ndarray
    columns: list[str]
    dates: np.ndarray | None = None  # datetime64[s], strictly increasing
    source: str = "<memory>"
    notes: list[str] = field(default_factory=list)  # what was done to the data (fills)

    @property
    def freq(self) -> np.timedelta64 | None:
        """The regular step between timestamps (median difference), or None without dates."""
        if self.dates is None or len(self.dates) < 2:
            return None
        return np.median(np.diff(self.dates).astype(np.int64)).astype("timedelta64[s]")

    def __len__(self) -> int:
        return int(self.values.shape[0])


def load_series(
    path: str | Path,
    columns: Sequence[str] | None = None,
    date_column: str | None = None,
    fill: str | None = None,
) -> TimeSeries:
    """Read a CSV or Parquet file into a validated TimeSeries.

    columns: variates to keep, by name (default: every numeric column but the date).
    date_column: the timestamp column (default: one named date/timestamp/..., if any).
    fill: policy for NaN/inf values and date gaps: ffill, bfill, interpolate or zero.
    """
    path = Path(path)
    if fill is not None and fill not in FILL_POLICIES:
        raise DataError(f"Unknown fill policy '{fill}'. Use one of: {', '.join(FILL_POLICIES)}.")
    if not path.exists():
        raise DataError(f"Data file not found: {path}. Check the path given to --data.")
    if path.is_dir():
        raise DataError(f"{path} is a directory; --data needs a .csv or .parquet file.")
    suffix = path.suffix.lower()
    headerless = False
    if suffix == ".parquet":
        header, cells = _read_parquet(path)
    elif suffix in (".csv", ".txt", ".tsv"):
        header, cells, headerless = _read_csv(path, delimiter="\t" if suffix == ".tsv" else ",")
    else:
        raise DataError(f"{path}: unsupported file type '{suffix}'. Use a .csv or .parquet file.")
    series = _table_to_series(path, header, cells, columns, date_column, fill)
    if headerless:
        series.notes.insert(
            0,
            f"{path.name} has no header row: its first row is read as data and the columns "
            f"are named {', '.join(header)}",
        )
    return series


def _read_csv(path: Path, delimiter: str) -> tuple[list[str], list[list[str]], bool]:
    """Header, column-major cells, and whether the file had no header row (its first row is data)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{path} is empty. A header row and at least one data row are needed.")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    headerless = is_data_row(header)
    if headerless:  # e.g. the LTSF exchange_rate file: the first row is data, not names
        body = rows
        header = default_names(header)
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise DataError(
                f"{path}, row {i + 2}: {len(r)} fields where the header has {len(header)}. Fix the malformed row."
            )
    # column-major cells
    cells = [list(col) for col in zip(*body, strict=False)] if body else [[] for _ in header]
    return header, cells, headerless


def is_data_row(cells: list[str]) -> bool:
    """True when every cell is a number or an ISO timestamp and at least one is a number (no names)."""
    kinds = [_cell_kind(c) for c in cells]
    return all(k != "text" for k in kinds) and "number" in kinds


def _cell_kind(cell: str) -> str:
    s = cell.strip()
    try:
        float(s)
        return "number"
    except ValueError:
        pass
    try:
        np.datetime64(s.replace(" ", "T", 1), "s")
        return "date"
    except ValueError:
        return "text"


def default_names(first_row: list[str]) -> list[str]:
    """Names for a headerless file: 'date' for a timestamp column, else the column's position 0, 1, ..."""
    return ["date" if _cell_kind(c) == "date" else str(i) for i, c in enumerate(first_row)]


def _read_parquet(path: Path) -> tuple[list[str], list[list]]:
    from distilts.errors import require

    pq = require("pyarrow.parquet", "parquet", "reading Parquet files")
    table = pq.read_table(path)
    header = list(table.column_names)
    cells = []
    for name in header:
        col = table.column(name)
        if str(col.type).startswith("timestamp") or str(col.type).startswith("date"):
            arr = col.to_numpy().astype("datetime64[s]")
            cells.append([str(x) for x in arr])
        else:
            cells.append(col.to_pylist())
    return header, cells


def _parse_float_column(raw: list) -> np.ndarray | None:
    """Floats for a column, NaN for empty cells; None when the column is not numeric."""
    out = np.empty(len(raw), dtype=np.float64)
    bad = 0
    for i, c in enumerate(raw):
        if c is None:
            out[i] = math.nan
            continue
        if isinstance(c, (int, float)):
            out[i] = float(c)
            continue
        s = str(c).strip()
        if s == "" or s.lower() in ("nan", "na", "null", "none"):
            out[i] = math.nan
            continue
        try:
            out[i] = float(s)
        except ValueError:
            bad += 1
            if bad > 0:
                return None
    return out


def _parse_dates(path: Path, name: str, raw: list) -> np.ndarray:
    try:
        return np.array([str(s).strip().replace(" ", "T", 1) for s in raw], dtype="datetime64[s]")
    except ValueError:
        pass
    try:  # other formats, when pandas is around
        import pandas as pd

        return pd.to_datetime(pd.Series(raw)).to_numpy().astype("datetime64[s]")
    except Exception as exc:
        raise DataError(
            f"{path}: cannot parse the date column '{name}' ({exc}). Use ISO timestamps such as "
            "2016-07-01 00:00:00, or name another column with --date-column."
        ) from None


def _table_to_series(path, header, cells, columns, date_column, fill) -> TimeSeries:
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DataError(f"{path}: duplicate column names {dupes}. Rename them so each is unique.")
    if date_column is None:
        date_column = next((h for h in header if h.lower() in DATE_NAMES), None)
    elif date_column not in header:
        raise DataError(f"{path}: no date column '{date_column}'. Columns are: {', '.join(header)}.")
    n_rows = len(cells[0]) if cells else 0
    dates = None
    if date_column is not None:
        dates = _parse_dates(path, date_column, cells[header.index(date_column)])

    numeric: dict[str, np.ndarray] = {}
    non_numeric: list[str] = []
    for name, raw in zip(header, cells, strict=False):
        if name == date_column:
            continue
        parsed = _parse_float_column(raw)
        if parsed is None:
            non_numeric.append(name)
        else:
            numeric[name] = parsed

    if columns:
        columns = list(columns)
        unknown = [c for c in columns if c not in header]
        if unknown:
            raise DataError(
                f"{path}: unknown column(s) {', '.join(unknown)}. Available: "
                f"{', '.join(h for h in header if h != date_column)}."
            )
        bad = [c for c in columns if c in non_numeric or c == date_column]
        if bad:
            raise DataError(
                f"{path}: column(s) {', '.join(bad)} are not numeric. Choose numeric variates "
                f"with --columns (numeric here: {', '.join(numeric) or 'none'})."
            )
    else:
        columns = list(numeric)
    if not columns:
        raise DataError(
            f"{path}: no numeric columns found (columns: {', '.join(header)}). A series needs at "
            "least one numeric variate besides the date."
        )
    if n_rows == 0:
        raise DataError(f"{path} has a header but no data rows.")

    values = np.stack([numeric[c] for c in columns], axis=1)
    notes: list[str] = []
    if dates is not None:
        steps = np.diff(dates).astype(np.int64)
        bad_rows = np.nonzero(steps <= 0)[0]
        if bad_rows.size:
            r = int(bad_rows[0])
            raise DataError(
                f"{path}: dates are not strictly increasing at row {r + 3} "
                f"({dates[r]} then {dates[r + 1]}; {bad_rows.size} such place(s)). "
                "Sort the file by date and remove duplicate timestamps."
            )
        if steps.size:
            step = int(np.median(steps))
            gaps = np.nonzero(steps != step)[0]
            if gaps.size:
                g = int(gaps[0])
                if fill is None:
                    raise DataError(
                        f"{path}: {gaps.size} gap(s) in the date column '{date_column}' (the step is "
                        f"{step}s; first irregular step after row {g + 2}: {dates[g]} -> {dates[g + 1]}). "
                        f"Fill the gaps in the file, or pass --fill with one of {', '.join(FILL_POLICIES)} "
                        "to re-index to the regular step and fill the new rows."
                    )
                dates, values = _reindex(dates, values, step)
                notes.append(f"re-indexed {gaps.size} date gap(s) to a regular {step}s step")

    bad = ~np.isfinite(values)
    if bad.any():
        if fill is None:
            per_col = bad.sum(axis=0)
            worst = [f"{c}: {int(n)}" for c, n in zip(columns, per_col, strict=False) if n]
            r, c = np.argwhere(bad)[0]
            raise DataError(
                f"{path}: {int(bad.sum())} missing or non-finite value(s) ({'; '.join(worst)}); "
                f"first at row {int(r) + 2}, column '{columns[int(c)]}'. Clean the data or pass "
                f"--fill with one of {', '.join(FILL_POLICIES)} (nothing is filled silently)."
            )
        values = fill_missing(values, fill)
        notes.append(f"filled {int(bad.sum())} missing value(s) with '{fill}'")
    return TimeSeries(values.astype(np.float32), columns, dates, str(path), notes)


def _reindex(dates: np.ndarray, values: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Put values on a regular grid from the first to the last date; new rows are NaN."""
    start = dates[0].astype(np.int64)
    offsets = dates.astype(np.int64) - start
    if np.any(offsets % step):
        raise DataError(
            f"timestamps are not on a regular {step}s grid, so gaps cannot be re-indexed. "
            "Resample the data to a regular frequency first."
        )
    idx = offsets // step
    n = int(idx[-1]) + 1
    out = np.full((n, values.shape[1]), np.nan)
    out[idx] = values
    grid = (start + np.arange(n, dtype=np.int64) * step).astype("datetime64[s]")
    return grid, out


def fill_missing(values: np.ndarray, policy: str) -> np.ndarray:
    """Fill NaN/inf in each column with an explicit policy; leading gaps take the next value."""
    if policy not in FILL_POLICIES:
        raise DataError(f"Unknown fill policy '{policy}'. Use one of: {', '.join(FILL_POLICIES)}.")
    out = np.array(values, dtype=np.float64, copy=True)
    out[~np.isfinite(out)] = np.nan
    if policy == "zero":
        return np.nan_to_num(out, nan=0.0)
    n = out.shape[0]
    rows = np.arange(n)
    for j in range(out.shape[1]):
        col = out[:, j]
        ok = ~np.isnan(col)
        if not ok.any():
            raise DataError(f"column {j} has no finite values at all; drop it with --columns.")
        if policy == "interpolate":
            out[:, j] = np.interp(rows, rows[ok], col[ok])
            continue
        if policy == "bfill":
            col = col[::-1]
            ok = ok[::-1]
        last = np.where(ok, rows, 0)
        np.maximum.accumulate(last, out=last)
        filled = col[last]
        first = int(np.argmax(ok))
        filled[:first] = col[first]  # leading gap: take the first known value
        out[:, j] = filled[::-1] if policy == "bfill" else filled
    return out


def read_columns(
    path: str | Path, names: Sequence[str], date_column: str | None = None
) -> tuple[list[str], np.ndarray | None, dict[str, np.ndarray]]:
    """(header, dates or None, {name: float64 values with NaN for empty cells}) of a wide CSV/Parquet file:
    the raw covariate columns, unfilled (the covariate checks name the first NaN by its timestamp)."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        header, cells = _read_parquet(path)
    else:
        header, cells, _ = _read_csv(path, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    if date_column is None:
        date_column = next((h for h in header if h.lower() in DATE_NAMES), None)
    dates = None if date_column not in header else _parse_dates(path, date_column, cells[header.index(date_column)])
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name not in header:
            continue
        parsed = _parse_float_column(cells[header.index(name)])
        if parsed is None:
            raise DataError(f"{path}: covariate '{name}' is not numeric. Covariates are numbers.")
        out[name] = parsed
    return header, dates, out
