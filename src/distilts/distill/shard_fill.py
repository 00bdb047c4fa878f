"""The teacher cache filled by several ranks (torchrun): chunks are dealt out across ranks.

One part of one entry is `ceil(N / chunk)` chunks (chunk = --batch-size windows, as in a
single-process fill, so every chunk is computed on the same batch of windows either way and the
arrays come out the same). Rank 0 owns the part's preallocated memmaps and `<part>.progress.json`
exactly as a single-process fill does, and writes its own chunks straight into them. Every other
rank writes each finished chunk atomically as its own pair of files,

    <part>.chunks/c<index>.hidden.npy   (with hidden states; written first)
    <part>.chunks/c<index>.forecast.npy (written last: its presence marks the chunk complete)

so ranks never share a file (safe on any shared filesystem across nodes). After a barrier rank 0
copies the chunk files into the memmaps (recording each in progress.json before deleting it),
renames the part into place and writes its record, as a single-process fill does.

Resume: a chunk is done when progress.json lists it or its chunk files are complete, whatever the
number of ranks that ran before; a single process that finds a `<part>.chunks/` directory goes
through here too and merges what the killed job left.
"""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from distilts.utils import atomic_write_bytes, write_json

if TYPE_CHECKING:
    from distilts.distill.cache import _Filler
    from distilts.distill.distributed import Comm

MERGE_WAIT_S = 120.0  # how long rank 0 waits for chunk files written on other nodes to become visible


def chunks_dir(directory: Path, part: str) -> Path:
    return directory / f"{part}.chunks"


def has_chunks(directory: Path, part: str) -> bool:
    """Whether a sharded fill of `part` left chunk files (so a resume must merge them)."""
    return chunks_dir(directory, part).is_dir()


