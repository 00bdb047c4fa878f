"""An artifact's `manifest.json` (schema: docs/design.md, "Artifact directory"); read via the runtime.

`artifact_manifest` gathers the facts of one compiled artifact (the chosen candidate, its
verification on every architecture, the golden pair, the passes) into `build_manifest`'s form;
`distilts.compile.scratch.Scratch.install` writes it and moves the artifact into place.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distilts import __version__
from distilts.compile import verify
from distilts.compile.backends import runtime_backend
from distilts.compile.backends.onnx import read_opset
from distilts.compile.crossarch import ArchCheck
from distilts.compile.data import AnyCompileData
from distilts.compile.verify import Candidate
from distilts.quantiles import student_levels
from distilts.runtime.arch import host_arch, host_isa
from distilts.runtime.batching import run_file
from distilts.runtime.inputs import Inputs, input_tails, n_rows, take
from distilts.runtime.manifest import (  # one schema: the runtime reads what this writes
    COVARIATE_VERSION,
    FORMAT,
    VERSION,
)
from distilts.targets import CompileJob
from distilts.utils import sha256_file


@dataclass
class CompiledArtifact:
    """What one job produced: the directory, its manifest and a summary for the CLI table."""

    job: CompileJob
    directory: Path
    manifest: dict
    seconds: float

    @property
    def size(self) -> int:
        return sum(m["size"] for m in self.manifest["models"] if m.get("role") in (None, "model", "weights"))


def model_entry(directory: Path, file: str, batch: int | None, role: str | None = None) -> dict[str, Any]:
    """One `models[]` entry with the file's sha256 and size."""
    p = directory / file
    entry: dict[str, Any] = {"file": file, "batch": batch, "sha256": sha256_file(p), "size": p.stat().st_size}
    if role:
        entry["role"] = role
    return entry


