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


def compile_student(student_dir: str | os.PathLike, jobs: list[CompileJob], out_dir: str | os.PathLike, *,
                    data_path: str | None = None, calib_windows: int = DEFAULT_CALIB_WINDOWS,
                    verify_windows: int = DEFAULT_VERIFY_WINDOWS, passes: bool = True,
                    log: Callable[[str], None] = lambda s: None) -> list[CompiledArtifact]:
    """Build, verify and write every job's artifact under `out_dir`; returns them in job order.

    passes: apply the module passes (distilts.compile.passes, e.g. the linear fold) before export;
    the artifact is verified against the original student either way.
    """
    from distilts.compile.data import load_compile_data
    from distilts.compile.passes import module_for
    from distilts.compile.wrapper import torch_predict, wrap_student
    from distilts.distill.students import load_student_dir

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
    results = []
    modules: dict[str, tuple] = {}  # precision -> (module to export, module pass records)
    for job in jobs:
        t0 = time.perf_counter()
        if job.precision not in modules:
            modules[job.precision] = module_for(model, config, job.precision, verify_x, enabled=passes)
            for rec in modules[job.precision][1]:
                log(f"pass {rec['name']} ({rec['scope']}): float64 max abs error {rec['max_abs_err_f64']:.2g}, "
                    f"float32 {rec['max_abs_err_f32']:.2g}")
        module, records = modules[job.precision]
        log(f"{job.dirname}: exporting {job.format} {job.precision}"
            + (f" at batch {', '.join(map(str, job.batches))}" if job.format == "tflite" else " (dynamic batch)"))
        results.append(_compile_job(job, module, records, config, student_dir, out_dir, data, verify_x, ref,
                                    calib_x, log, t0))
    return results


def _held_out(data, n: int) -> np.ndarray:
    """Verification windows: the test split, else validation (never train, which calibrates int8)."""
    for part in ("test", "val"):
        x = data.windows(part, n)
        if len(x):
            return x
    raise DataError(f"{data.source} has no test or validation window of lookback {data.lookback} + horizon "
                    f"{data.horizon} to verify the artifact on. Pass a longer series with --data.")


def _compile_job(job: CompileJob, wrapper, records: list[dict], config: dict, student_dir: Path, out_dir: Path,
                 data, verify_x: np.ndarray, ref: np.ndarray, calib_x: np.ndarray | None, log, t0: float
                 ) -> CompiledArtifact:
    from distilts.compile import verify
    from distilts.compile.passes import EXPORT_PASSES
    from distilts.utils import replace_dir, temp_dir_beside

    final = out_dir / job.dirname
    tmp = temp_dir_beside(final)
    try:
        scratch = tmp / "_scratch"
        scratch.mkdir()
        builder = {"onnx": _build_onnx, "openvino": _build_openvino, "tflite": _build_tflite}[job.format]
        from distilts.quiet import quiet

        with quiet():
            candidates = builder(job, wrapper, config, scratch, verify_x, ref, calib_x)
        for c in candidates:
            log(f"{job.dirname}: {c.method or 'fp32'}: rel-MSE {c.errors['rel_mse']:.3g}, "
                f"max abs {c.errors['max_abs_err']:.3g}")
        best = min(candidates, key=lambda c: c.errors["rel_mse"])
        verify.check(best.errors, job.precision, f"The {job.format} {job.precision} artifact"
                     + (f" ({best.method})" if best.method else ""))
        models = _place(best, scratch, tmp, job)
        shutil.rmtree(scratch)
        manifest = _write_manifest(job, tmp, models, best, candidates, config, student_dir, data, verify_x,
                                   calib_x, [*records, EXPORT_PASSES[job.format]])
        from distilts.runtime import Forecaster

        Forecaster.load(tmp)  # checksums + golden self-check through the runtime a device will use
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return CompiledArtifact(job, final, manifest, time.perf_counter() - t0)


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
                    passes: list[dict]) -> dict:
    from distilts.compile import verify
    from distilts.compile.manifest import build_manifest, write_manifest

    golden_in = verify_x[:1]
    model_file = next(m for m in models if m.get("role") != "weights")
    golden_out = verify.run_file(job.format, tmp / model_file["file"], model_file["batch"], golden_in)
    std = np.asarray(config["scaler"]["std"], np.float64)
    atol_frac, rtol = verify.GOLDEN_TOL[job.precision]
    quant = None
    if job.precision == "int8":
        quant = {"method": best.method, "calib_windows": int(len(calib_x)), "calib_part": "train",
                 "note": best.note, "chosen_by": "smallest rel-MSE vs the PyTorch student on the verification windows",
                 "candidates": {c.method: c.errors for c in candidates}}
    target = None
    if job.target is not None:
        t = job.target
        target = {"name": t.name, "threads": t.threads, "batch": t.batch, "mode": t.mode,
                  "description": t.description}
    verification = {"windows": int(len(verify_x)), "part": "test", **best.errors,
                    "tolerance": dict(verify.TOLERANCES[job.precision]), "passed": True,
                    "reference": "pytorch student (scaler folded in), normalized-scale errors",
                    "data": data.source, "data_hash": data.data_hash}
    manifest = build_manifest(backend=job.format, precision=job.precision, models=models, config=config,
                              student_dir=student_dir, target=target, quantization=quant,
                              verification=verification, golden_in=golden_in, golden_out=golden_out,
                              atol=atol_frac * float(std.max()), rtol=rtol, opset=_opset(job, tmp, models),
                              passes=passes)
    write_manifest(tmp, manifest)
    return manifest


