"""The long-format branch of `distilts forecast`: every series, in one process or on Ray."""

from __future__ import annotations

import os
from pathlib import Path

import click

from distilts.data.long import LongColumns
from distilts.errors import DataError


def run_batch(
    artifact_dir: str,
    data_path: str | None,
    out_path: str,
    names: LongColumns,
    cutoffs: list[str],
    batch_size: int,
    threads: int | None,
    engine: str,
    address: str | None,
    workers: int | None,
) -> None:
    """Forecast every series of `data_path` into `out_path`, then print the report (skipped series by id)."""
    if data_path is None:
        raise DataError("Batch forecasting needs --data: a long-format CSV/Parquet file or M4 wide rows.")
    if out_path == "-":
        raise DataError("Batch forecasts are written to a file: pass --out forecasts.parquet (or .csv).")
    if engine == "ray":
        from distilts.batch.ray_engine import forecast_ray

        rep = forecast_ray(artifact_dir, data_path, out_path, names, cutoffs, batch_size, address, workers, threads)
    else:
        from distilts.batch.panel import forecast_file
        from distilts.runtime.forecaster import Forecaster

        fc = Forecaster.load(artifact_dir, threads=threads or os.cpu_count() or 1, mode="throughput")
        rep = forecast_file(fc, data_path, out_path, names, cutoffs=cutoffs, batch=batch_size)
    click.echo(f"{rep.summary()}\n-> {Path(out_path)}", err=True)
