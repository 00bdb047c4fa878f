"""Compile one student directory into verified artifacts, one directory per format x precision (x target).

For each job: export (fp32) or export + quantize candidates (int8), run every candidate in its own
runtime on held-out test windows, keep the int8 candidate with the smallest error, check it against
the documented tolerance, write `manifest.json` with a golden input/output pair, load the result
through `distilts.runtime.Forecaster` (checksums + golden self-check) and only then move the finished
directory into place. A failure leaves no half-written artifact.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from distilts.compile import DEFAULT_CALIB_WINDOWS, DEFAULT_VERIFY_WINDOWS
from distilts.errors import DataError
from distilts.targets import CompileJob


@dataclass
class CompiledArtifact:
    """What one job produced: the directory, its manifest and a summary for the CLI table."""

    job: CompileJob
    directory: Path
    manifest: dict
    seconds: float

    @property
    def size(self) -> int:
        return sum(m["size"] for m in self.manifest["models"])


@dataclass
class _Built:
    """A candidate inside the scratch directory: its files (name -> batch), how it was made, its errors."""

    files: dict[str, int | None]
    method: str | None
    note: str | None
    errors: dict[str, float]
    weights: list[str] = field(default_factory=list)  # side files (OpenVINO .bin)
    preds: np.ndarray | None = None  # forecasts of the verification windows here (first file)
    latency_ms: float | None = None  # median batch-1 call here, 1 thread (first file; int8 candidates only)


def compile_student(student_dir: str | os.PathLike, jobs: list[CompileJob], out_dir: str | os.PathLike, *,
                    data_path: str | None = None, calib_windows: int = DEFAULT_CALIB_WINDOWS,
                    verify_windows: int = DEFAULT_VERIFY_WINDOWS, verify_on: tuple[str, ...] = (),
                    passes: bool = True, log: Callable[[str], None] = lambda s: None) -> list[CompiledArtifact]:
    """Build, verify and write every job's artifact under `out_dir`; returns them in job order.

    verify_on: architectures to verify on besides this machine's (an arm64 target always adds its
    own); those jobs are finished together after one emulated run (distilts.compile.crossarch).
    passes: apply the module passes (distilts.compile.passes, e.g. the linear fold) before export;
    the artifact is verified against the original student either way.
    """
    from distilts.compile.data import load_compile_data
    from distilts.compile.passes import module_for
    from distilts.compile.wrapper import torch_predict, wrap_student
    from distilts.students import load_student_dir

    student_dir = Path(student_dir)
    model, config = load_student_dir(student_dir)
    wrapper = wrap_student(model, config)
    if any(j.precision == "int8" for j in jobs) and calib_windows < 1:
        raise DataError("int8 needs calibration windows: --calib-windows must be at least 1 (default "
                        f"{DEFAULT_CALIB_WINDOWS}); or compile fp32 instead (drop --int8).")
    if verify_windows < 1:
        raise DataError("--verify-windows must be at least 1: every artifact is checked against the student.")
    data = load_compile_data(config, data_path)
    verify_x = _held_out(data, verify_windows)
    calib_x = data.windows("train", calib_windows) if any(j.precision == "int8" for j in jobs) else None
    if calib_x is not None and len(calib_x) == 0:
        raise DataError(f"The train split of {data.source} has no window of lookback {data.lookback} + horizon "
                        f"{data.horizon}, so int8 has no calibration data. Use a longer series or fp32.")
    ref = torch_predict(wrapper, verify_x)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from distilts.compile import crossarch

    results: dict[int, CompiledArtifact] = {}
    deferred: list[tuple[int, _Prepared]] = []
    modules: dict[str, tuple] = {}  # precision -> (module to export, module pass records)
    try:
        for i, job in enumerate(jobs):
            t0 = time.perf_counter()
            if job.precision not in modules:
                modules[job.precision] = module_for(model, config, job.precision, verify_x, enabled=passes)
                for rec in modules[job.precision][1]:
                    log(f"pass {rec['name']} ({rec['scope']}): float64 max abs error {rec['max_abs_err_f64']:.2g}, "
                        f"float32 {rec['max_abs_err_f32']:.2g}")
            module, records = modules[job.precision]
            log(f"{job.dirname}: exporting {job.format} {job.precision}"
                + (f" at batch {', '.join(map(str, job.batches))}" if job.format == "tflite" else " (dynamic batch)"))
            prep = _prepare_job(job, module, records, config, out_dir, verify_x, ref, calib_x, log, t0, verify_on)
            if prep.pending.archs:
                deferred.append((i, prep))
            else:
                results[i] = _finish_job(prep, {}, config, student_dir, data, verify_x, calib_x, log)
        checks = crossarch.check_all([p.pending for _, p in deferred], verify_x, ref, config, log)
        while deferred:
            i, prep = deferred[0]
            results[i] = _finish_job(prep, checks.get(prep.pending.key, {}), config, student_dir, data, verify_x,
                                     calib_x, log)
            deferred.pop(0)
    finally:
        for _, prep in deferred:
            prep.scratch.discard()
    return [results[i] for i in sorted(results)]


def _held_out(data, n: int) -> np.ndarray:
    """Verification windows: the test split, else validation (never train, which calibrates int8)."""
    for part in ("test", "val"):
        x = data.windows(part, n)
        if len(x):
            return x
    raise DataError(f"{data.source} has no test or validation window of lookback {data.lookback} + horizon "
                    f"{data.horizon} to verify the artifact on. Pass a longer series with --data.")


@dataclass
class _Prepared:
    """A job's candidates built and measured here, in its locked scratch dir, not yet chosen or final."""

    job: CompileJob
    scratch: object  # distilts.compile.scratch.Scratch
    final: Path
    candidates: list[_Built]
    pending: object  # distilts.compile.crossarch.Pending
    t0: float
    records: list[dict]  # module passes applied before export (manifest "passes")


