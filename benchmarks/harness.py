"""The benchmark harness: what a benchmark is, the record it returns, and where records go.

A benchmark is one module of `benchmarks/suite/` (its name is the module's name) with
- a docstring whose first line is its title (the rest says what it measures and how);
- `PRESETS = {"quick": {...}, "full": {...}}`: the parameters of each preset (quick: under 2 minutes here);
- `run(ctx, **params) -> Iterable[Record]`: measures and yields records (`ctx.record(...)`);
- optionally `report(records) -> str`: its section of RESULTS.md (Markdown); the default is one table of
  every record.

The shape follows asv (benchmarks as modules with parameters, fixtures built once and cached, results per
machine and commit) and the record follows pytest-benchmark's JSON (machine info, commit info, stats with
median/iqr/min/max/mean); docs/benchmarks.md says why neither is used as is. Timing goes through
`distilts.profile.timing` only.

Records of a run are written to `benchmarks/results/<name>.<preset>.json` (atomically; the latest run of
each preset is kept, git keeps the history); `python -m benchmarks report` renders RESULTS.md from them.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import inspect
import json
import pkgutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable

from distilts.utils import atomic_write_text

from benchmarks import machine
from benchmarks.fixtures import Fixtures

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SUITE = "benchmarks.suite"
PRESETS = ("quick", "full")
SCHEMA = 1


@dataclass
class Record:
    """One measured figure: the record schema of every benchmark (docs/benchmarks.md)."""

    benchmark: str
    params: dict[str, Any]
    metric: str
    value: float | int | str | bool | None
    unit: str
    machine: dict[str, Any]
    commit: dict[str, Any]
    date: str
    preset: str
    stats: dict[str, Any] | None = None  # timing spread (distilts.profile.timing.Timing.summary()) and the like
    note: str | None = None
    schema: int = SCHEMA


class BenchmarkError(RuntimeError):
    """A benchmark that cannot run here (missing data, tool or extra): the message says what to do."""


@dataclass
class Context:
    """What a running benchmark gets: its name and preset, the cached fixtures, a log and `record(...)`."""

    name: str
    preset: str
    fixtures: Fixtures
    log: Callable[[str], None] = print
    extra: dict[str, Any] = field(default_factory=dict)  # saved with the run (e.g. the benchmark's own Markdown)
    _machine: dict[str, Any] = field(default_factory=machine.machine_info)
    _commit: dict[str, Any] = field(default_factory=machine.commit_info)

    def record(self, metric: str, value: Any, unit: str, params: dict[str, Any] | None = None,
               stats: dict[str, Any] | None = None, note: str | None = None) -> Record:
        """A record of this run (machine, commit and date filled in)."""
        return Record(self.name, dict(params or {}), metric, _plain(value), unit, self._machine, self._commit,
                      _now(), self.preset, _plain(stats), note)


def names() -> list[str]:
    """Every benchmark in benchmarks/suite/, sorted."""
    pkg = importlib.import_module(SUITE)
    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def load(name: str) -> ModuleType:
    """The benchmark module `name` (BenchmarkError listing the valid names)."""
    if name not in names():
        raise BenchmarkError(f"no benchmark named {name!r}; `python -m benchmarks list` names them: {', '.join(names())}")
    module = importlib.import_module(f"{SUITE}.{name}")
    missing = [a for a in ("PRESETS", "run") if not hasattr(module, a)]
    if missing or set(module.PRESETS) != set(PRESETS):
        raise BenchmarkError(f"benchmarks/suite/{name}.py must define PRESETS with {PRESETS} and run(ctx, **params)")
    return module


def title(module: ModuleType) -> str:
    """The first paragraph of the benchmark's docstring, on one line."""
    first = (module.__doc__ or module.__name__).strip().split("\n\n")[0]
    return " ".join(first.split()).rstrip(".")


def command(name: str, preset: str, overrides: dict[str, Any] | None = None) -> str:
    """The command line that produces a run's records."""
    extra = "".join(f" --set {k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in (overrides or {}).items())
    return f"python -m benchmarks run {name} --preset {preset}{extra}"


def run(name: str, preset: str = "quick", overrides: dict[str, Any] | None = None,
        log: Callable[[str], None] = print, write: bool = True) -> list[Record]:
    """Run one benchmark at a preset (parameters overridden by `overrides`); write and return its records."""
    module = load(name)
    params = {**module.PRESETS[preset], **(overrides or {})}
    sig = inspect.signature(module.run)
    open_ended = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())  # a script's options: any --set
    unknown = set(overrides or {}) - set(module.PRESETS[preset]) - (set() if open_ended else set(sig.parameters))
    if unknown and not open_ended:
        raise BenchmarkError(f"{name} has no parameter {sorted(unknown)}; its parameters: {sorted(module.PRESETS[preset])}")
    ctx = Context(name, preset, Fixtures(log=log), log)
    t0 = time.perf_counter()
    records = list(module.run(ctx, **params))
    if write:
        save(name, preset, records, {"command": command(name, preset, overrides), "params": params,
                                     "duration_s": round(time.perf_counter() - t0, 1), **ctx.extra})
    return records


def results_path(name: str, preset: str) -> Path:
    return RESULTS / f"{name}.{preset}.json"


def save(name: str, preset: str, records: list[Record], run_info: dict[str, Any]) -> Path:
    """Write one run's records (atomically) to benchmarks/results/<name>.<preset>.json."""
    path = results_path(name, preset)
    payload = {"benchmark": name, "preset": preset, "schema": SCHEMA, **run_info,
               "records": [asdict(r) for r in records]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(payload, indent=1, sort_keys=False) + "\n")
    return path


def read(name: str, preset: str) -> dict[str, Any] | None:
    """A stored run (None when that preset never ran); records checked against the schema."""
    path = results_path(name, preset)
    if not path.exists():
        return None
    payload = json.loads(path.read_text())
    for r in payload["records"]:
        validate(r)
    return payload


def latest(name: str) -> dict[str, Any] | None:
    """The run RESULTS.md shows: the full preset's if it ran, else the quick one's."""
    return read(name, "full") or read(name, "quick")


FIELDS = {"benchmark": str, "params": dict, "metric": str, "unit": str, "machine": dict, "commit": dict,
          "date": str, "preset": str}


def validate(record: dict[str, Any]) -> None:
    """Raise BenchmarkError unless `record` has the schema's fields with their types."""
    for key, typ in FIELDS.items():
        if not isinstance(record.get(key), typ):
            raise BenchmarkError(f"record {record.get('benchmark')}/{record.get('metric')}: field {key!r} must be "
                                 f"{typ.__name__}, got {type(record.get(key)).__name__}")
    if "value" not in record:
        raise BenchmarkError(f"record {record['benchmark']}/{record['metric']} has no value")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _plain(value: Any) -> Any:
    """numpy scalars/arrays and Paths as JSON values."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def records_of(payload: dict[str, Any]) -> Iterable[dict[str, Any]]:
    return payload.get("records", [])
