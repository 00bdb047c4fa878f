"""Compile one student directory into verified artifacts, one directory per format x precision (x target).

The straight line, per job: load the student -> wrap it once (scaler in the graph) -> apply the module
passes in order, each checked once against the float64 original (distilts.compile.passes) -> export
per backend, as fp32 or as int8 candidates (distilts.compile.backends) -> verify each candidate in its
own runtime on held-out windows (here, and on emulated arm64 when asked: distilts.compile.crossarch)
-> select the candidate to ship (distilts.compile.select) -> write `manifest.json` with a golden pair
(distilts.compile.manifest) -> load the result through `distilts.runtime.Forecaster` (checksums +
golden self-check) -> move the finished directory into place. A failure leaves no half-written artifact.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from distilts.compile import DEFAULT_CALIB_WINDOWS, DEFAULT_VERIFY_WINDOWS, crossarch, select, verify
from distilts.compile.backends import builder, runtime_backend
from distilts.compile.data import AnyCompileData, load_compile_data
from distilts.compile.manifest import CompiledArtifact, artifact_manifest, model_entry
from distilts.compile.passes import apply_passes
from distilts.compile.scratch import Scratch
from distilts.compile.verify import Candidate
from distilts.compile.wrapper import torch_predict, wrap_student
from distilts.data.spec import DataSpec
from distilts.errors import DataError
from distilts.quiet import quiet
from distilts.runtime import Forecaster
from distilts.runtime.backends import BACKENDS
from distilts.runtime.inputs import Inputs, n_rows
from distilts.students import load_student_dir
from distilts.targets import CompileJob


@dataclass
class _Prepared:
    """A job's candidates built and measured here, in its locked scratch dir, not yet chosen or final."""

    job: CompileJob
    scratch: Scratch
    candidates: list[Candidate]
    pending: crossarch.Pending
    t0: float
    records: list[dict]  # module passes applied before export (manifest "passes")


