"""What a figure was measured on and with which code: machine and commit info of every record."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("distilts", "numpy", "torch", "onnxruntime", "openvino", "ai-edge-litert", "tflite-micro")


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python and the versions of the libraries that time or compute."""
    info: dict[str, Any] = {"node": platform.node(), "cpu": _cpu_model(), "cores": os.cpu_count(),
                            "machine": platform.machine(), "os": platform.platform(),
                            "python": platform.python_version(), "mem_gib": _mem_gib(), "load_1m": _load()}
    info["libraries"] = {lib: _version(lib) for lib in LIBRARIES}
    return info


def commit_info() -> dict[str, Any]:
    """{id, dirty, branch} of the repository the benchmark ran from (id None outside git)."""
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"id": git("rev-parse", "--short", "HEAD"), "dirty": bool(status), "branch": git("rev-parse", "--abbrev-ref", "HEAD")}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_gib() -> float | None:
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        return round(kb / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def describe(m: dict[str, Any]) -> str:
    """One line for a table's caption: '2 cores, AMD EPYC ..., 23.4 GiB, Python 3.11.7, load 1.9'."""
    return (f"{m.get('cores')} cores, {m.get('cpu')}, {m.get('mem_gib')} GiB, Python {m.get('python')}, "
            f"load {m.get('load_1m')} at start")
