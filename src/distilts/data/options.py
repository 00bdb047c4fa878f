"""Shared click options for commands that read a series (keeps every command's flags the same)."""

from __future__ import annotations

import functools

import click

from distilts.data.policies import FILL_POLICIES
from distilts.data.split import SCHEMES


def data_options(func):
    """Add --data/--columns/--date-column/--split/--fill; the command gets `data_args` (a dict)."""

    @click.option("--data", "data_path", type=click.Path(dir_okay=False), default=None,
                  help="CSV or Parquet file (a date column plus numeric variates). Default: built-in synthetic series.")
    @click.option("--columns", default=None, help="Comma-separated variate columns to use (default: all numeric).")
    @click.option("--date-column", default=None, help="Timestamp column (default: one named date/timestamp/time).")
    @click.option("--split", "split_scheme", type=click.Choice(SCHEMES), default="auto", show_default=True,
                  help="auto: ETT files 12/4/4 months, others 70/10/20.")
    @click.option("--fill", type=click.Choice(FILL_POLICIES), default=None,
                  help="Fill NaN/inf values and date gaps with this policy (default: refuse such data).")
    @functools.wraps(func)
    def wrapper(*args, data_path, columns, date_column, split_scheme, fill, **kwargs):
        data_args = {
            "path": data_path,
            "columns": [c.strip() for c in columns.split(",") if c.strip()] if columns else None,
            "date_column": date_column,
            "split": split_scheme,
            "fill": fill,
        }
        return func(*args, data_args=data_args, **kwargs)

    return wrapper