def compile_student(
    student_dir: str | os.PathLike,
    jobs: list[CompileJob],
    out_dir: str | os.PathLike,
    *,
    data: Any = None,
    calib_windows: int = DEFAULT_CALIB_WINDOWS,
    verify_windows: int = DEFAULT_VERIFY_WINDOWS,
    verify_on: tuple[str, ...] = (),
    passes: bool = True,
    log: Callable[[str], None] = lambda s: None,
) -> list[CompiledArtifact]:
    """Build, verify and write every job's artifact under `out_dir`; returns them in job order.

    verify_on: architectures to verify on besides this machine's (an arm64 target always adds its
    own); those jobs are finished together after one emulated run (distilts.compile.crossarch).
    passes: apply the module passes (distilts.compile.passes, e.g. the linear fold) before export;
    the artifact is verified against the original student either way.
    """
    student_dir = Path(student_dir)
    model, config = load_student_dir(student_dir)
    if config.get("covariates"):
        covariate_checks(jobs, verify_on)
        passes = False  # the module passes (linear fold, scaler fold) rewrite the one-input graph only
    wrapper = wrap_student(model, config)
    int8 = any(j.precision == "int8" for j in jobs)
    if int8 and calib_windows < 1:
        raise DataError(
            "int8 needs calibration windows: --calib-windows must be at least 1 (default "
            f"{DEFAULT_CALIB_WINDOWS}); or compile fp32 instead (drop --int8)."
        )
    if verify_windows < 1:
        raise DataError("--verify-windows must be at least 1: every artifact is checked against the student.")
    data = load_compile_data(config, DataSpec.of(data).path)
    verify_x = _held_out(data, verify_windows)
    calib_x = data.windows("train", calib_windows) if int8 else None
    if calib_x is not None and n_rows(calib_x) == 0:
        raise DataError(
            f"The train split of {data.source} has no window of lookback {data.lookback} + horizon "
            f"{data.horizon}, so int8 has no calibration data. Use a longer series or fp32."
        )
    ref = torch_predict(wrapper, verify_x)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    results: dict[int, CompiledArtifact] = {}
    deferred: list[tuple[int, _Prepared]] = []
    modules: dict[str, tuple[nn.Module, list[dict]]] = {}  # precision -> (module to export, pass records)

    def module_for(precision: str) -> tuple[nn.Module, list[dict]]:
        """The wrapped student after the module passes for `precision` (applied and logged once)."""
        if precision not in modules:
            modules[precision] = apply_passes(wrapper, precision, verify_x, enabled=passes)
            for rec in modules[precision][1]:
                log(
                    f"pass {rec['name']} ({rec['scope']}): float64 max abs error {rec['max_abs_err_f64']:.2g}, "
                    f"float32 {rec['max_abs_err_f32']:.2g}"
                )
        return modules[precision]

    try:
        for i, job in enumerate(jobs):
            t0 = time.perf_counter()
            module, records = module_for(job.precision)
            log(
                f"{job.dirname}: exporting {job.format} {job.precision}"
                + (" (dynamic batch)" if job.batches == (None,) else f" at batch {', '.join(map(str, job.batches))}")
            )
            if hasattr(builder(job.format), "compile_job"):  # no runtime backend (C sources): its own checks
                final, manifest = builder(job.format).compile_job(
                    job, model, config, out_dir, student_dir, data, verify_x, ref, log
                )
                results[i] = CompiledArtifact(job, final, manifest, time.perf_counter() - t0)
                continue
            # int8 jobs of the runtime formats also try `int8-storage` of the fp32 module (scaler folded in)
            fp32_module = module_for("fp32")[0] if job.precision == "int8" and job.format in BACKENDS else None
            prep = _prepare_job(
                job, module, records, config, out_dir, verify_x, ref, calib_x, log, t0, verify_on, fp32_module
            )
            if prep.pending.archs:
                deferred.append((i, prep))
            else:
                results[i] = _finish_job(prep, {}, config, student_dir, data, verify_x, calib_x, log)
        checks = (  # arm64 checks: refused earlier for covariate students
            crossarch.check_all([p.pending for _, p in deferred], verify_x, ref, config, log) if deferred else {}
        )
        while deferred:
            i, prep = deferred[0]
            results[i] = _finish_job(
                prep, checks.get(prep.pending.key, {}), config, student_dir, data, verify_x, calib_x, log
            )
            deferred.pop(0)
    finally:
        for _, prep in deferred:
            prep.scratch.discard()
    return [results[i] for i in sorted(results)]


# formats whose artifact maps one raw window through int8 I/O or C sources built for one input
SINGLE_INPUT_FORMATS = {
    "c": "the C artifact's generated code takes one window (no covariate inputs)",
    "tflm": "full-integer int8 folds the target scaler into one int8 input (covariate inputs have no such form)",
    "ethos-u": "full-integer int8 folds the target scaler into one int8 input (covariate inputs have no such form)",
}


def covariate_checks(jobs: list[CompileJob], verify_on: tuple[str, ...]) -> None:
    """Refuse, in one line, the jobs an artifact with covariate inputs cannot have (before any work)."""
    for job in jobs:
        if job.format in SINGLE_INPUT_FORMATS:
            raise DataError(
                f"{job.format}: not built for a student with covariates: {SINGLE_INPUT_FORMATS[job.format]}. "
                "Compile onnx, openvino or tflite (fp32 or int8) instead."
            )


def _held_out(data: AnyCompileData, n: int) -> Inputs:
    """Verification windows: the test split, else validation (never train, which calibrates int8)."""
    for part in ("test", "val"):
        x = data.windows(part, n)
        if n_rows(x):
            return x
    raise DataError(
        f"{data.source} has no test or validation window of lookback {data.lookback} + horizon "
        f"{data.horizon} to verify the artifact on. Pass a longer series with --data."
    )