def _prepare_job(job: CompileJob, wrapper, records: list[dict], config: dict, out_dir: Path, verify_x: np.ndarray,
                 ref: np.ndarray, calib_x: np.ndarray | None, log, t0: float, verify_on: tuple[str, ...]) -> _Prepared:
    from distilts.compile import crossarch
    from distilts.compile.scratch import Scratch, clean_stale

    final = out_dir / job.dirname
    clean_stale(final, log)
    sc = Scratch(final)
    try:
        scratch = sc.path / "_scratch"
        scratch.mkdir()
        builder = {"onnx": _build_onnx, "openvino": _build_openvino, "tflite": _build_tflite}[job.format]
        from distilts.quiet import quiet

        with quiet():
            candidates = builder(job, wrapper, config, scratch, verify_x, ref, calib_x)
        if len(candidates) > 1:
            from distilts.compile import verify

            with quiet():
                for c in candidates:
                    f, b = next(iter(c.files.items()))
                    c.latency_ms = verify.time_file(job.format, scratch / f, b, verify_x)
        for c in candidates:
            log(f"{job.dirname}: {c.method or 'fp32'}: rel-MSE {c.errors['rel_mse']:.3g}, "
                f"max abs {c.errors['max_abs_err']:.3g}"
                + (f", batch-1 call {c.latency_ms:.3f} ms" if c.latency_ms is not None else ""))
        archs, required = crossarch.archs_for(job, verify_on)
        pending = crossarch.Pending(job.dirname, job.format, job.precision,
                                    {c.method or "fp32": [(scratch / f, b) for f, b in c.files.items()]
                                     for c in candidates}, archs, required,
                                    {c.method or "fp32": c.preds for c in candidates})
        return _Prepared(job, sc, final, candidates, pending, t0, records)
    except BaseException:
        sc.discard()
        raise


