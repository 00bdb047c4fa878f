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

from distilts.data.covariates import Covariates, covariate_hash
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
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    @property
    def data_hash(self) -> str:
        h = hashlib.sha256()
        h.update("\n".join(self.ids).encode())
        h.update(self.offsets.tobytes())
        for lo in range(0, len(self.values), 1 << 24):
            h.update(np.ascontiguousarray(self.values[lo : lo + (1 << 24)]).tobytes())
        return h.hexdigest()

    @classmethod
    def from_series(cls, ids: list[str], series: list[np.ndarray], source: str = "<memory>") -> Panel:
        offsets = np.concatenate([[0], np.cumsum([len(s) for s in series])]).astype(np.int64)
        return cls(list(ids), offsets, np.concatenate(series).astype(np.float32), source=source)


def load_panel(
    path: str | Path, columns: LongColumns = LongColumns(), layout: str = "auto", block_rows: int | None = None
) -> Panel:
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
            if block.times is not None:
                starts.append(block.times[block.offsets[:-1]])
                steps.append(block.steps())
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(lengths))]).astype(np.int64)
    values = np.memmap(vpath, dtype=np.float32, mode="r", shape=(int(offsets[-1]),))
    return Panel(
        ids,
        offsets,
        values,
        np.concatenate(starts) if timed else None,
        np.concatenate(steps) if timed else None,
        str(path),
        tmp,
    )


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
    series_stats: tuple[np.ndarray, np.ndarray] | None = None  # (mean [S], std [S]) the values were z-scored with
    covariates: Covariates | None = None  # aligned with the panel's rows

    def covariate_batch(self, index) -> dict[str, np.ndarray]:
        """The covariate blocks of the windows `index` (as `Windows.covariate_batch`); {} without covariates."""
        if self.covariates is None:
            return {}
        s = np.atleast_1d(self.starts[index])
        return self.covariates.batch(s, np.atleast_1d(self.series_index[index]), self.lookback, self.horizon)

    def __len__(self) -> int:
        return int(self.starts.size)

    def raw_affine(self, index) -> tuple[np.ndarray, np.ndarray] | None:
        """(mean, std) `[B, 1, 1]` mapping windows `index` back to their series' raw values (`x * std + mean`);
        None when the values are not per-series z-scores."""
        if self.series_stats is None:
            return None
        s = self.series_index[np.atleast_1d(index)]
        mean, std = self.series_stats
        return mean[s][:, None, None], std[s][:, None, None]

    def batch(self, index) -> tuple[np.ndarray, np.ndarray]:
        s = np.atleast_1d(self.starts[index])
        xi = s[:, None] + np.arange(-self.lookback, 0)
        yi = s[:, None] + np.arange(self.horizon)
        v = self.values if self.values.ndim == 2 else self.values[:, None]
        return v[xi].reshape(len(s), self.lookback, -1), v[yi].reshape(len(s), self.horizon, -1)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.batch([i])
        return x[0], y[0]

    def inputs(self, index=slice(None)) -> np.ndarray:
        return self.batch(index)[0]

    def targets(self, index=slice(None)) -> np.ndarray:
        return self.batch(index)[1]

    def iter_batches(self, batch_size: int):
        for lo in range(0, len(self), batch_size):
            idx = np.arange(lo, min(lo + batch_size, len(self)))
            yield idx, *self.batch(idx)


def panel_windows(
    panel: Panel,
    split: PanelSplit,
    part: str,
    lookback: int,
    horizon: int,
    stride: int = 1,
    max_per_series: int | None = None,
    values: np.ndarray | None = None,
) -> PanelWindows:
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


@dataclass
class PanelSource:
    """What the training stages read of `dataset.series` for a panel: its source and common step."""

    source: str
    freq: np.timedelta64 | None


