"""Shared helpers of the benchmark scripts: machine info, timed subprocesses, tables, output files."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[2]
DISTILTS = [sys.executable, "-m", "distilts.cli"]


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "python": platform.python_version(), "platform": platform.platform(), "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "processor": _cpu_model(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = bool(torch.cuda.is_available())
    except ImportError:
        pass
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def run_timed(cmd: Sequence[str], log: Path | None = None, env: dict | None = None) -> tuple[float, str]:
    """Run `cmd`; return (wall seconds, stdout). Raises RuntimeError with the stderr tail on failure."""
    t0 = time.perf_counter()
    res = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"$ {' '.join(map(str, cmd))}\n# exit {res.returncode}, {wall:.1f} s\n{res.stdout}\n{res.stderr}\n")
    if res.returncode != 0:
        tail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"command failed ({res.returncode}): {' '.join(map(str, cmd))}\n{tail}")
    return wall, res.stdout


def fmt(value: Any, digits: int = 3) -> str:
    """Cell text: floats to `digits` significant decimals, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:  # NaN
            return "nan"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.1f}"
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], digits: int = 3) -> str:
    """A GitHub Markdown table of `rows` with `columns` = [(key, header), ...]."""
    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|"
    body = ["| " + " | ".join(fmt(r.get(k), digits) for k, _ in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def text_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], digits: int = 3) -> str:
    """The same table aligned for a terminal."""
    cells = [[h for _, h in columns]] + [[fmt(r.get(k), digits) for k, _ in columns] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_outputs(payload: dict, markdown: str, json_path: str | Path, md_path: str | Path) -> None:
    """Write the JSON record and the Markdown report (atomically)."""
    from distilts.utils import atomic_write_text

    atomic_write_text(json_path, json.dumps(payload, indent=2, default=_default) + "\n")
    atomic_write_text(md_path, markdown.rstrip() + "\n")


def _default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o).__name__)