def _finish_job(prep: _Prepared, checks: dict, config: dict, student_dir: Path, data, verify_x: np.ndarray,
                calib_x: np.ndarray | None, log=lambda s: None) -> CompiledArtifact:
    """Choose the candidate (on every verified architecture), refuse on a failure, write the manifest,
    self-check and move into place. checks: {candidate: ArchCheck} from the aarch64 run (empty: none)."""
    from distilts.compile import crossarch
    from distilts.utils import replace_dir

    job, tmp = prep.job, prep.scratch.path
    try:
        best, check = crossarch.choose(prep.candidates, checks, job, log)
        scratch = tmp / "_scratch"
        models = _place(best, scratch, tmp, job)
        shutil.rmtree(scratch)
        from distilts.compile.passes import EXPORT_PASSES

        manifest = _write_manifest(job, tmp, models, best, prep.candidates, config, student_dir, data,
                                   verify_x, calib_x, {"aarch64": check} if check is not None else {},
                                   [*prep.records, EXPORT_PASSES[job.format]])
        from distilts.runtime import Forecaster

        Forecaster.load(tmp)  # checksums + golden self-check through the runtime a device will use
        prep.scratch.release()
        replace_dir(tmp, prep.final)
    except BaseException:
        prep.scratch.discard()
        raise
    return CompiledArtifact(job, prep.final, manifest, time.perf_counter() - prep.t0)


def _place(best: _Built, scratch: Path, tmp: Path, job: CompileJob) -> list[dict]:
    """Move the chosen candidate's files into the artifact dir under their final names."""
    from distilts.compile.manifest import model_entry

    models = []
    for src, batch in best.files.items():
        name = _final_name(job, batch)
        os.replace(scratch / src, tmp / name)
        models.append(model_entry(tmp, name, batch))
    for src in best.weights:
        name = Path(models[0]["file"]).with_suffix(".bin").name
        os.replace(scratch / src, tmp / name)
        models.append(model_entry(tmp, name, None, role="weights"))
    return models


def _final_name(job: CompileJob, batch: int | None) -> str:
    ext = {"onnx": ".onnx", "openvino": ".xml", "tflite": ".tflite"}[job.format]
    return f"model{ext}" if batch is None else f"model-b{batch}{ext}"


def _write_manifest(job, tmp, models, best, candidates, config, student_dir, data, verify_x, calib_x,
                    checks: dict | None = None, passes: list[dict] | None = None) -> dict:
    from distilts.compile import verify
    from distilts.compile.manifest import build_manifest, write_manifest

    golden_in = verify_x[:1]
    model_file = next(m for m in models if m.get("role") != "weights")
    golden_out = verify.run_file(job.format, tmp / model_file["file"], model_file["batch"], golden_in)
    std = np.asarray(config["scaler"]["std"], np.float64)
    atol_frac, rtol = verify.GOLDEN_TOL[job.precision]
    quant = None
    if job.precision == "int8":
        quant = {"method": best.method, "isa": job.isa, "calib_windows": int(len(calib_x)), "calib_part": "train",
                 "note": best.note, "chosen_by": "smallest rel-MSE vs the PyTorch student on the verification windows",
                 "candidates": {c.method: {**c.errors, "latency_ms_b1": c.latency_ms} for c in candidates}}
    target = None
    if job.target is not None:
        t = job.target
        target = {"name": t.name, "threads": t.threads, "batch": t.batch, "mode": t.mode,
                  "description": t.description}
    verification = {"windows": int(len(verify_x)), "part": "test", **best.errors,
                    "tolerance": dict(verify.TOLERANCES[job.precision]), "passed": True,
                    "reference": "pytorch student (scaler folded in), normalized-scale errors",
                    "data": data.source, "data_hash": data.data_hash}
    from distilts.compile.crossarch import architectures

    archs, by_isa = architectures(job, best.errors, checks or {})
    manifest = build_manifest(backend=job.format, precision=job.precision, models=models, config=config,
                              student_dir=student_dir, target=target, quantization=quant,
                              verification=verification, golden_in=golden_in, golden_out=golden_out,
                              atol=atol_frac * float(std.max()), rtol=rtol, opset=_opset(job, tmp, models),
                              architectures=archs, golden_by_isa=by_isa, passes=passes)
    write_manifest(tmp, manifest)
    return manifest


