"""Full-integer int8 TFLite: int8 weights, activations, input and output (microcontrollers, Ethos-U NPUs).

The student is exported on the **normalized** scale (the DLinear fold without the scaler, or the
student itself) with litert-torch and quantized by ai-edge-quantizer's `static_wi8_ai8` recipe:
per-channel int8 weights, int8 activations calibrated on train windows, int8 input and output
tensors (no float QUANTIZE/DEQUANTIZE ops at the edges). The scaler is folded into the I/O
quantization instead of the graph: per variate d,

    q_in  = clip(round(x_d / s_in_d + z_in_d), -128, 127),   s_in_d = sd_d * s_in,  z_in_d = z_in - mu_d / s_in_d
    y_d   = s_out_d * (q_out - z_out_d),                        s_out_d = sd_d * s_out, z_out_d = z_out - mu_d / s_out_d

so normalization costs nothing on the device (one multiply-add per value, as quantizing alone
would) and the graph sees one per-tensor scale. The manifest's `io` records both forms; the
runtime (and the C++ example) apply them, so `Forecaster.predict` takes and returns raw values.

ai_edge_quantizer, ai_edge_litert and flatbuffers are imported inside the functions: optional extras
(compile/tflite) that may be missing (`require` names the extra).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from distilts.compile import litert_ops
from distilts.compile.passes import fold_linear
from distilts.errors import require
from distilts.quiet import quiet
from distilts.runtime.int8_io import METADATA, per_variate, window_stats
from distilts.students.revin import RevIN
from distilts.utils import atomic_write_bytes

METHOD = "full-int8"
NOTE = (
    "ai-edge-quantizer static_wi8_ai8: per-channel int8 weights, int8 activations calibrated on train windows, "
    "int8 input/output tensors; the scaler is folded into the input/output quantization (per variate)"
)


def normalized_module(student):
    """What the int8 graph computes: normalized window -> normalized forecast (DLinear: its fold, float32)."""
    return fold_linear.fold(student).eval() if fold_linear.applies(student) else student.eval()


def build_file(
    module, config: dict, calib_x: np.ndarray, out: Path, batch: int = 1, recipe_name: str = "static_wi8_ai8"
) -> dict:
    """The full-int8 file of `module` (normalized scale) at `batch`, its scaler embedded; returns its `io`.
    recipe_name: an ai-edge-quantizer recipe (`static_wi8_ai16`: int16 activations, 16x8)."""
    mean = np.asarray(config["scaler"]["mean"], np.float64)
    std = np.asarray(config["scaler"]["std"], np.float64)
    eps = instance_eps(module, config)
    if eps is None:
        calib_z = (calib_x - mean) / std
    else:  # per-window I/O normalization (runtime/int8_io.py): the graph sees every window on a unit scale
        m, s = window_stats(calib_x, eps)
        calib_z, mean, std = (calib_x - m) / s, np.zeros_like(mean), np.ones_like(std)
    export(module, int(config["lookback"]), len(config["columns"]), calib_z.astype(np.float32), out, batch, recipe_name)
    io = io_record(tensor_io(out), mean, std)
    if eps is not None:
        io["instance"] = {
            "eps": eps,
            "normalization": "per window and variate: z = (x - mean) / sqrt(var + eps) over the lookback, "
            "forecast = y * sqrt(var + eps) + mean (the student's own RevIN, outside the integer graph)",
        }
        io["normalization"] = "per window (instance), then the tensor's own scale and zero point"
    embed_io(out, io)
    return io


def instance_eps(module, config: dict) -> float | None:
    """The per-window normalization's variance epsilon in raw units (the student's RevIN eps x scaler std^2)
    for a global student on panel data (`normalization.instance == "revin"`), else None (scaler folded in)."""
    if (config.get("normalization") or {}).get("instance") != "revin":
        return None
    eps = next((float(m.eps) for m in module.modules() if isinstance(m, RevIN)), None)
    if eps is None:
        return None
    return eps * float(np.max(np.asarray(config["scaler"]["std"], np.float64))) ** 2


def export(
    module,
    lookback: int,
    n_variates: int,
    calib_z: np.ndarray,
    out: Path,
    batch: int = 1,
    recipe_name: str = "static_wi8_ai8",
) -> Path:
    """fp32 TFLite at `batch` of `module` (normalized scale), then full int8 calibrated on `calib_z`."""
    litert_torch = require("litert_torch", "compile", "TFLite export")
    require("ai_edge_quantizer", "compile", "full-integer int8")
    from ai_edge_quantizer import quantizer, recipe  # optional (compile extra), checked just above

    fp32 = out.with_suffix(".fp32.tflite")
    with quiet():
        litert_torch.convert(module, (torch.zeros(batch, lookback, n_variates),)).export(str(fp32))
        q = quantizer.Quantizer(str(fp32), getattr(recipe, recipe_name)())
        sig = _signature(fp32)
        data = [
            {sig: np.ascontiguousarray(_padded(calib_z[lo : lo + batch], batch), np.float32)}
            for lo in range(0, len(calib_z), batch)
        ]
        calibration = _calibrate(q, data)
        q.quantize(calibration).export_model(str(out), overwrite=True)
    fp32.unlink()
    return out


def _padded(x: np.ndarray, batch: int) -> np.ndarray:
    return x if len(x) == batch else np.concatenate([x, np.repeat(x[-1:], batch - len(x), axis=0)])


def _calibrate(q, data: list[dict]) -> dict:
    """Activation ranges as the true min/max over all calibration windows.

    `Quantizer.calibrate` smooths ranges with a moving average (factor 0.95), which clips the
    windows' extremes: on ETTh1 DLinear the test forecasts then exceeded the int8 tolerance's max abs
    error. A linear student has no outlier activations to protect against, so the plain extremes are kept.
    """
    from ai_edge_quantizer import calibrator
    from ai_edge_quantizer.utils import qsv_utils

    calib = calibrator.Calibrator(q._float_model_buffer, num_threads=1, qsv_update_func=qsv_utils.min_max_update)
    calib.calibrate({"serving_default": data}, q._recipe_manager)
    return calib.get_model_qsvs()


def _signature(path: Path) -> str:
    from ai_edge_litert import interpreter as lite

    return lite.Interpreter(str(path)).get_signature_list()["serving_default"]["inputs"][0]


def tensor_io(path: Path) -> dict:
    """{'input'|'output': {dtype, shape, scale, zero_point}} of the model's (single) input and output."""
    return litert_ops.io_details(path.read_bytes())


