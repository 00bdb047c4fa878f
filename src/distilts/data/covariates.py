"""Covariates: past-only, known-future and static inputs next to the target columns.

Roles, per column: `past` (values over the lookback only), `future` (known over lookback + horizon: a
weather or load forecast, a schedule; calendar features generated from the timestamps come last) and
`static` (one value per series). `CovariateSpec` is what the user asked for; `Covariates` holds the
validated raw values aligned with the target rows, their train-split statistics and normalized values,
and cuts the blocks of windows (`batch`): past `[B, L, P]`, future `[B, L + H, F]`, static `[B, S]`.

Bad covariates are a DataError naming the column and the first offending timestamp, raised before
anything is written: a covariate missing from the file, NaN in a covariate, a covariate that is also a
target, a static value that varies within a series (and, at forecast time, `check_future_frame`: a
known-future column missing from the future file or not covering the horizon).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from distilts.calendar import calendar_columns, calendar_features, calendar_spec, covered_spec
from distilts.errors import DataError

ROLES = ("past", "future", "static")


@dataclass(frozen=True)
class CovariateSpec:
    """The covariate columns by role, the calendar (None: off; "" on without holidays; a country code)
    and an optional static table file (an id column plus one column per static covariate)."""

    past: tuple[str, ...] = ()
    future: tuple[str, ...] = ()
    static: tuple[str, ...] = ()
    calendar: str | None = None
    static_table: str | None = None
    # the calendar features exactly (a saved student's); None: the default ones the data's span can teach
    calendar_features: tuple[str, ...] | None = None

    @classmethod
    def from_args(cls, args: dict) -> CovariateSpec:
        """From `load_dataset`'s keyword arguments (`past_covariates`, ..., `calendar`, `static_table`)."""
        spec = cls(
            tuple(args.get("past_covariates") or ()),
            tuple(args.get("future_covariates") or ()),
            tuple(args.get("static_covariates") or ()),
            args.get("calendar"),
            args.get("static_table"),
            None if args.get("calendar_features") is None else tuple(args["calendar_features"]),
        )
        spec.check()
        return spec

    def __bool__(self) -> bool:
        return bool(self.past or self.future or self.static or self.calendar is not None)

    @property
    def calendar_spec(self) -> dict | None:
        if self.calendar is None:
            return None
        return calendar_spec(self.calendar or None, self.calendar_features)

    @property
    def columns(self) -> list[str]:
        """Every covariate column read from the data (calendar features excluded)."""
        return [*self.past, *self.future, *self.static]

    def check(self) -> None:
        seen: dict[str, str] = {}
        for role in ROLES:
            for c in getattr(self, role):
                if c in seen:
                    raise DataError(f"covariate '{c}' is given as {seen[c]} and as {role}; give each column one role.")
                seen[c] = role


def check_not_targets(spec: CovariateSpec, targets: Sequence[str]) -> None:
    """A DataError when a covariate is also a target column."""
    both = [c for c in spec.columns if c in targets]
    if both:
        raise DataError(
            f"column '{both[0]}' is both a target and a covariate; drop it from --columns or from the "
            "--past/--future/--static-covariates options."
        )


def missing_columns(spec: CovariateSpec, header: Sequence[str], source: str) -> None:
    """A DataError naming the first covariate the data does not have."""
    absent = [c for c in spec.columns if c not in header and not (spec.static_table and c in spec.static)]
    if absent:
        raise DataError(
            f"{source}: no covariate column '{absent[0]}' (columns are: {', '.join(header)}). "
            "Check the names given to --past/--future/--static-covariates."
        )


def check_finite(name: str, values: np.ndarray, times: np.ndarray | None, source: str, ids=None) -> None:
    """A DataError naming the column, the series and the first timestamp (or row) with NaN or inf."""
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        where = f"row {i + 1}" if times is None else f"{_fmt(times[i])}"
        series = "" if ids is None else f"series '{ids[i]}', "
        raise DataError(
            f"{source}: covariate '{name}' has {int(bad.sum())} missing or non-finite value(s), first at "
            f"{series}{where}. Covariates are never filled: clean the column or drop it."
        )


def _fmt(t) -> str:
    return str(np.datetime64(t, "s")).replace("T", " ") if np.issubdtype(np.asarray(t).dtype, np.datetime64) else str(t)


