"""TFLite: export with litert-torch (one file per fixed batch size), int8 candidates and the builder.

int8 candidates: `pt2e-static` (PT2E quantizer, int8 weights and activations of the linear layers,
calibrated on train windows; the in-graph (de)normalization stays float), `dynamic`
(ai-edge-quantizer dynamic_wi8_afp32 on the fp32 file: int8 weights, activations quantized at run time)
and `full-int8` (distilts.compile.full_int8: every tensor int8, input and output included, the scaler
folded into the I/O quantization; the form microcontrollers and NPUs run).
`litert_torch`, `torchao` and `ai_edge_quantizer` come with the `compile`/`tflite` extras and may be
missing: they are imported inside the functions (`require` names the extra).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from distilts.compile import full_int8, int8_storage, litert_ops
from distilts.compile.verify import Candidate, calibration, measure
from distilts.compile.wrapper import Denormalize, Normalize, batch_dim_shapes, example_input, exportable
from distilts.errors import require
from distilts.quantiles import student_levels
from distilts.quiet import quiet
from distilts.runtime.inputs import Inputs, n_rows, take, window_only

EXT = ".tflite"
EXPORT_PASS = {"name": "litert-converter", "stage": "export", "by": "litert_torch.convert"}


def _litert():
    return require("litert_torch", "compile", "TFLite export")


def export_fp32(wrapper, lookback: int, n_variates: int, batch: int, path: Path, config: dict | None = None) -> Path:
    """Convert `wrapper` at a fixed batch size and write `path` (covariate inputs after x when `config` has any)."""
    litert_torch = _litert()
    module = exportable(wrapper)
    cov = config if len(getattr(module, "names", ("x",))) > 1 else None
    with quiet():
        litert_torch.convert(module, example_input(lookback, n_variates, batch, cov)).export(str(path))
    return path


def pt2e_static(
    wrapper,
    lookback: int,
    n_variates: int,
    batches: list[int],
    calib: Inputs,
    out_dir: Path,
    config: dict | None = None,
) -> tuple[dict[int, Path], str]:
    """Calibrate once (dynamic-batch export), then convert at each batch size: {batch: file}, note."""
    litert_torch = _litert()
    from litert_torch.quantize import pt2e_quantizer as pq
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import quantize_pt2e

    class LinearOnly(pq.PT2EQuantizer):
        STATIC_OPS = ["linear", "addmm"]  # matrix products only, like the ONNX static recipe

    quantizer = (
        LinearOnly()
        .set_global(pq.get_symmetric_quantization_config(is_per_channel=True))
        .set_module_type(Normalize, None)
        .set_module_type(Denormalize, None)
    )
    module = exportable(wrapper)
    names = list(getattr(module, "names", ("x",)))
    cov = config if len(names) > 1 else None
    with quiet():
        gm = torch.export.export(
            module,
            example_input(lookback, n_variates, config=cov),
            dynamic_shapes=batch_dim_shapes(n_inputs=len(names)),
        ).module()
        gm = quantize_pt2e.prepare_pt2e(gm, quantizer)
        with torch.no_grad():
            for lo in range(0, n_rows(calib), 64):
                part = take(calib, slice(lo, lo + 64))
                arrays = [part[n] for n in names] if isinstance(part, dict) else [part]
                gm(*(torch.from_numpy(np.ascontiguousarray(a, np.float32)) for a in arrays))
        gm = quantize_pt2e.convert_pt2e(gm, fold_quantize=False)
        files = {}
        for b in batches:
            p = out_dir / f"model-b{b}.pt2e.tflite"
            litert_torch.convert(
                gm, example_input(lookback, n_variates, b, cov), quant_config=QuantConfig(pt2e_quantizer=quantizer)
            ).export(str(p))
            files[b] = p
    return files, (
        f"litert-torch PT2E static: per-channel int8 weights and int8 activations of the linear "
        f"layers, calibrated (histogram) on {n_rows(calib)} train windows; normalization stays float"
    )


def dynamic_int8(fp32_files: dict[int, Path], out_dir: Path) -> tuple[dict[int, Path], str]:
    """ai-edge-quantizer dynamic_wi8_afp32 on each fp32 file: {batch: file}, note."""
    require("ai_edge_quantizer", "compile", "TFLite int8 quantization")
    from ai_edge_quantizer import quantizer, recipe

    files = {}
    with quiet():
        for b, src in fp32_files.items():
            p = out_dir / f"model-b{b}.dynamic.tflite"
            q = quantizer.Quantizer(str(src), recipe.dynamic_wi8_afp32())
            q.quantize(enable_progress_report=False).export_model(str(p), overwrite=True)
            files[b] = p
    return files, "ai-edge-quantizer dynamic_wi8_afp32: int8 weights, activations quantized at run time"


def full_int8_files(
    module, config: dict, batches: list[int], calib: Inputs, out_dir: Path
) -> tuple[dict[int, Path], str] | None:
    """The `full-int8` candidate (distilts.compile.full_int8: int8 input/output, the scaler folded into the
    I/O quantization); None when the student has an operator left in float (no int8 kernel)."""
    if config.get("covariates"):
        return None  # the I/O mapping folds the target scaler into one input: covariate inputs have no such form
    if student_levels(config["student"]):
        return None  # a quantile axis on the output: the per-variate I/O mapping does not cover it
    student = getattr(module, "student", module)  # the int8 module keeps the scaler outside its student
    files = {}
    for b in batches:
        p = out_dir / f"model-b{b}.full-int8.tflite"
        try:
            full_int8.build_file(student, config, window_only(calib), p, batch=b)
        except Exception:
            return None
        if litert_ops.float_operators(p.read_bytes()):
            return None
        files[b] = p
    return files, full_int8.NOTE


def build(
    job,
    module,
    config: dict,
    scratch: Path,
    verify_x: np.ndarray,
    ref: np.ndarray,
    calib_x: np.ndarray | None,
    fp32_module=None,
) -> list[Candidate]:
    """The fp32 files (one per batch size), or the int8 candidates, in `scratch`, each measured against `ref`."""
    L, D = int(config["lookback"]), len(config["columns"])
    batches = [int(b) for b in job.batches]
    fp32 = {b: export_fp32(module, L, D, b, scratch / f"model-b{b}.fp32.tflite", config) for b in batches}
    if job.precision == "fp32":
        variants: dict[str | None, tuple[dict[int, Path], str | None]] = {None: (fp32, None)}
    else:
        variants = {
            "pt2e-static": pt2e_static(module, L, D, batches, calibration(calib_x), scratch, config),
            "dynamic": dynamic_int8(fp32, scratch),
        }
        if fp32_module is not None:
            folded = {
                b: export_fp32(fp32_module, L, D, b, scratch / f"model-b{b}.fp32-module.tflite", config)
                for b in batches
            }
            variants[int8_storage.NAME] = (int8_storage.tflite_files(folded, scratch), int8_storage.NOTE)
        full = full_int8_files(module, config, batches, calibration(calib_x), scratch)
        if full is not None:
            variants[full_int8.METHOD] = full
    out = []
    for method, (files, note) in variants.items():
        errs, pred = measure("tflite", {p: b for b, p in files.items()}, verify_x, ref, config)
        out.append(Candidate({p.name: b for b, p in files.items()}, method, note, errs, preds=pred))
    return out
