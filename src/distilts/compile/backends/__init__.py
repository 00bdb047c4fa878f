"""The compile registry: one builder module per artifact format, found by name.

A builder module has `build(job, module, config, scratch, verify_x, ref, calib_x, fp32_module=None)
-> [Candidate]` (fp32: one candidate; int8: every quantization recipe, each measured against the
PyTorch student), `EXT` (the model file's extension) and `EXPORT_PASS` (the manifest record of the
exporter's own graph pass); `BACKEND` when another runtime backend loads its files (tflm, ethos-u:
tflite). A format whose artifact is not run by a runtime backend (`c`: C sources) instead has
`compile_job(...)`, which builds, verifies and writes the artifact itself.

Modules are imported by name when a format is compiled, so the chain below the Pi (distilts.mcu)
can build on compile without compile importing it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from distilts.plugins import Registry

BUILDERS: Registry[str] = Registry(
    "compile",
    {
        "onnx": "distilts.compile.backends.onnx",
        "openvino": "distilts.compile.backends.openvino",
        "tflite": "distilts.compile.backends.tflite",
        "tflm": "distilts.mcu.backend",
        "ethos-u": "distilts.mcu.backend",
        "c": "distilts.mcu.c_artifact",
    },
)


def builder(fmt: str) -> ModuleType:
    """The builder module of format `fmt` (imported on first use)."""
    return importlib.import_module(BUILDERS[fmt])


def runtime_backend(fmt: str) -> str:
    """The runtime backend that loads a format's model file (`BACKEND`, else the format itself)."""
    return getattr(builder(fmt), "BACKEND", fmt)
