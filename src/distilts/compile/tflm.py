"""TFLite Micro: run a full-int8 model in the microcontroller interpreter, measure its arena, emit C++.

`tflite-micro` (PyPI, the `mcu` extra) is the TFLite Micro interpreter built for the host: the same
kernels (reference C++) and the same arena planner a Cortex-M build uses. The tensor arena a model
needs is measured by bisection on the interpreter's `arena_size` (the smallest that allocates). It
is measured on this 64-bit host; a 32-bit MCU needs slightly less (pointers and structs are half
as wide), so the manifest's figure is an upper bound plus the documented margin.

ai_edge_litert and tflite_micro are imported inside the functions: optional extras (tflite, mcu) that
may be missing (`require` names the extra).
"""

from __future__ import annotations

import re
from importlib import metadata

import numpy as np

from distilts.errors import DistiltsError, require
from distilts.quiet import captured

ARENA_MARGIN = 1024  # bytes added to the measured arena in the C++ example (alignment, 32/64-bit differences)


class UnsupportedOperator(DistiltsError):
    """The model uses an operator TFLite Micro (or the full-int8 path) does not support."""


def _version() -> str:
    try:
        return metadata.version("tflite-micro")
    except metadata.PackageNotFoundError:
        return "?"


def _runtime():
    return require("tflite_micro.python.tflite_micro.runtime", "mcu", "TFLite Micro verification")


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
        out[side] = {"dtype": np.dtype(d["dtype"]).name, "shape": [int(v) for v in d["shape"]],
                     "scale": float(scale), "zero_point": int(zero)}
    return out


def load(model: bytes, arena: int | None = None):
    """A TFLite Micro interpreter for `model`; UnsupportedOperator naming the operator it lacks."""
    rt = _runtime()
    with captured() as log:
        try:
            return rt.Interpreter.from_bytes(model, arena_size=arena)
        except RuntimeError:
            pass
    text = log[0] if log else ""
    missing = re.findall(r"(?:Didn't find op for builtin opcode '|registration from op code )([A-Z0-9_]+)", text)
    float_ops = _float_ops(model)
    if missing or float_ops:
        names = sorted(set(missing) | set(float_ops))
        raise UnsupportedOperator(f"TFLite Micro cannot run this model: operator {', '.join(names)} "
                                  f"{'has' if len(names) == 1 else 'have'} no full-integer int8 kernel in TFLite "
                                  f"Micro {_version()} ({text.strip().splitlines()[0] if text.strip() else 'allocation failed'}"
                                  "). Compile this student to tflite/onnx for a CPU instead.")
    raise UnsupportedOperator(f"TFLite Micro could not allocate the model: {text.strip()[-400:]}")


def _float_ops(model: bytes) -> list[str]:
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
    return sorted(set(_float_ops(model)))


def arena_bytes(model: bytes) -> int:
    """The tensor arena (bytes, this host) the model allocates: the interpreter's recording allocator total.

    (Equal to the smallest `arena_size` that allocates: checked by bisection on ETTh1 DLinear, 9280 B
    both ways. Bisection itself is not used: TFLite Micro can crash on arenas far too small.)
    """
    interp = load(model)
    with captured() as log:
        interp.print_allocations()
    found = re.search(r"Arena allocation total (\d+) bytes", log[0])
    if not found:
        raise UnsupportedOperator(f"TFLite Micro reported no arena size: {log[0].strip()[-300:]}")
    return int(found.group(1))


def run(model: bytes, q: np.ndarray) -> np.ndarray:
    """The model's int8 outputs for int8 inputs `q` [B, ...] (batch-1 model, one invoke per window)."""
    interp = load(model)
    out = []
    with captured():
        for w in q:
            interp.set_input(np.ascontiguousarray(w[None]), 0)
            interp.invoke()
            out.append(interp.get_output(0)[0].copy())
    return np.stack(out)


