"""OpenVINO: IR export (convert_model from a torch.export program, fp32 weights), NNCF int8 candidates
and the builder.

`openvino` and `nncf` come with the `compile`/`openvino` extras and may be missing: `require` imports
them inside the functions and names the extra.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from distilts.compile import int8_storage
from distilts.compile.verify import Candidate, calibration, measure
from distilts.compile.wrapper import batch_dim_shapes, example_input, exportable
from distilts.errors import require
from distilts.quantiles import student_levels
from distilts.runtime.arch import saturates_int8
from distilts.runtime.inputs import Inputs, n_rows, take

EXT = ".xml"
EXPORT_PASS = {"name": "openvino-moc", "stage": "export", "by": "openvino.convert_model (MOC transformations)"}


def convert(wrapper, lookback: int, n_variates: int, config: dict | None = None):
    """An `openvino.Model` of `wrapper` with input `x [?, L, D]` (then its covariate inputs, named by role,
    when `config` has covariates) and output `y`."""
    ov = require("openvino", "compile", "OpenVINO export")

    module = exportable(wrapper)
    names = list(getattr(module, "names", ("x",)))
    example = example_input(lookback, n_variates, config=config if len(names) > 1 else None)
    ep = torch.export.export(module, example, dynamic_shapes=batch_dim_shapes(n_inputs=len(names)))
    model = ov.convert_model(ep)
    model.reshape({model.inputs[i]: ov.PartialShape([-1, *t.shape[1:]]) for i, t in enumerate(example)})
    for i, name in enumerate(names):
        model.inputs[i].get_tensor().set_names({name})
    model.outputs[0].get_tensor().set_names({"y"})
    return model


def save(model, xml_path: Path) -> list[Path]:
    """Write `model.xml` + `model.bin` with fp32 weights (no silent fp16 compression)."""
    ov = require("openvino", "compile", "OpenVINO export")
    ov.save_model(model, str(xml_path), compress_to_fp16=False)
    return [xml_path, xml_path.with_suffix(".bin")]


def quantile_assembly(model, n_levels: int) -> list[str]:
    """Names of the MatMuls with a constant `[Q, Q]` operand: a quantile head's assembly of the median
    and the gaps (students/quantile.py). They stay float in int8 artifacts: quantizing them gains
    nothing (Q x Q weights) and the CPU plugin fails to load the int8 MatMul fused with the per-variate
    de-normalisation after it (OpenVINO 2025/2026: `data.size() == OC` in dnnl_postops_composer)."""
    names = []
    for op in model.get_ordered_ops():
        if op.get_type_name() != "MatMul":
            continue
        for inp in op.inputs():
            src = inp.get_source_output().get_node()
            if src.get_type_name() == "Constant" and list(src.get_output_shape(0)) == [n_levels, n_levels]:
                names.append(op.get_friendly_name())
    return names


def int8_candidates(
    model, calib: Inputs, overflow_fix: bool = False, keep_float: list[str] | None = None
) -> dict[str, tuple[object, str]]:
    """NNCF post-training int8 variants of `model`: {method: (openvino.Model, note)}; the ops named in
    `keep_float` are left in float (NNCF's ignored scope).

    overflow_fix: NNCF's fix for x86 without VNNI (7-bit weights in every layer, so u8 x s8 products
    do not saturate int16); off for arm64 and VNNI x86, which compute them exactly.

    nncf-default: the default preset, int8 weights and activations. nncf-transformer:
    model_type=TRANSFORMER, which adds SmoothQuant (moves activation outliers into the weights); it
    often wins on attention models. nncf-weights: int8 weights only (activations stay f32), the
    fallback when calibrated activation ranges do not hold on held-out data (e.g. a trending series).
    """
    nncf = require("nncf", "compile", "OpenVINO int8 quantization")
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    logging.getLogger("nncf").setLevel(logging.ERROR)
    n = n_rows(calib)
    dataset = nncf.Dataset([take(calib, slice(i, i + 1)) for i in range(n)])
    out: dict[str, tuple[object, str]] = {}
    adv = AdvancedQuantizationParameters(overflow_fix=OverflowFix.ENABLE if overflow_fix else OverflowFix.DISABLE)
    of = ", overflow fix (no int16 saturation on x86 without VNNI)" if overflow_fix else ""
    ignored = nncf.IgnoredScope(names=list(keep_float or []))
    q = nncf.quantize(
        model, dataset, subset_size=n, fast_bias_correction=True, advanced_parameters=adv, ignored_scope=ignored
    )
    out["nncf-default"] = (
        q,
        f"nncf.quantize (mixed preset), int8 weights and activations calibrated on {n} train windows{of}",
    )
    q = nncf.quantize(
        model,
        dataset,
        subset_size=n,
        model_type=nncf.ModelType.TRANSFORMER,
        advanced_parameters=adv,
        ignored_scope=ignored,
    )
    out["nncf-transformer"] = (
        q,
        f"nncf.quantize model_type=TRANSFORMER (SmoothQuant), calibrated on {n} train windows{of}",
    )
    q = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM, ignored_scope=ignored)
    out["nncf-weights"] = (
        q,
        "nncf.compress_weights INT8_ASYM: per-channel int8 weights, f32 activations (no calibration needed)",
    )
    return out


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
    """The fp32 IR, or its NNCF int8 candidates (+ `int8-storage` of `fp32_module`, the fp32 job's module),
    saved in `scratch`, each measured against `ref`."""
    L, D = int(config["lookback"]), len(config["columns"])
    model = convert(module, L, D, config)
    levels = student_levels(config["student"])
    keep_float = quantile_assembly(model, len(levels)) if levels else []
    variants: dict[str | None, tuple[object, str | None]] = {}
    if job.precision == "fp32":
        variants[None] = (model, None)
    else:
        calib = calibration(calib_x)
        variants.update(int8_candidates(model, calib, overflow_fix=saturates_int8(job.isa), keep_float=keep_float))
    if job.precision == "int8" and fp32_module is not None:
        stored = int8_storage.openvino_model(convert(fp32_module, L, D, config))
        if stored is not None:
            variants[int8_storage.NAME] = (stored, int8_storage.NOTE)
    out = []
    for method, (m, note) in variants.items():
        xml = scratch / f"model.{method or 'fp32'}.xml"
        save(m, xml)
        errs, pred = measure("openvino", {xml: None}, verify_x, ref, config)
        out.append(Candidate({xml.name: None}, method, note, errs, weights=[xml.with_suffix(".bin").name], preds=pred))
    return out
