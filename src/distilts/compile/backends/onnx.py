"""ONNX: export (torch.onnx dynamo exporter, dynamic batch), ONNX Runtime int8 candidates and the builder.

The `onnx`, `onnxscript` and `onnxruntime` imports stay inside the functions: they come with the
`compile`/`onnx` extras and may be missing (`require` names the extra).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from distilts.compile import int8_storage
from distilts.compile.verify import Candidate, calibration, measure
from distilts.compile.wrapper import batch_dim_shapes, example_input, exportable
from distilts.errors import require
from distilts.quiet import quiet
from distilts.runtime.arch import saturates_int8
from distilts.runtime.inputs import Inputs, n_rows, take

EXT = ".onnx"
EXPORT_PASS = {"name": "onnxscript-optimizer", "stage": "export", "by": "torch.onnx.export(dynamo=True, optimize=True)"}
OPSET = 20
# static int8 quantizes only the matrix products (weights + their input activations): quantizing
# the in-graph (de)normalization too costs ~50x more error for no speed gain
STATIC_OPS = ["MatMul", "Gemm", "Conv"]


def export_onnx(wrapper, lookback: int, n_variates: int, path: Path, config: dict | None = None) -> int:
    """Write `wrapper` as ONNX with input `x [batch, L, D]` (then its covariate inputs, named by role, when
    `config` has covariates) and output `y`; returns the opset."""
    require("onnx", "compile", "ONNX export")
    require("onnxscript", "compile", "ONNX export")
    module = exportable(wrapper)
    names = list(getattr(module, "names", ("x",)))
    ep = torch.export.export(
        module,
        example_input(lookback, n_variates, config=config if len(names) > 1 else None),
        dynamic_shapes=batch_dim_shapes(n_inputs=len(names)),
    )
    with quiet():
        prog = torch.onnx.export(
            ep, dynamo=True, input_names=names, output_names=["y"], opset_version=OPSET, optimize=True, verbose=False
        )
        if prog is None:
            raise RuntimeError("torch.onnx.export returned no program")
        prog.save(str(path))
    return read_opset(path)


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
    """The fp32 file, or the int8 candidates made from it, in `scratch`, each measured against `ref`.

    fp32_module: the fp32 job's module (scaler folded in), source of the `int8-storage` candidate."""
    L, D = int(config["lookback"]), len(config["columns"])
    fp32 = scratch / "model.fp32.onnx"
    export_onnx(module, L, D, fp32, config)
    variants: dict[str | None, tuple[Path, str | None]] = {}
    if job.precision == "fp32":
        variants[None] = (fp32, None)
    else:
        variants.update(int8_candidates(fp32, scratch, calibration(calib_x), reduce_range=saturates_int8(job.isa)))
        if fp32_module is not None:
            folded = scratch / "model.fp32-module.onnx"
            export_onnx(fp32_module, L, D, folded, config)
            stored = int8_storage.onnx_file(folded, scratch / f"model.{int8_storage.NAME}.onnx")
            if stored is not None:
                variants[int8_storage.NAME] = (stored, int8_storage.NOTE)
    out = []
    for method, (path, note) in variants.items():
        errs, pred = measure("onnx", {path: None}, verify_x, ref, config)
        out.append(Candidate({path.name: None}, method, note, errs, preds=pred))
    return out


def read_opset(path: Path) -> int:
    """The default-domain opset of an ONNX file."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return int(next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0))


def int8_candidates(
    fp32_path: Path, out_dir: Path, calib: Inputs, reduce_range: bool = False
) -> dict[str, tuple[Path, str]]:
    """ONNX Runtime int8 variants of `fp32_path`: {method: (file, note)}.

    reduce_range: 7-bit weights, for x86 without VNNI, where onnxruntime's u8 x s8 kernels add pairs
    of products in saturating int16 (as Optimum's avx2 config); arm64 and VNNI x86 use the full range.

    dynamic: int8 weights, activations quantized per call from their observed range (no calibration).
    static-qdq: int8 weights and activations with ranges calibrated on `calib` (raw train windows),
    QDQ format, per-channel weights, MatMul/Gemm/Conv only.
    """
    require("onnxruntime", "compile", "ONNX int8 quantization")
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self, x: Inputs, chunk: int = 32) -> None:
            parts = [take(x, slice(i, i + chunk)) for i in range(0, n_rows(x), chunk)]
            self._it = iter([p if isinstance(p, dict) else {"x": p} for p in parts])

        def get_next(self):
            return next(self._it, None)

    out: dict[str, tuple[Path, str]] = {}
    dyn = out_dir / "model.dynamic.onnx"
    with quiet():
        quantize_dynamic(str(fp32_path), str(dyn), weight_type=QuantType.QInt8, reduce_range=reduce_range)
    rr = ", reduce_range (7-bit weights: no int16 saturation on x86 without VNNI)" if reduce_range else ""
    out["dynamic"] = (dyn, f"onnxruntime quantize_dynamic: int8 weights, activations quantized at run time{rr}")
    st = out_dir / "model.static.onnx"
    with quiet():
        quantize_static(
            str(fp32_path),
            str(st),
            Reader(calib),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=reduce_range,
            op_types_to_quantize=STATIC_OPS,
            nodes_to_quantize=_weight_products(fp32_path),
            calibrate_method=CalibrationMethod.MinMax,
        )
    out["static-qdq"] = (
        st,
        f"onnxruntime quantize_static QDQ, per-channel int8 weights, int8 activations "
        f"calibrated (min/max) on {n_rows(calib)} train windows; {'/'.join(STATIC_OPS)} with a "
        f"weight only (attention's activation x activation products stay float){rr}",
    )
    wq = _weights_int8(fp32_path, out_dir / "model.weights.onnx")
    if wq is not None:
        out["weights-int8"] = (
            wq,
            f"onnxruntime MatMulNBits: int8 weights (symmetric, blocks of {WEIGHT_BLOCK}), "
            "float activations and arithmetic (accuracy_level 1): no int8 arithmetic, so "
            "the same numbers on every ISA",
        )
    return out


WEIGHT_BLOCK = 32  # MatMulNBits block size: 32 had half the error of 128 on the ETTh1 students, ~8% larger


def _weight_products(path: Path) -> list[str]:
    """Names of the MatMul/Gemm/Conv nodes with a constant (weight) input."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    consts = {i.name for i in model.graph.initializer} | {
        n.output[0] for n in model.graph.node if n.op_type == "Constant"
    }
    return [n.name for n in model.graph.node if n.op_type in STATIC_OPS and any(i in consts for i in n.input)]


def _weights_int8(fp32_path: Path, dest: Path) -> Path | None:
    """Weight-only int8 (MatMulNBits, 8 bits) of `fp32_path`, or None when this onnxruntime cannot."""
    try:
        import onnx
        from onnxruntime.quantization import QuantFormat
        from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer
    except ImportError:
        return None
    kw = dict(
        block_size=WEIGHT_BLOCK,
        is_symmetric=True,
        bits=8,
        quant_format=QuantFormat.QOperator,
        op_types_to_quantize=("MatMul",),
        accuracy_level=1,
    )
    with quiet():
        q = MatMulNBitsQuantizer(onnx.load(str(fp32_path)), algo_config=DefaultWeightOnlyQuantConfig(**kw), **kw)
        q.process()
        q.model.save_model_to_file(str(dest))
    return dest
