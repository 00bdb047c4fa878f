"""One data specification, taken by every command and function that reads a series.

`DataSpec` names the data (a CSV/Parquet file, a pandas DataFrame, or None for the built-in synthetic
series) and how to read it (columns, date column, split, fill; the column names of long-format data).
Functions accept a `DataSpec`, or what it is made from (`DataSpec.of`): a path, a DataFrame, a dict of
`load_dataset`'s arguments, or None. The command line builds one from the shared `--data ...` options.

A DataFrame is written once to a Parquet file named by its content's hash under the user cache
(`$DISTILTS_CACHE_DIR/frames`, else ~/.cache/distilts/frames), so a student trained on it records a
source that `eval` and `compile` can read again. Imports nothing heavy (pandas only for a DataFrame).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from distilts.errors import DataError

FIELDS = (
    "path",
    "columns",
    "date_column",
    "split",
    "fill",
    "id_column",
    "timestamp_column",
    "target_column",
    "max_windows_per_series",
    "seed",
    "past_covariates",
    "future_covariates",
    "static_covariates",
    "calendar",
    "static_table",
)
COVARIATE_LISTS = ("past_covariates", "future_covariates", "static_covariates")


@dataclass(frozen=True)
class DataSpec:
    """What to read and how (the arguments of `distilts.load_dataset`)."""

    path: str | None = None  # CSV/Parquet file; None: the built-in synthetic series
    columns: tuple[str, ...] | None = None  # variates to keep (default: every numeric column)
    date_column: str | None = None
    split: str = "auto"
    fill: str | None = None  # policy for NaN/inf and date gaps (default: refuse them)
    id_column: str | None = None  # long format: item_id / unique_id by default
    timestamp_column: str | None = None
    target_column: str | None = None
    max_windows_per_series: int | None = None
    seed: int = 0  # the built-in synthetic series' seed (path None)
    past_covariates: tuple[str, ...] | None = None  # covariates (data/covariates.py): past-only columns
    future_covariates: tuple[str, ...] | None = None  # known-future columns (over lookback + horizon)
    static_covariates: tuple[str, ...] | None = None  # one value per series
    calendar: str | None = None  # None: no calendar features; "": hour/weekday/month; "BE": also holidays
    static_table: str | None = None  # long format: a file of static covariates per series id

    @classmethod
    def of(cls, data: Any = None) -> DataSpec:
        """A DataSpec from a DataSpec, a path, a pandas DataFrame, a dict of load_dataset's arguments, or None."""
        if data is None:
            return cls()
        if isinstance(data, DataSpec):
            return data
        if isinstance(data, (str, os.PathLike)):
            return cls(path=str(data))
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(FIELDS))
            if unknown:
                raise DataError(f"unknown data option(s) {unknown}; a data specification takes {', '.join(FIELDS)}")
            args = {k: v for k, v in data.items() if k in FIELDS and v is not None}
            for key in ("columns", *COVARIATE_LISTS):
                if args.get(key) is not None:
                    args[key] = tuple(args[key])
            if args.get("path") is not None:
                args["path"] = str(args["path"])
            return cls(**args)
        if type(data).__name__ == "DataFrame":
            return cls(path=str(frame_file(data)))
        raise DataError(
            f"cannot read data from a {type(data).__name__}: pass a CSV/Parquet path, a pandas "
            "DataFrame, a distilts.DataSpec or None (the built-in synthetic series)"
        )

    def args(self) -> dict[str, Any]:
        """`load_dataset`'s keyword arguments."""
        out = asdict(self)
        for key in ("columns", *COVARIATE_LISTS):
            out[key] = list(out[key]) if out[key] is not None else None
        return out

    def load(self) -> Any:
        """The Dataset (or PanelDataset for long-format data) this specification names."""
        from distilts.data.dataset import load_dataset

        return load_dataset(**self.args())


def frame_file(frame: Any) -> Path:
    """The Parquet file holding `frame` (written once, atomically; named by the hash of its content)."""
    import pandas as pd

    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).values.tobytes())
    digest.update(",".join(map(str, frame.columns)).encode())
    root = Path(os.environ.get("DISTILTS_CACHE_DIR") or Path.home() / ".cache" / "distilts") / "frames"
    path = root / f"frame-{digest.hexdigest()[:16]}.parquet"
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.partial")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    return path
