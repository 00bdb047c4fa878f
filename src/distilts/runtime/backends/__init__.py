"""Inference backends: the one table of artifact formats, and `open_session`.

`BACKENDS` is the only place that maps a format to its library: the runtime sessions, the compile
CLI's extra check, the emulated arm64 device (wheels, versions, import probe), the profiler and the
targets read it. Each session module (`onnx.py`, `openvino.py`, `tflite.py`) imports its library only
when a file is opened, so this package imports neither numpy nor a backend library.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from distilts.plugins import Registry
from distilts.runtime.backends.base import MODES, RunSettings, Session


@dataclass(frozen=True)
class Backend:
    """One artifact format and everything that depends on its library."""

    format: str  # the artifact's `backend` (manifest) and the --target format
    module: str  # the runtime session module
    library: str  # what the runtime imports to run a file
    distribution: str  # the library's pip distribution (versions; the arm64 device's wheels)
    extra: str  # pip extra that installs it: `pip install "distilts[EXTRA]"`
    compile_needs: tuple[str, ...]  # modules `distilts compile` needs for fp32 (besides torch)
    compile_int8_needs: tuple[str, ...] = ()  # and in addition for int8

    @property
    def package(self) -> str:
        """The library's top-level package (what shows in sys.modules once it is loaded)."""
        return self.library.split(".")[0]

    def version(self) -> str:
        """'<distribution> <version>' of the installed library, read from its metadata (no import)."""
        return f"{self.distribution} {metadata.version(self.distribution)}"


BACKENDS: Registry[Backend] = Registry(
    "backend",
    {
        b.format: b
        for b in (
            Backend(
                "onnx",
                "distilts.runtime.backends.onnx",
                "onnxruntime",
                "onnxruntime",
                "onnx",
                ("onnx", "onnxscript", "onnxruntime"),
            ),
            Backend(
                "openvino",
                "distilts.runtime.backends.openvino",
                "openvino",
                "openvino",
                "openvino",
                ("openvino",),
                ("nncf",),
            ),
            Backend(
                "tflite",
                "distilts.runtime.backends.tflite",
                "ai_edge_litert.interpreter",
                "ai-edge-litert",
                "tflite",
                ("litert_torch", "ai_edge_litert"),
                ("ai_edge_quantizer", "torchao"),
            ),
        )
    },
)

__all__ = ["BACKENDS", "MODES", "Backend", "RunSettings", "Session", "open_session"]


def open_session(
    backend: str,
    path: str | Path,
    *,
    batch: int | None,
    input_name: str,
    output_name: str,
    threads: int | None = None,
    mode: str = "latency",
    settings: RunSettings | None = None,
) -> Session:
    """Load one model file with `backend` (raises MissingExtraError if its library is missing).

    `settings` (or `threads` per call, default 1, and `mode`) say how it runs; see docs/runtime.md.
    """
    settings = settings or RunSettings(threads=int(threads or 1), mode=mode)
    module = importlib.import_module(BACKENDS[backend].module)
    return module.open_session(
        Path(path), batch=batch, input_name=input_name, output_name=output_name, settings=settings
    )
