"""Many series in long format (one row per observation), read in bounded memory.

Two column conventions are recognised: `item_id, timestamp, target` (AutoGluon, Chronos'
`predict_df`) and `unique_id, ds, y` (Nixtla); any other names are given with `LongColumns`.
The M4 competition's wide rows (`"V1","V2",...` header, one series per row: id then values,
series of different lengths) are read too. Rows of a series must be contiguous and sorted by time;
each series must have a regular step of its own (series may have different frequencies).

Reading is streamed: CSV through pyarrow's block reader, Parquet row group by row group, and
`iter_blocks` yields blocks of complete series, so memory is bounded by one block plus the
longest series. Numpy and pyarrow only (no pandas): the runtime's batch forecasting uses it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distilts.errors import DataError, require

CONVENTIONS = (("item_id", "timestamp", "target"), ("unique_id", "ds", "y"))
BLOCK_ROWS = 1 << 20  # rows per record batch read from a file (~30 MB; fewer partial backend batches)


@dataclass(frozen=True)
class LongColumns:
    """Names of the id, timestamp and target columns; None means: detect a known convention."""

    id: str | None = None
    timestamp: str | None = None
    target: str | None = None

    def resolve(self, header: list[str], source: str) -> LongColumns:
        """Fill in missing names from a known convention present in `header`; check they exist."""
        conv = next((c for c in CONVENTIONS if c[0] in header), None)
        if conv is None and self.id is None:
            raise DataError(
                f"{source}: no id column. Long-format data needs one column naming the series: "
                f"'item_id' (with 'timestamp', 'target') or 'unique_id' (with 'ds', 'y'); the file has "
                f"{', '.join(header) or 'no columns'}. Name it with --id-column."
            )
        ident, ts, tgt = conv or (None, None, None)
        out = LongColumns(self.id or ident, self.timestamp or ts, self.target or tgt)
        if out.id not in header:
            raise DataError(
                f"{source}: no id column '{out.id}'. Columns are: {', '.join(header)}. "
                "Name the series column with --id-column."
            )
        if out.target not in header:
            raise DataError(
                f"{source}: no target column '{out.target}'. Columns are: {', '.join(header)}. "
                "Name the value column with --target-column."
            )
        if out.timestamp not in header:
            if self.timestamp is not None:
                raise DataError(
                    f"{source}: no timestamp column '{out.timestamp}'. Columns are: "
                    f"{', '.join(header)}. Name it with --timestamp-column."
                )
            out = LongColumns(out.id, None, out.target)  # no timestamps: row order is time order
        return out

    def names(self) -> list[str]:
        return [c for c in (self.id, self.timestamp, self.target) if c is not None]


@dataclass
class SeriesBlock:
    """Complete series: `ids[s]` owns `values[offsets[s]:offsets[s+1]]` (and the same `times`)."""

    ids: list[str]
    offsets: np.ndarray  # int64 [S + 1]
    values: np.ndarray  # float32 [n]
    times: np.ndarray | None  # int64 [n]: seconds since the epoch ("datetime") or plain integers
    time_kind: str | None = None  # "datetime" | "integer" | None (no timestamps)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def steps(self) -> np.ndarray:
        """Each series' regular step (0 for a series of one value or without timestamps)."""
        if self.times is None:
            return np.zeros(len(self.ids), dtype=np.int64)
        starts = self.offsets[:-1]
        ok = self.lengths >= 2
        out = np.zeros(len(self.ids), dtype=np.int64)
        out[ok] = self.times[starts[ok] + 1] - self.times[starts[ok]]
        return out


def detect_layout(path: Path) -> str:
    """ "m4" for the M4 wide-row layout (header V1, V2, ...), else "long"."""
    if path.suffix.lower() not in (".csv", ".txt"):
        return "long"
    with open(path, newline="", encoding="utf-8-sig") as f:
        header = next(csv.reader(f), [])
    return "m4" if len(header) >= 2 and header[0] == "V1" and header[1] == "V2" else "long"


def is_long(path: str | Path | None, columns: LongColumns = LongColumns()) -> bool:
    """True when `path` is long-format or M4 wide-row data (else: the single wide table)."""
    if path is None:
        return False
    path = Path(path)
    if columns.id is not None:
        return True
    if not path.is_file() or path.stat().st_size == 0:
        return False
    if detect_layout(path) == "m4":
        return True
    return any(conv[0] in column_names(path) for conv in CONVENTIONS)


