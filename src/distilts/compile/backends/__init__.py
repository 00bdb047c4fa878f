"""One module per artifact format, each holding its export, its int8 candidates and its builder.

Each module has `build(job, module, config, scratch, verify_x, ref, calib_x) -> [Candidate]` (fp32:
one candidate; int8: every quantization recipe, each measured against the PyTorch student), `EXT`
(the model file's extension) and `EXPORT_PASS` (the manifest record of the exporter's own graph pass);
`BACKEND` when another runtime backend loads its files (tflm, ethos-u: tflite). The `c` format is not
here: it has no runtime backend (distilts.compile.c_artifact).
"""

from __future__ import annotations

from types import ModuleType

from distilts.compile.backends import micro, onnx, openvino, tflite

BUILDERS: dict[str, ModuleType] = {"onnx": onnx, "openvino": openvino, "tflite": tflite, "tflm": micro,
                                   "ethos-u": micro}


def runtime_backend(fmt: str) -> str:
    """The runtime backend that loads a format's model file (`BACKEND`, else the format itself)."""
    return getattr(BUILDERS[fmt], "BACKEND", fmt)
