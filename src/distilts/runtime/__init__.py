"""The runtime stage: what ships to the device.

Imports numpy and, lazily, the one backend an artifact needs (onnxruntime, openvino or
ai_edge_litert). Never torch, transformers, pandas or distilts.compile.
"""

from distilts.runtime.forecaster import Forecaster, plan_chunks
from distilts.runtime.manifest import Manifest, read_manifest

__all__ = ["Forecaster", "Manifest", "plan_chunks", "read_manifest"]
