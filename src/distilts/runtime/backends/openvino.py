"""OpenVINO backend (`pip install "distilts[openvino]"`): loads the IR's .xml (weights from the .bin)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distilts.errors import require
from distilts.runtime.backends.base import Session


class OpenVinoSession(Session):
    backend = "openvino"

    def __init__(self, path: Path, batch: int | None, input_name: str, output_name: str, threads: int | None):
        ov = require("openvino", "openvino", "OpenVINO artifacts")
        self._ov = ov
        core = ov.Core()
        # f32 inference precision: no silent bf16/f16 on CPUs that support it (golden check must hold)
        config: dict[str, object] = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        if "DYNAMIC_QUANTIZATION_GROUP_SIZE" in core.get_property("CPU", "SUPPORTED_PROPERTIES"):
            # int8-weight models: f32 activations as compiled and verified (x86 would otherwise quantize
            # them per group at run time and arm64 not, so the same artifact forecast differently)
            config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = 0
        model = core.read_model(str(path))
        self._compiled = core.compile_model(model, "CPU", config)
        self._request = self._compiled.create_infer_request()
        outs = self._compiled.outputs
        self._out_index = next((i for i, o in enumerate(outs) if output_name in o.get_names()), 0)
        self.batch = batch

    def run(self, x: np.ndarray) -> np.ndarray:
        self._request.infer({0: x})
        return np.array(self._request.get_output_tensor(self._out_index).data, copy=True)

    @property
    def version(self) -> str:
        return f"openvino {self._ov.__version__}"


def open_session(path: Path, *, batch: int | None, input_name: str, output_name: str,
                 threads: int | None) -> Session:
    return OpenVinoSession(path, batch, input_name, output_name, threads)
