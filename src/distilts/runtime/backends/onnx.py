"""ONNX Runtime backend (`pip install "distilts[onnx]"`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distilts.errors import require
from distilts.runtime.backends.base import Session


class OnnxSession(Session):
    backend = "onnx"

    def __init__(self, path: Path, batch: int | None, input_name: str, output_name: str, threads: int | None):
        ort = require("onnxruntime", "onnx", "ONNX artifacts")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._ort = ort
        self._sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        names = [i.name for i in self._sess.get_inputs()]
        self._input = input_name if input_name in names else names[0]
        outs = [o.name for o in self._sess.get_outputs()]
        self._output = output_name if output_name in outs else outs[0]
        self.batch = batch

    def run(self, x: np.ndarray) -> np.ndarray:
        return self._sess.run([self._output], {self._input: x})[0]

    @property
    def version(self) -> str:
        return f"onnxruntime {self._ort.__version__}"


def open_session(path: Path, *, batch: int | None, input_name: str, output_name: str,
                 threads: int | None) -> Session:
    return OnnxSession(path, batch, input_name, output_name, threads)
