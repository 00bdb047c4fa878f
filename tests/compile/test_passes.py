"""Compile passes: the linear fold is exact (float64) and within fp32 tolerance (float32) for every DLinear
variant, a wrong rewrite is refused, the exported graph of a folded DLinear is a handful of nodes, and the
manifest names the passes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from compiled_factory import compiled
from distilts.compile.passes import Original, apply_passes, fold_linear, fold_scaler
from distilts.compile.passes.fold_linear import FoldedLinear, applies, fold
from distilts.compile.wrapper import RawScaleForecaster
from distilts.errors import ArtifactError
from distilts.students import build_student

L, H, D = 48, 12, 3
MEAN, STD = [10.0, -3.0, 250.0], [2.0, 0.1, 40.0]  # mixed offsets and scales, as in real series


def _student(individual: bool, revin: bool, seed: int = 0):
    torch.manual_seed(seed)
    st = build_student("dlinear", L, H, D, individual=individual, revin=revin).eval()
    if revin:  # non-trivial RevIN affine parameters, so their fold is exercised
        with torch.no_grad():
            st.revin.weight.uniform_(0.5, 2.0)
            st.revin.bias.uniform_(-1.0, 1.0)
    return st


def _raw_windows(n: int = 16, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, L, D)).cumsum(axis=1) * 0.2 + rng.standard_normal((n, 1, D))
    return (z * np.asarray(STD) + np.asarray(MEAN)).astype(np.float32)


@pytest.mark.parametrize("individual", [False, True])
@pytest.mark.parametrize("revin", [False, True])
def test_fold_is_exact_in_float64_and_within_fp32_tolerance(individual, revin):
    wrapper = RawScaleForecaster(_student(individual, revin), MEAN, STD).eval()
    x = _raw_windows()
    for precision in ("fp32", "int8"):
        module, [rec] = apply_passes(wrapper, precision, x)
        assert rec["name"] == "fold-linear" and rec["checked_windows"] == len(x)
        assert rec["max_abs_err_f64"] < 1e-11, rec  # exact up to float64 rounding
        assert rec["rel_mse_f32"] < 1e-10 and rec["max_abs_err_f32"] < 1e-4, rec
        # fp32 folds the scaler into the weights; int8 keeps it as float ops around the folded student
        folded = module if precision == "fp32" else module.student
        assert isinstance(folded, FoldedLinear) and isinstance(module, RawScaleForecaster) == (precision == "int8")
        assert folded.shared is (not individual) and folded.revin is revin
        assert folded.weight.shape == ((H, L) if not individual else (D, L, H))


def test_a_wrong_rewrite_is_refused_and_non_linear_students_are_not_folded(monkeypatch):
    wrapper = RawScaleForecaster(_student(False, False), MEAN, STD).eval()
    x = _raw_windows()

    real = fold_linear.apply

    def off_by_half(module, precision):  # a buggy pass: the fold with a shifted bias
        folded, record = real(module, precision)
        folded.bias += 0.5
        return folded, record

    monkeypatch.setattr(fold_linear, "apply", off_by_half)
    with pytest.raises(ArtifactError, match="fold-linear.*changed the student.*--no-passes"):
        apply_passes(wrapper, "fp32", x)
    monkeypatch.undo()
    new32, _ = fold_linear.apply(wrapper, "fp32")
    new64, _ = fold_linear.apply(wrapper.as_float64(), "fp32")
    assert Original.of(wrapper, x).check("fold-linear", new32, new64)["max_abs_err_f64"] < 1e-11

    it = build_student("itransformer", L, H, D, d_model=16, n_heads=2, e_layers=1, d_ff=16).eval()
    assert not applies(it)
    module, records = apply_passes(RawScaleForecaster(it, MEAN, STD).eval(), "fp32", x)
    # iTransformer normalises each window (RevIN without affine): only the scaler fold applies
    assert [r["name"] for r in records] == ["fold-scaler"] and not isinstance(module, RawScaleForecaster)
    it_plain = build_student("itransformer", L, H, D, d_model=16, n_heads=2, e_layers=1, d_ff=16, norm="none").eval()
    plain = RawScaleForecaster(it_plain, MEAN, STD).eval()
    assert apply_passes(plain, "fp32", x) == (plain, [])
    assert apply_passes(wrapper, "fp32", x, enabled=False) == (wrapper, [])


def test_folded_dlinear_exports_to_a_few_onnx_nodes(tmp_path):
    import onnx

    from distilts.compile.backends.onnx import export_onnx

    for revin, most in ((False, 4), (True, 14)):
        st = _student(False, revin)
        export_onnx(fold(st, MEAN, STD), L, D, tmp_path / "m.onnx")
        ops = [n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node]
        assert ops.count("MatMul") == 1 and "AveragePool" not in ops and len(ops) <= most, ops


def test_manifest_names_the_passes(tmp_path_factory):
    art = compiled(tmp_path_factory, "onnx")  # the tiny DLinear of the test factory
    raw = json.loads((art / "manifest.json").read_text())
    names = [p["name"] for p in raw["passes"]]
    assert names[0] == "fold-linear" and raw["passes"][0]["max_abs_err_f64"] < 1e-9
    assert raw["verification"]["passed"] and raw["verification"]["rel_mse"] < 1e-8


def test_int8_keeps_the_scaler_as_float_ops(tmp_path_factory):
    raw = json.loads((compiled(tmp_path_factory, "rpi4") / "manifest.json").read_text())  # tflite int8
    assert [p["name"] for p in raw["passes"]] == ["fold-linear", "litert-converter"]
    int8, fp32 = raw["passes"][0], json.loads((compiled(tmp_path_factory, "onnx") / "manifest.json").read_text())["passes"][0]
    assert int8["scope"] == "student (scaler kept as float ops for the quantizer)"
    assert fp32["scope"] == "student and scaler"
    # the int8 module also holds the scaler's float buffers: mean + 1/std in, std + mean out
    assert int8["constants"] == fp32["constants"] + 4 * len(raw["columns"])


def test_scaler_folds_into_revin_of_any_student():
    torch.manual_seed(0)
    it = build_student("itransformer", L, H, D, d_model=16, n_heads=2, e_layers=1, d_ff=16, norm="revin").eval()
    with torch.no_grad():
        it.revin.weight.uniform_(0.5, 2.0)
        it.revin.bias.uniform_(-1.0, 1.0)
    assert fold_scaler.applies(it)
    module, [rec] = apply_passes(RawScaleForecaster(it, MEAN, STD).eval(), "fp32", _raw_windows())
    assert rec["name"] == "fold-scaler" and rec["max_abs_err_f64"] < 1e-11 and rec["rel_mse_f32"] < 1e-10
    assert not isinstance(module, RawScaleForecaster)  # no scaler ops left around the student
