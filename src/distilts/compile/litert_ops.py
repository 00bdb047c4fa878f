"""What a LiteRT (TFLite) model holds: its operators, its input/output quantization, the operators left in float.

Used by the full-int8 path (compile.full_int8, compile.backends.tflite) and the microcontroller chain
(distilts.mcu). ai_edge_litert (the `tflite` extra) is imported inside the functions.
"""

from __future__ import annotations

import numpy as np


def operators(model: bytes) -> list[str]:
    """The model's builtin operator names in graph order (e.g. ['TRANSPOSE', 'FULLY_CONNECTED', ...])."""
    from ai_edge_litert import interpreter as lite

    it = lite.Interpreter(model_content=model)
    return [op["op_name"] for op in it._get_ops_details() if op["op_name"] != "DELEGATE"]


def io_details(model: bytes) -> dict:
    """{'input'|'output': {dtype, shape, scale, zero_point}} of the model's single input and output."""
    from ai_edge_litert import interpreter as lite

    it = lite.Interpreter(model_content=model)
    out = {}
    for side, [d] in (("input", it.get_input_details()), ("output", it.get_output_details())):
        scale, zero = d["quantization"]
        out[side] = {
            "dtype": np.dtype(d["dtype"]).name,
            "shape": [int(v) for v in d["shape"]],
            "scale": float(scale),
            "zero_point": int(zero),
        }
    return out


def float_ops(model: bytes) -> list[str]:
    """Operators left computing in float after full-int8 quantization (the quantizer had no int8 kernel)."""
    from ai_edge_litert import interpreter as lite

    it = lite.Interpreter(model_content=model)
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    out = []
    for op in it._get_ops_details():
        if op["op_name"] in ("DELEGATE", "QUANTIZE", "DEQUANTIZE"):
            continue
        if any(i >= 0 and tensors[i]["dtype"] == np.float32 for i in op["outputs"]):
            out.append(op["op_name"])
    return out


def float_operators(model: bytes) -> list[str]:
    """Public form of the float-op check: the operators not quantized (empty for a full-int8 model)."""
    return sorted(set(float_ops(model)))
