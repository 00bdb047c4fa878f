"""Quantile levels: parsing, validation, named sets and column names (pure Python, runtime-safe).

A probabilistic student forecasts a sorted set of levels in (0, 1) that holds the median (0.5):
`Forecaster.predict` returns the 0.5 level, `predict_quantiles` all of them. Named sets are the
native levels of the teachers: `deciles` (Chronos-Bolt, TimesFM: 0.1 ... 0.9) and `chronos-2`
(its 21 levels 0.01, 0.05, 0.1 ... 0.9, 0.95, 0.99).
"""

from __future__ import annotations

from collections.abc import Iterable

from distilts.errors import DistiltsError

DECILES: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(1, 10))
CHRONOS2: tuple[float, ...] = (0.01,) + tuple(round(0.05 * i, 2) for i in range(1, 20)) + (0.99,)
NAMED: dict[str, tuple[float, ...]] = {"deciles": DECILES, "chronos-2": CHRONOS2}
MEDIAN = 0.5


class QuantileError(DistiltsError):
    """Quantile levels are malformed, or a model cannot give the levels asked for."""


def parse_levels(spec: str | Iterable[float], *, require_median: bool = True) -> tuple[float, ...]:
    """Levels from `"0.1,0.5,0.9"`, a named set (`deciles`, `chronos-2`) or a sequence of floats.

    Refuses levels outside (0, 1), unsorted or repeated levels, and (by default) a set without 0.5,
    each with a message that names the fix.
    """
    if isinstance(spec, str):
        text = spec.strip()
        if text.lower() in NAMED:
            return NAMED[text.lower()]
        try:
            values = [float(v) for v in text.replace(" ", "").split(",") if v != ""]
        except ValueError:
            raise QuantileError(
                f"Cannot read quantile levels {spec!r}: give comma-separated numbers in (0, 1) "
                f"such as 0.1,0.5,0.9, or a named set ({', '.join(NAMED)})."
            ) from None
    else:
        values = [float(v) for v in spec]
    return validate_levels(values, require_median=require_median)


def validate_levels(levels: Iterable[float], *, require_median: bool = True) -> tuple[float, ...]:
    """`levels` as a tuple of floats (rounded to 6 decimals) after the checks of `parse_levels`."""
    values = [round(float(v), 6) for v in levels]
    if not values:
        raise QuantileError("No quantile levels given: pass e.g. --quantiles 0.1,0.5,0.9 or --quantiles deciles.")
    outside = [v for v in values if not 0.0 < v < 1.0]
    if outside:
        raise QuantileError(
            f"Quantile levels must lie strictly between 0 and 1; got {outside}. Give levels such as 0.1,0.5,0.9."
        )
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise QuantileError(f"Quantile levels are repeated: {repeated}. Give each level once.")
    if values != sorted(values):
        raise QuantileError(
            f"Quantile levels must be in increasing order; got {values}. "
            f"Pass them sorted: {','.join(format_level(v) for v in sorted(values))}."
        )
    if require_median and MEDIAN not in values:
        raise QuantileError(
            f"Quantile levels {values} lack the median 0.5, which the point forecast "
            "(Forecaster.predict) returns. Add 0.5 to the levels."
        )
    return tuple(values)


def median_index(levels: Iterable[float]) -> int:
    """Position of 0.5 in `levels`."""
    levels = list(levels)
    if MEDIAN not in levels:
        raise QuantileError(f"Quantile levels {levels} lack the median 0.5.")
    return levels.index(MEDIAN)


def missing_levels(wanted: Iterable[float], available: Iterable[float]) -> list[float]:
    """Levels of `wanted` not in `available` (compared at 6 decimals)."""
    have = {round(float(v), 6) for v in available}
    return [v for v in wanted if round(float(v), 6) not in have]


def format_level(level: float) -> str:
    """`0.1 -> "0.1"`, `0.05 -> "0.05"` (as in the column names `OT_q0.1`)."""
    return f"{float(level):g}"


def column_name(column: str, level: float) -> str:
    """Name of the column of variate `column` at quantile `level`, e.g. `OT_q0.1`."""
    return f"{column}_q{format_level(level)}"


def student_levels(student: dict) -> list[float] | None:
    """The quantile levels of a student spec (config.json's "student"): its own `quantiles` option, or its
    members' (an ensemble student passes them through `member_options`); None for a point student."""
    kwargs = student.get("kwargs") or {}
    levels = kwargs.get("quantiles", (kwargs.get("member_options") or {}).get("quantiles"))
    return list(levels) if levels else None
