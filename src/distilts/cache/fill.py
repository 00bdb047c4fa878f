"""The teacher cache fill: run the teacher over one part's windows chunk by chunk, resumably, in one
process or across the ranks of a torchrun job (one process is a job of one rank).

One part of one entry is `ceil(N / chunk)` chunks (chunk = --batch-size windows), so every chunk is
computed on the same batch of windows whatever the number of ranks, and the arrays come out the
same. Rank 0 owns the part's preallocated memmaps (`<part>.forecast.npy.partial`, and with them
`<part>.hidden.npy.partial` / `<part>.quantiles.npy.partial`) and `<part>.progress.json` (finished
chunks, rewritten atomically after each chunk is flushed), and writes its own chunks straight into
them. Every other rank writes each finished chunk atomically as its own set of files,

    <part>.chunks/c<index>.hidden.npy     (with hidden states; written first)
    <part>.chunks/c<index>.quantiles.npy  (with quantiles; written before the forecast)
    <part>.chunks/c<index>.forecast.npy   (written last: its presence marks the chunk complete)

so ranks never share a file (safe on any shared filesystem across nodes). After a barrier rank 0
copies the chunk files into the memmaps (recording each in progress.json before deleting it),
renames the part into place and writes its record `<part>.json`.

Resume: a chunk is done when progress.json lists it or its chunk files are complete, whatever the
number of ranks that ran before, so a single process that finds a `<part>.chunks/` directory merges
what a killed job left.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from distilts.distributed import SINGLE, Comm
from distilts.errors import DistiltsError
from distilts.progress import Bar
from distilts.utils import atomic_write_bytes, read_json, write_json

if TYPE_CHECKING:
    from distilts.data import Dataset, Windows
    from distilts.teachers.base import Teacher

MERGE_WAIT_S = 120.0  # how long rank 0 waits for chunk files written on other nodes to become visible


def pool_tokens(hidden: np.ndarray, n_tokens: int) -> np.ndarray:
    """Mean-pool axis 2 of `[B, D, T, d]` into `n_tokens` contiguous near-equal groups (0 or >= T: as is)."""
    t = hidden.shape[2]
    if n_tokens <= 0 or n_tokens >= t:
        return hidden
    bounds = (np.arange(n_tokens) * t) // n_tokens
    counts = np.diff(np.append(bounds, t)).astype(np.float32)
    sums = np.add.reduceat(hidden.astype(np.float32, copy=False), bounds, axis=2)
    return sums / counts[None, None, :, None]


class Filler:
    """The parts of one cache entry: their windows, shapes and files; loads the teacher only when needed.

    `settings` holds teacher, lookback, horizon, stride, hidden, hidden_tokens, hidden_dtype and, when
    the teacher's quantiles are cached too, `quantiles: True`.
    """

    def __init__(
        self, dataset: Dataset, settings: dict, directory: Path, batch_size: int, load: Callable[[], Teacher]
    ) -> None:
        self.dataset = dataset
        self.s = settings
        self.directory = directory
        self.batch_size = batch_size
        self._load = load
        self._teacher: Teacher | None = None

    @property
    def teacher(self) -> Teacher:
        if self._teacher is None:
            teacher = self._load()
            bind = getattr(teacher, "bind", None)  # a teacher fitted per series (statistical) binds to the data
            if bind is not None:
                bind(self.dataset, self.s["lookback"], self.s["horizon"])
            teacher.check_window(self.s["lookback"], self.s["horizon"])
            self._teacher = teacher
        return self._teacher

    def windows(self, part: str) -> Windows:
        return self.dataset.windows(part, self.s["lookback"], self.s["horizon"], self.s["stride"])

    @property
    def kinds(self) -> list[str]:
        """The arrays of this entry: forecast, then hidden and quantiles when asked for."""
        return ["forecast"] + ["hidden"] * bool(self.s["hidden"]) + ["quantiles"] * bool(self.s.get("quantiles"))

    def dtype(self, kind: str) -> str:
        return self.s["hidden_dtype"] if kind == "hidden" else "float32"

    def file(self, part: str, kind: str) -> Path:
        """`forecast` / `hidden` / `quantiles` (the partial memmaps), `progress`, `record` or `chunks` of `part`."""
        name = {
            "forecast": "forecast.npy.partial",
            "hidden": "hidden.npy.partial",
            "quantiles": "quantiles.npy.partial",
            "progress": "progress.json",
            "record": "json",
            "chunks": "chunks",
        }[kind]
        return self.directory / f"{part}.{name}"

    def compute(self, windows: Windows, idx: np.ndarray, part: str, state: dict) -> dict[str, np.ndarray]:
        """The teacher's checked rows for windows `idx`: forecasts `[B, H, D]`, pooled hidden states and
        quantiles `[B, H, D, Q]` (those of `kinds`)."""
        quantiles = bool(self.s.get("quantiles"))
        teacher = self.teacher
        if hasattr(teacher, "predict_windows"):  # fitted per series: it reads the windows' series and origins
            n_vars = self.dataset.normalized.shape[1]
            out = teacher.predict_windows(windows, idx, self.s["horizon"], quantiles=quantiles)
            fallbacks = getattr(teacher, "fallbacks", None)
            if fallbacks:
                state["fallbacks"] = {**state.get("fallbacks", {}), **fallbacks}
        else:
            x, _ = windows.batch(idx)
            n_vars = x.shape[2]
            cov = (
                windows.covariate_batch(idx) if self.s.get("covariates") and hasattr(windows, "covariate_batch") else {}
            )
            extra: dict[str, Any] = {"quantiles": True} if quantiles else {}  # only what was asked: plugin teachers
            if cov:
                extra["covariates"] = cov
            out = teacher.predict(x, self.s["horizon"], hidden=self.s["hidden"], **extra)
        rows = {"forecast": self._check(out.forecast, (len(idx), self.s["horizon"], n_vars), part, idx)}
        if self.s["hidden"]:
            assert out.hidden is not None  # predict(hidden=True) gives them
            pooled = pool_tokens(out.hidden, self.s["hidden_tokens"])
            rows["hidden"] = self._check(pooled, (len(idx), *state["hidden_shape"][1:]), part, idx)
        if quantiles:
            assert out.quantiles is not None  # predict(quantiles=True) gives them
            rows["quantiles"] = self._check(out.quantiles, (len(idx), *state["quantiles_shape"][1:]), part, idx)
        return rows

    def shapes(self, n: int) -> dict[str, list[int]]:
        """Array shapes of a part with `n` windows, by kind (hidden and quantiles: loads the teacher)."""
        n_vars = self.dataset.normalized.shape[1]
        out = {"forecast": [n, self.s["horizon"], n_vars]}
        if self.s["hidden"]:
            t = self.teacher
            tokens = t.hidden_tokens(self.s["lookback"])
            kept = tokens if self.s["hidden_tokens"] <= 0 else min(tokens, self.s["hidden_tokens"])
            out["hidden"] = [n, n_vars, kept, int(t.d_model)]
        if self.s.get("quantiles"):
            out["quantiles"] = [n, self.s["horizon"], n_vars, len(self.teacher.require_quantiles())]
        return out

    def close(self) -> None:
        """Release what the teacher holds beyond the fill (a statistical teacher's worker processes)."""
        if self._teacher is not None and hasattr(self._teacher, "close"):
            self._teacher.close()

    def check_budget(self, todo: Sequence[str], complete: dict, max_cache_gb: float | None) -> None:
        """Refuse, before any teacher call, a fill that exceeds `max_cache_gb` or the free disk space."""

        def size(shape: list[int] | None, dtype: str) -> int:
            return 0 if shape is None else int(np.prod(shape)) * np.dtype(dtype).itemsize

        hd = self.s["hidden_dtype"] or "float16"
        new = {}
        for part in todo:
            shapes = self.shapes(len(self.windows(part)))
            new[part] = sum(size(shape, self.dtype(k) or hd) for k, shape in shapes.items())
        old = sum(
            size(r.get("forecast_shape"), "float32")
            + size(r.get("hidden_shape"), hd)
            + size(r.get("quantiles_shape"), "float32")
            for r in complete.values()
        )
        total = old + sum(new.values())
        detail = ", ".join(f"{p} {v / 1e9:.3g} GB" for p, v in new.items())
        fix = (
            "Bound it with a larger --stride (or --max-train-windows), fewer --hidden-tokens, fewer --parts, or "
            "no --hidden (distill: --teacher-hidden online computes hidden states in the training loop)."
        )
        if max_cache_gb is not None and total > max_cache_gb * 1e9:
            raise DistiltsError(
                f"This teacher cache entry would take {total / 1e9:.3g} GB ({detail}"
                f"{f', plus {old / 1e9:.3g} GB already cached' if old else ''}), more than "
                f"--max-cache-gb {max_cache_gb:g}. {fix}"
            )
        free = shutil.disk_usage(self.directory).free
        if sum(new.values()) > free:
            raise DistiltsError(
                f"This teacher cache fill needs {sum(new.values()) / 1e9:.3g} GB ({detail}) but "
                f"{self.directory} has {free / 1e9:.3g} GB free. Use --cache-dir on a larger disk. "
                f"{fix}"
            )

    def start(self, part: str, n: int) -> dict:
        """The part's progress state: resumed from an interrupted run when it matches its partial
        files, else fresh (the teacher is loaded and checked before any file is made)."""
        state = self._resume_state(part, n)
        if state is None:
            info = self.teacher.info
            shapes = self.shapes(n)
            for kind, shape in shapes.items():
                np.lib.format.open_memmap(
                    self.file(part, kind), mode="w+", dtype=np.dtype(self.dtype(kind)), shape=tuple(shape)
                ).flush()
            state = {
                "windows": n,
                "chunk_size": max(self.batch_size, int(getattr(self.teacher, "chunk_windows", 0))),
                "forecast_shape": shapes["forecast"],
                "hidden_shape": shapes.get("hidden"),
                "teacher": info,
                "done": [],
            }
            if "quantiles" in shapes:
                state["quantiles_shape"] = shapes["quantiles"]
            write_json(self.file(part, "progress"), state)
        return state

    def finish(self, part: str, state: dict) -> dict:
        """Rename a part's completed partial files into place and write its record."""
        d = self.directory
        for kind in self.kinds:
            os.replace(self.file(part, kind), d / f"{part}.{kind}.npy")
        record = {
            "windows": state["windows"],
            "forecast_shape": state["forecast_shape"],
            "hidden_shape": state["hidden_shape"],
            "chunk_size": state["chunk_size"],
            "teacher": state.get("teacher"),
        }
        if "quantiles_shape" in state:
            record["quantiles_shape"] = state["quantiles_shape"]
        if state.get("fallbacks"):
            record["fallbacks"] = state["fallbacks"]
        write_json(self.file(part, "record"), record)
        self.file(part, "progress").unlink(missing_ok=True)
        return record

    def _resume_state(self, part: str, n: int) -> dict | None:
        progress = self.file(part, "progress")
        if not (progress.exists() and all(self.file(part, k).exists() for k in self.kinds)):
            return None
        try:
            state = read_json(progress)
            ok = state["windows"] == n and all(
                state.get(f"{k}_shape") is not None and _npy_shape(self.file(part, k)) == tuple(state[f"{k}_shape"])
                for k in self.kinds
            )
        except (ValueError, KeyError, OSError):
            return None
        return state if ok else None

    def _check(self, arr: np.ndarray, shape: tuple, part: str, idx: np.ndarray) -> np.ndarray:
        name = self.s["teacher"]
        if arr is None or tuple(arr.shape) != tuple(shape):
            raise DistiltsError(
                f"The {name} teacher returned shape {None if arr is None else arr.shape} for windows "
                f"{idx[0]}..{idx[-1]} of the {part} part; expected {shape}. This is a bug in its adapter."
            )
        if not np.isfinite(arr).all():
            raise DistiltsError(
                f"The {name} teacher produced non-finite values for windows {idx[0]}..{idx[-1]} "
                f"of the {part} part. Check the checkpoint, or the data for extreme values."
            )
        return arr


def fill_part(filler: Filler, part: str, bar: Bar, comm: Comm = SINGLE) -> dict:
    """Fill one part of the entry with every rank of `comm`; returns the part's record on every rank."""
    windows = filler.windows(part)
    n = len(windows)
    if filler.file(part, "record").exists():  # finished by an earlier run that died before meta.json
        bar.start(f"teacher on {part}", n, n)
        return read_json(filler.file(part, "record"))
    cdir = filler.file(part, "chunks")
    plan = None
    if comm.is_main:
        state = filler.start(part, n)
        if comm.active:
            cdir.mkdir(exist_ok=True)
        done = set(state["done"]) | set(_complete_chunks(cdir, filler.kinds))
        plan = {"state": state, "pending": [c for c in range(-(-n // state["chunk_size"])) if c not in done]}
    plan = comm.broadcast(plan)
    state, pending = plan["state"], plan["pending"]
    chunk = state["chunk_size"]
    mine = pending[comm.rank :: comm.world]
    label = f"{part} ({comm.world} ranks)" if comm.active else part
    bar.start(f"teacher on {label}", n, n - sum(len(_index(c, chunk, n)) for c in pending))
    if comm.is_main:
        _fill_own(filler, windows, part, state, mine, bar, comm.world)
    else:
        for c in mine:
            _write_chunk(cdir, c, filler.compute(windows, _index(c, chunk, n), part, state), filler)
    comm.barrier()
    record = None
    if comm.is_main:  # other nodes' files can take a moment to show up on a network filesystem
        _merge(filler, part, state, wait_s=MERGE_WAIT_S if comm.active else 0.0)
        record = filler.finish(part, state)
    return comm.broadcast(record)


def _fill_own(filler: Filler, windows: Windows, part: str, state: dict, mine: list[int], bar: Bar, world: int) -> None:
    """Rank 0: compute its chunks straight into the part's memmaps."""
    n, chunk = state["windows"], state["chunk_size"]
    maps = _open(filler, part)
    done = set(state["done"])
    for c in mine:
        idx = _index(c, chunk, n)
        _store(maps, idx, filler.compute(windows, idx, part, state))
        done.add(c)
        state["done"] = sorted(done)
        write_json(filler.file(part, "progress"), state)
        bar.advance(len(idx) * world)  # the other ranks advance at about the same pace
    del maps  # close the maps before the part is renamed


def _merge(filler: Filler, part: str, state: dict, wait_s: float = 0.0) -> None:
    """Rank 0: copy the other ranks' chunk files into the memmaps, then delete them (waiting up to
    `wait_s` seconds for files that are not visible yet)."""
    n, chunk, cdir = state["windows"], state["chunk_size"], filler.file(part, "chunks")
    maps = _open(filler, part)
    done = set(state["done"])
    deadline = time.monotonic() + wait_s
    while True:
        for c in _complete_chunks(cdir, filler.kinds):
            if c not in done:
                _store(maps, _index(c, chunk, n), {k: np.load(_chunk_file(cdir, c, k)) for k in maps})
                done.add(c)
                state["done"] = sorted(done)
                write_json(filler.file(part, "progress"), state)
            for kind in ("forecast", "hidden", "quantiles"):
                _chunk_file(cdir, c, kind).unlink(missing_ok=True)
        missing = sorted(set(range(-(-n // chunk))) - done)
        if not missing or time.monotonic() >= deadline:
            break
        time.sleep(2.0)
    del maps
    if missing:
        raise DistiltsError(
            f"The sharded teacher cache fill of the {part} part is missing chunks {missing[:8]}"
            f"{' ...' if len(missing) > 8 else ''} after every rank finished; rerun the same "
            "command to compute them."
        )
    if cdir.is_dir():
        with contextlib.suppress(OSError):
            for leftover in cdir.iterdir():  # temp files of a rank killed mid-write
                leftover.unlink()
            cdir.rmdir()


def _open(filler: Filler, part: str) -> dict[str, np.memmap]:
    return {k: np.lib.format.open_memmap(filler.file(part, k), mode="r+") for k in filler.kinds}


def _store(maps: dict[str, np.memmap], idx: np.ndarray, rows: dict[str, np.ndarray]) -> None:
    for kind, arr in maps.items():
        arr[idx[0] : idx[-1] + 1] = rows[kind]
        arr.flush()


def _write_chunk(cdir: Path, c: int, rows: dict[str, np.ndarray], filler: Filler) -> None:
    """One chunk as .npy files, each via a temp file and an atomic rename; the forecast file last."""
    for kind in reversed(filler.kinds):  # forecast last: its presence marks the chunk complete
        _save_atomic(_chunk_file(cdir, c, kind), np.asarray(rows[kind], dtype=filler.dtype(kind)))


def _save_atomic(path: Path, arr: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, arr)
    atomic_write_bytes(path, buf.getvalue())


def _chunk_file(cdir: Path, c: int, kind: str) -> Path:
    return cdir / f"c{c:07d}.{kind}.npy"


def _complete_chunks(cdir: Path, kinds: list[str]) -> list[int]:
    """Indices of chunks whose files (one per kind) are all in place."""
    if not cdir.is_dir():
        return []
    out = []
    for p in cdir.glob("c*.forecast.npy"):
        c = int(p.name[1:8])
        if all(_chunk_file(cdir, c, k).exists() for k in kinds):
            out.append(c)
    return sorted(out)


def _index(c: int, chunk: int, n: int) -> np.ndarray:
    return np.arange(c * chunk, min(n, (c + 1) * chunk))


def _npy_shape(path: Path) -> tuple:
    return tuple(np.load(path, mmap_mode="r").shape)
