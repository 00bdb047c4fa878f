"""OpenVINO backend (`pip install "distilts[openvino]"`): loads the IR's .xml (weights from the .bin).

A compiled model is shared; an infer request is not thread-safe, so each concurrent call borrows one
from a pool. Each request keeps a pre-set input tensor that shares memory with a numpy buffer (the
call copies the window into it: ~30 us less per call than `infer({0: x})` at batch 1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distilts.errors import require
from distilts.runtime.backends import BACKENDS
from distilts.runtime.backends.base import Pool, RunSettings, Session

BACKEND = BACKENDS["openvino"]


class _Request:
    """One infer request and its shared input buffer (re-made when the batch size changes)."""

    def __init__(self, ov, compiled, out_index: int) -> None:
        self._ov = ov
        self.request = compiled.create_infer_request()
        self.buffer: np.ndarray | None = None
        self.out_index = out_index

    def run(self, x: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        if isinstance(x, dict):  # named inputs (an artifact with covariates): set by the IR's tensor names
            self.request.infer(x)
            return self.request.get_output_tensor(self.out_index).data.copy()
        if self.buffer is None or self.buffer.shape != x.shape:
            self.buffer = np.empty(x.shape, dtype=np.float32)
            self.request.set_input_tensor(self._ov.Tensor(self.buffer, shared_memory=True))
        np.copyto(self.buffer, x)
        self.request.infer()
        return self.request.get_output_tensor(self.out_index).data.copy()  # the request goes back to the pool


class OpenVinoSession(Session):
    backend = "openvino"

    def __init__(self, path: Path, batch: int | None, input_name: str, output_name: str, settings: RunSettings):
        ov = require(BACKEND.library, BACKEND.extra, "OpenVINO artifacts")
        self._ov = ov
        core = ov.Core()
        # f32 inference precision: no silent bf16/f16 on CPUs that support it (golden check must hold)
        config: dict[str, object] = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": settings.mode.upper()}
        if settings.mode == "latency":
            config["INFERENCE_NUM_THREADS"] = settings.threads
        if "DYNAMIC_QUANTIZATION_GROUP_SIZE" in core.get_property("CPU", "SUPPORTED_PROPERTIES"):
            # int8-weight models: f32 activations as compiled and verified (x86 would otherwise quantize
            # them per group at run time and arm64 not, so the same artifact forecast differently)
            config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = 0
        model = core.read_model(str(path))
        self._compiled = core.compile_model(model, "CPU", config)
        outs = self._compiled.outputs
        out_index = next((i for i, o in enumerate(outs) if output_name in o.get_names()), 0)
        size = settings.workers
        if settings.mode == "throughput":  # as many requests as the plugin runs streams at once
            size = max(size, int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self._pool = Pool(
            lambda: _Request(ov, self._compiled, out_index), size, first=_Request(ov, self._compiled, out_index)
        )
        self.batch = batch
        self.settings = settings

    def run(self, x: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        req = self._pool.get()
        try:
            return req.run(x)
        finally:
            self._pool.put(req)

    @property
    def version(self) -> str:
        return f"openvino {self._ov.__version__}"


def open_session(path: Path, *, batch: int | None, input_name: str, output_name: str, settings: RunSettings) -> Session:
    return OpenVinoSession(path, batch, input_name, output_name, settings)
