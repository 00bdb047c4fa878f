"""LiteRT (TFLite) backend (`pip install "distilts[tflite]"`): one file per fixed batch size.

A LiteRT interpreter serves one thread at a time, so concurrent calls each borrow an interpreter from
a pool (all built from the same model bytes, read once). A full-integer int8 model (int8 input and
output, the scaler in its `distilts_io` metadata: distilts.runtime.int8_io) gets raw values
normalized on the way in and mapped back on the way out, so callers see raw values either way.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

from distilts.errors import require
from distilts.quiet import quiet
from distilts.runtime.backends import BACKENDS
from distilts.runtime.backends.base import Pool, RunSettings, Session
from distilts.runtime.inputs import window_only
from distilts.runtime.int8_io import Scaler, read_io

BACKEND = BACKENDS["tflite"]


class _Interpreter:
    """One interpreter with its input/output details (re-read after a dynamic-batch resize)."""

    def __init__(self, lite, content: bytes, threads: int, input_name: str, output_name: str) -> None:
        with quiet():  # no "Created TensorFlow Lite XNNPACK delegate" banner on every load (replayed on error)
            self.interp = lite.Interpreter(model_content=content, num_threads=threads)
            self.interp.allocate_tensors()
        inputs = self.interp.get_input_details()
        outputs = self.interp.get_output_details()
        self.inp = next((d for d in inputs if input_name in d["name"]), inputs[0])
        self.out = next((d for d in outputs if output_name == d["name"]), outputs[0])
        # several inputs (an artifact with covariates): litert-torch names them `..._args_<i>` in argument order
        self.ordered = sorted(inputs, key=lambda d: _arg_position(d["name"], d["index"]))

    def run(self, x: np.ndarray | dict[str, np.ndarray], dynamic: bool) -> np.ndarray:
        it = self.interp
        if isinstance(x, dict):  # named inputs in artifact order (fixed-batch files only: TFLite)
            for detail, value in zip(self.ordered, x.values(), strict=True):
                it.set_tensor(detail["index"], _quantize(value, detail))
            it.invoke()
            return _dequantize(it.get_tensor(self.out["index"]), self.out)
        if dynamic and tuple(self.inp["shape"]) != x.shape:
            it.resize_tensor_input(self.inp["index"], list(x.shape))
            it.allocate_tensors()
            self.inp = next(d for d in it.get_input_details() if d["index"] == self.inp["index"])
            self.out = next(d for d in it.get_output_details() if d["index"] == self.out["index"])
        it.set_tensor(self.inp["index"], _quantize(x, self.inp))
        it.invoke()
        return _dequantize(it.get_tensor(self.out["index"]), self.out)  # a copy: the interpreter is reused


class TfliteSession(Session):
    backend = "tflite"

    def __init__(self, path: Path, batch: int | None, input_name: str, output_name: str, settings: RunSettings):
        require(BACKEND.package, BACKEND.extra, "TFLite artifacts")
        from ai_edge_litert import interpreter as lite  # the optional extra, checked just above

        content = Path(path).read_bytes()
        io = read_io(content)
        self._scaler = Scaler(io) if io is not None else None

        def make() -> _Interpreter:
            return _Interpreter(lite, content, settings.threads, input_name, output_name)

        self._pool = Pool(make, settings.workers, first=make())
        self.batch = batch
        self.settings = settings

    def run(self, x: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        sc = self._scaler
        interp = self._pool.get()
        try:
            if sc is None:
                return interp.run(x, self.batch is None)
            return sc.around(window_only(x), lambda z: interp.run(z, self.batch is None))
        finally:
            self._pool.put(interp)

    @property
    def version(self) -> str:
        return f"ai-edge-litert {getattr(sys.modules[BACKEND.package], '__version__', '?')}"


def _arg_position(name: str, index: int) -> int:
    """The argument position of an input tensor named like `serving_default_args_2:0` (else its index)."""
    m = re.search(r"args_(\d+)", name)
    return int(m.group(1)) if m else index


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
    return np.asarray(y, dtype=np.float32)  # get_tensor already returns a copy


def open_session(path: Path, *, batch: int | None, input_name: str, output_name: str, settings: RunSettings) -> Session:
    return TfliteSession(path, batch, input_name, output_name, settings)
