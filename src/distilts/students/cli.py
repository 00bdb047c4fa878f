"""`distilts students`: the registered students, their options and defaults, and their size."""

from __future__ import annotations

import click

from distilts.students import STUDENTS


@click.command(name="students")
@click.option("--lookback", type=click.IntRange(min=1), default=512, show_default=True, help="For the sizes shown.")
@click.option("--horizon", type=click.IntRange(min=1), default=96, show_default=True, help="For the sizes shown.")
@click.option("--variates", type=click.IntRange(min=1), default=7, show_default=True, help="For the sizes shown.")
def students_cmd(lookback: int, horizon: int, variates: int) -> None:
    """List the students (`distilts distill --student NAME`), each option with its default (`-O KEY=VALUE`)
    and the parameter count at its defaults."""
    from distilts.errors import DistiltsError
    from distilts.students.registry import build_student, param_count, student_class, student_options

    for name in STUDENTS:
        doc = (student_class(name).__doc__ or "").strip().splitlines()
        try:
            size = f"{param_count(build_student(name, lookback, horizon, variates)):,} parameters"
        except DistiltsError as exc:
            size = f"not buildable at these sizes: {exc}"
        click.echo(f"{name}  ({size} at L={lookback}, H={horizon}, D={variates})")
        if doc:
            click.echo(f"  {doc[0]}")
        opts = ", ".join(f"{k}={v!r}" for k, v in student_options(name).items())
        click.echo(f"  -O {opts}\n")
