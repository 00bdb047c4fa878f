"""`distilts forecast`. Module level imports click only (lazy CLI)."""

from __future__ import annotations

from pathlib import Path

import click

from distilts.data.policies import FILL_POLICIES

_threads = click.option("--threads", type=click.IntRange(min=1), default=None,
                        help="Backend threads (default: the artifact target's threads, else 1; docs/runtime.md).")
_fill = click.option("--fill", type=click.Choice(FILL_POLICIES), default=None,
                     help="Fill NaN/inf values and date gaps with this policy (default: refuse such data).")
_date = click.option("--date-column", default=None, help="Timestamp column (default: one named date/timestamp/time).")


@click.command(name="forecast")
@click.argument("artifact_dir", type=click.Path(file_okay=False))
@click.option("--data", "data_path", type=click.Path(dir_okay=False), default=None,
              help="CSV with the artifact's columns (and a date column). Default: built-in synthetic series.")
@click.option("--at-row", type=int, default=None,
              help="Forecast the steps after this data row (0-based, header not counted; default: the last row).")
@click.option("--out", "out_path", default="forecast.csv", show_default=True,
              help="Forecast CSV (date continued at the data's median step, then the columns); '-' for stdout.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help='PNG of the input window, forecast and actuals (needs pip install "distilts[plot]").')
@_threads
@_date
@_fill
def forecast(artifact_dir: str, data_path: str | None, at_row: int | None, out_path: str, plot_path: str | None,
             threads: int | None, date_column: str | None, fill: str | None) -> None:
    """Forecast the next H steps from raw values with a compiled artifact (no torch needed).

    Checks the artifact's checksums and its golden self-test first; refuses to serve on a mismatch.
    """
    from distilts.runtime.forecast_io import forecast_at, forecast_csv, load_for_artifact, plot_forecast
    from distilts.runtime.forecaster import Forecaster
    from distilts.utils import atomic_write_text

    fc = Forecaster.load(artifact_dir, threads=threads)
    series = load_for_artifact(data_path, fc.columns, date_column, fill)
    res = forecast_at(fc, series, at_row)
    text = forecast_csv(res)
    where = f"after row {res.at_row}" + (f" ({str(series.dates[res.at_row]).replace('T', ' ')})" if series.dates is not None else "")
    if out_path == "-":
        click.echo(text, nl=False)
    else:
        atomic_write_text(out_path, text)
        click.echo(f"{fc.horizon}-step forecast {where} with {fc.backend}-{fc.manifest.precision} "
                   f"({', '.join(fc.columns)}) -> {out_path}", err=True)
    if plot_path:
        plot_forecast(res, plot_path, title=f"{Path(artifact_dir).name}: {fc.horizon} steps {where}")
        click.echo(f"plot -> {plot_path}", err=True)