def model_data(model: bytes, name: str = "g_model") -> tuple[str, str]:
    """(model_data.cc, model_data.h): the flatbuffer as an aligned C array."""
    hexes = [f"0x{b:02x}" for b in model]
    body = ",\n".join("  " + ", ".join(hexes[i:i + 16]) for i in range(0, len(hexes), 16))
    h = (f"// Generated by distilts: the TFLite model as a C array for TFLite Micro.\n#pragma once\n"
         f"extern const unsigned char {name}[];\nextern const unsigned int {name}_len;\n")
    cc = (f'// Generated by distilts. {len(model)} bytes.\n#include "model_data.h"\n\n'
          f"alignas(16) const unsigned char {name}[] = {{\n{body}\n}};\n"
          f"const unsigned int {name}_len = {len(model)};\n")
    return cc, h


_RESOLVER = {"BATCH_MATMUL": "AddBatchMatMul", "CONV_2D": "AddConv2D", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D"}


def _resolver_call(op: str) -> str:
    return _RESOLVER.get(op) or "Add" + "".join(p.capitalize() for p in op.split("_"))


def resolver_calls(ops: list[str]) -> list[str]:
    """MicroMutableOpResolver methods for TFLite operator names (TRANSPOSE -> AddTranspose), once each."""
    return list(dict.fromkeys(_resolver_call(op) for op in ops))


def example(calls: list[str], io: dict, arena: int) -> str:
    """main.cc: the TFLite Micro calls for this model, with its quantization parameters (scaler folded in).

    calls: the op resolver's methods (resolver_calls; an Ethos-U model: AddEthosU + its CPU operators)."""
    uniq = calls
    adds = "\n".join(f"    resolver.{c}();" for c in uniq)
    pin, pout = io["input"]["per_variate"], io["output"]["per_variate"]
    L, D = io["input"]["shape"][1], io["input"]["shape"][2]
    H = io["output"]["shape"][1]

    def arr(name: str, vals) -> str:
        return f"static const float {name}[{len(vals)}] = {{" + ", ".join(f"{float(v):.9g}f" for v in vals) + "};"

    return f"""// Example: one forecast with TFLite Micro (generated by distilts for this model).
// Build it with your MCU's TFLite Micro project (tensorflow/tflite-micro), model_data.cc and this file.
#include <math.h>
#include <stdint.h>

#include "model_data.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

constexpr int kLookback = {L}, kHorizon = {H}, kVariates = {D};
// tensor arena: measured by distilts ({arena} bytes: TFLite Micro's, or Vela's SRAM/DRAM use when larger)
// + {ARENA_MARGIN} bytes margin
constexpr int kArenaSize = {arena + ARENA_MARGIN};
alignas(16) static uint8_t tensor_arena[kArenaSize];

// per-variate quantization with the training scaler folded in: q = round(x / scale + zero_point)
{arr("kInScale", pin["scale"])}
{arr("kInZero", pin["zero_point"])}
// and back: y = scale * (q - zero_point)
{arr("kOutScale", pout["scale"])}
{arr("kOutZero", pout["zero_point"])}

// window: kLookback x kVariates raw values (oldest first); out: kHorizon x kVariates raw forecasts.
// Returns 0 on success.
int forecast(const float* window, float* out) {{
  static tflite::MicroMutableOpResolver<{len(uniq)}> resolver;
  static tflite::MicroInterpreter* interpreter = nullptr;
  if (interpreter == nullptr) {{
{adds}
    static tflite::MicroInterpreter static_interpreter(tflite::GetModel(g_model), resolver, tensor_arena,
                                                       kArenaSize);
    if (static_interpreter.AllocateTensors() != kTfLiteOk) return 1;
    interpreter = &static_interpreter;
  }}
  int8_t* in = interpreter->input(0)->data.int8;
  for (int t = 0; t < kLookback; ++t)
    for (int d = 0; d < kVariates; ++d) {{
      float q = roundf(window[t * kVariates + d] / kInScale[d] + kInZero[d]);
      in[t * kVariates + d] = (int8_t)(q < -128.f ? -128.f : (q > 127.f ? 127.f : q));
    }}
  if (interpreter->Invoke() != kTfLiteOk) return 2;
  const int8_t* y = interpreter->output(0)->data.int8;
  for (int t = 0; t < kHorizon; ++t)
    for (int d = 0; d < kVariates; ++d)
      out[t * kVariates + d] = kOutScale[d] * ((float)y[t * kVariates + d] - kOutZero[d]);
  return 0;
}}
"""
