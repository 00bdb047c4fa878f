"""`distilts profile`. Module level imports click only (lazy CLI)."""

from __future__ import annotations

import click

from distilts.batch.cli import _date, _fill, _threads


@click.command(name="profile")
@click.argument("artifact_dir", type=click.Path(file_okay=False))
@click.option(
    "--data",
    "data_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="CSV the student was trained on (its standard test split is used). Default: synthetic series.",
)
@click.option(
    "--split",
    "split_scheme",
    type=click.Choice(["auto", "ett-hourly", "ett-minute", "ratio"]),
    default="auto",
    show_default=True,
    help="auto: ETT files 12/4/4 months, others 70/10/20.",
)
@click.option("--teacher", default=None, help="Also profile this teacher (timemoe, chronos, ...; needs torch).")
@click.option("--teacher-path", default=None, help="Teacher checkpoint directory or hub id.")
@click.option(
    "--student-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Also profile the PyTorch student (default: the one the manifest points to, if present).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="profile",
    show_default=True,
    help="Directory for profile.json, profile.md and profile.png.",
)
@click.option(
    "--windows",
    "n_windows",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Test windows (evenly spaced over the test part) for accuracy and latency.",
)
@click.option(
    "--iters",
    type=click.IntRange(min=5),
    default=200,
    show_default=True,
    help="Timed batch-1 calls per model (stops early after --budget seconds).",
)
@click.option("--budget", type=float, default=20.0, show_default=True, help="Seconds of timing per model.")
@_threads
@_date
@_fill
def profile(
    artifact_dir: str,
    data_path: str | None,
    split_scheme: str,
    teacher: str | None,
    teacher_path: str | None,
    student_dir: str | None,
    out_dir: str,
    n_windows: int,
    iters: int,
    budget: float,
    threads: int | None,
    date_column: str | None,
    fill: str | None,
) -> None:
    """Latency (p50/p95/p99), throughput, peak RSS, size and accuracy: artifact vs PyTorch student vs teacher.

    Each model is measured in its own subprocess so its peak RSS is its own. Writes profile.json,
    profile.md and profile.png. The teacher and the PyTorch student import torch; the artifact does not.
    Every model runs with the same thread count (--threads, else the artifact target's, else 1), so the
    speedups compare like with like.
    """
    from distilts.profile.profiler import profile_artifact
    from distilts.profile.report import text_table, write_report

    if teacher_path and not teacher:
        raise click.UsageError("--teacher-path needs --teacher NAME.")
    data_args = {"path": data_path, "split": split_scheme, "fill": fill, "date_column": date_column}
    report = profile_artifact(
        artifact_dir,
        data_args,
        teacher=teacher,
        teacher_path=teacher_path,
        student_dir=student_dir,
        n_windows=n_windows,
        threads=threads,
        iters=iters,
        budget_s=budget,
        log=lambda s: click.echo(s, err=True),
    )
    written = write_report(report, out_dir)
    click.echo(text_table(report))
    for note in report["data"].get("notes", []) + report.get("notes", []):
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {', '.join(str(p) for p in written.values())}", err=True)
