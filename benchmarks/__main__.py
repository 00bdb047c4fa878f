"""`python -m benchmarks`: list the benchmarks, run one at a preset, render RESULTS.md from the records."""

from __future__ import annotations

import json
import sys
import time

import click

from benchmarks import harness, report
from benchmarks.fixtures import FixtureError


def _parse_sets(values: tuple[str, ...]) -> dict:
    out = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: use --set NAME=VALUE (VALUE as JSON, or a plain string)")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
def main() -> None:
    """The distilts benchmarks: records in benchmarks/results/*.json, RESULTS.md generated from them."""


@main.command(name="list")
def list_cmd() -> None:
    """Name every benchmark, its title and whether each preset has records."""
    for name in harness.names():
        module = harness.load(name)
        ran = [p for p in harness.PRESETS if harness.results_path(name, p).exists()]
        click.echo(f"{name:<22} {harness.title(module)}" + (f"  [records: {', '.join(ran)}]" if ran else ""))


@main.command(name="run")
@click.argument("names", nargs=-1, required=True)
@click.option("--preset", type=click.Choice(harness.PRESETS), default="quick", show_default=True)
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Override one parameter of the preset.")
@click.option("--no-write", is_flag=True, help="Print the records; do not write benchmarks/results/.")
def run_cmd(names: tuple[str, ...], preset: str, sets: tuple[str, ...], no_write: bool) -> None:
    """Run benchmarks NAMES (or `all`) at a preset and write their records."""
    todo = harness.names() if names == ("all",) else list(names)
    overrides = _parse_sets(sets)
    failed = []
    for name in todo:
        t0 = time.perf_counter()
        click.echo(f"== {name} ({preset}) ==", err=True)
        try:
            records = harness.run(name, preset, overrides, log=lambda s: click.echo(f"   {s}", err=True),
                                  write=not no_write)
        except (harness.BenchmarkError, FixtureError) as exc:
            click.echo(f"   {name}: {exc}", err=True)
            failed.append(name)
            continue
        for r in records:
            click.echo(f"   {r.metric:<28} {report.cell(r.value):>12} {r.unit:<8} {report.params_text(r.params)}")
        click.echo(f"   {len(records)} records in {time.perf_counter() - t0:.0f} s"
                   + ("" if no_write else f" -> {harness.results_path(name, preset).relative_to(harness.ROOT)}"),
                   err=True)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


@main.command(name="report")
@click.option("--out", default=str(report.RESULTS_MD), show_default=True, help="The Markdown file to write.")
def report_cmd(out: str) -> None:
    """Render RESULTS.md from the stored records (each table with its command and machine)."""
    path = report.write(out)
    click.echo(f"-> {path}", err=True)


if __name__ == "__main__":
    main()