@dataclass
class Covariates:
    """Covariate values aligned with the target rows (one series, or a panel's rows in file order).

    past `[N, P]`, future `[N, F]` (calendar last), static `[S_series, S]`; `series_of_row` `[N]` maps a row
    to its series (all 0 for one table). `stats` are the train rows' mean/std per column (calendar: 0/1)."""

    spec: CovariateSpec
    past: np.ndarray
    future: np.ndarray
    static: np.ndarray
    past_columns: list[str]
    future_columns: list[str]
    static_columns: list[str]
    stats: dict = field(default_factory=dict)
    normalized: dict = field(default_factory=dict)
    calendar: dict | None = None  # the calendar features used: the spec's, less those the data's span cannot teach
    calendar_dropped: list[str] = field(default_factory=list)

    @property
    def dims(self) -> tuple[int, int, int]:
        return len(self.past_columns), len(self.future_columns), len(self.static_columns)

    def fit(self, train_rows: np.ndarray, train_series: np.ndarray | None = None) -> Covariates:
        """Train-split statistics (boolean row mask; series mask for static) and the normalized values."""
        n_cal = len(calendar_columns(self.calendar))
        series_mask = np.ones(len(self.static), bool) if train_series is None else train_series
        for role, arr, rows in (
            ("past", self.past, train_rows),
            ("future", self.future, train_rows),
            ("static", self.static, series_mask),
        ):
            mean, std = _stats(arr[rows] if arr.shape[0] else arr)
            if role == "future" and n_cal:
                mean[-n_cal:], std[-n_cal:] = 0.0, 1.0
            self.stats[role] = {"mean": mean.tolist(), "std": std.tolist()}
            self.normalized[role] = ((arr - mean) / std).astype(np.float32)
        return self

    def apply_stats(self, stats: dict) -> Covariates:
        """Normalize with given statistics (a saved student's `covariates.stats`) instead of fitted ones."""
        for role in ROLES:
            arr = getattr(self, role)
            mean = np.asarray(stats[role]["mean"], np.float64)
            std = np.asarray(stats[role]["std"], np.float64)
            self.stats[role] = {"mean": mean.tolist(), "std": std.tolist()}
            self.normalized[role] = ((arr - mean) / std).astype(np.float32)
        return self

    def batch(self, starts: np.ndarray, series: np.ndarray, lookback: int, horizon: int) -> dict[str, np.ndarray]:
        """The covariate blocks of windows whose targets start at rows `starts` (of series `series`)."""
        out: dict[str, np.ndarray] = {}
        P, F, S = self.dims
        if P:
            out["past"] = self.normalized["past"][starts[:, None] + np.arange(-lookback, 0)]
        if F:
            out["future"] = self.normalized["future"][starts[:, None] + np.arange(-lookback, horizon)]
        if S:
            out["static"] = self.normalized["static"][series]
        return out

    def config(self) -> dict:
        """The `covariates` block of a student's config.json."""
        return {
            "past": list(self.past_columns),
            "future": list(self.future_columns),
            "static": list(self.static_columns),
            "calendar": self.calendar,
            **({"calendar_dropped": self.calendar_dropped} if self.calendar_dropped else {}),
            "stats": self.stats,
        }


def covariate_hash(h, cov: Covariates) -> None:
    """Add the covariate columns, calendar spec and raw values to the hash `h` (keys caches and students)."""
    h.update(repr({k: v for k, v in cov.config().items() if k != "stats"}).encode())
    for arr in (cov.past, cov.future, cov.static):
        h.update(np.ascontiguousarray(arr, dtype=np.float32).tobytes())


def _stats(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if arr.ndim != 2 or arr.shape[1] == 0:
        return np.zeros(arr.shape[-1] if arr.ndim == 2 else 0), np.ones(arr.shape[-1] if arr.ndim == 2 else 0)
    if arr.shape[0] == 0:
        return np.zeros(arr.shape[1]), np.ones(arr.shape[1])
    mean = arr.astype(np.float64).mean(axis=0)
    std = arr.astype(np.float64).std(axis=0)
    return mean, np.where(std > 1e-12, std, 1.0)


def assemble(
    spec: CovariateSpec,
    columns: dict[str, np.ndarray],
    times: np.ndarray | None,
    source: str,
    ids: np.ndarray | None = None,
    series_of_row: np.ndarray | None = None,
    static_rows: dict[str, np.ndarray] | None = None,
) -> Covariates:
    """Validated Covariates from raw float columns (by name, aligned with the target rows) and timestamps.

    `ids`/`series_of_row`: a panel's id per row and series index per row (None: one series).
    `static_rows`: static values per series from a static table (instead of constant columns)."""
    n = len(times) if times is not None else len(next(iter(columns.values()))) if columns else 0
    for name in spec.columns:
        if name in columns:
            check_finite(name, columns[name], times, source, ids)
    past = _stack([columns[c] for c in spec.past], n)
    cal = spec.calendar_spec
    if calendar_columns(cal) and (times is None or not np.issubdtype(times.dtype, np.datetime64)):
        raise DataError(
            f"{source}: --calendar needs timestamps; the data has no date column (name it with --date-column)."
        )
    dropped: list[str] = []
    if times is not None and spec.calendar_features is None:
        cal, dropped = covered_spec(cal, times)
    cal_cols = calendar_columns(cal)
    future = _stack([columns[c] for c in spec.future], n)
    if cal_cols:
        assert times is not None  # checked above
        future = np.concatenate([future, calendar_features(times, cal).astype(np.float64)], axis=1)
    if series_of_row is None:
        series_of_row = np.zeros(n, np.int64)
    n_series = int(series_of_row.max()) + 1 if n else 0
    static = np.zeros((n_series, len(spec.static)))
    for j, name in enumerate(spec.static):
        if static_rows is not None and name in static_rows:
            static[:, j] = static_rows[name]
            continue
        col = columns[name]
        first = np.zeros(n_series, np.int64)
        first[series_of_row[::-1]] = np.arange(n - 1, -1, -1)  # first row of each series
        varies = col != col[first[series_of_row]]
        if varies.any():
            i = int(np.argmax(varies))
            who = "" if ids is None else f" in series '{ids[i]}'"
            when = f"row {i + 1}" if times is None else _fmt(times[i])
            raise DataError(
                f"{source}: static covariate '{name}' varies within a series{who} (first change at {when}: "
                f"{col[first[series_of_row[i]]]:g} then {col[i]:g}). A static covariate has one value per series: "
                "give it as --past-covariates or --future-covariates instead."
            )
        static[:, j] = col[first]
    return Covariates(
        spec,
        past,
        future,
        static,
        list(spec.past),
        [*spec.future, *cal_cols],
        list(spec.static),
        calendar=cal,
        calendar_dropped=dropped,
    )


def _stack(cols: list[np.ndarray], n: int) -> np.ndarray:
    return np.stack([np.asarray(c, np.float64) for c in cols], axis=1) if cols else np.zeros((n, 0))


def read_static_table(path: str, id_column: str, names: Sequence[str], ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Static covariates from a table file: one row per series (`id_column` plus the static columns)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"static table not found: {p}. Check the path given to --static-table.")
    with open(p, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0]) if rows else []
    for name in (id_column, *names):
        if name not in header:
            raise DataError(f"{p}: no column '{name}' (columns are: {', '.join(header)}).")
    by_id = {r[id_column]: r for r in rows}
    out = {n: np.zeros(len(ids)) for n in names}
    for i, sid in enumerate(ids):
        if sid not in by_id:
            raise DataError(f"{p}: no row for series '{sid}'. The static table needs one row per series.")
        for name in names:
            try:
                out[name][i] = float(by_id[sid][name])
            except ValueError:
                raise DataError(f"{p}: static covariate '{name}' of series '{sid}' is not a number.") from None
            check_finite(name, out[name][i : i + 1], None, str(p), [sid])
    return out