def _prepare_job(
    job: CompileJob,
    module: nn.Module,
    records: list[dict],
    config: dict,
    out_dir: Path,
    verify_x: Inputs,
    ref: np.ndarray,
    calib_x: Inputs | None,
    log: Callable[[str], None],
    t0: float,
    verify_on: tuple[str, ...],
    fp32_module: nn.Module | None = None,
) -> _Prepared:
    """Export the job's candidates into a locked scratch dir and measure them here (errors; int8: speed)."""
    sc = Scratch.beside(out_dir / job.dirname, log)
    with sc.discarding():
        scratch = sc.path / "_scratch"
        scratch.mkdir()
        with quiet():
            candidates = builder(job.format).build(
                job, module, config, scratch, verify_x, ref, calib_x, fp32_module=fp32_module
            )
            if len(candidates) > 1:
                for c in candidates:
                    f, b = next(iter(c.files.items()))
                    if np.isfinite(c.errors["rel_mse"]):  # (a candidate the runtime cannot run is not timed)
                        c.latency_ms = verify.time_file(runtime_backend(job.format), scratch / f, b, verify_x)
        for c in candidates:
            log(
                f"{job.dirname}: {c.name}: rel-MSE {c.errors['rel_mse']:.3g}, "
                f"max abs {c.errors['max_abs_err']:.3g}"
                + (f", batch-1 call {c.latency_ms:.3f} ms" if c.latency_ms is not None else "")
            )
        archs, required = crossarch.archs_for(job, verify_on)
        pending = crossarch.Pending(
            job.dirname,
            runtime_backend(job.format),
            job.precision,
            {c.name: [(scratch / f, b) for f, b in c.files.items()] for c in candidates},
            archs,
            required,
            {c.name: c.preds for c in candidates},
        )
        return _Prepared(job, sc, candidates, pending, t0, records)


def _finish_job(
    prep: _Prepared,
    checks: dict[str, crossarch.ArchCheck],
    config: dict,
    student_dir: Path,
    data: AnyCompileData,
    verify_x: Inputs,
    calib_x: Inputs | None,
    log: Callable[[str], None] = lambda s: None,
) -> CompiledArtifact:
    """Choose the candidate (on every verified architecture), refuse on a failure, write the manifest,
    self-check and move into place. checks: {candidate: ArchCheck} from the aarch64 run (empty: none)."""
    job = prep.job
    with prep.scratch.discarding() as tmp:
        best, check, rule = select.choose(prep.candidates, checks, job, log)
        scratch = tmp / "_scratch"
        models = _place(best, scratch, tmp, job)
        shutil.rmtree(scratch)
        manifest = artifact_manifest(
            job,
            tmp,
            models,
            best,
            prep.candidates,
            config,
            student_dir,
            data,
            verify_x,
            calib_x,
            {"aarch64": check} if check is not None else {},
            [*prep.records, builder(job.format).EXPORT_PASS],
            chosen_by=rule,
        )
        # checksums + golden self-check through the runtime a device will use, then into place
        final = prep.scratch.install(manifest, check=Forecaster.load)
    return CompiledArtifact(job, final, manifest, time.perf_counter() - prep.t0)


def _place(best: Candidate, scratch: Path, tmp: Path, job: CompileJob) -> list[dict]:
    """Move the chosen candidate's files into the artifact dir under their final names."""
    ext = builder(job.format).EXT
    models = []
    for src, batch in best.files.items():
        name = f"model{ext}" if batch is None else f"model-b{batch}{ext}"
        os.replace(scratch / src, tmp / name)
        models.append(model_entry(tmp, name, batch))
    for src in best.weights:
        name = Path(models[0]["file"]).with_suffix(".bin").name
        os.replace(scratch / src, tmp / name)
        models.append(model_entry(tmp, name, None, role="weights"))
    for src, (name, role) in best.side.items():  # sources, examples, reports: checksummed, not loaded
        os.replace(scratch / src, tmp / name)
        models.append(model_entry(tmp, name, None, role=role))
    return models