def iter_blocks(
    path: str | Path, columns: LongColumns = LongColumns(), layout: str = "auto", block_rows: int = BLOCK_ROWS
) -> Iterator[SeriesBlock]:
    """Yield blocks of complete, validated series from a long-format CSV/Parquet file or M4 wide rows.

    Raises DataError naming the series and the fix for: an empty file, a missing id/target
    column, non-numeric or missing targets, rows of a series that are not contiguous, unsorted
    or duplicate timestamps, and a step that changes within a series (mixed frequencies or gaps).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Data file not found: {path}. Check the path given to --data.")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty. Long-format data needs a header and one row per observation.")
    if layout == "auto":
        layout = detect_layout(path)
    if layout == "m4":
        yield from _iter_m4(path, block_rows)
        return
    if layout != "long":
        raise DataError(f"Unknown layout '{layout}'. Use auto, long or m4.")
    yield from _Assembler(str(path)).run(*_record_batches(path, columns, block_rows))


def column_names(path: str | Path) -> list[str]:
    """Column names of a CSV or Parquet file (without reading its rows)."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        pq = require("pyarrow.parquet", "parquet", "reading Parquet files")
        return list(pq.ParquetFile(path).schema_arrow.names)
    with open(path, newline="", encoding="utf-8-sig") as f:
        return [h.strip() for h in next(csv.reader(f), [])]


def _record_batches(path: Path, columns: LongColumns, block_rows: int):
    """(resolved columns, time kind, iterator of (ids arrow array, times int64|None, values float32))."""
    pa = require("pyarrow", "parquet", "reading long-format data")
    header = column_names(path)
    if not header:
        raise DataError(f"{path} is empty. Long-format data needs a header and one row per observation.")
    cols = columns.resolve(header, str(path))
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        batches = pf.iter_batches(batch_size=block_rows, columns=cols.names())
    elif path.suffix.lower() in (".csv", ".txt", ".tsv"):
        import pyarrow.csv as pcsv

        types = {cols.id: pa.string(), cols.target: pa.string()}
        try:
            batches = pcsv.open_csv(
                path,
                read_options=pcsv.ReadOptions(block_size=1 << 22),
                parse_options=pcsv.ParseOptions(delimiter="\t" if path.suffix.lower() == ".tsv" else ","),
                convert_options=pcsv.ConvertOptions(
                    include_columns=cols.names(), column_types=types, strings_can_be_null=True
                ),
            )
        except pa.ArrowInvalid as exc:
            raise DataError(f"{path}: cannot read it as CSV ({exc}). Fix the malformed rows.") from None
    else:
        raise DataError(f"{path}: unsupported file type '{path.suffix}'. Use a .csv or .parquet file.")
    return cols, _convert(pa, str(path), cols, batches)


def blocks_from_table(table, columns: LongColumns, source: str = "<table>") -> Iterator[SeriesBlock]:
    """Blocks of complete series from an in-memory pyarrow Table (e.g. a Ray Data batch)."""
    pa = require("pyarrow", "parquet", "reading long-format data")
    cols = columns.resolve(list(table.column_names), source)
    yield from _Assembler(source).run(cols, _convert(pa, source, cols, table.select(cols.names()).to_batches()))


def _convert(pa, source: str, cols: LongColumns, batches):
    import pyarrow.compute as pc

    try:
        for rb in batches:
            if rb.num_rows == 0:
                continue
            ids = rb.column(cols.id)
            if pa.types.is_dictionary(ids.type):
                ids = ids.dictionary_decode()
            if not pa.types.is_string(ids.type) and not pa.types.is_large_string(ids.type):
                ids = pc.cast(ids, pa.string())
            if ids.null_count:
                raise DataError(
                    f"{source}: {ids.null_count} row(s) have no id in column '{cols.id}'. "
                    "Every row needs the id of its series."
                )
            values = _targets(pa, pc, source, cols, ids, rb.column(cols.target))
            times, kind = (
                (None, None) if cols.timestamp is None else _times(pa, pc, source, cols, ids, rb.column(cols.timestamp))
            )
            yield ids, times, values, kind
    except pa.ArrowInvalid as exc:
        raise DataError(f"{source}: cannot read it ({exc}). Fix the malformed rows.") from None


