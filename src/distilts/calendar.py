"""Calendar features generated from timestamps: known-future covariates that need no future file.

`calendar_features(timestamps, spec) -> [T, n]` float32 for the features of `spec`
(`{"features": [...], "country": "BE" | None}`), in the order of `CALENDAR_FEATURES`:

    hour_of_day   hour / 23 - 0.5                 (GluonTS `HourOfDay`)
    day_of_week   weekday / 6 - 0.5, Monday = 0   (GluonTS `DayOfWeek`)
    month         (month - 1) / 11 - 0.5          (GluonTS `MonthOfYear`)
    holiday       1 on a public holiday of `country` (the `holidays` library), else 0

Training keeps only the features whose cycle the data's span covers twice (`covered_spec`: hour from two days,
weekday from two weeks, month and holidays from two years): a month feature learnt from two months of data is a
trend in disguise, and it hurt EPF's day-ahead forecasts (benchmarks/RESULTS.md). The student records the
features it kept; forecasting uses exactly those.

Numpy only (the `holidays` library for the holiday feature): no pandas, no torch, so the runtime
generates the same features on a device as training did.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from distilts.errors import DataError, require

CALENDAR_FEATURES = ("hour_of_day", "day_of_week", "month", "holiday")
PREFIX = "calendar:"
# the cycle of each feature: training data must cover two of them, or the feature cannot be told apart from
# the level the series happens to have (a month learnt from two months of data extrapolates a trend)
CYCLES = {
    "hour_of_day": np.timedelta64(1, "D"),
    "day_of_week": np.timedelta64(7, "D"),
    "month": np.timedelta64(365, "D"),
    "holiday": np.timedelta64(365, "D"),
}
MIN_CYCLES = 2


def calendar_spec(country: str | None = None, features: Sequence[str] | None = None) -> dict:
    """The spec for `--calendar [COUNTRY]`: hour, weekday and month, and holidays when a country is given."""
    if features is None:
        features = [f for f in CALENDAR_FEATURES if f != "holiday" or country]
    spec = {"features": list(features), "country": country.upper() if country else None}
    check_spec(spec)
    return spec


def check_spec(spec: dict) -> None:
    """A DataError for an unknown feature, a holiday feature without a country, or an unknown country."""
    unknown = [f for f in spec.get("features", []) if f not in CALENDAR_FEATURES]
    if unknown:
        raise DataError(f"unknown calendar feature(s) {unknown}; choose from {', '.join(CALENDAR_FEATURES)}.")
    if "holiday" in spec.get("features", []):
        if not spec.get("country"):
            raise DataError("the holiday calendar feature needs a country: pass --calendar COUNTRY (e.g. BE).")
        _holidays(spec["country"], [2020])


def covered_spec(spec: dict | None, timestamps: np.ndarray) -> tuple[dict | None, list[str]]:
    """The spec without the features whose cycle the span of `timestamps` does not cover `MIN_CYCLES` times
    (month and holidays need two years; weekday two weeks), and the names dropped."""
    if not spec or len(timestamps) == 0:
        return spec, []
    t = np.asarray(timestamps).astype("datetime64[s]")
    span = t.max() - t.min()
    keep = [f for f in spec["features"] if span >= MIN_CYCLES * CYCLES[f]]
    dropped = [f for f in spec["features"] if f not in keep]
    return {**spec, "features": keep}, dropped


def calendar_columns(spec: dict | None) -> list[str]:
    """Column names of the features, e.g. ["calendar:hour_of_day", ...] (empty for no spec)."""
    if not spec:
        return []
    return [PREFIX + f for f in CALENDAR_FEATURES if f in spec["features"]]


def calendar_features(timestamps: np.ndarray, spec: dict | None) -> np.ndarray:
    """`[T, n]` float32 calendar features of `timestamps` (datetime64, any unit)."""
    names = [c[len(PREFIX) :] for c in calendar_columns(spec)]
    t = np.asarray(timestamps).astype("datetime64[s]")
    out = np.zeros((t.shape[0], len(names)), np.float32)
    if not names:
        return out
    days = t.astype("datetime64[D]")
    for j, name in enumerate(names):
        if name == "hour_of_day":
            hours = (t - days).astype("timedelta64[h]").astype(np.int64)
            out[:, j] = hours / 23.0 - 0.5
        elif name == "day_of_week":
            out[:, j] = ((days.astype(np.int64) + 3) % 7) / 6.0 - 0.5  # 1970-01-01 was a Thursday (3)
        elif name == "month":
            months = t.astype("datetime64[M]").astype(np.int64) % 12
            out[:, j] = months / 11.0 - 0.5
        else:  # holiday (calendar_columns lists it only with a spec)
            assert spec is not None
            years = sorted({int(y) + 1970 for y in np.unique(t.astype("datetime64[Y]").astype(np.int64))})
            dates = _holidays(spec["country"], years)
            out[:, j] = np.isin(days, np.array(sorted(dates), dtype="datetime64[D]")).astype(np.float32)
    return out


def _holidays(country: str, years: list[int]) -> list[np.datetime64]:
    lib = require("holidays", "calendar", "holiday calendar features")
    try:
        table = lib.country_holidays(country, years=years)
    except NotImplementedError:
        raise DataError(
            f"the holidays library has no calendar for country '{country}'; give an ISO 3166 code such as BE, "
            "DE or FR, or drop the country from --calendar."
        ) from None
    return [np.datetime64(d, "D") for d in table]