class PanelDataset:
    """A panel as the training stages see a Dataset: one variate (`target`), windows pooled over series.

    The split is per series and follows the horizon H of each `windows` call (the last H values of
    a series are test, the H before them val: the M4 protocol). Values are z-scored per series
    with the statistics of its train part (`normalized`, `[N, 1]`); the scaler is a plain scale (no
    shift), so a global student needs instance normalization (RevIN) to take raw values of any series.
    `max_per_series` caps the windows of each series (the most recent ones).
    """

    def __init__(self, panel: Panel, max_per_series: int | None = None, column: str = "target") -> None:
        from distilts.data.scaler import Scaler

        self.panel = panel
        self.max_per_series = max_per_series
        self.columns = [column]
        # the largest series std: the unit compile's verification measures errors in (float32 rounding of the
        # largest series must fit its tolerance); the global student normalizes each window itself, so this
        # folded scale does not change its forecasts
        stds = np.array([float(np.std(panel.series(i))) for i in range(len(panel))])
        self.scaler = Scaler(np.zeros(1), np.array([max(float(stds.max()), 1e-6)]))
        # RevIN's variance epsilon for a global student that sees x / scale: 1e-5 in the units of the
        # smallest varying series (the usual 1e-5 would swamp the variance of small series after the scale)
        small = float(stds[stds > 0].min()) if (stds > 0).any() else 1.0
        self.revin_eps = 1e-5 * (small / float(self.scaler.std[0])) ** 2
        steps = set() if panel.steps is None else set(panel.steps[panel.steps > 0].tolist())
        freq = np.timedelta64(int(steps.pop()), "s") if len(steps) == 1 else None
        self.series = PanelSource(panel.source, freq)
        self._norm: dict[int, np.ndarray] = {}
        self._horizon: int | None = None
        # False (--no-revin): the student sees every series on the artifact's one scale (`scaler`), since nothing
        # in the artifact knows a series' own statistics; True: per-series z-score (RevIN takes raw values)
        self.per_series_scaling = True
        self.covariates: Covariates | None = None  # rows in the panel's order, fitted per horizon
        self._cov_fit: int | None = None

    @property
    def name(self) -> str:
        return Path(self.panel.source).stem

    @property
    def split(self) -> PanelSplit:
        h = self._horizon or 0
        return split_panel(self.panel, h, h)

    @property
    def normalized(self) -> np.ndarray:
        return self._normalized(self._horizon or 0)

    @property
    def data_hash(self) -> str:
        h = hashlib.sha256(self.panel.data_hash.encode())
        scaling = "per-series z-score" if self.per_series_scaling else f"common scale {float(self.scaler.std[0])!r}"
        h.update(f"per-series split val=test=H, {scaling}, cap {self.max_per_series}".encode())
        if self.covariates is not None:
            covariate_hash(h, self.covariates)
        return h.hexdigest()

    def train_ends(self, horizon: int) -> np.ndarray:
        """The end (exclusive, relative to each series) of every series' train part for horizon H."""
        return split_panel(self.panel, horizon, horizon).train_end

    def series_stats(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) `[S]` float64 of each series' train part: the per-series z-score of `normalized`
        (a constant series gets std 1); the common scaler of every series without `per_series_scaling`."""
        p = self.panel
        if not self.per_series_scaling:
            return np.full(len(p), float(self.scaler.mean[0])), np.full(len(p), float(self.scaler.std[0]))
        sp = split_panel(p, horizon, horizon)
        mean, std = np.zeros(len(p)), np.ones(len(p))
        for i in range(len(p)):
            train = np.asarray(p.values[p.offsets[i] : p.offsets[i] + max(int(sp.train_end[i]), 1)], np.float64)
            mean[i], s = train.mean(), train.std()
            std[i] = s if s > 1e-12 else 1.0
        return mean, std

    def _normalized(self, horizon: int) -> np.ndarray:
        """Per-series z-score with the train part's statistics (computed once per horizon, memory-mapped)."""
        if horizon not in self._norm:
            p = self.panel
            mean, std = self.series_stats(horizon)
            out = np.empty((len(p.values), 1), dtype=np.float32)
            for i in range(len(p)):
                lo, hi = p.offsets[i], p.offsets[i + 1]
                out[lo:hi, 0] = (np.asarray(p.values[lo:hi], dtype=np.float64) - mean[i]) / std[i]
            self._norm[horizon] = out
        return self._norm[horizon]

    def windows(self, part: str, lookback: int, horizon: int, stride: int = 1) -> PanelWindows:
        """Normalized windows of every series whose targets lie in `part` of that series."""
        self._horizon = horizon
        w = panel_windows(
            self.panel,
            split_panel(self.panel, horizon, horizon),
            part,
            lookback,
            horizon,
            stride,
            self.max_per_series,
            values=self._normalized(horizon),
        )
        w.series_stats = self.series_stats(horizon)  # the z-score of the values: --loss smape maps them back
        if self.covariates is not None:
            if self._cov_fit != horizon:  # the train rows of every series, for this horizon's split
                sp = split_panel(self.panel, horizon, horizon)
                rel = np.arange(len(self.panel.values)) - np.repeat(self.panel.offsets[:-1], self.panel.lengths)
                self.covariates.fit(rel < np.repeat(sp.train_end, self.panel.lengths))
                self._cov_fit = horizon
            w.covariates = self.covariates
        if len(w) == 0:
            raise DataError(
                f"{self.panel.source} ({part} part): no series is long enough for lookback {lookback} + horizon "
                f"{horizon} (the longest has {int(self.panel.lengths.max())} values, and the last {2 * horizon} "
                "of each are val and test). Use a smaller --lookback."
            )
        return w
