"""Compile passes: the linear fold is exact (float64) and within fp32 tolerance (float32) for every DLinear
variant, the exported graph of a folded DLinear is a handful of nodes, and the manifest names the passes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from compiled_factory import compiled
from distilts.compile.passes import _exact_wrapper, check_module, module_for
from distilts.compile.passes.fold_linear import FoldedLinear, applies, fold
from distilts.compile.wrapper import RawScaleForecaster
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
    st = _student(individual, revin)
    x = _raw_windows()
    config = {"scaler": {"mean": MEAN, "std": STD}}
    for scaler_folded in (True, False):
        if scaler_folded:
            new32, new64 = fold(st, MEAN, STD), fold(st, MEAN, STD, dtype=torch.float64)
        else:
            new32 = RawScaleForecaster(fold(st), MEAN, STD).eval()
            new64 = _exact_wrapper(fold(st, dtype=torch.float64), MEAN, STD)
        errs = check_module(new32, new64, RawScaleForecaster(st, MEAN, STD).eval(), _exact_wrapper(st, MEAN, STD),
                            x, config, "fold-linear")
        assert errs["max_abs_err_f64"] < 1e-11, errs  # exact up to float64 rounding
        assert errs["rel_mse_f32"] < 1e-10 and errs["max_abs_err_f32"] < 1e-4, errs
    folded = fold(st, MEAN, STD)
    assert folded.shared is (not individual) and folded.revin is revin
    assert folded.weight.shape == ((H, L) if not individual else (D, L, H))


def test_fold_rejects_a_wrong_rewrite_and_skips_non_linear_students():
    st = _student(False, False)
    config = {"scaler": {"mean": MEAN, "std": STD}}
    bad = fold(st, MEAN, STD)
    bad.bias += 0.5
    from distilts.errors import ArtifactError

    with pytest.raises(ArtifactError, match="fold-linear.*changed the student"):
        check_module(bad, fold(st, MEAN, STD, dtype=torch.float64), RawScaleForecaster(st, MEAN, STD).eval(),
                     _exact_wrapper(st, MEAN, STD), _raw_windows(), config, "fold-linear")
    it = build_student("itransformer", L, H, D, d_model=16, n_heads=2, e_layers=1, d_ff=16).eval()
    assert not applies(it)
    module, records = module_for(it, {"scaler": {"mean": MEAN, "std": STD}}, "fp32", _raw_windows())
    # iTransformer normalises each window (RevIN without affine): only the scaler fold applies
    assert [r["name"] for r in records] == ["fold-scaler"] and not isinstance(module, RawScaleForecaster)
    it_plain = build_student("itransformer", L, H, D, d_model=16, n_heads=2, e_layers=1, d_ff=16, norm="none").eval()
    module, records = module_for(it_plain, {"scaler": {"mean": MEAN, "std": STD}}, "fp32", _raw_windows())
    assert records == [] and isinstance(module, RawScaleForecaster)
    module, records = module_for(st, config, "fp32", _raw_windows(), enabled=False)
    assert records == [] and isinstance(module, RawScaleForecaster)


def test_folded_dlinear_exports_to_a_few_onnx_nodes(tmp_path):
    import onnx

    from distilts.compile.onnx_export import export_onnx

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


def test_target_mode_and_threads_reach_the_manifest(tmp_path_factory):
    raw = json.loads((compiled(tmp_path_factory, "rpi4") / "manifest.json").read_text())
    assert raw["target"]["mode"] == "latency" and raw["target"]["threads"] == 4
    assert [p["name"] for p in raw["passes"]] == ["fold-linear", "litert-converter"]
    assert "student only" in raw["passes"][0]["scope"] or "scaler kept" in raw["passes"][0]["scope"]


def test_scaler_folds_into_revin_of_any_student():
    from distilts.compile.passes import fold_scaler

    torch.manual_seed(0)
    it = build_student("itransformer", L, H, D, d_model=16, n_heads=2, e_layers=1, d_ff=16, norm="revin").eval()
    with torch.no_grad():
        it.revin.weight.uniform_(0.5, 2.0)
        it.revin.bias.uniform_(-1.0, 1.0)
    config = {"scaler": {"mean": MEAN, "std": STD}}
    assert fold_scaler.applies(it)
    module, [rec] = module_for(it, config, "fp32", _raw_windows())
    assert rec["name"] == "fold-scaler" and rec["max_abs_err_f64"] < 1e-11 and rec["rel_mse_f32"] < 1e-10
    assert not isinstance(module, RawScaleForecaster)  # no scaler ops left around the student
