"""The Dataset: a validated series with its split, train-fitted scaler and normalized values."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distilts.data.covariates import (
    Covariates,
    CovariateSpec,
    assemble,
    check_not_targets,
    covariate_hash,
    missing_columns,
    read_long_columns,
    read_static_table,
)
from distilts.data.long import LongColumns, column_names, is_long
from distilts.data.panel import PanelDataset, load_panel
from distilts.data.scaler import Scaler
from distilts.data.series import TimeSeries, load_series, read_columns
from distilts.data.split import Split, standard_split
from distilts.data.synthetic import synthetic_series
from distilts.data.windows import Windows, make_windows
from distilts.errors import DataError

COVARIATE_ARGS = ("past_covariates", "future_covariates", "static_covariates", "calendar", "static_table")


@dataclass
class Dataset:
    """A validated series with its split, the train-fitted scaler and the normalized values."""

    series: TimeSeries
    split: Split
    scaler: Scaler
    normalized: np.ndarray  # [N, D] float32
    covariates: Covariates | None = None  # past/future/static inputs, fitted on the train rows

    @property
    def columns(self) -> list[str]:
        return self.series.columns

    @property
    def name(self) -> str:
        return Path(self.series.source).stem if not self.series.source.startswith("synthetic") else "synthetic"

    def windows(self, part: str, lookback: int, horizon: int, stride: int = 1) -> Windows:
        """Normalized windows whose targets lie in `part` (train, val or test)."""
        w = make_windows(
            self.normalized,
            self.split.part(part),
            lookback,
            horizon,
            stride,
            label=f"{self.series.source} ({part} part, {self.split.sizes()[part]} rows)",
        )
        w.covariates = self.covariates
        return w

    @property
    def data_hash(self) -> str:
        """sha256 over the columns and the float32 values (after any fill): keys caches and models."""
        h = hashlib.sha256()
        h.update(",".join(self.columns).encode())
        h.update(np.ascontiguousarray(self.series.values, dtype=np.float32).tobytes())
        h.update(repr(self.split.to_dict()).encode())
        if self.covariates is not None:  # the covariates used key the teacher cache and the student
            covariate_hash(h, self.covariates)
        return h.hexdigest()


def load_dataset(
    path: str | Path | None = None,
    columns: Sequence[str] | None = None,
    split: str = "auto",
    fill: str | None = None,
    date_column: str | None = None,
    seed: int = 0,
    id_column: str | None = None,
    timestamp_column: str | None = None,
    target_column: str | None = None,
    max_windows_per_series: int | None = None,
    past_covariates: Sequence[str] | None = None,
    future_covariates: Sequence[str] | None = None,
    static_covariates: Sequence[str] | None = None,
    calendar: str | None = None,
    static_table: str | None = None,
    calendar_features: Sequence[str] | None = None,
) -> Dataset | PanelDataset:
    """Load `path` (or the built-in synthetic series when None), split and z-score it.

    Long-format data (an id column: item_id / unique_id or `id_column`) and M4 wide rows give a
    PanelDataset instead: many univariate series, split and z-scored per series (data/panel.py).
    Covariates (data/covariates.py): `past_covariates`, `future_covariates`, `static_covariates` (column
    names), `calendar` (None: off, "": hour/weekday/month, a country code: also its holidays) and
    `static_table` (a file of static covariates per series id, long format). The calendar keeps the features
    whose cycle the data covers twice (`calendar.covered_spec`), or exactly `calendar_features` when given.
    """
    names = LongColumns(id_column, timestamp_column, target_column)
    cov = CovariateSpec.from_args(
        {
            "past_covariates": past_covariates,
            "future_covariates": future_covariates,
            "static_covariates": static_covariates,
            "calendar": calendar,
            "static_table": static_table,
            "calendar_features": calendar_features,
        }
    )
    if cov and path is None:
        raise DataError("covariates need a data file: pass --data FILE with the covariate columns.")
    if path is not None and is_long(path, names):
        panel = load_panel(path, names)
        ds = PanelDataset(panel, max_windows_per_series)
        if cov:
            ds.covariates = panel_covariates(path, names, cov, panel)
        print(
            f"note: {Path(path).name}: {len(panel):,} series in long format, split per series (the last H "
            "values test, the H before them val), z-scored per series with train statistics",
            file=sys.stderr,
        )
        return ds
    covs = None
    if cov:
        assert path is not None
        series, covs = series_with_covariates(path, columns, date_column, fill, cov)
    else:
        series = synthetic_series(seed=seed) if path is None else load_series(path, columns, date_column, fill)
    if path is None and columns:
        idx = [series.columns.index(c) for c in columns if c in series.columns]
        missing = [c for c in columns if c not in series.columns]
        if missing:
            raise DataError(f"synthetic data has no column(s) {missing}; it has {series.columns}.")
        series = TimeSeries(series.values[:, idx], list(columns), series.dates, series.source)
    sp = standard_split(len(series), split, series.source)
    if path is not None:
        for note in series.notes:
            print(f"note: {note}", file=sys.stderr)
        if series.dates is None:
            print(
                f"note: {Path(path).name} has no dates; split by rows with the '{sp.scheme}' rule: "
                + ", ".join(
                    f"{p} rows {a}..{b - 1}" for p, (a, b) in (("train", sp.train), ("val", sp.val), ("test", sp.test))
                ),
                file=sys.stderr,
            )
    lo, hi = sp.train
    scaler = Scaler.fit(series.values[lo:hi])
    if covs is not None:
        rows = np.zeros(len(series), bool)
        rows[lo:hi] = True
        covs.fit(rows)
    return Dataset(series, sp, scaler, scaler.transform(series.values), covs)


def series_with_covariates(
    path: str | Path, columns: Sequence[str] | None, date_column: str | None, fill: str | None, cov: CovariateSpec
) -> tuple[TimeSeries, Covariates]:
    """The target series (every numeric column but the covariates by default) and its validated covariates."""
    if cov.static_table:
        raise DataError("--static-table is for long-format data (one row per series id); use a static column here.")
    header, dates, raw = read_columns(path, cov.columns, date_column)
    missing_columns(cov, header, str(path))
    if columns:
        check_not_targets(cov, columns)
    covs = assemble(cov, raw, dates, str(path))
    series = load_series(path, columns, date_column, fill)
    if not columns:
        keep = [i for i, c in enumerate(series.columns) if c not in cov.columns]
        if not keep:
            raise DataError(f"{path}: every numeric column is a covariate; the data needs a target column.")
        series = TimeSeries(
            series.values[:, keep], [series.columns[i] for i in keep], series.dates, series.source, series.notes
        )
    if len(series) != covs.future.shape[0]:
        raise DataError(
            f"{path}: the date gaps were re-indexed by --fill, so the covariates no longer line up with the "
            "targets. Fill the gaps in the file itself when it has covariates."
        )
    return series, covs


def panel_covariates(path: str | Path, names: LongColumns, cov: CovariateSpec, panel) -> Covariates:
    """The covariates of a long-format file, aligned with the panel's values (rows in file order)."""
    header = column_names(path)
    cols = names.resolve(header, str(path))
    missing_columns(cov, header, str(path))
    assert cols.id is not None and cols.target is not None  # resolve() names both or raises
    check_not_targets(cov, [cols.target])
    from_table = set(cov.static) if cov.static_table else set()
    ids, times, raw = read_long_columns(path, cols.id, cols.timestamp, [c for c in cov.columns if c not in from_table])
    static_rows = None
    if cov.static_table:
        static_rows = read_static_table(cov.static_table, cols.id, cov.static, panel.ids)
    series_of_row = np.repeat(np.arange(len(panel), dtype=np.int64), panel.lengths)
    return assemble(cov, raw, times, str(path), ids, series_of_row, static_rows)
