"""LiteRT (TFLite) backend (`pip install "distilts[tflite]"`): one file per fixed batch size."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distilts.errors import require
from distilts.runtime.backends.base import Session


class TfliteSession(Session):
    backend = "tflite"

    def __init__(self, path: Path, batch: int | None, input_name: str, output_name: str, threads: int | None):
        require("ai_edge_litert", "tflite", "TFLite artifacts")
        from ai_edge_litert import interpreter as lite

        from distilts.quiet import quiet

        with quiet():  # no "Created TensorFlow Lite XNNPACK delegate" banner on every load (replayed on error)
            self._interp = lite.Interpreter(model_path=str(path), num_threads=int(threads) if threads else None)
            self._interp.allocate_tensors()
        inputs = self._interp.get_input_details()
        outputs = self._interp.get_output_details()
        self._in = next((d for d in inputs if input_name in d["name"]), inputs[0])
        self._out = next((d for d in outputs if output_name == d["name"]), outputs[0])
        self.batch = batch

    def run(self, x: np.ndarray) -> np.ndarray:
        it = self._interp
        if self.batch is None and tuple(self._in["shape"]) != x.shape:  # dynamic batch: resize
            it.resize_tensor_input(self._in["index"], list(x.shape))
            it.allocate_tensors()
            self._in = next(d for d in it.get_input_details() if d["index"] == self._in["index"])
            self._out = next(d for d in it.get_output_details() if d["index"] == self._out["index"])
        it.set_tensor(self._in["index"], _quantize(x, self._in))
        it.invoke()
        return _dequantize(it.get_tensor(self._out["index"]), self._out)

    @property
    def version(self) -> str:
        import ai_edge_litert

        return f"ai-edge-litert {getattr(ai_edge_litert, '__version__', '?')}"


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float input to the tensor's dtype (int8/uint8 inputs use the tensor's scale and zero point)."""
    dtype = detail["dtype"]
    if dtype in (np.int8, np.uint8, np.int16):
        scale, zero = detail["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
    return x.astype(dtype, copy=False)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] in (np.int8, np.uint8, np.int16):
        scale, zero = detail["quantization"]
        return ((y.astype(np.float32) - zero) * scale).astype(np.float32)
    return np.array(y, dtype=np.float32, copy=True)


def open_session(path: Path, *, batch: int | None, input_name: str, output_name: str,
                 threads: int | None) -> Session:
    return TfliteSession(path, batch, input_name, output_name, threads)
