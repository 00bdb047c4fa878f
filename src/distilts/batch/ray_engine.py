"""`distilts forecast --engine ray`: the batch forecast on Ray Data.

The driver reads only the id column of the Parquet file(s) and cuts them into row ranges that hold
whole series (rows of a series are contiguous, as the one-process path requires); Ray Data maps the
ranges through a callable class holding one Forecaster per actor, which reads its rows, forecasts them
with the same code as one process (`batch.iter_forecast_tables`), and `write_parquet` writes the
result. No shuffle: Ray Data's hash shuffle stalls a small cluster whose CPUs the actors hold, and
sorting would lose the row-order checks. Ray is the optional `ray` extra; nothing else imports it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from distilts.batch.panel import BatchReport, iter_forecast_tables, parse_cutoffs
from distilts.data.long import LongColumns, blocks_from_table, changes, column_names
from distilts.errors import DataError, DistiltsError, require

RANGE_ROWS = 1 << 20  # rows per Ray task (whole series; a longer series makes a longer range)


class SeriesForecaster:
    """Ray Data callable class: one Forecaster per actor; each row of a batch names a row range of a file."""

    def __init__(
        self, artifact_dir: str, names: LongColumns, cutoffs: list | None, batch: int, threads: int = 1
    ) -> None:
        from distilts.runtime.forecaster import Forecaster

        self.fc = Forecaster.load(artifact_dir, threads=threads, mode="throughput")
        self.names = names
        self.cutoffs = cutoffs
        self.batch = batch

    def __call__(self, ranges: dict) -> dict:
        import pyarrow as pa

        tables: list = []
        skipped: list[str] = []
        for path, lo, hi in zip(ranges["path"], ranges["lo"], ranges["hi"], strict=False):
            rows = read_rows(str(path), int(lo), int(hi), self.names.names())
            for table, rep in iter_forecast_tables(
                self.fc, blocks_from_table(rows, self.names, str(path)), self.names, self.cutoffs, self.batch
            ):
                tables.append(table)
                skipped.extend(f"{i}: {why}" for i, why in rep.skipped)
        out = pa.concat_tables(tables)
        # the skipped series ride along in one column of the first row (read back by the driver, then dropped)
        note = pa.array(["\n".join(skipped)] + [None] * (out.num_rows - 1), pa.string())
        return out.append_column("_skipped", note)


def read_rows(path: str, lo: int, hi: int, columns: list[str]):
    """Rows [lo, hi) of a Parquet file, reading only the row groups that hold them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    sizes = np.array([pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    groups = [i for i in range(pf.num_row_groups) if starts[i] < hi and starts[i + 1] > lo]
    table = pf.read_row_groups(groups, columns=columns) if groups else pa.table({})
    return table.slice(lo - int(starts[groups[0]]), hi - lo)


def plan_ranges(files: list[Path], id_column: str, target_rows: int = RANGE_ROWS) -> list[dict]:
    """Row ranges of about `target_rows` rows, cut only where the series id changes."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    out: list[dict] = []
    for path in files:
        cuts, last, pos, begin = [], None, 0, 0
        for rb in pq.ParquetFile(path).iter_batches(batch_size=1 << 18, columns=[id_column]):
            ids = rb.column(0)
            if ids.type != "string":
                ids = pc.cast(ids.dictionary_decode() if hasattr(ids, "dictionary_decode") else ids, "string")
            change = changes(pc, ids)
            if last is not None and ids[0].as_py() != last:
                change = np.concatenate([[0], change])
            for c in change + pos:
                if c - begin >= target_rows:
                    cuts.append(int(c))
                    begin = int(c)
            last = ids[-1].as_py()
            pos += rb.num_rows
        bounds = [0, *cuts, pos]
        out.extend(
            {"path": str(path), "lo": a, "hi": b} for a, b in zip(bounds[:-1], bounds[1:], strict=False) if b > a
        )
    return out


def forecast_ray(
    artifact_dir: str,
    data: str | Path,
    out: str | Path,
    columns: LongColumns = LongColumns(),
    cutoffs: Sequence[str] | None = None,
    batch: int = 256,
    address: str | None = None,
    workers: int | None = None,
    threads: int | None = None,
    range_rows: int = RANGE_ROWS,
) -> BatchReport:
    """Forecast every series of long-format Parquet (a file or a directory of files) on Ray; `out` is a directory."""
    ray = require("ray", "ray", "--engine ray")
    require("ray.data", "ray", "--engine ray")
    import pyarrow.parquet as pq

    data, out = Path(data), Path(out)
    files = sorted(data.glob("*.parquet")) if data.is_dir() else [data]
    if not files or any(f.suffix.lower() != ".parquet" or not f.is_file() for f in files):
        raise DataError(
            f"--engine ray reads Parquet files; {data} is not one (or a directory of them). "
            "Convert it, or use --engine local."
        )
    names = columns.resolve(column_names(files[0]), str(data))
    cuts = parse_cutoffs(cutoffs)
    t0 = time.perf_counter()
    assert names.id is not None  # resolve() names every column
    ranges = plan_ranges(files, names.id, range_rows)
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        cpus = float(ray.cluster_resources().get("CPU", 1))
        n = min(workers or max(1, int(cpus)), len(ranges))
        ds = ray.data.from_items(ranges, override_num_blocks=len(ranges))
        ds = ds.map_batches(
            SeriesForecaster,
            fn_constructor_args=(str(Path(artifact_dir).resolve()), names, cuts, batch, threads or 1),
            batch_size=1,
            batch_format="numpy",
            concurrency=n,
            num_cpus=min(1.0, cpus / n),
        )
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            ds.write_parquet(str(tmp))
        except Exception as exc:  # a DataError inside an actor arrives wrapped by Ray
            cause = _distilts_cause(exc)
            if cause is not None:
                raise cause from None
            raise
        skipped = _take_skipped(tmp)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if started:
            ray.shutdown()
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in out.glob("*.parquet"))
    horizon = _horizon(artifact_dir)
    rep = BatchReport(windows=rows // horizon, rows=rows, seconds=time.perf_counter() - t0, skipped=skipped)
    rep.series = len(
        {r for f in out.glob("*.parquet") for r in pq.read_table(f, columns=[names.id]).column(0).unique().to_pylist()}
    )
    return rep


def _take_skipped(directory: Path) -> list[tuple[str, str]]:
    """Read the skipped-series notes out of the written files and rewrite them without that column."""
    import pyarrow.parquet as pq

    skipped: list[tuple[str, str]] = []
    for f in sorted(directory.glob("*.parquet")):
        table = pq.read_table(f)
        if "_skipped" not in table.column_names:
            continue
        for note in table.column("_skipped").drop_null().to_pylist():
            skipped.extend(tuple(line.split(": ", 1)) for line in note.splitlines() if line)
        pq.write_table(table.drop_columns(["_skipped"]), f)
    return skipped


def _horizon(artifact_dir: str) -> int:
    from distilts.runtime.manifest import read_manifest

    return read_manifest(artifact_dir).horizon


def _distilts_cause(exc: BaseException) -> DistiltsError | None:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, DistiltsError):
            return exc
        for attr in ("cause", "__cause__"):
            nxt = getattr(exc, attr, None)
            if isinstance(nxt, BaseException):
                exc = nxt
                break
        else:
            text = str(exc)
            if "DataError" in text:
                return DataError(text.split("DataError:", 1)[-1].strip().splitlines()[0])
            return None
        seen += 1
    return None


class InputsForecaster:
    """Ray Data callable class for inputs already lined up (an artifact with covariates): one Forecaster per
    actor; each batch names rows of the shared input arrays (an object in Ray's store) and gets their forecasts."""

    def __init__(self, artifact_dir: str, inputs_ref, threads: int = 1) -> None:
        import ray

        from distilts.runtime.forecaster import Forecaster

        self.fc = Forecaster.load(artifact_dir, threads=threads, mode="throughput")
        self.inputs = ray.get(inputs_ref[0])

    def __call__(self, batch: dict) -> dict:
        idx = np.asarray(batch["id"], np.int64)
        values, kw = self.inputs
        y = self.fc.predict(values[idx], **{k: v[idx] for k, v in kw.items()})
        return {"id": idx, "y": y.reshape(len(idx), -1)}


def predict_ray(
    artifact_dir: str,
    values: np.ndarray,
    inputs: dict[str, np.ndarray],
    batch: int = 256,
    address: str | None = None,
    workers: int | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """`Forecaster.predict(values, **inputs)` spread over Ray actors in batches of `batch` windows; `[B, H, D]`."""
    ray = require("ray", "ray", "--engine ray")
    require("ray.data", "ray", "--engine ray")
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        n = len(values)
        cpus = float(ray.cluster_resources().get("CPU", 1))
        k = max(1, min(workers or max(1, int(cpus)), -(-n // batch)))
        ref = ray.put((values, inputs))
        ds = ray.data.range(n, override_num_blocks=max(1, -(-n // batch))).map_batches(
            InputsForecaster,
            fn_constructor_args=(str(Path(artifact_dir).resolve()), [ref], threads or 1),
            batch_size=batch,
            batch_format="numpy",
            concurrency=k,
            num_cpus=min(1.0, cpus / k),
        )
        try:
            rows = ds.take_all()
        except Exception as exc:  # a DataError inside an actor arrives wrapped by Ray
            cause = _distilts_cause(exc)
            if cause is not None:
                raise cause from None
            raise
    finally:
        if started:
            ray.shutdown()
    order = np.argsort([r["id"] for r in rows])
    y = np.stack([rows[i]["y"] for i in order])
    return y.reshape(n, -1, values.shape[-1])
