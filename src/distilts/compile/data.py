"""Raw windows for calibration (train part) and verification (val/test) from the student's data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distilts.data import Split, make_windows
from distilts.data.panel import Panel, PanelDataset, PanelSplit, panel_windows
from distilts.errors import DataError
from distilts.runtime.inputs import Inputs
from distilts.students.data import dataset_for_student


@dataclass
class RawCovariates:
    """Raw covariate values aligned with the target rows (one series, or a panel's rows in its order): past
    `[N, P]`, future `[N, F]` (calendar features last, generated from the timestamps), static `[n_series, S]`."""

    past: np.ndarray
    future: np.ndarray
    static: np.ndarray

    def blocks(self, starts: np.ndarray, series: np.ndarray, lookback: int, horizon: int) -> dict[str, np.ndarray]:
        """The raw covariate inputs of windows whose targets start at rows `starts` of series `series` (only
        the roles with columns)."""
        out = {}
        if self.past.shape[1]:
            out["past"] = self.past[starts[:, None] + np.arange(-lookback, 0)]
        if self.future.shape[1]:
            out["future"] = self.future[starts[:, None] + np.arange(-lookback, horizon)]
        if self.static.shape[1]:
            out["static"] = self.static[series]
        return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}


@dataclass
class CompileData:
    """The student's series (raw values) and its split; windows come out raw (not normalized)."""

    values: np.ndarray  # [N, D] float32 raw
    split: Split
    source: str
    data_hash: str
    lookback: int
    horizon: int
    covariates: RawCovariates | None = None  # a student with covariates: windows are named inputs

    def windows(self, part: str, n: int) -> Inputs:
        """Up to `n` raw input windows `[n, L, D]`, evenly spaced over `part` (empty if none); with covariates,
        {"x": ..., "past"/"future"/"static": ...} (distilts.runtime.inputs)."""
        try:
            if n <= 0:
                raise DataError("no windows asked for")
            w = make_windows(self.values, self.split.part(part), self.lookback, self.horizon)
        except DataError:
            idx = np.zeros(0, np.int64)
            w = None
        else:
            idx = np.unique(np.linspace(0, len(w) - 1, num=min(n, len(w))).round().astype(np.int64))
        x = w.inputs(idx) if w is not None else np.zeros((0, self.lookback, self.values.shape[1]), np.float32)
        if self.covariates is None:
            return x
        starts = w.starts[idx] if w is not None else np.zeros(0, np.int64)
        return {"x": x, **self.covariates.blocks(starts, np.zeros_like(starts), self.lookback, self.horizon)}


def load_compile_data(config: dict, data_path: str | None) -> AnyCompileData:
    """The series the student was trained on (or `data_path`), with the student's columns and split."""
    source = str((config.get("data") or {}).get("source") or "")
    args: dict = {"path": data_path, "columns": None, "split": None, "fill": None, "date_column": None}
    if data_path is None:
        m = re.fullmatch(r"synthetic(?:\(seed=(\d+)\))?", source)
        if m:
            args["seed"] = int(m.group(1) or 0)
        elif source and Path(source).is_file():
            args["path"] = source
        else:
            raise DataError(
                f"The student was trained on '{source or 'unknown data'}', which is not found here. Pass the "
                "CSV with --data (needed for int8 calibration and for verifying the artifact)."
            )
    if args["split"] is None:
        args["split"] = "auto"
    ds = dataset_for_student(config, args)
    if isinstance(ds, PanelDataset):
        return PanelCompileData(
            ds.panel,
            ds.split,
            ds.series.source,
            ds.data_hash,
            int(config["lookback"]),
            int(config["horizon"]),
            raw_covariates(config, ds),
        )
    return CompileData(
        np.ascontiguousarray(ds.series.values, dtype=np.float32),
        ds.split,
        ds.series.source,
        ds.data_hash,
        int(config["lookback"]),
        int(config["horizon"]),
        raw_covariates(config, ds),
    )


def raw_covariates(config: dict, ds) -> RawCovariates | None:
    """The raw covariates the data stage read with the student's covariate options (None without covariates)."""
    if not config.get("covariates"):
        return None
    cov = getattr(ds, "covariates", None)
    if cov is None:
        raise DataError(
            f"The student takes covariates, but {ds.series.source if hasattr(ds, 'series') else 'the data'} was read "
            "without them: pass the file it was trained on (with its covariate columns) with --data."
        )
    return RawCovariates(
        np.asarray(cov.past, np.float32), np.asarray(cov.future, np.float32), np.asarray(cov.static, np.float32)
    )


@dataclass
class PanelCompileData:
    """A panel's raw series (global students, D=1): windows pooled over series, evenly spaced."""

    panel: Panel
    split: PanelSplit  # per series
    source: str
    data_hash: str
    lookback: int
    horizon: int
    covariates: RawCovariates | None = None  # a student with covariates: windows are named inputs

    def windows(self, part: str, n: int) -> Inputs:
        """Up to `n` raw input windows `[n, L, 1]`, evenly spaced over the windows of `part` of all series (with
        covariates: named inputs, as CompileData.windows)."""
        w = panel_windows(self.panel, self.split, part, self.lookback, self.horizon)
        if n <= 0 or len(w) == 0:
            idx = np.zeros(0, np.int64)
            x = np.zeros((0, self.lookback, 1), np.float32)
        else:
            idx = np.unique(np.linspace(0, len(w) - 1, num=min(n, len(w))).round().astype(np.int64))
            x = w.inputs(idx)
        if self.covariates is None:
            return x
        starts = w.starts[idx] if len(idx) else np.zeros(0, np.int64)
        series = w.series_index[idx] if len(idx) else np.zeros(0, np.int64)
        return {"x": x, **self.covariates.blocks(starts, series, self.lookback, self.horizon)}


AnyCompileData = CompileData | PanelCompileData  # what compile verifies and calibrates on
