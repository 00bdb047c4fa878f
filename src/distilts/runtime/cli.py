"""`distilts forecast` and `distilts profile`. Module level imports click only (lazy CLI)."""

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


@click.command(name="profile")
@click.argument("artifact_dir", type=click.Path(file_okay=False))
@click.option("--data", "data_path", type=click.Path(dir_okay=False), default=None,
              help="CSV the student was trained on (its standard test split is used). Default: synthetic series.")
@click.option("--split", "split_scheme", type=click.Choice(["auto", "ett-hourly", "ett-minute", "ratio"]),
              default="auto", show_default=True, help="auto: ETT files 12/4/4 months, others 70/10/20.")
@click.option("--teacher", default=None, help="Also profile this teacher (timemoe, chronos, ...; needs torch).")
@click.option("--teacher-path", default=None, help="Teacher checkpoint directory or hub id.")
@click.option("--student-dir", type=click.Path(file_okay=False), default=None,
              help="Also profile the PyTorch student (default: the one the manifest points to, if present).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="profile", show_default=True,
              help="Directory for profile.json, profile.md and profile.png.")
@click.option("--windows", "n_windows", type=click.IntRange(min=1), default=200, show_default=True,
              help="Test windows (evenly spaced over the test part) for accuracy and latency.")
@click.option("--iters", type=click.IntRange(min=5), default=200, show_default=True,
              help="Timed batch-1 calls per model (stops early after --budget seconds).")
@click.option("--budget", type=float, default=20.0, show_default=True, help="Seconds of timing per model.")
@_threads
@_date
@_fill
def profile(artifact_dir: str, data_path: str | None, split_scheme: str, teacher: str | None,
            teacher_path: str | None, student_dir: str | None, out_dir: str, n_windows: int, iters: int,
            budget: float, threads: int | None, date_column: str | None, fill: str | None) -> None:
    """Latency (p50/p95/p99), throughput, peak RSS, size and accuracy: artifact vs PyTorch student vs teacher.

    Each model is measured in its own subprocess so its peak RSS is its own. Writes profile.json,
    profile.md and profile.png. The teacher and the PyTorch student import torch; the artifact does not.
    Every model runs with the same thread count (--threads, else the artifact target's, else 1), so the
    speedups compare like with like.
    """
    from distilts.runtime.profile_report import text_table, write_report
    from distilts.runtime.profiler import run_profile

    if teacher_path and not teacher:
        raise click.UsageError("--teacher-path needs --teacher NAME.")
    data_args = {"path": data_path, "split": split_scheme, "fill": fill, "date_column": date_column}
    report = run_profile(artifact_dir, data_args, teacher=teacher, teacher_path=teacher_path,
                         student_dir=student_dir, n_windows=n_windows, threads=threads, iters=iters,
                         budget_s=budget, log=lambda s: click.echo(s, err=True))
    written = write_report(report, out_dir)
    click.echo(text_table(report))
    for note in report["data"].get("notes", []) + report.get("notes", []):
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {', '.join(str(p) for p in written.values())}", err=True)