def fill_part(filler: "_Filler", part: str, bar: Any, comm: "Comm") -> dict:
    """Fill one part of the entry with every rank of `comm`; returns the part's record on every rank."""
    from distilts.utils import read_json

    d, s = filler.directory, filler.s
    record_file = d / f"{part}.json"
    windows = filler.dataset.windows(part, s["lookback"], s["horizon"], s["stride"])
    n = len(windows)
    if record_file.exists():  # finished by an earlier run
        bar.add(part, n, n)
        return read_json(record_file)
    progress_file = d / f"{part}.progress.json"
    f_tmp, h_tmp = d / f"{part}.forecast.npy.partial", d / f"{part}.hidden.npy.partial"
    cdir = chunks_dir(d, part)
    plan = None
    if comm.is_main:
        state = filler._resume_state(progress_file, f_tmp, h_tmp, n)
        if state is None:
            state = filler._allocate(f_tmp, h_tmp, n)
            write_json(progress_file, state)
        cdir.mkdir(exist_ok=True)
        done = set(state["done"]) | set(_complete_chunks(cdir, s["hidden"]))
        n_chunks = -(-n // state["chunk_size"])
        plan = {"state": state, "pending": [c for c in range(n_chunks) if c not in done]}
    plan = comm.broadcast(plan)
    state, pending = plan["state"], plan["pending"]
    chunk = state["chunk_size"]
    mine = pending[comm.rank::comm.world]
    bar.add(f"{part} ({comm.world} ranks)" if comm.active else part, n, n - sum(_size(c, chunk, n) for c in pending))
    if comm.is_main:
        _fill_own(filler, windows, part, state, mine, bar, comm.world)
    else:
        for c in mine:
            idx = _index(c, chunk, n)
            _write_chunk(cdir, c, *filler.compute(windows, idx, part, state), s["hidden_dtype"])
    comm.barrier()
    record = None
    if comm.is_main:  # other nodes' files can take a moment to show up on a network filesystem
        _merge(filler, part, state, cdir, wait_s=MERGE_WAIT_S if comm.active else 0.0)
        record = filler.finish(part, state)
    return comm.broadcast(record)


def _fill_own(filler: "_Filler", windows, part: str, state: dict, mine: list[int], bar: Any, world: int) -> None:
    """Rank 0: compute its chunks straight into the part's memmaps, as a single-process fill does."""
    d, n, chunk = filler.directory, state["windows"], state["chunk_size"]
    forecast = np.lib.format.open_memmap(d / f"{part}.forecast.npy.partial", mode="r+")
    hid = np.lib.format.open_memmap(d / f"{part}.hidden.npy.partial", mode="r+") if filler.s["hidden"] else None
    done = set(state["done"])
    for c in mine:
        idx = _index(c, chunk, n)
        f_rows, h_rows = filler.compute(windows, idx, part, state)
        _store(forecast, hid, idx, f_rows, h_rows)
        done.add(c)
        state["done"] = sorted(done)
        write_json(d / f"{part}.progress.json", state)
        bar.advance(len(idx) * world)  # the other ranks advance at about the same pace
    del forecast, hid


def _merge(filler: "_Filler", part: str, state: dict, cdir: Path, wait_s: float = 0.0) -> None:
    """Rank 0: copy the other ranks' chunk files into the memmaps, then delete them (waiting up to
    `wait_s` seconds for files that are not visible yet)."""
    d, n, chunk = filler.directory, state["windows"], state["chunk_size"]
    forecast = np.lib.format.open_memmap(d / f"{part}.forecast.npy.partial", mode="r+")
    hid = np.lib.format.open_memmap(d / f"{part}.hidden.npy.partial", mode="r+") if filler.s["hidden"] else None
    done = set(state["done"])
    deadline = time.monotonic() + wait_s
    while True:
        for c in _complete_chunks(cdir, filler.s["hidden"]):
            if c not in done:
                idx = _index(c, chunk, n)
                f_rows = np.load(_chunk_file(cdir, c, "forecast"))
                h_rows = np.load(_chunk_file(cdir, c, "hidden")) if hid is not None else None
                _store(forecast, hid, idx, f_rows, h_rows)
                done.add(c)
                state["done"] = sorted(done)
                write_json(d / f"{part}.progress.json", state)
            for kind in ("forecast", "hidden"):
                _chunk_file(cdir, c, kind).unlink(missing_ok=True)
        missing = sorted(set(range(-(-n // chunk))) - done)
        if not missing or time.monotonic() >= deadline:
            break
        time.sleep(2.0)
    del forecast, hid
    if missing:
        from distilts.errors import DistiltsError

        raise DistiltsError(f"The sharded teacher cache fill of the {part} part is missing chunks {missing[:8]}"
                            f"{' ...' if len(missing) > 8 else ''} after every rank finished; rerun the same "
                            "command to compute them.")
    with contextlib.suppress(OSError):
        for leftover in cdir.iterdir():  # temp files of a rank killed mid-write
            leftover.unlink()
        cdir.rmdir()


def _store(forecast: np.ndarray, hid: np.ndarray | None, idx: np.ndarray, f_rows: np.ndarray,
           h_rows: np.ndarray | None) -> None:
    forecast[idx[0]: idx[-1] + 1] = f_rows
    forecast.flush()
    if hid is not None:
        hid[idx[0]: idx[-1] + 1] = h_rows
        hid.flush()


def _write_chunk(cdir: Path, c: int, f_rows: np.ndarray, h_rows: np.ndarray | None, hidden_dtype: str | None) -> None:
    """One chunk as .npy files, each via a temp file and an atomic rename; the forecast file last."""
    if h_rows is not None:
        _save_atomic(_chunk_file(cdir, c, "hidden"), np.asarray(h_rows, dtype=hidden_dtype))
    _save_atomic(_chunk_file(cdir, c, "forecast"), np.asarray(f_rows, dtype=np.float32))


def _save_atomic(path: Path, arr: np.ndarray) -> None:
    """One chunk array as a .npy file, written atomically (a killed rank leaves no partial chunk)."""
    buf = io.BytesIO()
    np.save(buf, arr)
    atomic_write_bytes(path, buf.getvalue())


def _chunk_file(cdir: Path, c: int, kind: str) -> Path:
    return cdir / f"c{c:07d}.{kind}.npy"


def _complete_chunks(cdir: Path, hidden: bool) -> list[int]:
    """Indices of chunks whose files are all in place."""
    if not cdir.is_dir():
        return []
    out = []
    for p in cdir.glob("c*.forecast.npy"):
        c = int(p.name[1:8])
        if not hidden or _chunk_file(cdir, c, "hidden").exists():
            out.append(c)
    return sorted(out)


def _index(c: int, chunk: int, n: int) -> np.ndarray:
    return np.arange(c * chunk, min(n, (c + 1) * chunk))


def _size(c: int, chunk: int, n: int) -> int:
    return min(chunk, n - c * chunk)
