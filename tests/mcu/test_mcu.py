"""Full-int8 TFLite for microcontrollers: verified in TFLite Micro, sized, refused when too small; Vela report."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from distilts.students.dlinear import DLinear

if os.environ.get("CI") != "true":  # CI installs the mcu extra (scripts/setup.sh): there the tests must run
    pytest.importorskip("tflite_micro")
L, H, D = 24, 6, 3
CONFIG = {"lookback": L, "horizon": H, "columns": ["a", "b", "c"],
          "scaler": {"mean": [1.0, -2.0, 30.0], "std": [0.5, 2.0, 8.0]}}


@pytest.fixture(scope="module")
def case():
    torch.manual_seed(0)
    student = DLinear(L, H, D, moving_avg=5).eval()
    mean, std = (np.asarray(CONFIG["scaler"][k]) for k in ("mean", "std"))
    z = np.random.default_rng(1).normal(size=(96, L, D)).cumsum(1) * 0.3
    x = (z * std + mean).astype(np.float32)
    with torch.no_grad():
        ref = student(torch.tensor(z, dtype=torch.float32)).numpy() * std + mean
    return student, x[:64], x[64:], ref[64:]


def test_mcu_artifact_verified_in_tflite_micro_with_vela(tmp_path, case):
    from distilts.mcu import build as mcu
    from distilts.runtime.int8_io import read_io

    student, calib, ver, ref = case
    rec = mcu.build(student, CONFIG, calib, ver, ref, tmp_path, mcu.Budget("u55", 256 << 10, 1 << 20, "ethos-u55-128"))
    assert rec["operators"].count("FULLY_CONNECTED") == 1 and rec["tensor_arena_bytes"] > 0
    assert rec["verification"]["rel_mse"] < 1e-2
    assert rec["io"]["input"]["dtype"] == "int8" and rec["io"]["output"]["dtype"] == "int8"
    # the model carries its scaler: any reader maps raw values the way compile verified
    assert read_io((tmp_path / "model.tflite").read_bytes())["scaler"] == rec["io"]["scaler"]
    vela = rec["vela"]
    assert vela["macs_npu_share"] >= 0.9 and vela["cpu_operators"] == [] and vela["cycles_total"] > 0
    assert (tmp_path / "model_vela.tflite").is_file() and (tmp_path / "vela-report.txt").is_file()
    cc = (tmp_path / "model_data.cc").read_text()
    assert f"g_model_len = {(tmp_path / 'model_vela.tflite').stat().st_size}" in cc
    assert "resolver.AddEthosU()" in (tmp_path / "main.cc").read_text()


def test_too_small_profile_is_refused_with_figures(tmp_path, case):
    from distilts.mcu import build as mcu

    student, calib, ver, ref = case
    with pytest.raises(mcu.DoesNotFit, match=r"SRAM: needs [\d.]+ KiB .* has 1.0 KiB"):
        mcu.build(student, CONFIG, calib, ver, ref, tmp_path, mcu.Budget("tiny", 1024, 1 << 20))
    assert not (tmp_path / "model_data.cc").exists()


def test_operator_without_int8_kernel_is_named(tmp_path):
    from distilts.mcu import build as mcu, tflm
    from distilts.students.itransformer import ITransformer

    torch.manual_seed(0)
    student = ITransformer(L, H, D, d_model=8, n_heads=2, e_layers=1, d_ff=8).eval()
    x = np.random.default_rng(0).normal(size=(16, L, D)).astype(np.float32)
    with torch.no_grad():
        ref = student(torch.tensor(x)).numpy()
    cfg = {**CONFIG, "scaler": {"mean": [0.0] * D, "std": [1.0] * D}}
    with pytest.raises(tflm.UnsupportedOperator, match="operator GELU"):
        mcu.build(student, cfg, x[:8], x[8:], ref[8:], tmp_path)


def test_compile_microcontroller_target_end_to_end(tmp_path_factory):
    """`distilts compile --target cortex-m4f`: a Linux runtime loads the same file and forecasts raw values."""
    from compiled_factory import compiled

    from distilts.runtime import Forecaster
    from distilts.runtime.manifest import read_manifest

    art = compiled(tmp_path_factory, "cortex-m4f")
    man = read_manifest(art).raw
    assert man["format_name"] == "tflm" and man["backend"] == "tflite"
    assert man["mcu"]["fits"]["sram_bytes"] == 192 * 1024 and man["mcu"]["tensor_arena_bytes"] > 0
    assert {m["file"]: m.get("role") for m in man["models"]}["model_data.cc"] == "source"
    assert man["target"]["sram_bytes"] == 192 * 1024
    fc = Forecaster.load(art)
    x = np.asarray(man["golden"]["input"], np.float32)[0]
    assert np.allclose(fc.predict(x), np.asarray(man["golden"]["output"])[0], atol=man["golden"]["atol"])


def test_microcontroller_formats_are_int8_at_batch_one():
    from distilts.errors import DistiltsError
    from distilts.targets import resolve_job

    assert resolve_job("tflm").precision == "int8" and resolve_job("cortex-m7").batches == (1,)
    with pytest.raises(DistiltsError, match="one window per call"):
        resolve_job("c", batches=(4,))


def test_vela_warns_when_the_matrix_product_stays_on_the_cpu(tmp_path, case, monkeypatch):
    from distilts.mcu import build as mcu, vela

    real = vela.compile_model

    def cpu_heavy(src, accelerator, out_dir):  # Vela's report as if the FullyConnected had stayed on the CPU
        rep = real(src, accelerator, out_dir)
        return {**rep, "macs_npu": 0, "macs_npu_share": 0.0, "cpu_operators": ["FullyConnected"]}

    monkeypatch.setattr(vela, "compile_model", cpu_heavy)
    student, calib, ver, ref = case
    lines: list[str] = []
    rec = mcu.build(student, CONFIG, calib, ver, ref, tmp_path, mcu.Budget("u55", 256 << 10, 1 << 20, "ethos-u55-128"),
                    log=lines.append)
    assert "0% of the matrix-product MACs" in rec["vela"]["warning"]
    assert any(line.startswith("WARNING: only 0%") for line in lines)
    assert "resolver.AddFullyConnected()" in (tmp_path / "main.cc").read_text()
