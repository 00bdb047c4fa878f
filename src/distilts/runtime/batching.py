"""Windows to calls: fixed-batch files are padded with copies of the last window, large batches chunked.

One padding rule for every caller: the Forecaster (`plan_chunks` + `run_padded`), the compile-time
verification and the emulated device (`run_file`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distilts.runtime.backends import Session, open_session
from distilts.runtime.inputs import Inputs, as_float32, n_rows, pad_rows, take

MAX_DYNAMIC_BATCH = 1024  # dynamic-batch models still get chunks of at most this many windows
FILE_CHUNK = 256  # windows per call of a dynamic-batch file in run_file


def run_padded(sess: Session, x: Inputs) -> np.ndarray:
    """Forecasts of `x [n, L, D]` (or named inputs, distilts.runtime.inputs; n <= a fixed batch) from one call,
    padding up to the session's fixed batch."""
    n = n_rows(x)
    if sess.batch is not None and n < sess.batch:
        x = pad_rows(x, sess.batch)
    y = sess.run(as_float32(x))
    return np.asarray(y, dtype=np.float32)[:n]


def plan_chunks(n: int, batches: list[int | None]) -> list[tuple[int, int, int | None]]:
    """Split n windows into (lo, hi, batch) chunks over the available batch sizes.

    A dynamic model (None) takes everything in chunks of MAX_DYNAMIC_BATCH. Otherwise the largest
    fixed batch that fits is used greedily; a remainder smaller than every batch is padded up to the
    smallest batch that holds it.
    """
    chunks: list[tuple[int, int, int | None]] = []
    if None in batches:
        for lo in range(0, n, MAX_DYNAMIC_BATCH):
            chunks.append((lo, min(n, lo + MAX_DYNAMIC_BATCH), None))
        return chunks
    fixed = sorted(b for b in batches if b is not None)
    lo = 0
    while lo < n:
        rest = n - lo
        fit = [b for b in fixed if b <= rest]
        b = fit[-1] if fit else min(b for b in fixed if b >= rest)
        hi = lo + min(b, rest)
        chunks.append((lo, hi, b))
        lo = hi
    return chunks


def run_file(backend: str, path: Path, batch: int | None, x: Inputs, threads: int | None = None) -> np.ndarray:
    """Forecasts of one model file for raw windows `x [N, L, D]` or named inputs (fixed batches padded,
    dynamic in chunks)."""
    sess = open_session(backend, path, batch=batch, input_name="x", output_name="y", threads=threads)
    step = batch or FILE_CHUNK
    n = n_rows(x)
    return np.concatenate([run_padded(sess, take(x, slice(lo, lo + step))) for lo in range(0, n, step)])
