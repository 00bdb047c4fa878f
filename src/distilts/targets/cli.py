"""`distilts targets`: list the named deployment targets, one line each."""

from __future__ import annotations

import click

from distilts.targets.registry import FORMATS, list_targets


@click.command(name="targets")
def targets_cmd() -> None:
    """List named deployment targets (use with `distilts compile --target NAME`)."""
    click.echo(
        f"{'name':<13} {'format':<8} {'prec':<4} {'threads':<10} {'batch':<9} {'mode':<10} {'arch':<10} description"
    )
    for t in list_targets():
        click.echo(t.line())
    click.echo(
        f"\nOr pass a format ({', '.join(FORMATS)}) to --target, with --int8 for int8 (built for this machine's ISA)."
    )
