"""Raw values in and out of a full-integer int8 model: the manifest's `io` quantization, scaler folded in.

Per variate d: `q = clip(round(x_d / scale_d + zero_point_d))` into the input tensor, and
`y_d = scale_d * (q - zero_point_d)` out of the output tensor (docs/compile.md, "Full-integer int8").
numpy only: part of the runtime a device installs.
"""

from __future__ import annotations

import numpy as np


def quantize(x: np.ndarray, io: dict) -> np.ndarray:
    """Raw `[B, L, D]` windows -> the int8 input tensor values (io: the manifest's `io`)."""
    pv = io["input"]["per_variate"]
    info = np.iinfo(np.dtype(io["input"]["dtype"]))
    q = np.rint(np.asarray(x, np.float64) / np.asarray(pv["scale"]) + np.asarray(pv["zero_point"]))
    return np.clip(q, info.min, info.max).astype(io["input"]["dtype"])


def dequantize(q: np.ndarray, io: dict) -> np.ndarray:
    """int8 output tensor values -> raw `[B, H, D]` forecasts (float32)."""
    pv = io["output"]["per_variate"]
    return ((q.astype(np.float64) - np.asarray(pv["zero_point"])) * np.asarray(pv["scale"])).astype(np.float32)