def check_future_frame(
    columns: dict[str, np.ndarray], times: np.ndarray, needed: Sequence[str], horizon_times: np.ndarray, source: str
) -> None:
    """Forecast-time check of a future file: every known-future column present, finite, and covering
    each timestamp of `horizon_times`; a DataError names the column and the first missing timestamp."""
    for name in needed:
        if name not in columns:
            raise DataError(
                f"{source}: no known-future column '{name}' (first needed at {_fmt(horizon_times[0])}). "
                f"The future file needs {', '.join(needed)} over the horizon."
            )
    have = np.asarray(times).astype("datetime64[s]")
    want = np.asarray(horizon_times).astype("datetime64[s]")
    absent = ~np.isin(want, have)
    if absent.any():
        raise DataError(
            f"{source}: the future file does not cover the horizon: '{needed[0] if needed else 'ds'}' has no value "
            f"at {_fmt(want[int(np.argmax(absent))])} ({int(absent.sum())} of {len(want)} timestamps missing)."
        )
    for name in needed:
        vals = np.asarray(columns[name], np.float64)[np.isin(have, want)]
        check_finite(name, vals, have[np.isin(have, want)], source)


def read_long_columns(path: str | Path, id_column: str, timestamp_column: str | None, names: Sequence[str]):
    """(ids [N] str, timestamps [N] datetime64[s] | None, {name: float64 [N]}) of a long-format file, in file
    order (the order of the panel's values). Read in memory with pyarrow (covariate panels are small)."""
    from distilts.errors import require

    pa = require("pyarrow", "parquet", "reading long-format covariates")
    import pyarrow.compute as pc

    path = Path(path)
    cols = [id_column, *([timestamp_column] if timestamp_column else []), *names]
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=cols)
    else:
        import pyarrow.csv as pcsv

        table = pcsv.read_csv(
            path,
            parse_options=pcsv.ParseOptions(delimiter="\t" if path.suffix.lower() == ".tsv" else ","),
            convert_options=pcsv.ConvertOptions(
                include_columns=cols, column_types={id_column: pa.string()}, strings_can_be_null=True
            ),
        )
    ids = np.asarray(table.column(id_column).to_pylist(), dtype=object)
    times = None
    if timestamp_column:
        t = table.column(timestamp_column)
        if pa.types.is_integer(t.type):
            times = np.asarray(t.to_pylist(), dtype=np.int64)
        else:
            times = np.asarray(pc.cast(t, pa.timestamp("s")).cast(pa.int64()).to_pylist(), np.int64).astype(
                "datetime64[s]"
            )
    out = {}
    for name in names:
        col = table.column(name)
        try:
            col = pc.cast(col, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise DataError(f"{path}: covariate '{name}' is not numeric. Covariates are numbers.") from None
        out[name] = np.asarray(col.to_pylist(), dtype=object)
        out[name] = np.where(out[name] == None, np.nan, out[name]).astype(np.float64)  # noqa: E711
    return ids, times, out