def _targets(pa, pc, source, cols, ids, col) -> np.ndarray:
    if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
        try:
            col = pc.cast(pc.utf8_trim_whitespace(pc.cast(col, pa.string())), pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            first = _first_bad_number(col.to_pylist())
            raise DataError(
                f"{source}: series '{ids[first].as_py()}' has a non-numeric target "
                f"{col[first].as_py()!r} in column '{cols.target}'. Targets must be numbers: clean the column, "
                "or name the right one with --target-column."
            ) from None
    col = pc.cast(col, pa.float32())
    values = None if col.null_count else _numpy(col)
    bad: np.ndarray = np.ones(col.null_count, bool) if values is None else ~np.isfinite(values)
    if values is None or bad.any():
        i = _first_null(pc, col) if values is None else int(np.argmax(bad))
        raise DataError(
            f"{source}: series '{ids[i].as_py()}' has {int(bad.sum())} missing or non-finite target(s) in this "
            f"block (first at its row {i + 1}). Fill or drop them before forecasting (nothing is filled silently)."
        )
    return values


def _first_bad_number(cells: list) -> int:
    for i, c in enumerate(cells):
        if c is None:
            continue
        try:
            float(c)
        except (TypeError, ValueError):
            return i
    return 0


def _times(pa, pc, source, cols, ids, col) -> tuple[np.ndarray, str]:
    t = col.type
    if pa.types.is_integer(t):
        if col.null_count:
            raise DataError(
                f"{source}: series '{ids[_first_null(pc, col)].as_py()}' has a row without a timestamp. "
                "Every row needs one."
            )
        return _numpy(pc.cast(col, pa.int64())), "integer"
    try:
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            col = pc.cast(col, pa.timestamp("s"))
        elif pa.types.is_date(t):
            col = pc.cast(col, pa.timestamp("s"))
        elif pa.types.is_timestamp(t):
            col = pc.cast(col, pa.timestamp("s", tz=t.tz), safe=False)
        else:
            raise pa.ArrowInvalid(f"type {t}")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(
            f"{source}: cannot read column '{cols.timestamp}' as timestamps ({exc}). Use ISO timestamps "
            "such as 2016-07-01 00:00:00, integers, or name another column with --timestamp-column."
        ) from None
    if col.null_count:
        raise DataError(
            f"{source}: series '{ids[_first_null(pc, col)].as_py()}' has a row without a timestamp. "
            "Every row needs one."
        )
    return _numpy(col.cast(pa.int64())), "datetime"


def _numpy(arr) -> np.ndarray:
    """A null-free primitive arrow array as a numpy view of its buffer (arrow's to_numpy imports pandas)."""
    dtype = np.dtype(arr.type.to_pandas_dtype()) if not hasattr(arr.type, "unit") else np.dtype(np.int64)
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)


def arrow_strings(pa, values: list[str]):
    """A list of str as an arrow string array, by buffer (pa.array imports pandas when it is installed)."""
    raw = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(raw) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in raw], out=offsets[1:])
    return pa.Array.from_buffers(
        pa.large_string(), len(raw), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(raw))]
    ).cast(pa.string())


def arrow_array(pa, values: np.ndarray, type_):
    """A numpy array as an arrow array of a primitive type, by buffer (pa.array of numpy imports pandas)."""
    dtype = {pa.float32(): np.float32, pa.float64(): np.float64}.get(type_, np.int64)
    arr = np.ascontiguousarray(values, dtype=dtype)
    return pa.Array.from_buffers(type_, len(arr), [None, pa.py_buffer(arr)])


def _first_null(pc, col) -> int:
    return int(pc.indices_nonzero(col.is_null())[0].as_py())


def changes(pc, ids) -> np.ndarray:
    """Row positions where the id differs from the row before (int64)."""
    if len(ids) < 2:
        return np.zeros(0, dtype=np.int64)
    return _numpy(pc.indices_nonzero(pc.not_equal(ids[1:], ids[:-1]))).astype(np.int64) + 1


