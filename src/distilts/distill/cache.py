"""Teacher cache: run a frozen teacher once over every window and keep its outputs on disk.

Layout of one entry, `<root>/teacher/<teacher>-<data>-L<L>-H<H>-<key16>/`:
  <part>.forecast.npy  [N, H, D] float32     (N = len(dataset.windows(part, L, H, stride)))
  <part>.hidden.npy    [N, D, T', d_model]   hidden_dtype (float16 by default), only with hidden=True
  <part>.json          the part's record (shapes, teacher info), written when the part is complete
  meta.json            written last: its presence means the parts it lists are complete
While a part fills: <part>.forecast.npy.partial / <part>.hidden.npy.partial (preallocated .npy
memmaps) and <part>.progress.json (finished chunks, rewritten atomically after each chunk is
flushed), so a killed run resumes at the first unfinished chunk.

`key16` hashes everything the numbers depend on: teacher name, checkpoint sha256, data hash,
lookback, horizon, stride and the hidden settings. Hidden states are reduced to `hidden_tokens`
tokens by mean-pooling contiguous, near-equal groups of the teacher's tokens (0 = keep all).
`<root>` is `cache_dir`, else $DISTILTS_CACHE_DIR, else platformdirs' user cache dir.
A forecast-only request is also served by a complete entry with hidden states (same teacher, data
and windows), so the teacher never runs twice for the same forecasts.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from distilts.errors import DistiltsError
from distilts.utils import read_json, write_json

if TYPE_CHECKING:
    from distilts.data import Dataset
    from distilts.teachers.base import Teacher

FORMAT_VERSION = 1
PARTS = ("train", "val", "test")
HIDDEN_DTYPES = ("float16", "float32")


@dataclass
class TeacherCache:
    """A complete cache entry; arrays are read-only memory maps aligned with `dataset.windows`."""

    directory: Path
    info: dict
    reused: bool = False

    def forecasts(self, part: str) -> np.ndarray:
        """Teacher point forecasts `[N, H, D]` float32 (normalized scale)."""
        return np.load(self._file(part, "forecast"), mmap_mode="r")

    def hidden(self, part: str) -> np.ndarray:
        """Pooled teacher hidden states `[N, D, T', d_model]`."""
        if not self.info.get("hidden"):
            raise DistiltsError(f"The teacher cache at {self.directory} holds no hidden states: rerun "
                                "`distilts teach` with --hidden.")
        return np.load(self._file(part, "hidden"), mmap_mode="r")

    @property
    def parts(self) -> list[str]:
        return list(self.info.get("parts", {}))

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())

    def _file(self, part: str, kind: str) -> Path:
        if part not in self.info.get("parts", {}):
            raise DistiltsError(f"The teacher cache at {self.directory} has no '{part}' part (it has "
                                f"{', '.join(self.parts) or 'none'}). Run `distilts teach` for that part.")
        return self.directory / f"{part}.{kind}.npy"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where teacher caches live: `cache_dir`, else $DISTILTS_CACHE_DIR, else the user cache dir."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get("DISTILTS_CACHE_DIR"):
        return Path(os.environ["DISTILTS_CACHE_DIR"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("distilts"))


def ensure_teacher_cache(
    dataset: "Dataset",
    teacher_name: str,
    teacher_path: str | None,
    lookback: int,
    horizon: int,
    *,
    parts: Sequence[str] = PARTS,
    stride: int = 1,
    hidden: bool = False,
    hidden_tokens: int = 16,
    hidden_dtype: str = "float16",
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 64,
    device: str = "auto",
    progress: bool = True,
    max_cache_gb: float | None = None,
) -> TeacherCache:
    """Return the teacher cache for these settings, computing (or resuming) whatever is missing.

    A complete entry is returned without loading the teacher. `max_cache_gb` refuses, before any
    window is computed, a fill whose entry would exceed that many GB (10^9 bytes). Under torchrun
    the fill is sharded by chunk across ranks (`distilts.distill.shard_fill`).
    """
    from distilts import teachers
    from distilts.distill import distributed, shard_fill
    from distilts.teachers.hub import resolve_checkpoint

    _validate(parts, stride, hidden_tokens, hidden_dtype, batch_size)
    if teacher_name not in teachers.TEACHERS:
        raise DistiltsError(f"Unknown teacher '{teacher_name}'. Use one of: {', '.join(teachers.TEACHERS)}.")
    path = str(teacher_path) if teacher_path else teachers.default_path(teacher_name)
    local = resolve_checkpoint(path, teacher_name)
    root = cache_root(cache_dir)
    settings = {
        "format": FORMAT_VERSION, "teacher": teacher_name, "checkpoint_sha256": _checkpoint_hash(local, root),
        "data_sha256": dataset.data_hash, "lookback": int(lookback), "horizon": int(horizon), "stride": int(stride),
        "hidden": bool(hidden), "hidden_tokens": int(hidden_tokens) if hidden else None,
        "hidden_dtype": hidden_dtype if hidden else None,
    }
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    directory = root / "teacher" / f"{teacher_name}-{_slug(dataset.name)}-L{lookback}-H{horizon}-{key[:16]}"
    meta_file = directory / "meta.json"
    meta = read_json(meta_file) if meta_file.exists() else {}
    todo = [p for p in dict.fromkeys(parts) if p not in meta.get("parts", {})]
    if not todo:
        return TeacherCache(directory, meta, reused=True)
    if not hidden and (sibling := _entry_with_hidden(directory, settings, parts)) is not None:
        return sibling  # forecasts are the same with or without hidden states

    comm = distributed.current()
    directory.mkdir(parents=True, exist_ok=True)
    filler = _Filler(dataset, settings, directory, batch_size,
                     lambda: teachers.load_teacher(teacher_name, str(local), device))
    records = dict(meta.get("parts", {}))
    try:
        filler.check_budget(todo, records, max_cache_gb)
        with _progress_bar(progress and comm.is_main) as bar:
            for part in todo:
                sharded = comm.active or shard_fill.has_chunks(directory, part)
                records[part] = shard_fill.fill_part(filler, part, bar, comm) if sharded else filler.fill(part, bar)
    except BaseException:
        with contextlib.suppress(OSError):  # e.g. the teacher refused the window: leave no empty entry
            if comm.is_main and not any(directory.iterdir()):
                directory.rmdir()
        raise
    teacher_info = next((r["teacher"] for r in records.values() if r.get("teacher")), None)
    meta = {**settings, "key": key, "teacher_path": path, "data_source": dataset.series.source,
            "columns": list(dataset.columns), "teacher_info": teacher_info, "parts": records,
            "created_by": "distilts", "completed_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if comm.is_main:
        write_json(meta_file, meta)  # last: marks the entry complete
    comm.barrier()
    return TeacherCache(directory, meta, reused=False)


def entry_bytes(windows: int, horizon: int, n_vars: int, hidden_tokens: int = 0, d_model: int = 0,
                hidden_dtype: str = "float16") -> dict[str, int]:
    """Bytes on disk of one cache part: forecasts `[N, H, D]` float32 and hidden `[N, D, T', d]`
    (`hidden_tokens` = T' kept; 0 = no hidden states). The .npy headers add 128 bytes each."""
    forecast = windows * horizon * n_vars * 4
    hidden = windows * n_vars * hidden_tokens * d_model * np.dtype(hidden_dtype).itemsize
    return {"forecast": forecast, "hidden": hidden, "total": forecast + hidden}


def pool_tokens(hidden: np.ndarray, n_tokens: int) -> np.ndarray:
    """Mean-pool axis 2 of `[B, D, T, d]` into `n_tokens` contiguous near-equal groups (0 or >= T: as is)."""
    t = hidden.shape[2]
    if n_tokens <= 0 or n_tokens >= t:
        return hidden
    bounds = (np.arange(n_tokens) * t) // n_tokens
    counts = np.diff(np.append(bounds, t)).astype(np.float32)
    sums = np.add.reduceat(hidden.astype(np.float32, copy=False), bounds, axis=2)
    return sums / counts[None, None, :, None]


class _Filler:
    """Fills the parts of one cache entry chunk by chunk; loads the teacher only when needed."""

    def __init__(self, dataset: "Dataset", settings: dict, directory: Path, batch_size: int, load) -> None:
        self.dataset = dataset
        self.s = settings
        self.directory = directory
        self.batch_size = batch_size
        self._load = load
        self._teacher: "Teacher | None" = None

    @property
    def teacher(self) -> "Teacher":
        if self._teacher is None:
            teacher = self._load()
            teacher.check_window(self.s["lookback"], self.s["horizon"])
            self._teacher = teacher
        return self._teacher

    def fill(self, part: str, bar: Any) -> dict:
        d = self.directory
        record_file = d / f"{part}.json"
        windows = self.dataset.windows(part, self.s["lookback"], self.s["horizon"], self.s["stride"])
        n = len(windows)
        if record_file.exists():  # finished by an earlier run that died before meta.json
            bar.add(part, n, n)
            return read_json(record_file)
        progress_file = d / f"{part}.progress.json"
        f_tmp, h_tmp = d / f"{part}.forecast.npy.partial", d / f"{part}.hidden.npy.partial"
        state = self._resume_state(progress_file, f_tmp, h_tmp, n)
        if state is None:
            state = self._allocate(f_tmp, h_tmp, n)
            write_json(progress_file, state)
        forecast = np.lib.format.open_memmap(f_tmp, mode="r+")
        hid = np.lib.format.open_memmap(h_tmp, mode="r+") if self.s["hidden"] else None
        chunk, done = state["chunk_size"], set(state["done"])
        n_chunks = -(-n // chunk)
        bar.add(part, n, min(n, sum(min(chunk, n - c * chunk) for c in done)))
        for c in range(n_chunks):
            if c in done:
                continue
            idx = np.arange(c * chunk, min(n, (c + 1) * chunk))
            f_rows, h_rows = self.compute(windows, idx, part, state)
            forecast[idx[0]: idx[-1] + 1] = f_rows
            forecast.flush()
            if hid is not None:
                hid[idx[0]: idx[-1] + 1] = h_rows
                hid.flush()
            done.add(c)
            write_json(progress_file, {**state, "done": sorted(done)})
            bar.advance(len(idx))
        del forecast, hid  # close the maps before renaming
        return self.finish(part, state)

    def compute(self, windows, idx: np.ndarray, part: str, state: dict) -> tuple[np.ndarray, np.ndarray | None]:
        """The teacher's checked forecasts `[B, H, D]` and pooled hidden states (or None) for windows `idx`."""
        x, _ = windows.batch(idx)
        out = self.teacher.predict(x, self.s["horizon"], hidden=self.s["hidden"])
        f_rows = self._check(out.forecast, (len(idx), self.s["horizon"], x.shape[2]), part, idx)
        if not self.s["hidden"]:
            return f_rows, None
        pooled = pool_tokens(out.hidden, self.s["hidden_tokens"])
        return f_rows, self._check(pooled, (len(idx), *state["hidden_shape"][1:]), part, idx)

    def finish(self, part: str, state: dict) -> dict:
        """Rename a part's completed partial files into place and write its record."""
        d = self.directory
        os.replace(d / f"{part}.forecast.npy.partial", d / f"{part}.forecast.npy")
        if self.s["hidden"]:
            os.replace(d / f"{part}.hidden.npy.partial", d / f"{part}.hidden.npy")
        record = {"windows": state["windows"], "forecast_shape": state["forecast_shape"],
                  "hidden_shape": state["hidden_shape"], "chunk_size": state["chunk_size"],
                  "teacher": state.get("teacher")}
        write_json(d / f"{part}.json", record)
        (d / f"{part}.progress.json").unlink(missing_ok=True)
        return record

    def _allocate(self, f_tmp: Path, h_tmp: Path, n: int) -> dict:
        info = self.teacher.info  # loads (and checks) the teacher before any file is made
        f_shape, h_shape = self._shapes(n)
        np.lib.format.open_memmap(f_tmp, mode="w+", dtype=np.float32, shape=tuple(f_shape)).flush()
        if h_shape is not None:
            np.lib.format.open_memmap(h_tmp, mode="w+", dtype=np.dtype(self.s["hidden_dtype"]),
                                      shape=tuple(h_shape)).flush()
        return {"windows": n, "chunk_size": self.batch_size, "forecast_shape": f_shape, "hidden_shape": h_shape,
                "teacher": info, "done": []}

    def _shapes(self, n: int) -> tuple[list[int], list[int] | None]:
        """Forecast and hidden array shapes of a part with `n` windows (hidden: loads the teacher)."""
        n_vars = self.dataset.normalized.shape[1]
        if not self.s["hidden"]:
            return [n, self.s["horizon"], n_vars], None
        t = self.teacher
        tokens = t.hidden_tokens(self.s["lookback"])
        kept = tokens if self.s["hidden_tokens"] <= 0 else min(tokens, self.s["hidden_tokens"])
        return [n, self.s["horizon"], n_vars], [n, n_vars, kept, int(t.d_model)]

    def check_budget(self, todo: Sequence[str], complete: dict, max_cache_gb: float | None) -> None:
        """Refuse, before any teacher call, a fill that exceeds `max_cache_gb` or the free disk space."""
        def size(shape: list[int] | None, dtype: str) -> int:
            return 0 if shape is None else int(np.prod(shape)) * np.dtype(dtype).itemsize

        hd = self.s["hidden_dtype"] or "float16"
        new = {}
        for part in todo:
            f_shape, h_shape = self._shapes(len(self.dataset.windows(part, self.s["lookback"], self.s["horizon"],
                                                                     self.s["stride"])))
            new[part] = size(f_shape, "float32") + size(h_shape, hd)
        old = sum(size(r.get("forecast_shape"), "float32") + size(r.get("hidden_shape"), hd) for r in complete.values())
        total = old + sum(new.values())
        detail = ", ".join(f"{p} {v / 1e9:.3g} GB" for p, v in new.items())
        fix = ("Bound it with a larger --stride (or --max-train-windows), fewer --hidden-tokens, fewer --parts, or "
               "no --hidden (distill: --teacher-hidden online computes hidden states in the training loop).")
        if max_cache_gb is not None and total > max_cache_gb * 1e9:
            raise DistiltsError(f"This teacher cache entry would take {total / 1e9:.3g} GB ({detail}"
                                f"{f', plus {old / 1e9:.3g} GB already cached' if old else ''}), more than "
                                f"--max-cache-gb {max_cache_gb:g}. {fix}")
        free = shutil.disk_usage(self.directory).free
        if sum(new.values()) > free:
            raise DistiltsError(f"This teacher cache fill needs {sum(new.values()) / 1e9:.3g} GB ({detail}) but "
                                f"{self.directory} has {free / 1e9:.3g} GB free. Use --cache-dir on a larger disk. "
                                f"{fix}")

    def _resume_state(self, progress_file: Path, f_tmp: Path, h_tmp: Path, n: int) -> dict | None:
        """The saved progress of an interrupted run, when it matches its partial files; else None."""
        if not (progress_file.exists() and f_tmp.exists() and (h_tmp.exists() or not self.s["hidden"])):
            return None
        try:
            state = read_json(progress_file)
            ok = state["windows"] == n and _npy_shape(f_tmp) == tuple(state["forecast_shape"])
            if self.s["hidden"]:
                ok = ok and state["hidden_shape"] is not None and _npy_shape(h_tmp) == tuple(state["hidden_shape"])
        except (ValueError, KeyError, OSError):
            return None
        return state if ok else None

    def _check(self, arr: np.ndarray, shape: tuple, part: str, idx: np.ndarray) -> np.ndarray:
        name = self.s["teacher"]
        if arr is None or tuple(arr.shape) != tuple(shape):
            raise DistiltsError(f"The {name} teacher returned shape {None if arr is None else arr.shape} for windows "
                                f"{idx[0]}..{idx[-1]} of the {part} part; expected {shape}. This is a bug in its adapter.")
        if not np.isfinite(arr).all():
            raise DistiltsError(f"The {name} teacher produced non-finite values for windows {idx[0]}..{idx[-1]} "
                                f"of the {part} part. Check the checkpoint, or the data for extreme values.")
        return arr


def _entry_with_hidden(directory: Path, settings: dict, parts: Sequence[str]) -> TeacherCache | None:
    """A complete entry with hidden states (any hidden settings) that has `parts` under otherwise
    equal settings: it serves a forecast-only request (e.g. `distilts eval`, or a KD-only run after
    `distilts teach --hidden`) without running the teacher again."""
    prefix = directory.name[: -16]  # <teacher>-<data>-L<L>-H<H>-
    same = {k: v for k, v in settings.items() if not k.startswith("hidden")}
    for meta_file in sorted(directory.parent.glob(f"{prefix}*/meta.json")):
        try:
            meta = read_json(meta_file)
        except (OSError, ValueError):
            continue
        if meta.get("hidden") and all(meta.get(k) == v for k, v in same.items()) \
                and all(p in meta.get("parts", {}) for p in parts):
            return TeacherCache(meta_file.parent, meta, reused=True)
    return None


def _npy_shape(path: Path) -> tuple:
    return tuple(np.load(path, mmap_mode="r").shape)


def _checkpoint_hash(local: Path, root: Path) -> str:
    """sha256 of a checkpoint's weight files, remembered per (path, sizes, mtimes) so reruns skip the read."""
    from distilts.teachers.base import hash_weight_files

    files = sorted({p for pat in ("*.safetensors", "config.json") for p in local.glob(pat)})
    stamp = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    memo_file = root / "checkpoint-hashes.json"
    try:
        memo = read_json(memo_file) if memo_file.exists() else {}
    except ValueError:
        memo = {}
    hit = memo.get(str(local.resolve()))
    if hit and hit.get("stamp") == stamp:
        return hit["sha256"]
    digest = hash_weight_files(local)
    memo[str(local.resolve())] = {"stamp": stamp, "sha256": digest}
    write_json(memo_file, memo)
    return digest


def _validate(parts: Sequence[str], stride: int, hidden_tokens: int, hidden_dtype: str, batch_size: int) -> None:
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise DistiltsError(f"Unknown split part(s) {bad}: use some of {', '.join(PARTS)}.")
    if stride < 1 or batch_size < 1:
        raise DistiltsError(f"--stride and --batch-size must be at least 1 (got {stride}, {batch_size}).")
    if hidden_tokens < 0:
        raise DistiltsError(f"--hidden-tokens must be 0 (keep all) or positive (got {hidden_tokens}).")
    if hidden_dtype not in HIDDEN_DTYPES:
        raise DistiltsError(f"hidden_dtype must be one of {', '.join(HIDDEN_DTYPES)} (got {hidden_dtype}).")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:40] or "data"


class _NoBar:
    def add(self, part: str, total: int, completed: int) -> None: ...

    def advance(self, n: int) -> None: ...


class _RichBar:
    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.task = None

    def add(self, part: str, total: int, completed: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, visible=False)
        self.task = self.progress.add_task(f"teacher on {part}", total=total, completed=completed)

    def advance(self, n: int) -> None:
        self.progress.advance(self.task, n)


class _progress_bar:  # noqa: N801 - used as a context manager
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return _NoBar()
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True))
        self._progress.__enter__()
        return _RichBar(self._progress)

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
