"""The standard train/val/test split of long-horizon forecasting benchmarks.

ETT files: 12/4/4 months by rows (ETTh: 8640/2880/2880 hourly rows; ETTm: 4x that).
Anything else: 70/10/20 by fraction. Ranges are the rows whose values are forecast targets;
a window's lookback may reach back into the previous part (the standard protocol).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from distilts.errors import DataError

SCHEMES = ("auto", "ett-hourly", "ett-minute", "ratio")


@dataclass(frozen=True)
class Split:
    scheme: str
    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]

    def part(self, name: str) -> tuple[int, int]:
        if name not in ("train", "val", "test"):
            raise ValueError(f"unknown split part '{name}'")
        return getattr(self, name)

    def sizes(self) -> dict[str, int]:
        return {p: self.part(p)[1] - self.part(p)[0] for p in ("train", "val", "test")}

    def to_dict(self) -> dict:
        return asdict(self)


def detect_scheme(source: str) -> str:
    name = re.split(r"[\\/]", source)[-1]
    if re.match(r"ETTh\d", name):
        return "ett-hourly"
    if re.match(r"ETTm\d", name):
        return "ett-minute"
    return "ratio"


def standard_split(n_rows: int, scheme: str = "auto", source: str = "") -> Split:
    """Row ranges of the train/val/test parts for a series of `n_rows` rows."""
    if scheme not in SCHEMES:
        raise DataError(f"Unknown split '{scheme}'. Use one of: {', '.join(SCHEMES)}.")
    if scheme == "auto":
        scheme = detect_scheme(source)
    if scheme in ("ett-hourly", "ett-minute"):
        month = 30 * 24 * (4 if scheme == "ett-minute" else 1)
        b = [0, 12 * month, 16 * month, 20 * month]
        if n_rows < b[3]:
            raise DataError(
                f"{source or 'series'}: the ETT split needs {b[3]} rows (12/4/4 months) but the "
                f"series has {n_rows}. Pass --split ratio for a 70/10/20 split instead."
            )
        return Split(scheme, (b[0], b[1]), (b[1], b[2]), (b[2], b[3]))
    n_train = int(n_rows * 0.7)
    n_test = int(n_rows * 0.2)
    n_val = n_rows - n_train - n_test
    return Split("ratio", (0, n_train), (n_train, n_train + n_val), (n_train + n_val, n_rows))
