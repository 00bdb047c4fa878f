"""Raw windows for calibration (train part) and verification (val/test) from the student's data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distilts.data import Split, make_windows
from distilts.data.panel import Panel, PanelDataset, PanelSplit, panel_windows
from distilts.errors import DataError
from distilts.students.data import dataset_for_student


@dataclass
class CompileData:
    """The student's series (raw values) and its split; windows come out raw (not normalized)."""

    values: np.ndarray  # [N, D] float32 raw
    split: Split
    source: str
    data_hash: str
    lookback: int
    horizon: int

    def windows(self, part: str, n: int) -> np.ndarray:
        """Up to `n` raw input windows `[n, L, D]`, evenly spaced over `part` (empty if none)."""
        if n <= 0:
            return np.zeros((0, self.lookback, self.values.shape[1]), np.float32)
        try:
            w = make_windows(self.values, self.split.part(part), self.lookback, self.horizon)
        except DataError:
            return np.zeros((0, self.lookback, self.values.shape[1]), np.float32)
        idx = np.unique(np.linspace(0, len(w) - 1, num=min(n, len(w))).round().astype(np.int64))
        return w.inputs(idx)


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
            ds.panel, ds.split, ds.series.source, ds.data_hash, int(config["lookback"]), int(config["horizon"])
        )
    return CompileData(
        np.ascontiguousarray(ds.series.values, dtype=np.float32),
        ds.split,
        ds.series.source,
        ds.data_hash,
        int(config["lookback"]),
        int(config["horizon"]),
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

    def windows(self, part: str, n: int) -> np.ndarray:
        """Up to `n` raw input windows `[n, L, 1]`, evenly spaced over the windows of `part` of all series."""
        w = panel_windows(self.panel, self.split, part, self.lookback, self.horizon)
        if n <= 0 or len(w) == 0:
            return np.zeros((0, self.lookback, 1), np.float32)
        idx = np.unique(np.linspace(0, len(w) - 1, num=min(n, len(w))).round().astype(np.int64))
        return w.inputs(idx)


AnyCompileData = CompileData | PanelCompileData  # what compile verifies and calibrates on
