"""Run a benchmark's measuring `main(argv)` with the harness's parameters and turn what it measured into records.

The larger benchmarks keep one `main(argv)` each (parsing their options, measuring, writing their
tables through `write_outputs`); the harness calls it with the preset's parameters as options and
collects the payload and Markdown it would have written. Each row of the payload becomes records: its
text fields are the record's parameters, each number one record (metric = the field's name).
"""

from __future__ import annotations

import contextlib
import sys
from types import ModuleType
from typing import Any, Iterator

from benchmarks.harness import Context, Record

UNITS = (("_ms", "ms"), ("_us", "us"), ("_s", "s"), ("_mb", "MB"), ("_mib", "MiB"), ("_kb", "KB"), ("_bytes", "B"),
         ("windows_per_s", "windows/s"), ("req_s", "req/s"), ("_wps", "windows/s"), ("_pct", "%"))


def to_argv(params: dict[str, Any]) -> list[str]:
    """{"epochs": 2, "quick": True, "seeds": [0, 1], "x": None} -> ["--epochs", "2", "--quick", "--seeds", "0", "1"];
    the key "_args" holds positional arguments."""
    argv = [str(a) for a in params.get("_args", [])]
    for key, value in params.items():
        if key == "_args" or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return argv


@contextlib.contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    saved = sys.argv
    sys.argv = ["benchmark", *argv]
    try:
        yield
    finally:
        sys.argv = saved


def call_main(module: ModuleType, params: dict[str, Any], takes_argv: bool = True) -> tuple[Any, str | None]:
    """(payload, markdown) of `module.main` run with `params` as options (what it passed to write_outputs;
    else what main returned, without Markdown)."""
    captured: list[tuple[Any, str]] = []
    saved = getattr(module, "write_outputs", None)
    module.write_outputs = lambda payload, markdown, *paths: captured.append((payload, markdown))  # type: ignore[attr-defined]
    argv = to_argv(params)
    try:
        if takes_argv:
            returned = module.main(argv)
        else:
            with _argv(argv):
                returned = module.main()
    finally:
        if saved is not None:
            module.write_outputs = saved  # type: ignore[attr-defined]
    return captured[-1] if captured else (returned, None)


def unit_of(metric: str) -> str:
    for suffix, unit in UNITS:
        if metric.endswith(suffix):
            return unit
    return ""


def rows_records(ctx: Context, rows: list[dict[str, Any]], common: dict[str, Any] | None = None) -> list[Record]:
    """One record per number of each row; the row's text/bool fields (and `common`) are its parameters."""
    out = []
    for row in rows:
        params = {**(common or {}), **{k: v for k, v in row.items()
                                       if isinstance(v, (str, bool)) or v is None}}
        for key, value in row.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out.append(ctx.record(key, value, unit_of(key), params))
    return out


def payload_records(ctx: Context, payload: Any) -> list[Record]:
    """Records of every table (list of row dicts) in a payload, each row's numbers one record; top-level
    numbers of the payload become records too."""
    out: list[Record] = []
    if not isinstance(payload, dict):
        return out

    def walk(obj: Any, where: str) -> None:
        if isinstance(obj, list) and obj and all(isinstance(r, dict) for r in obj):
            out.extend(rows_records(ctx, [_flat(r) for r in obj], {"table": where}))
        elif isinstance(obj, dict):
            numbers = {k: v for k, v in obj.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            if numbers:
                out.extend(rows_records(ctx, [numbers], {"table": where or "summary"}))
            for k, v in obj.items():
                if k not in ("machine", "args", "settings") and isinstance(v, (list, dict)):
                    walk(v, f"{where}.{k}" if where else k)

    walk(payload, "")
    return out


def _flat(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts of a row flattened to `a.b` keys (lists dropped)."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif not isinstance(v, list):
            out[f"{prefix}{k}"] = v
    return out


def run_main(ctx: Context, module: ModuleType, params: dict[str, Any], takes_argv: bool = True) -> list[Record]:
    """`call_main`, its Markdown kept for RESULTS.md, its payload as records."""
    payload, markdown = call_main(module, params, takes_argv)
    if markdown:
        ctx.extra["markdown"] = markdown
    records = payload_records(ctx, payload)
    if not records:
        raise RuntimeError(f"{module.__name__} measured nothing with {params}")
    return records
