"""The teacher families by name (module paths only: nothing is imported until a family is used)."""

from __future__ import annotations

from distilts.plugins import Registry

TEACHERS: Registry[str] = Registry(
    "teacher",
    {
        "timemoe": "distilts.teachers.timemoe",
        "chronos": "distilts.teachers.chronos",
        "chronos-bolt": "distilts.teachers.chronos",
        "moirai": "distilts.teachers.moirai",
        "chronos-2": "distilts.teachers.chronos2",
        "moirai-2": "distilts.teachers.moirai2",
        "timesfm": "distilts.teachers.timesfm",
        "patchtst": "distilts.teachers.patchtst",
        "student": "distilts.teachers.student",
    },
)
