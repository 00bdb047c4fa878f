"""Shared click options for commands that read a series (keeps every command's flags the same)."""

from __future__ import annotations

import functools

import click

from distilts.data.policies import FILL_POLICIES
from distilts.data.split import SCHEMES


def data_options(func):
    """Add --data/--columns/--date-column/--split/--fill, the long-format and covariate options; the command gets
    `data_args` (a dict)."""

    @click.option(
        "--data",
        "data_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="CSV or Parquet file (a date column plus numeric variates). Default: built-in synthetic series.",
    )
    @click.option("--columns", default=None, help="Comma-separated variate columns to use (default: all numeric).")
    @click.option("--date-column", default=None, help="Timestamp column (default: one named date/timestamp/time).")
    @click.option(
        "--split",
        "split_scheme",
        type=click.Choice(SCHEMES),
        default="auto",
        show_default=True,
        help="auto: ETT files 12/4/4 months, others 70/10/20.",
    )
    @click.option(
        "--fill",
        type=click.Choice(FILL_POLICIES),
        default=None,
        help="Fill NaN/inf values and date gaps with this policy (default: refuse such data).",
    )
    @click.option(
        "--id-column",
        default=None,
        help="Long-format data: the series id column (default: item_id or unique_id when present).",
    )
    @click.option(
        "--timestamp-column", default=None, help="Long-format data: the timestamp column (default: timestamp or ds)."
    )
    @click.option("--target-column", default=None, help="Long-format data: the value column (default: target or y).")
    @click.option(
        "--max-windows-per-series",
        type=click.IntRange(min=1),
        default=None,
        help="Long-format data: keep at most this many (most recent) windows of each series.",
    )
    @click.option(
        "--past-covariates",
        default=None,
        help="Comma-separated past-only covariate columns (known over the lookback only).",
    )
    @click.option(
        "--future-covariates",
        default=None,
        help="Comma-separated known-future covariate columns (a forecast of them is given for the horizon).",
    )
    @click.option(
        "--static-covariates", default=None, help="Comma-separated static covariate columns (one value per series)."
    )
    @click.option(
        "--static-table",
        type=click.Path(dir_okay=False),
        default=None,
        help="Long-format data: a CSV of static covariates, one row per series id.",
    )
    @click.option(
        "--calendar",
        is_flag=False,
        flag_value="",
        default=None,
        metavar="[COUNTRY]",
        help="Add calendar features from the timestamps as known-future covariates (hour of day, day of week, "
        "month; with a country code such as BE also its public holidays).",
    )
    @functools.wraps(func)
    def wrapper(
        *args,
        data_path,
        columns,
        date_column,
        split_scheme,
        fill,
        id_column,
        timestamp_column,
        target_column,
        max_windows_per_series,
        past_covariates,
        future_covariates,
        static_covariates,
        static_table,
        calendar,
        **kwargs,
    ):
        data_args = {
            "path": data_path,
            "columns": [c.strip() for c in columns.split(",") if c.strip()] if columns else None,
            "date_column": date_column,
            "split": split_scheme,
            "fill": fill,
        }
        long_args = {
            "id_column": id_column,
            "timestamp_column": timestamp_column,
            "target_column": target_column,
            "max_windows_per_series": max_windows_per_series,
        }
        long_args.update(
            {
                "past_covariates": _names(past_covariates),
                "future_covariates": _names(future_covariates),
                "static_covariates": _names(static_covariates),
                "static_table": static_table,
                "calendar": calendar,
            }
        )
        data_args.update(
            {k: v for k, v in long_args.items() if v is not None}
        )  # absent: old configs keep their identity
        return func(*args, data_args=data_args, **kwargs)

    return wrapper


def _names(text: str | None) -> list[str] | None:
    return [c.strip() for c in text.split(",") if c.strip()] if text else None