def _opset(job: CompileJob, tmp: Path, models: list[dict]) -> int | None:
    if job.format != "onnx":
        return None
    from distilts.compile.onnx_export import read_opset

    return read_opset(tmp / models[0]["file"])


def _measure(backend: str, path: Path, batch: int | None, x: np.ndarray, ref: np.ndarray, config: dict
             ) -> tuple[dict[str, float], np.ndarray]:
    """(errors vs the PyTorch student, forecasts) of one file on the verification windows."""
    from distilts.compile import verify

    pred = verify.run_file(backend, path, batch, x)
    return verify.errors(pred, ref, np.asarray(config["scaler"]["mean"], np.float64),
                         np.asarray(config["scaler"]["std"], np.float64)), pred


def _measure_files(backend: str, files: dict[Path, int | None], x: np.ndarray, ref: np.ndarray, config: dict
                   ) -> tuple[dict[str, float], np.ndarray]:
    """Worst error over the files of one candidate (TFLite has one per batch size), first file's forecasts."""
    res = [_measure(backend, p, b, x, ref, config) for p, b in files.items()]
    return {k: max(e[k] for e, _ in res) for k in res[0][0]}, res[0][1]


# --- one builder per format: returns the candidates (fp32: one) with their measured errors -----------------
def _build_onnx(job, wrapper, config, scratch, verify_x, ref, calib_x) -> list[_Built]:
    from distilts.compile import onnx_export

    L, D = int(config["lookback"]), len(config["columns"])
    fp32 = scratch / "model.fp32.onnx"
    onnx_export.export_onnx(wrapper, L, D, fp32)
    if job.precision == "fp32":
        errs, pred = _measure("onnx", fp32, None, verify_x, ref, config)
        return [_Built({fp32.name: None}, None, None, errs, preds=pred)]
    out = []
    from distilts.runtime.arch import saturates_int8

    cands = onnx_export.int8_candidates(fp32, scratch, calib_x, reduce_range=saturates_int8(job.isa))
    for method, (path, note) in cands.items():
        errs, pred = _measure("onnx", path, None, verify_x, ref, config)
        out.append(_Built({path.name: None}, method, note, errs, preds=pred))
    return out


def _build_openvino(job, wrapper, config, scratch, verify_x, ref, calib_x) -> list[_Built]:
    from distilts.compile import openvino_export

    L, D = int(config["lookback"]), len(config["columns"])
    model = openvino_export.convert(wrapper, L, D)
    from distilts.runtime.arch import saturates_int8

    variants = ({None: (model, None)} if job.precision == "fp32" else
                openvino_export.int8_candidates(model, calib_x, overflow_fix=saturates_int8(job.isa)))
    out = []
    for method, (m, note) in variants.items():
        xml = scratch / f"model.{method or 'fp32'}.xml"
        openvino_export.save(m, xml)
        errs, pred = _measure("openvino", xml, None, verify_x, ref, config)
        out.append(_Built({xml.name: None}, method, note, errs, weights=[xml.with_suffix(".bin").name], preds=pred))
    return out


def _build_tflite(job, wrapper, config, scratch, verify_x, ref, calib_x) -> list[_Built]:
    from distilts.compile import tflite_export

    L, D = int(config["lookback"]), len(config["columns"])
    batches = [int(b) for b in job.batches]
    fp32 = {b: tflite_export.export_fp32(wrapper, L, D, b, scratch / f"model-b{b}.fp32.tflite") for b in batches}
    variants: dict[str | None, tuple[dict[int, Path], str | None]] = {}
    if job.precision == "fp32":
        variants[None] = (fp32, None)
    else:
        variants["pt2e-static"] = tflite_export.pt2e_static(wrapper, L, D, batches, calib_x, scratch)
        variants["dynamic"] = tflite_export.dynamic_int8(fp32, scratch)
    out = []
    for method, (files, note) in variants.items():
        errs, pred = _measure_files("tflite", {p: b for b, p in files.items()}, verify_x, ref, config)
        out.append(_Built({p.name: b for b, p in files.items()}, method, note, errs, preds=pred))
    return out

