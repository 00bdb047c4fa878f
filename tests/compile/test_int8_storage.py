"""int8-storage: int8 weights of the fp32 graph, dequantized by the runtime at load; a candidate of every CPU format."""

from __future__ import annotations

import numpy as np
import pytest

from distilts.compile import int8_storage


def test_quantize_per_channel_round_trips_within_half_a_step():
    w = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32) * np.linspace(0.1, 10, 8)
    q, scale = int8_storage.quantize(w, 0)
    assert q.dtype == np.int8 and scale.shape == (1, 8)
    assert np.all(np.abs(q * scale - w) <= scale / 2 + 1e-7)


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_int8_storage_is_a_candidate_with_fp32_graph_accuracy(tmp_path_factory, fmt):
    from compiled_factory import compiled

    from distilts.runtime.manifest import read_manifest

    man = read_manifest(compiled(tmp_path_factory, fmt, int8=True)).raw
    cand = man["quantization"]["candidates"][int8_storage.NAME]
    assert cand["rel_mse"] < 1e-3 and cand["latency_ms_b1"] > 0


def test_onnx_file_stores_int8_weights(tmp_path):
    import onnx
    import torch

    from distilts.compile.backends.onnx import export_onnx
    from distilts.compile.passes.fold_linear import fold
    from distilts.students.dlinear import DLinear

    torch.manual_seed(0)
    folded = fold(DLinear(24, 6, 3, moving_avg=5).eval(), [0.0] * 3, [1.0] * 3)
    export_onnx(folded, 24, 3, tmp_path / "f.onnx")
    out = int8_storage.onnx_file(tmp_path / "f.onnx", tmp_path / "q.onnx")
    g = onnx.load(str(out)).graph
    assert [n.op_type for n in g.node][:2] == ["Cast", "Mul"]
    assert any(i.data_type == onnx.TensorProto.INT8 and list(i.dims) == [24, 6] for i in g.initializer)


def test_runtimes_fold_the_int8_weights_back_to_the_fp32_graph(tmp_path):
    """What makes int8-storage as fast as fp32: each runtime's own graph after load is the fp32 one."""
    import onnx
    import onnxruntime as ort
    import openvino as ov
    import torch

    from distilts.compile.backends.onnx import export_onnx
    from distilts.compile.backends.openvino import convert
    from distilts.compile.passes.fold_linear import fold
    from distilts.students.dlinear import DLinear

    torch.manual_seed(0)
    folded = fold(DLinear(24, 6, 3, moving_avg=5).eval(), [0.0] * 3, [1.0] * 3)
    export_onnx(folded, 24, 3, tmp_path / "f.onnx")
    int8_storage.onnx_file(tmp_path / "f.onnx", tmp_path / "q.onnx")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(tmp_path / "q.onnx"), so, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node]
    assert "Cast" not in ops and "MatMulNBits" not in ops and "DequantizeLinear" not in ops, ops

    compiled = ov.Core().compile_model(int8_storage.openvino_model(convert(folded, 24, 3)), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    fcs = [o.get_rt_info()["runtimePrecision"].astype(str) for o in compiled.get_runtime_model().get_ordered_ops()
           if o.get_rt_info()["layerType"].astype(str) == "FullyConnected"]
    assert fcs == ["f32"]
