"""Write an artifact's `manifest.json` (schema: docs/design.md, "Artifact directory"); read via the runtime."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import numpy as np

from distilts import __version__
from distilts.runtime.arch import host_isa
from distilts.runtime.manifest import FORMAT, VERSION  # one schema: the runtime reads what this writes
from distilts.utils import sha256_file, write_json



def model_entry(directory: Path, file: str, batch: int | None, role: str | None = None) -> dict[str, Any]:
    """One `models[]` entry with the file's sha256 and size."""
    p = directory / file
    entry: dict[str, Any] = {"file": file, "batch": batch, "sha256": sha256_file(p), "size": p.stat().st_size}
    if role:
        entry["role"] = role
    return entry


def build_manifest(*, backend: str, precision: str, models: list[dict], config: dict, student_dir: Path,
                   target: dict | None, quantization: dict | None, verification: dict,
                   golden_in: np.ndarray, golden_out: np.ndarray, atol: float, rtol: float,
                   opset: int | None, architectures: dict | None = None,
                   golden_by_isa: dict | None = None,
                   passes: list[dict] | None = None) -> dict[str, Any]:
    """The manifest dict, every field of the schema in order.

    architectures: {arch: {"verified", "isa", errors or "reason", ...}}; golden_by_isa: {isa: output}
    for every other instruction set it was verified on (golden_out is this machine's, `golden.isa`).
    """
    L, H, D = int(config["lookback"]), int(config["horizon"]), len(config["columns"])
    levels = (config["student"].get("kwargs") or {}).get("quantiles")
    batches = sorted({m["batch"] for m in models if m.get("role") != "weights"}, key=lambda b: (b is None, b or 0))
    shape_batch = batches[0] if len(batches) == 1 else None
    cfg_path = Path(student_dir) / "config.json"
    return {
        "format": FORMAT, "version": VERSION,
        "backend": backend, "precision": precision,
        "models": models,
        "input": {"name": "x", "shape": [shape_batch, L, D], "dtype": "float32"},
        "output": {"name": "y", "shape": [shape_batch, H, D, *([len(levels)] if levels else [])], "dtype": "float32"},
        **({"quantiles": {"levels": [float(v) for v in levels], "median_index": [float(v) for v in levels].index(0.5),
                          "guarantee": "levels never cross (median + cumulative non-negative gaps, in the graph)"}}
           if levels else {}),
        "lookback": L, "horizon": H, "columns": list(config["columns"]),
        "freq_seconds": config.get("freq_seconds"),
        "normalization": "in-graph",
        "scaler": {"mean": [float(v) for v in config["scaler"]["mean"]],
                   "std": [float(v) for v in config["scaler"]["std"]]},
        "student": {"name": config["student"]["name"], "param_count": config.get("param_count"),
                    "config_sha256": sha256_file(cfg_path), "dir": str(Path(student_dir).resolve())},
        "target": target,
        "passes": list(passes or []),  # compile passes applied, in order (docs/compile.md); absent in old manifests
        "quantization": quantization,
        "verification": verification,
        "architectures": architectures or {},
        "golden": {"input": np.asarray(golden_in, np.float32).tolist(),
                   "output": np.asarray(golden_out, np.float32).tolist(), "isa": host_isa(),
                   "atol": float(atol), "rtol": float(rtol), "by_isa": golden_by_isa or {}},
        "opset": opset,
        "created_by": f"distilts {__version__}",
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    path = Path(directory) / "manifest.json"
    write_json(path, manifest)
    return path