def io_record(tensors: dict, mean, std) -> dict:
    """The `distilts_io` metadata / manifest `io`: the scaler, each tensor's quantization and its per-variate form."""
    out = {
        "layout": "[batch, time, variate]",
        "scaler": {"mean": [float(v) for v in mean], "std": [float(v) for v in std]},
        "normalization": "folded into the per-variate scale and zero point: q = round(x / scale + zero_point)",
    }
    for side in ("input", "output"):
        out[side] = {**tensors[side], "per_variate": per_variate(tensors[side], mean, std)}
    return out


def embed_io(path: Path, io: dict) -> None:
    """Add `io` to the model file as TFLite metadata `distilts_io` (the runtime reads it to map raw values)."""
    import flatbuffers  # optional: comes with ai_edge_litert (the tflite/compile extras)
    from ai_edge_litert import schema_py_generated as schema

    raw = path.read_bytes()
    model = schema.ModelT.InitFromPackedBuf(raw, 0)
    for b in model.buffers or []:  # buffers stored after the flatbuffer (offset/size): inline them, the repack
        if b.offset and b.offset > 1:  # below drops everything past the flatbuffer itself
            b.data = np.frombuffer(raw[b.offset : b.offset + b.size], np.uint8)
            b.offset, b.size = 0, 0
    buf = schema.BufferT()
    buf.data = np.frombuffer(json.dumps(io).encode(), np.uint8)
    model.buffers.append(buf)
    md = schema.MetadataT()
    md.name = METADATA
    md.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), md]
    b = flatbuffers.Builder(1 << 16)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    atomic_write_bytes(path, bytes(b.Output()))
