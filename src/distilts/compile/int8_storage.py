"""The `int8-storage` candidate: int8 weights in the file, float arithmetic at fp32 speed.

Made from the **fp32** graph (scaler folded in, as the fp32 artifact): every matrix-product weight is
stored as int8 with one symmetric scale per output channel and a dequantize op in front of it, which
each runtime evaluates once when it loads the model (onnxruntime constant-folds Cast x Mul of an
initializer: its optimized graph is the fp32 one; OpenVINO constant-folds Convert / constant: its
runtime graph has the fp32 FullyConnected; LiteRT's XNNPACK delegate unpacks a constant DEQUANTIZE
at init). The file is ~4x smaller like any int8 artifact; the calls
run the fp32 graph's kernels, so int8 is no slower than fp32 (on small students the other int8
recipes can be: their activation quantization costs more than the small product saves) and the
numbers are the same on every ISA.

onnx, openvino and ai_edge_quantizer are imported inside the functions: optional extras that may be
missing (each candidate is skipped or `require` names the extra).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distilts.quiet import quiet

NAME = "int8-storage"
NOTE = (
    "int8 weights (symmetric, per output channel) dequantized once when the runtime loads the model: float "
    "arithmetic, fp32 speed, the same numbers on every ISA"
)


def quantize(w: np.ndarray, reduce_axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(int8 values, float32 scales with `reduce_axis` kept as size 1): w ~= q * scale."""
    amax = np.abs(w).max(axis=reduce_axis, keepdims=True)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    return np.clip(np.rint(w / scale), -127, 127).astype(np.int8), scale


def onnx_file(fp32_path: Path, dest: Path) -> Path | None:
    """Every 2-D float initializer that is a MatMul's B stored int8, behind Cast x Mul (per column); None if none."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(fp32_path))
    g = model.graph
    weights = {n.input[1] for n in g.node if n.op_type == "MatMul"}
    new_inits, nodes = [], []
    for init in list(g.initializer):
        w = numpy_helper.to_array(init)
        if init.name not in weights or w.ndim != 2 or w.dtype != np.float32:
            new_inits.append(init)
            continue
        q, scale = quantize(w, 0)  # B [K, N]: one scale per output column
        n = init.name
        new_inits += [numpy_helper.from_array(q, f"{n}_q"), numpy_helper.from_array(scale, f"{n}_scale")]
        # Cast x Mul, not DequantizeLinear: onnxruntime constant-folds these at load (its optimized graph is
        # the fp32 one), while DequantizeLinear + MatMul is fused into MatMulNBits, which dequantizes per call
        nodes += [
            helper.make_node("Cast", [f"{n}_q"], [f"{n}_float"], to=onnx.TensorProto.FLOAT, name=f"{n}_cast"),
            helper.make_node("Mul", [f"{n}_float", f"{n}_scale"], [n], name=f"{n}_dequantize"),
        ]
    if not nodes:
        return None
    del g.initializer[:]
    g.initializer.extend(new_inits)
    for i, node in enumerate(nodes):
        g.node.insert(i, node)
    onnx.save(model, str(dest))
    return dest


def openvino_model(model):
    """A copy of `model` whose constant MatMul inputs are int8 Constant -> Convert -> Divide; None if none."""
    import openvino as ov
    from openvino import opset13 as ops

    model = model.clone()
    changed = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() != "MatMul":
            continue
        attrs = op.get_attributes()
        for i in (0, 1):
            src = op.input(i).get_source_output().get_node()
            if src.get_type_name() != "Constant" or len(src.get_output_shape(0)) != 2:
                continue
            w = src.get_data()
            if w.dtype != np.float32:
                continue
            transposed = attrs["transpose_b" if i else "transpose_a"]
            # reduce over the contraction axis: B [K, N] (or [N, K] transposed); A [M, K] (or [K, M])
            reduce_axis = (0 if not transposed else 1) if i else (1 if not transposed else 0)
            q, scale = quantize(w, reduce_axis)
            # Divide by 1/scale, not Multiply: OpenVINO's CPU plugin recognises Convert x Multiply as weight
            # decompression and keeps the int8 weights (an i8 FullyConnected that dequantizes per call);
            # Convert / constant is constant-folded, so its runtime graph is the fp32 one (f32 FullyConnected)
            deq = ops.divide(ops.convert(ops.constant(q), ov.Type.f32), ops.constant((1.0 / scale).astype(np.float32)))
            op.input(i).replace_source_output(deq.output(0))
            changed += 1
    if not changed:
        return None
    model.validate_nodes_and_infer_types()
    return model


def tflite_files(fp32_files: dict[int, Path], out_dir: Path) -> dict[int, Path]:
    """ai-edge-quantizer weight_only_wi8_afp32 on each fp32 file: {batch: file}."""
    from ai_edge_quantizer import quantizer, recipe

    files = {}
    with quiet():
        for b, src in fp32_files.items():
            p = out_dir / f"model-b{b}.{NAME}.tflite"
            q = quantizer.Quantizer(str(src), recipe.weight_only_wi8_afp32())
            q.quantize().export_model(str(p), overwrite=True)
            files[b] = p
    return files
