"""Raw values in and out of a full-integer int8 TFLite model whose scaler is folded into its I/O quantization.

A full-int8 model computes on the normalized scale with int8 input and output tensors. The training
scaler (`mean`, `std` per variate) travels inside the model file as TFLite metadata named
`distilts_io` (JSON), so any reader of the file (the LiteRT backend here, the arm64 check, a C++
port) maps raw values exactly as compile verified: per variate d,
`q = clip(round(x_d / scale_d + zero_point_d))` and `y_d = scale_d * (q - zero_point_d)` with
`scale_d = std_d * s` and `zero_point_d = z - mean_d / scale_d` (s, z: the tensor's own
quantization), which is normalization and quantization in one multiply-add.

A global student on panel data (series of any level: `config.json` `normalization.instance == "revin"`) is
normalized **per window** instead (`io["instance"]`): per window and variate, `m` = the mean and
`s = sqrt(var + eps)` over the lookback, the model gets `(x - m) / s` (quantized with its tensor's own scale and
zero point) and its forecast comes back as `y * s + m`. The student normalizes each window itself (RevIN), so
its forecast of the raw window is exactly that (RevIN is shift- and scale-equivariant), while the integer input
keeps its 8 bits for the window's shape whatever the series' level (M4 Hourly spans 5 decades: one input scale
for all series would leave the small ones a handful of integer steps).
numpy + flatbuffers (a dependency of ai-edge-litert): part of the runtime a device installs.
"""

from __future__ import annotations

import json

import numpy as np

METADATA = "distilts_io"


def read_io(content: bytes) -> dict | None:
    """The `distilts_io` metadata of a TFLite flatbuffer (None when absent)."""
    from ai_edge_litert import schema_py_generated as schema  # the tflite extra: only TFLite files get here

    model = schema.Model.GetRootAs(content, 0)
    for i in range(model.MetadataLength()):
        md = model.Metadata(i)
        if md.Name() == METADATA.encode():
            return json.loads(model.Buffers(md.Buffer()).DataAsNumpy().tobytes())
    return None


class Scaler:
    """The per-variate affine map between raw values and the model's normalized scale (per window with
    `io["instance"]`: `around`)."""

    def __init__(self, io: dict) -> None:
        self.mean = np.asarray(io["scaler"]["mean"], np.float32)
        self.std = np.asarray(io["scaler"]["std"], np.float32)
        self.inv_std = (1.0 / self.std).astype(np.float32)
        self.instance_eps = None if io.get("instance") is None else float(io["instance"]["eps"])

    def around(self, x: np.ndarray, run) -> np.ndarray:
        """Raw windows `x [B, L, D]` -> raw forecasts of `run` (normalized in -> normalized out)."""
        if self.instance_eps is None:
            return self.denormalize(run(self.normalize(x)))
        mean, std = window_stats(x, self.instance_eps)
        return restore(run(((x - mean) / std).astype(np.float32)), mean, std)

    def normalize(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) * self.inv_std

    def denormalize(self, y: np.ndarray) -> np.ndarray:
        """Normalized forecasts -> raw: `[..., H, D]`, or a quantile model's `[B, D, H, Q]` (variates on axis 1)."""
        if y.ndim == 4:
            return y * self.std[:, None, None] + self.mean[:, None, None]
        return y * self.std + self.mean


def per_variate(tensor: dict, mean, std) -> dict:
    """The scaler folded into a tensor's quantization: {'scale': [D], 'zero_point': [D]} (see module doc)."""
    s = np.asarray(std, np.float64) * tensor["scale"]
    return {"scale": s.tolist(), "zero_point": (tensor["zero_point"] - np.asarray(mean, np.float64) / s).tolist()}


def quantize(x: np.ndarray, tensor: dict, pv: dict) -> np.ndarray:
    """Raw `[B, L, D]` windows -> int8 input tensor values (pv: per_variate of the input tensor)."""
    info = np.iinfo(np.dtype(tensor["dtype"]))
    q = np.rint(np.asarray(x, np.float64) / np.asarray(pv["scale"]) + np.asarray(pv["zero_point"]))
    return np.clip(q, info.min, info.max).astype(tensor["dtype"])


def dequantize(q: np.ndarray, pv: dict) -> np.ndarray:
    """int8 output tensor values -> raw `[B, H, D]` forecasts, or a quantile model's `[B, D, H, Q]` (pv:
    per_variate of the output tensor)."""
    zero, scale = np.asarray(pv["zero_point"]), np.asarray(pv["scale"])
    if q.ndim == 4:  # variates on axis 1
        zero, scale = zero[:, None, None], scale[:, None, None]
    return ((q.astype(np.float64) - zero) * scale).astype(np.float32)


def window_stats(x: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Per window and variate of `x [B, L, D]`: mean and sqrt(var + eps) over time, each `[B, 1, D]`."""
    x = np.asarray(x, np.float64)
    mean = x.mean(axis=1, keepdims=True)
    return mean, np.sqrt(x.var(axis=1, keepdims=True) + eps)


def restore(y: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Per-window normalized forecasts `[B, H, D]` (a quantile model's `[B, D, H, Q]`) -> raw."""
    if y.ndim == 4:  # variates on axis 1
        mean, std = mean[:, 0, :, None, None], std[:, 0, :, None, None]
    return (y * std + mean).astype(np.float32)


def run_raw(x: np.ndarray, io: dict, run) -> np.ndarray:
    """Raw windows -> raw forecasts of an integer model `run(q_in) -> q_out` with the I/O record `io`."""
    stats = None if io.get("instance") is None else window_stats(x, float(io["instance"]["eps"]))
    z = x if stats is None else (np.asarray(x, np.float64) - stats[0]) / stats[1]
    y = dequantize(run(quantize(z, io["input"], io["input"]["per_variate"])), io["output"]["per_variate"])
    return y if stats is None else restore(y, *stats)
