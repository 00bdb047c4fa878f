"""`distilts forecast`. Module level imports click only (lazy CLI)."""

from __future__ import annotations

from pathlib import Path

import click

from distilts.data.policies import FILL_POLICIES

_threads = click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Backend threads (default: the artifact target's threads, else 1; docs/runtime.md).",
)
_fill = click.option(
    "--fill",
    type=click.Choice(FILL_POLICIES),
    default=None,
    help="Fill NaN/inf values and date gaps with this policy (default: refuse such data).",
)
_date = click.option("--date-column", default=None, help="Timestamp column (default: one named date/timestamp/time).")


@click.command(name="forecast")
@click.argument("artifact_dir", type=click.Path(file_okay=False))
@click.option(
    "--data",
    "data_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="CSV with the artifact's columns (and a date column). Default: built-in synthetic series.",
)
@click.option(
    "--at-row",
    type=int,
    default=None,
    help="Forecast the steps after this data row (0-based, header not counted; default: the last row).",
)
@click.option(
    "--out",
    "out_path",
    default="forecast.csv",
    show_default=True,
    help="Forecast CSV (date continued at the data's median step, then the columns); '-' for stdout.",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    default=None,
    help='PNG of the input window, forecast and actuals (needs pip install "distilts[plot]").',
)
@_threads
@_date
@_fill
@click.option(
    "--id-column",
    default=None,
    help="Long-format data: the series id column (default: item_id or unique_id). Forecasts every series.",
)
@click.option(
    "--timestamp-column", default=None, help="Long-format data: the timestamp column (default: timestamp or ds)."
)
@click.option("--target-column", default=None, help="Long-format data: the value column (default: target or y).")
@click.option(
    "--cutoff",
    "cutoffs",
    multiple=True,
    help="Long-format data: forecast from the window ending at this timestamp (repeatable, for backtests); "
    "-k = k values before each series' end. Default: each series' last window.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Long-format data: windows per backend call.",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help='Long-format Parquet: local (one process, all cores) or ray (Ray Data; pip install "distilts[ray]").',
)
@click.option(
    "--future",
    "future_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="An artifact with known-future covariates: their values over the horizon after each series' end "
    "(unique_id, ds, columns...; CSV or Parquet). Calendar features are generated from the timestamps.",
)
@click.option("--address", default=None, help="--engine ray: the cluster address (default: start a local Ray).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="--engine ray: actors, one Forecaster each (default: the cluster's CPUs).",
)
def forecast(
    artifact_dir: str,
    data_path: str | None,
    at_row: int | None,
    out_path: str,
    plot_path: str | None,
    threads: int | None,
    date_column: str | None,
    fill: str | None,
    id_column: str | None,
    timestamp_column: str | None,
    target_column: str | None,
    cutoffs: tuple[str, ...],
    batch_size: int,
    engine: str,
    future_path: str | None,
    address: str | None,
    workers: int | None,
) -> None:
    """Forecast the next H steps from raw values with a compiled artifact (no torch needed).

    \b
    A wide table (a date column plus the artifact's columns): the H steps after its last row (or --at-row).
    Long-format data (item_id,timestamp,target or unique_id,ds,y, or named by --id-column ...; CSV or
    Parquet) or M4 wide rows: every series, with a univariate (global) artifact, to --out .parquet/.csv.

    Checks the artifact's checksums and its golden self-test first; refuses to serve on a mismatch.
    """
    from distilts.data.long import LongColumns, is_long
    from distilts.runtime.manifest import read_manifest

    if future_path is not None or read_manifest(artifact_dir, verify_checksums=False).covariates:
        from distilts.errors import DataError

        unused = [o for o, v in (("--cutoff", cutoffs), ("--at-row", at_row), ("--plot", plot_path)) if v]
        if unused:
            raise DataError(
                f"{unused[0]} is not available with covariates yet: the forecast starts after each series' last "
                "row, its known-future values from --future. Drop it, or cut the history file where it should start."
            )
        _forecast_covariates(
            artifact_dir,
            data_path,
            future_path,
            out_path,
            threads,
            engine,
            id_column,
            timestamp_column,
            target_column,
            batch_size,
            address,
            workers,
        )
        return
    names = LongColumns(id_column, timestamp_column, target_column)
    if is_long(data_path, names) or engine == "ray":
        from distilts.batch.run import run_batch

        run_batch(
            artifact_dir, data_path, out_path, names, list(cutoffs), batch_size, threads, engine, address, workers
        )
        return
    from distilts.batch.series import forecast_at, forecast_csv, load_for_artifact, plot_forecast
    from distilts.runtime.forecaster import Forecaster
    from distilts.utils import atomic_write_text

    fc = Forecaster.load(artifact_dir, threads=threads)
    series = load_for_artifact(data_path, fc.columns, date_column, fill)
    res = forecast_at(fc, series, at_row)
    text = forecast_csv(res)
    where = f"after row {res.at_row}" + (
        f" ({str(series.dates[res.at_row]).replace('T', ' ')})" if series.dates is not None else ""
    )
    if out_path == "-":
        click.echo(text, nl=False)
    else:
        atomic_write_text(out_path, text)
        click.echo(
            f"{fc.horizon}-step forecast {where} with {fc.backend}-{fc.manifest.precision} "
            f"({', '.join(fc.columns)}) -> {out_path}",
            err=True,
        )
    if plot_path:
        plot_forecast(res, plot_path, title=f"{Path(artifact_dir).name}: {fc.horizon} steps {where}")
        click.echo(f"plot -> {plot_path}", err=True)


def _forecast_covariates(
    artifact_dir: str,
    data_path: str | None,
    future_path: str | None,
    out_path: str,
    threads: int | None,
    engine: str,
    id_column: str | None,
    timestamp_column: str | None,
    target_column: str | None,
    batch_size: int = 256,
    address: str | None = None,
    workers: int | None = None,
) -> None:
    """`distilts forecast` of an artifact with covariate inputs (distilts.batch.covariates)."""
    from distilts.batch.covariates import forecast_with_future
    from distilts.errors import DataError
    from distilts.runtime.forecaster import Forecaster

    if data_path is None:
        raise DataError("An artifact with covariates forecasts from --data HISTORY (with its covariate columns).")
    if out_path == "-":
        raise DataError("Forecasts with covariates are written to a file: pass --out forecasts.csv (or .parquet).")
    fc = Forecaster.load(artifact_dir, threads=threads)
    if fc.covariates is None:
        raise DataError(
            f"{artifact_dir} takes no covariates (distilled without them): drop --future, or compile a student "
            "distilled with --future-covariates."
        )
    predict = None
    if engine == "ray":  # the driver lines the inputs up; Ray actors forecast them, `batch_size` windows a task
        from distilts.batch.ray_engine import predict_ray

        def predict(values, **inputs):
            return predict_ray(artifact_dir, values, inputs, batch_size, address, workers, threads)

    rep = forecast_with_future(
        fc, data_path, future_path, out_path, id_column, timestamp_column, target_column, predict=predict
    )
    click.echo(f"{rep.summary()}\n-> {Path(out_path)}", err=True)
