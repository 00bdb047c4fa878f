"""Raw windows for calibration (train part) and verification (val/test) from the student's data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distilts.calendar import calendar_columns, calendar_features
from distilts.data import Split, load_series, make_windows
from distilts.data.panel import Panel, PanelDataset, PanelSplit, panel_windows
from distilts.errors import DataError
from distilts.runtime.inputs import Inputs
from distilts.students.data import dataset_for_student


@dataclass
class RawCovariates:
    """Raw covariate values aligned with the target rows of one series: past `[N, P]`, future `[N, F]`
    (calendar features last, already generated from the timestamps), static `[S]`."""

    past: np.ndarray
    future: np.ndarray
    static: np.ndarray

    def blocks(self, starts: np.ndarray, lookback: int, horizon: int) -> dict[str, np.ndarray]:
        """The covariate inputs of windows whose targets start at rows `starts` (only roles with columns)."""
        out = {}
        if self.past.shape[1]:
            out["past"] = self.past[starts[:, None] + np.arange(-lookback, 0)]
        if self.future.shape[1]:
            out["future"] = self.future[starts[:, None] + np.arange(-lookback, horizon)]
        if self.static.shape[0]:
            out["static"] = np.repeat(self.static[None], len(starts), axis=0)
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
        return {"x": x, **self.covariates.blocks(starts, self.lookback, self.horizon)}


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
        if config.get("covariates"):
            raise DataError(
                f"{ds.series.source}: compiling a global (long-format) student with covariates is not supported yet; "
                "distil it on one series (a wide CSV) to compile it, or use it from PyTorch."
            )
        return PanelCompileData(
            ds.panel, ds.split, ds.series.source, ds.data_hash, int(config["lookback"]), int(config["horizon"])
        )
    return CompileData(
        np.ascontiguousarray(ds.series.values, dtype=np.float32),
        ds.split,
        ds.series.source,
        ds.data_hash,
        int(config["lookback"]),
        int(config["horizon"]),
        raw_covariates(config, ds, args),
    )


def raw_covariates(config: dict, ds, args: dict) -> RawCovariates | None:
    """The raw covariates of a student with covariates (None without): the data stage's own (a dataset with
    `covariates`), else read from the same file with the data stage's reader (aligned with the target rows)."""
    cov = config.get("covariates")
    if not cov:
        return None
    cal_spec = cov.get("calendar")
    n_cal = len(calendar_columns(cal_spec))
    future_cols = list(cov.get("future") or [])
    user_future = future_cols[: len(future_cols) - n_cal]
    past, static = list(cov.get("past") or []), list(cov.get("static") or [])
    have = getattr(ds, "covariates", None)
    if have is not None:
        s = np.asarray(have.static, np.float32)
        return RawCovariates(
            np.asarray(have.past, np.float32), np.asarray(have.future, np.float32), s[0] if s.ndim == 2 else s
        )
    path = args.get("path")
    if path is None:
        raise DataError(
            "The student takes covariates, which the built-in synthetic series does not have: pass the CSV it "
            "was trained on (with its covariate columns) with --data."
        )
    wanted = past + user_future + static
    series = load_series(path, wanted, args.get("date_column"), args.get("fill")) if wanted else None
    n = len(ds.series)
    if series is not None and len(series) != n:
        raise DataError(f"{path}: the covariate columns have {len(series)} rows, the targets {n}.")
    vals = series.values if series is not None else np.zeros((n, 0), np.float32)
    P, F = len(past), len(user_future)
    future = vals[:, P : P + F]
    if n_cal:
        if ds.series.dates is None:
            raise DataError(f"{path}: the student uses calendar features, but the file has no timestamp column.")
        future = np.concatenate([future, calendar_features(ds.series.dates, cal_spec)], axis=1)
    return RawCovariates(vals[:, :P], future, vals[0, P + F :] if static else np.zeros(0, np.float32))


@dataclass
class PanelCompileData:
    """A panel's raw series (global students, D=1): windows pooled over series, evenly spaced."""

    panel: Panel
    split: PanelSplit  # per series
    source: str
    data_hash: str
    lookback: int
    horizon: int

    def windows(self, part: str, n: int) -> np.ndarray:
        """Up to `n` raw input windows `[n, L, 1]`, evenly spaced over the windows of `part` of all series."""
        w = panel_windows(self.panel, self.split, part, self.lookback, self.horizon)
        if n <= 0 or len(w) == 0:
            return np.zeros((0, self.lookback, 1), np.float32)
        idx = np.unique(np.linspace(0, len(w) - 1, num=min(n, len(w))).round().astype(np.int64))
        return w.inputs(idx)


AnyCompileData = CompileData | PanelCompileData  # what compile verifies and calibrates on
