"""Compile passes: rewrites applied before (module passes) or after (graph passes) export.

Each pass lives in its own module and is checked on the verification windows before it is used;
the manifest's `passes` list names every pass applied, with its checks. The artifact itself is then
verified against the original PyTorch student as always (docs/compile.md).

Module passes (torch, before export, so every exporter benefits):
  fold-linear   DLinear (+ scaler, + RevIN affine) -> one MatMul + Add per variate (fold_linear.py)
  fold-scaler   any other student with RevIN: the scaler is absorbed by RevIN's statistics (fold_scaler.py)
Export passes (the library's own graph optimiser, run by every export; verified with the artifact):
  onnxscript-optimizer   torch.onnx.export(optimize=True): constant folding, LayerNormalization/Gelu fusion
  openvino-moc           openvino.convert_model's MOC transformations (the CPU plugin adds its own at load)
  litert-converter       the LiteRT converter's graph optimisations
onnxruntime's offline optimisation (ORT_ENABLE_EXTENDED saved to the file: SkipLayerNormalization,
BiasGelu, FusedMatMul) was measured and is not applied: onnxruntime runs the same fusions online at
load, so latency was unchanged, and the saved graph would need onnxruntime's contrib ops (docs/compile.md).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from distilts.errors import ArtifactError

EXPORT_PASSES: dict[str, dict[str, str]] = {
    "onnx": {"name": "onnxscript-optimizer", "stage": "export", "by": "torch.onnx.export(dynamo=True, optimize=True)"},
    "openvino": {"name": "openvino-moc", "stage": "export", "by": "openvino.convert_model (MOC transformations)"},
    "tflite": {"name": "litert-converter", "stage": "export", "by": "litert_torch.convert"},
}

# the float64 fold must match the float64 student to this (normalized units): only rounding is allowed
F64_MAX_ABS = 1e-9


def module_for(student, config: dict, precision: str, x_check: np.ndarray, enabled: bool = True
               ) -> tuple[Any, list[dict]]:
    """The torch module to export for `precision` and the records of the passes applied to it.

    fp32 folds the scaler into the weights; int8 keeps the scaler as its own float submodules (so
    quantizers leave raw values of mixed scales alone) and folds only the student.
    """
    from distilts.compile.passes import fold_linear, fold_scaler
    from distilts.compile.wrapper import RawScaleForecaster, wrap_student

    wrapper = wrap_student(student, config)
    mean, std = config["scaler"]["mean"], config["scaler"]["std"]
    if enabled and not fold_linear.applies(student) and fold_scaler.applies(student):
        folded = fold_scaler.fold(student, std)
        checks = check_module(folded, fold_scaler.fold(student, std, dtype=_f64()), wrapper,
                              _exact_wrapper(student, mean, std), x_check, config, fold_scaler.NAME)
        return folded, [{"name": fold_scaler.NAME, "stage": "module", "scope": "scaler into the student's RevIN",
                         "description": "the train-split scaler around a per-window-normalized (RevIN) student "
                                        "folded into RevIN's statistics (eps * std^2), exact", **checks}]
    if not enabled or not fold_linear.applies(student):
        return wrapper, []
    if precision == "fp32":
        folded, folded64 = fold_linear.fold(student, mean, std), fold_linear.fold(student, mean, std, dtype=_f64())
        scope = "student and scaler"
    else:
        folded = RawScaleForecaster(fold_linear.fold(student), mean, std).eval()
        folded64 = _exact_wrapper(fold_linear.fold(student, dtype=_f64()), mean, std)
        scope = "student (scaler kept as float ops for the quantizer)"
    checks = check_module(folded, folded64, wrapper, _exact_wrapper(student, mean, std), x_check, config,
                          fold_linear.NAME)
    n_params = int(sum(b.numel() for b in folded.buffers()))
    return folded, [{"name": fold_linear.NAME, "stage": "module", "scope": scope,
                     "description": "DLinear's moving average and both linear maps (+ RevIN affine"
                                    + (", + the scaler" if precision == "fp32" else "") + ") folded into one "
                                    "MatMul + Add per variate, computed in float64",
                     "weights": "shared [L, H]" if folded_shared(folded) else "per variate [D, L, H]",
                     "constants": n_params, **checks}]


def folded_shared(module) -> bool:
    inner = getattr(module, "student", module)
    return bool(getattr(inner, "shared", False))


def check_module(new32, new64, old32, old64, x: np.ndarray, config: dict, name: str) -> dict[str, float]:
    """Errors of a rewritten module against the original, in float64 and in float32 (normalized units)."""
    import torch

    from distilts.compile import verify
    from distilts.compile.wrapper import torch_predict

    mean = np.asarray(config["scaler"]["mean"], np.float64)
    std = np.asarray(config["scaler"]["std"], np.float64)
    with torch.no_grad():
        x64 = torch.from_numpy(np.asarray(x, np.float64))
        e64 = float(np.max(np.abs(verify.normalized(new64(x64).numpy(), mean, std)
                                  - verify.normalized(old64(x64).numpy(), mean, std))))
    e32 = verify.errors(torch_predict(new32, x), torch_predict(old32, x), mean, std)
    if not e64 <= F64_MAX_ABS or not verify.within(e32, "fp32"):
        raise ArtifactError(f"Compile pass '{name}' changed the student's forecasts (float64 max abs error "
                            f"{e64:.3g}, allowed {F64_MAX_ABS:g}; float32 rel-MSE {e32['rel_mse']:.3g}). This is a "
                            "bug in the pass: compile with --no-passes and report it.")
    return {"max_abs_err_f64": e64, "max_abs_err_f32": e32["max_abs_err"], "rel_mse_f32": e32["rel_mse"],
            "checked_windows": int(len(x))}


def _f64():
    import torch

    return torch.float64


def _exact_wrapper(module, mean, std):
    """`module` wrapped with the scaler in exact float64 (the float32 wrapper rounds 1/std)."""
    import torch

    from distilts.compile.wrapper import RawScaleForecaster

    w = RawScaleForecaster(copy.deepcopy(module), mean, std).to(torch.float64).eval()
    m, s = torch.tensor(np.asarray(mean, np.float64)), torch.tensor(np.asarray(std, np.float64))
    out_shape = w.denormalize.mean.shape  # [D], or [D, 1] for quantile forecasts
    w.normalize.mean, w.normalize.inv_std = m, 1.0 / s
    w.denormalize.mean, w.denormalize.std = m.reshape(out_shape), s.reshape(out_shape)
    return w
