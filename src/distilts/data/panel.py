"""A panel: many univariate series of different lengths, start times and frequencies.

Values are held in one flat float32 array (memory-mapped from a file in a temporary directory for
files, so a large panel is not held in RAM), `offsets[s]:offsets[s+1]` being series `s`.
The split is per series in time: its last `test` values are the test part, the `val` values
before them the val part, the rest train. Windows are pooled over all series (channel
independent, D=1), each inside one series; a series too short for a window is listed by id.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from distilts.data.long import LongColumns, iter_blocks
from distilts.errors import DataError

PARTS = ("train", "val", "test")


@dataclass
class Panel:
    ids: list[str]
    offsets: np.ndarray  # int64 [S + 1]
    values: np.ndarray  # float32 [N] (a memmap when read from a file)
    starts: np.ndarray | None = None  # int64 [S] first timestamp of each series
    steps: np.ndarray | None = None  # int64 [S] each series' step (0: unknown)
    source: str = "<memory>"
    _tmp: object = field(default=None, repr=False)  # keeps the memmap's directory alive

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def series(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i]: self.offsets[i + 1]]

    @property
    def data_hash(self) -> str:
        h = hashlib.sha256()
        h.update("\n".join(self.ids).encode())
        h.update(self.offsets.tobytes())
        for lo in range(0, len(self.values), 1 << 24):
            h.update(np.ascontiguousarray(self.values[lo: lo + (1 << 24)]).tobytes())
        return h.hexdigest()

    @classmethod
    def from_series(cls, ids: list[str], series: list[np.ndarray], source: str = "<memory>") -> "Panel":
        offsets = np.concatenate([[0], np.cumsum([len(s) for s in series])]).astype(np.int64)
        return cls(list(ids), offsets, np.concatenate(series).astype(np.float32), source=source)


def load_panel(path: str | Path, columns: LongColumns = LongColumns(), layout: str = "auto",
               block_rows: int | None = None) -> Panel:
    """Read a long-format (or M4 wide-row) file into a Panel; values are memory-mapped from a temp file."""
    tmp = tempfile.TemporaryDirectory(prefix="distilts-panel-")
    vpath = Path(tmp.name) / "values.f32"
    ids: list[str] = []
    lengths: list[np.ndarray] = []
    starts: list[np.ndarray] = []
    steps: list[np.ndarray] = []
    timed = None
    kw = {} if block_rows is None else {"block_rows": block_rows}
    with open(vpath, "wb") as f:
        for block in iter_blocks(path, columns, layout, **kw):
            ids.extend(block.ids)
            lengths.append(block.lengths)
            f.write(np.ascontiguousarray(block.values, dtype=np.float32).tobytes())
            timed = block.times is not None
            if timed:
                starts.append(block.times[block.offsets[:-1]])
                steps.append(block.steps())
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(lengths))]).astype(np.int64)
    values = np.memmap(vpath, dtype=np.float32, mode="r", shape=(int(offsets[-1]),))
    return Panel(ids, offsets, values, np.concatenate(starts) if timed else None,
                 np.concatenate(steps) if timed else None, str(path), tmp)


@dataclass(frozen=True)
class PanelSplit:
    """Per series, the end (exclusive, relative to the series) of its train and val parts."""

    train_end: np.ndarray  # int64 [S]
    val_end: np.ndarray  # int64 [S]
    val: int
    test: int

    def part(self, name: str, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) per series, relative to each series, of the targets in part `name`."""
        if name == "train":
            return np.zeros_like(self.train_end), self.train_end
        if name == "val":
            return self.train_end, self.val_end
        if name == "test":
            return self.val_end, lengths.astype(np.int64)
        raise ValueError(f"unknown split part '{name}'")

    def to_dict(self) -> dict:
        return {"scheme": "per-series", "val": self.val, "test": self.test}


def split_panel(panel: Panel, val: int, test: int) -> PanelSplit:
    """The last `test` values of each series are test, the `val` before them val, the rest train."""
    n = panel.lengths
    val_end = np.maximum(n - test, 0)
    return PanelSplit(np.maximum(val_end - val, 0), val_end, val, test)


@dataclass
class PanelWindows:
    """Windows pooled over a panel's series: target starts `starts` (flat indices into the panel values).

    `batch(idx)` gives x `[B, L, 1]` and y `[B, H, 1]` as `Windows.batch` does for one series,
    `series_index[i]` says which series window i came from. `skipped` lists the ids of series with
    no complete window in this part.
    """

    values: np.ndarray
    starts: np.ndarray
    series_index: np.ndarray
    lookback: int
    horizon: int
    skipped: list[str]

    def __len__(self) -> int:
        return int(self.starts.size)

    def batch(self, index) -> tuple[np.ndarray, np.ndarray]:
        s = self.starts[index]
        xi = s[:, None] + np.arange(-self.lookback, 0)
        yi = s[:, None] + np.arange(self.horizon)
        return self.values[xi][..., None], self.values[yi][..., None]

    def inputs(self, index=slice(None)) -> np.ndarray:
        return self.batch(index)[0]

    def targets(self, index=slice(None)) -> np.ndarray:
        return self.batch(index)[1]

    def iter_batches(self, batch_size: int):
        for lo in range(0, len(self), batch_size):
            idx = np.arange(lo, min(lo + batch_size, len(self)))
            yield idx, *self.batch(idx)


def panel_windows(panel: Panel, split: PanelSplit, part: str, lookback: int, horizon: int, stride: int = 1,
                  max_per_series: int | None = None, values: np.ndarray | None = None) -> PanelWindows:
    """Windows whose targets lie in `part` of each series; the lookback may reach into the part before.

    stride: step between window starts within a series; max_per_series keeps the last so many
    windows of each series (the most recent). values: the array the windows cut (default: the
    panel's raw values, e.g. per-series normalized values of the same layout).
    """
    if lookback < 1 or horizon < 1:
        raise DataError(f"lookback and horizon must be positive (got {lookback}, {horizon}).")
    lo, hi = split.part(part, panel.lengths)
    first = np.maximum(lo, lookback)
    last = hi - horizon  # inclusive start of the last window
    count = np.where(last >= first, (last - first) // max(1, stride) + 1, 0)
    if max_per_series is not None:
        count = np.minimum(count, max_per_series)
    skipped = [panel.ids[i] for i in np.flatnonzero(count == 0)]
    series_index = np.repeat(np.arange(len(panel), dtype=np.int64), count)
    # k-th window of a series counts back from its last start
    k = np.arange(int(count.sum()), dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    rel = np.repeat(last, count) - (np.repeat(count, count) - 1 - k) * max(1, stride)
    starts = panel.offsets[series_index] + rel
    return PanelWindows(panel.values if values is None else values, starts, series_index, lookback, horizon, skipped)


def too_short(panel: Panel, lookback: int, horizon: int) -> list[str]:
    """Ids of series shorter than one window (lookback + horizon values)."""
    return [panel.ids[i] for i in np.flatnonzero(panel.lengths < lookback + horizon)]
