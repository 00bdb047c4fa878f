"""Compile passes: rewrites applied before (module passes) or after (graph passes) export.

Module passes run in order on the wrapped student (`RawScaleForecaster`, scaler in the graph): each
takes the module the previous one returned and returns its rewrite (or None when it does not apply),
built in float32 and, for its check, in float64. Each rewrite is checked once against the original
wrapped student (float64 and float32, on the verification windows) before it is used; the manifest's
`passes` list names every pass applied, with its checks. The artifact itself is then verified against
the original PyTorch student as always (docs/compile.md).

Module passes (torch, before export, so every exporter benefits):
  fold-linear   DLinear (+ scaler, + RevIN affine) -> one MatMul + Add per variate (fold_linear.py)
  fold-scaler   any other student with RevIN: the scaler is absorbed by RevIN's statistics (fold_scaler.py)
Export passes (the library's own graph optimiser, run by every export; verified with the artifact;
each backend module's EXPORT_PASS, distilts.compile.backends):
  onnxscript-optimizer   torch.onnx.export(optimize=True): constant folding, LayerNormalization/Gelu fusion
  openvino-moc           openvino.convert_model's MOC transformations (the CPU plugin adds its own at load)
  litert-converter       the LiteRT converter's graph optimisations
onnxruntime's offline optimisation (ORT_ENABLE_EXTENDED saved to the file: SkipLayerNormalization,
BiasGelu, FusedMatMul) was measured and is not applied: onnxruntime runs the same fusions online at
load, so latency was unchanged, and the saved graph would need onnxruntime's contrib ops (docs/compile.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from distilts.compile import verify
from distilts.compile.passes import fold_linear, fold_scaler
from distilts.compile.wrapper import RawScaleForecaster, torch_predict
from distilts.errors import ArtifactError
from distilts.runtime.inputs import Inputs, window_only

MODULE_PASSES = (fold_linear, fold_scaler)  # in order; each: NAME, apply(module, precision) -> (module, record) | None

# the float64 rewrite must match the float64 original to this (normalized units): only rounding is allowed
F64_MAX_ABS = 1e-9


@dataclass
class Original:
    """The original wrapped student's forecasts on the check windows, float32 and exact float64."""

    x: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    out32: np.ndarray
    out64: np.ndarray

    @classmethod
    def of(cls, wrapper: RawScaleForecaster, x: np.ndarray) -> Original:
        return cls(
            x,
            wrapper.mean,
            wrapper.std,
            torch_predict(wrapper, x),
            torch_predict(wrapper.as_float64(), x, dtype=np.float64),
        )

    def check(self, name: str, new32: nn.Module, new64: nn.Module) -> dict[str, float]:
        """Errors of a rewrite against the original, in float64 and float32 (normalized units); raises
        ArtifactError when the float64 rewrite is not exact or the float32 one is out of fp32 tolerance."""
        e64 = float(
            np.max(
                np.abs(
                    verify.normalized(torch_predict(new64, self.x, dtype=np.float64), self.mean, self.std)
                    - verify.normalized(self.out64, self.mean, self.std)
                )
            )
        )
        e32 = verify.errors(torch_predict(new32, self.x), self.out32, self.mean, self.std)
        if not e64 <= F64_MAX_ABS or not verify.within(e32, "fp32"):
            raise ArtifactError(
                f"Compile pass '{name}' changed the student's forecasts (float64 max abs error "
                f"{e64:.3g}, allowed {F64_MAX_ABS:g}; float32 rel-MSE {e32['rel_mse']:.3g}, "
                f"max abs {e32['max_abs_err']:.3g}). This is a "
                "bug in the pass: compile with --no-passes and report it."
            )
        return {
            "max_abs_err_f64": e64,
            "max_abs_err_f32": e32["max_abs_err"],
            "rel_mse_f32": e32["rel_mse"],
            "checked_windows": int(len(self.x)),
        }


def apply_passes(
    wrapper: RawScaleForecaster, precision: str, x_check: Inputs, enabled: bool = True
) -> tuple[nn.Module, list[dict]]:
    """The module to export for `precision` and the records of the module passes applied to it.

    fp32 folds the scaler into the weights; int8 keeps the scaler as its own float submodules (so
    quantizers leave raw values of mixed scales alone) and folds only the student.
    """
    module32: nn.Module = wrapper
    records: list[dict] = []
    if not enabled:
        return module32, records
    module64, original = wrapper.as_float64(), None
    for p in MODULE_PASSES:
        done = p.apply(module32, precision)
        if done is None:
            continue
        new32, record = done
        new64, _ = p.apply(module64, precision)
        original = original or Original.of(wrapper, window_only(x_check))  # passes: univariate students only
        records.append({**record, **original.check(p.NAME, new32, new64)})
        module32, module64 = new32, new64
    return module32, records