def _opset(job: CompileJob, tmp: Path, models: list[dict]) -> int | None:
    if job.format != "onnx":
        return None
    from distilts.compile.onnx_export import read_opset

    return read_opset(tmp / models[0]["file"])


def _measure(backend: str, path: Path, batch: int | None, x: np.ndarray, ref: np.ndarray, config: dict
             ) -> dict[str, float]:
    from distilts.compile import verify

    pred = verify.run_file(backend, path, batch, x)
    return verify.errors(pred, ref, np.asarray(config["scaler"]["mean"], np.float64),
                         np.asarray(config["scaler"]["std"], np.float64))


def _measure_files(backend: str, files: dict[Path, int | None], x: np.ndarray, ref: np.ndarray, config: dict
                   ) -> dict[str, float]:
    """Worst error over the files of one candidate (TFLite has one per batch size)."""
    errs = [_measure(backend, p, b, x, ref, config) for p, b in files.items()]
    return {k: max(e[k] for e in errs) for k in errs[0]}


# --- one builder per format: returns the candidates (fp32: one) with their measured errors -----------------
def _build_onnx(job, wrapper, config, scratch, verify_x, ref, calib_x) -> list[_Built]:
    from distilts.compile import onnx_export

    L, D = int(config["lookback"]), len(config["columns"])
    fp32 = scratch / "model.fp32.onnx"
    onnx_export.export_onnx(wrapper, L, D, fp32)
    if job.precision == "fp32":
        return [_Built({fp32.name: None}, None, None, _measure("onnx", fp32, None, verify_x, ref, config))]
    out = []
    for method, (path, note) in onnx_export.int8_candidates(fp32, scratch, calib_x).items():
        out.append(_Built({path.name: None}, method, note, _measure("onnx", path, None, verify_x, ref, config)))
    return out


def _build_openvino(job, wrapper, config, scratch, verify_x, ref, calib_x) -> list[_Built]:
    from distilts.compile import openvino_export

    L, D = int(config["lookback"]), len(config["columns"])
    model = openvino_export.convert(wrapper, L, D)
    variants = {None: (model, None)} if job.precision == "fp32" else openvino_export.int8_candidates(model, calib_x)
    out = []
    for method, (m, note) in variants.items():
        xml = scratch / f"model.{method or 'fp32'}.xml"
        openvino_export.save(m, xml)
        out.append(_Built({xml.name: None}, method, note, _measure("openvino", xml, None, verify_x, ref, config),
                          weights=[xml.with_suffix(".bin").name]))
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
        errs = _measure_files("tflite", {p: b for b, p in files.items()}, verify_x, ref, config)
        out.append(_Built({p.name: b for b, p in files.items()}, method, note, errs))
    return out