def build_manifest(
    *,
    backend: str,
    precision: str,
    models: list[dict],
    config: dict,
    student_dir: Path,
    target: dict | None,
    quantization: dict | None,
    verification: dict,
    golden_in: Inputs,
    golden_out: np.ndarray,
    atol: float,
    rtol: float,
    opset: int | None,
    architectures: dict | None = None,
    golden_by_isa: dict | None = None,
    passes: list[dict] | None = None,
) -> dict[str, Any]:
    """The manifest dict, every field of the schema in order.

    architectures: {arch: {"verified", "isa", errors or "reason", ...}}; golden_by_isa: {isa: output}
    for every other instruction set it was verified on (golden_out is this machine's, `golden.isa`).
    """
    L, H, D = int(config["lookback"]), int(config["horizon"]), len(config["columns"])
    levels = student_levels(config["student"])
    batches = sorted(
        {m["batch"] for m in models if m.get("role") in (None, "model")}, key=lambda b: (b is None, b or 0)
    )
    shape_batch = batches[0] if len(batches) == 1 else None
    cfg_path = Path(student_dir) / "config.json"
    covariates = covariate_block(config, shape_batch)
    golden_input = (
        {k: np.asarray(v, np.float32).tolist() for k, v in golden_in.items()}
        if isinstance(golden_in, dict)
        else np.asarray(golden_in, np.float32).tolist()
    )
    return {
        "format": FORMAT,
        "version": COVARIATE_VERSION if covariates else VERSION,
        "backend": backend,
        "precision": precision,
        "models": models,
        "input": {"name": "x", "shape": [shape_batch, L, D], "dtype": "float32"},
        "output": {
            "name": "y",
            "shape": [shape_batch, D, H, len(levels)] if levels else [shape_batch, H, D],
            "dtype": "float32",
        },
        **(
            {
                "quantiles": {
                    "levels": [float(v) for v in levels],
                    "median_index": [float(v) for v in levels].index(0.5),
                    "layout": "[B, D, H, Q]",
                    "guarantee": "levels never cross (median + cumulative non-negative gaps, in the graph)",
                }
            }
            if levels
            else {}
        ),
        **({"covariates": covariates} if covariates else {}),
        "lookback": L,
        "horizon": H,
        "columns": list(config["columns"]),
        "freq_seconds": config.get("freq_seconds"),
        "normalization": "in-graph",
        "scaler": {
            "mean": [float(v) for v in config["scaler"]["mean"]],
            "std": [float(v) for v in config["scaler"]["std"]],
        },
        "student": {
            "name": config["student"]["name"],
            "param_count": config.get("param_count"),
            "config_sha256": sha256_file(cfg_path),
            "dir": str(Path(student_dir).resolve()),
        },
        "target": target,
        "passes": list(passes or []),  # compile passes applied, in order (docs/compile.md); absent in old manifests
        "quantization": quantization,
        "verification": verification,
        "architectures": architectures or {},
        "golden": {
            "input": golden_input,
            "output": np.asarray(golden_out, np.float32).tolist(),
            "isa": host_isa(),
            "atol": float(atol),
            "rtol": float(rtol),
            "by_isa": golden_by_isa or {},
        },
        "opset": opset,
        "created_by": f"distilts {__version__}",
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def covariate_block(config: dict, batch: int | None) -> dict | None:
    """The manifest's `covariates`: the config's block (columns per role, calendar spec, train-split stats
    per role) plus `inputs`, each covariate input's name, shape and columns in artifact order; None when
    the student takes none (univariate manifests stay as they were)."""
    cov = config.get("covariates")
    if not cov:
        return None
    L, H, D = int(config["lookback"]), int(config["horizon"]), len(config["columns"])
    tails = input_tails(L, H, D, cov)
    inputs = [
        {"name": r, "shape": [batch, *tails[r]], "dtype": "float32", "columns": list(cov[r])} for r in tails if r != "x"
    ]
    return {
        "past": list(cov.get("past") or []),
        "future": list(cov.get("future") or []),
        "static": list(cov.get("static") or []),
        "calendar": cov.get("calendar"),
        "stats": cov.get("stats") or {},
        "inputs": inputs,
    }


def artifact_manifest(
    job: CompileJob,
    directory: Path,
    models: list[dict],
    best: Candidate,
    candidates: list[Candidate],
    config: dict,
    student_dir: Path,
    data: AnyCompileData,
    verify_x: Inputs,
    calib_x: Inputs | None,
    checks: dict[str, ArchCheck],
    passes: list[dict],
    chosen_by: str = "",
) -> dict:
    """The manifest of the chosen candidate `best`, whose files are placed in `directory` as `models`.

    checks: {arch: ArchCheck} of the other architectures it was verified on; passes: every pass
    applied, in order; chosen_by: the rule that chose `best` (distilts.compile.select). The golden pair is the first
    verification window and its forecast here.
    """
    golden_in = take(verify_x, slice(0, 1))
    backend = runtime_backend(job.format)
    model_file = next(m for m in models if m.get("role") in (None, "model"))
    golden_out = run_file(backend, directory / model_file["file"], model_file["batch"], golden_in)
    std = np.asarray(config["scaler"]["std"], np.float64)
    atol_frac, rtol = verify.GOLDEN_TOL[job.precision]
    quant = None
    if job.precision == "int8":
        quant = {
            "method": best.method,
            "isa": job.isa,
            "calib_windows": 0 if calib_x is None else int(n_rows(calib_x)),
            "calib_part": "train",
            "note": best.note,
            "chosen_by": chosen_by,
            "candidates": {c.method: {**c.errors, "latency_ms_b1": c.latency_ms} for c in candidates},
        }
    target = None
    if job.target is not None:
        t = job.target
        target = {"name": t.name, "threads": t.threads, "batch": t.batch, "mode": t.mode, "description": t.description}
        if t.sram_kib and t.flash_kib:
            target.update(sram_bytes=t.sram_kib * 1024, flash_bytes=t.flash_kib * 1024, accelerator=t.accelerator)
    verification = {
        "windows": int(n_rows(verify_x)),
        "part": "test",
        **best.errors,
        "tolerance": dict(verify.TOLERANCES[job.precision]),
        "passed": True,
        "reference": "pytorch student (scaler folded in), normalized-scale errors",
        "data": data.source,
        "data_hash": data.data_hash,
    }
    archs, by_isa = architectures(job, best.errors, checks)
    opset = read_opset(directory / models[0]["file"]) if job.format == "onnx" else None
    manifest = build_manifest(
        backend=backend,
        precision=job.precision,
        models=models,
        config=config,
        student_dir=student_dir,
        target=target,
        quantization=quant,
        verification=verification,
        golden_in=golden_in,
        golden_out=golden_out,
        atol=atol_frac * float(std.max()),
        rtol=rtol,
        opset=opset,
        architectures=archs,
        golden_by_isa=by_isa,
        passes=passes,
    )
    if job.format != backend:
        manifest["format_name"] = job.format  # tflm / ethos-u: a TFLite file LiteRT also loads
    manifest.update(best.facts)  # format-specific entries (tflm / ethos-u: `mcu`, `io`)
    return manifest


def architectures(job: CompileJob, host_errors: dict, checks: dict[str, ArchCheck]) -> tuple[dict, dict]:
    """The manifest's `architectures` (every arch: verified or why not) and `golden.by_isa`: the golden
    outputs of the other verified ISAs (this machine's is `golden.output`)."""
    arch, isa = host_arch(), host_isa()
    archs = {
        arch: {
            "verified": verify.within(host_errors, job.precision),
            "isa": isa,
            "emulated": None,
            **{k: host_errors[k] for k in ("rel_mse", "max_abs_err")},
        }
    }
    by_isa: dict = {}  # this machine's output is golden.output (golden.isa); the others' here
    for a, c in checks.items():
        archs[a] = c.record
        if c.verified and c.golden_out is not None:
            by_isa[c.record.get("isa", a)] = np.asarray(c.golden_out, np.float32).tolist()
    target_arch = getattr(job.target, "arch", None) if job.target is not None else arch
    if target_arch is not None and target_arch not in archs:
        archs[target_arch] = {"verified": False, "reason": "not checked (pass --verify-on " + target_arch + ")"}
    return archs, by_isa