class _Assembler:
    """Cuts record batches into complete series (a series may span batches) and validates them."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.seen: set[str] = set()
        self.kind: str | None = None

    def run(self, cols: LongColumns, batches) -> Iterator[SeriesBlock]:
        """Blocks of complete series from (ids, times, values, time kind) record batches."""
        self.cols = cols
        pend_id: str | None = None
        pend_v: list[np.ndarray] = []
        pend_t: list[np.ndarray] = []
        any_rows = False
        import pyarrow as pa
        import pyarrow.compute as pc

        for ids, times, values, kind in batches:
            any_rows = True
            self.kind = kind
            n = len(values)
            change = changes(pc, ids)
            starts = np.concatenate([[0], change]).astype(np.int64)
            seg_ids = ids.take(arrow_array(pa, starts, pa.int64())).to_pylist()
            bounds = np.concatenate([starts, [n]])
            out_ids: list[str] = []
            out_v: list[np.ndarray] = []
            out_t: list[np.ndarray] = []
            out_len: list[int] = []
            first = 0
            if pend_id is not None and seg_ids[0] == pend_id:  # the pending series continues
                pend_v.append(values[: bounds[1]])
                if times is not None:
                    pend_t.append(times[: bounds[1]])
                first = 1
            if first < len(seg_ids) and pend_id is not None:  # the pending series is complete
                out_ids.append(pend_id)
                out_v.extend(pend_v)
                out_t.extend(pend_t)
                out_len.append(sum(len(v) for v in pend_v))
                pend_id, pend_v, pend_t = None, [], []
            if first < len(seg_ids):
                last = len(seg_ids) - 1
                lo, hi = int(bounds[first]), int(bounds[last])
                out_ids.extend(seg_ids[first:last])
                out_v.append(values[lo:hi])
                if times is not None:
                    out_t.append(times[lo:hi])
                out_len.extend(np.diff(bounds[first : last + 1]).tolist())
                pend_id = seg_ids[last]
                pend_v = [values[hi:]]
                pend_t = [times[hi:]] if times is not None else []
            if out_ids:
                yield self._block(out_ids, out_len, out_v, out_t if times is not None else None)
        if pend_id is not None:
            yield self._block([pend_id], [sum(len(v) for v in pend_v)], pend_v, pend_t or None)
        if not any_rows:
            raise DataError(f"{self.source} has a header but no rows. Long-format data needs one row per observation.")

    def _block(self, ids, lengths, vals, times) -> SeriesBlock:
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        block = SeriesBlock(
            list(ids),
            offsets,
            np.concatenate(vals).astype(np.float32, copy=False),
            None if times is None else np.concatenate(times),
            self.kind,
        )
        for sid in ids:
            if sid in self.seen:
                raise DataError(
                    f"{self.source}: the rows of series '{sid}' are not contiguous (it appears again after other "
                    "series). Sort the file by id, then timestamp."
                )
            self.seen.add(sid)
        if block.times is not None:
            check_times(block, self.source, self.cols.timestamp)
        return block


def check_times(block: SeriesBlock, source: str, ts_name: str | None) -> None:
    """Per series: strictly increasing timestamps with one regular step (vectorized over the block)."""
    t = block.times
    if t is None or len(t) < 2:
        return
    d = np.diff(t)
    series_of = np.repeat(np.arange(len(block.ids)), block.lengths)
    inner = series_of[1:] == series_of[:-1]
    step = block.steps()[series_of[1:]]
    for bad, what, fix in (
        (inner & (d == 0), "duplicate timestamp", "Remove or aggregate the duplicate rows."),
        (inner & (d < 0), "rows out of time order", "Sort the file by id, then timestamp."),
        (
            inner & (d != step),
            "a step that changes within the series (mixed frequencies or a gap)",
            "Resample the series to one regular frequency and fill its gaps.",
        ),
    ):
        if bad.any():
            i = int(np.argmax(bad))
            sid = block.ids[series_of[i]]
            a, b = _fmt_time(t[i], block.time_kind), _fmt_time(t[i + 1], block.time_kind)
            raise DataError(
                f"{source}: series '{sid}' has {what} in column '{ts_name}' ({a} then {b}; "
                f"{int(bad.sum())} such place(s) in this block). {fix}"
            )


def _fmt_time(v: int, kind: str | None) -> str:
    return str(np.datetime64(int(v), "s")).replace("T", " ") if kind == "datetime" else str(int(v))


def _iter_m4(path: Path, block_rows: int) -> Iterator[SeriesBlock]:
    """M4 wide rows: `"id","v1","v2",...` with trailing empty cells for shorter series."""
    ids: list[str] = []
    vals: list[np.ndarray] = []
    rows = 0
    seen: set[str] = set()
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        next(reader, None)
        for r, row in enumerate(reader, start=2):
            if not row or not row[0].strip():
                continue
            sid = row[0].strip()
            cells = [c for c in row[1:] if c.strip() != ""]
            try:
                v = np.array(cells, dtype=np.float64).astype(np.float32)
            except ValueError:
                bad = next(c for c in cells if not _is_number(c))
                raise DataError(
                    f"{path}, row {r}: series '{sid}' has a non-numeric value {bad!r}. "
                    "M4 wide rows hold the id then numbers only."
                ) from None
            if not np.isfinite(v).all() or not len(v):
                raise DataError(f"{path}, row {r}: series '{sid}' has no values or non-finite ones. Clean the row.")
            if sid in seen:
                raise DataError(
                    f"{path}: series '{sid}' appears in two rows (again at row {r}). Keep one row per series."
                )
            seen.add(sid)
            ids.append(sid)
            vals.append(v)
            rows += len(v)
            if rows >= block_rows:
                yield _m4_block(ids, vals)
                ids, vals, rows = [], [], 0
    if ids:
        yield _m4_block(ids, vals)
    elif not seen:
        raise DataError(f"{path} has a header but no series rows.")


def _m4_block(ids: list[str], vals: list[np.ndarray]) -> SeriesBlock:
    offsets = np.concatenate([[0], np.cumsum([len(v) for v in vals])]).astype(np.int64)
    return SeriesBlock(ids, offsets, np.concatenate(vals), None)


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False
