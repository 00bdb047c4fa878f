"""ONNX Runtime backend (`pip install "distilts[onnx]"`).

One `InferenceSession` serves every thread: onnxruntime documents `run()` as thread-safe.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distilts.errors import require
from distilts.runtime.backends import BACKENDS
from distilts.runtime.backends.base import RunSettings, Session

BACKEND = BACKENDS["onnx"]


class OnnxSession(Session):
    backend = "onnx"

    def __init__(self, path: Path, batch: int | None, input_name: str, output_name: str, settings: RunSettings):
        ort = require(BACKEND.library, BACKEND.extra, "ONNX artifacts")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.intra_op_num_threads = settings.threads
        opts.inter_op_num_threads = 1
        # latency: worker threads spin between ops (lower latency, burns CPU); throughput: many calls
        # run at once from the callers' threads, so spinning would only steal their cores
        spin = "1" if settings.mode == "latency" else "0"
        opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
        opts.add_session_config_entry("session.inter_op.allow_spinning", spin)
        opts.log_severity_level = 3
        self._ort = ort
        self._sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        names = [i.name for i in self._sess.get_inputs()]
        self._input = input_name if input_name in names else names[0]
        outs = [o.name for o in self._sess.get_outputs()]
        self._outputs = [output_name if output_name in outs else outs[0]]
        # InferenceSession.run re-validates the feed in Python on every call (~2.5 us, 15% of a folded
        # DLinear's call); the C session it wraps takes the same arguments. Public path if it moves.
        inner = getattr(self._sess, "_sess", None)
        self._call = (
            (lambda feed: inner.run(self._outputs, feed, None))
            if inner is not None
            else (lambda feed: self._sess.run(self._outputs, feed))
        )
        self.batch = batch
        self.settings = settings

    def run(self, x: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        # named inputs (an artifact with covariates): the graph's input names are the manifest's
        return self._call(x if isinstance(x, dict) else {self._input: x})[0]

    @property
    def version(self) -> str:
        return f"onnxruntime {self._ort.__version__}"


def open_session(path: Path, *, batch: int | None, input_name: str, output_name: str, settings: RunSettings) -> Session:
    return OnnxSession(path, batch, input_name, output_name, settings)
