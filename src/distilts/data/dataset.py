"""The Dataset: a validated series with its split, train-fitted scaler and normalized values."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distilts.data.long import LongColumns, is_long
from distilts.data.panel import PanelDataset, load_panel
from distilts.data.scaler import Scaler
from distilts.data.series import TimeSeries, load_series
from distilts.data.split import Split, standard_split
from distilts.data.synthetic import synthetic_series
from distilts.data.windows import Windows, make_windows


@dataclass
class Dataset:
    """A validated series with its split, the train-fitted scaler and the normalized values."""

    series: TimeSeries
    split: Split
    scaler: Scaler
    normalized: np.ndarray  # [N, D] float32

    @property
    def columns(self) -> list[str]:
        return self.series.columns

    @property
    def name(self) -> str:
        return Path(self.series.source).stem if not self.series.source.startswith("synthetic") else "synthetic"

    def windows(self, part: str, lookback: int, horizon: int, stride: int = 1) -> Windows:
        """Normalized windows whose targets lie in `part` (train, val or test)."""
        return make_windows(
            self.normalized,
            self.split.part(part),
            lookback,
            horizon,
            stride,
            label=f"{self.series.source} ({part} part, {self.split.sizes()[part]} rows)",
        )

    @property
    def data_hash(self) -> str:
        """sha256 over the columns and the float32 values (after any fill): keys caches and models."""
        h = hashlib.sha256()
        h.update(",".join(self.columns).encode())
        h.update(np.ascontiguousarray(self.series.values, dtype=np.float32).tobytes())
        h.update(repr(self.split.to_dict()).encode())
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
) -> Dataset | PanelDataset:
    """Load `path` (or the built-in synthetic series when None), split and z-score it.

    Long-format data (an id column: item_id / unique_id or `id_column`) and M4 wide rows give a
    PanelDataset instead: many univariate series, split and z-scored per series (data/panel.py).
    """
    names = LongColumns(id_column, timestamp_column, target_column)
    if path is not None and is_long(path, names):
        panel = load_panel(path, names)
        ds = PanelDataset(panel, max_windows_per_series)
        print(
            f"note: {Path(path).name}: {len(panel):,} series in long format, split per series (the last H "
            "values test, the H before them val), z-scored per series with train statistics",
            file=sys.stderr,
        )
        return ds
    series = synthetic_series(seed=seed) if path is None else load_series(path, columns, date_column, fill)
    if path is None and columns:
        idx = [series.columns.index(c) for c in columns if c in series.columns]
        missing = [c for c in columns if c not in series.columns]
        if missing:
            from distilts.errors import DataError

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
    return Dataset(series, sp, scaler, scaler.transform(series.values))
