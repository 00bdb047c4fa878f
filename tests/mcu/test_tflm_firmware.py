"""TFLite Micro firmware: the files compile writes for a cortex-m profile, and (where a TFLite Micro checkout is
named by DISTILTS_TFLM_DIR) the firmware built against it and run on the emulated board."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from distilts.cli import cli
from distilts.mcu import firmware, tflm_firmware


@pytest.fixture(scope="module")
def m7_artifact(tmp_path_factory):
    d = tmp_path_factory.mktemp("tflmfw") / "student"
    res = CliRunner().invoke(cli, ["distill", "--no-kd", "--beta", "0", "--student", "mlp", "-O", "d_model=16",
                                   "--lookback", "24", "--horizon", "6", "--epochs", "1", "--stride", "8", "--quiet",
                                   "--out", str(d)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["compile", str(d), "--target", "cortex-m7"])
    assert res.exit_code == 0, res.output
    return d / "artifacts" / "tflm-int8-cortex-m7"


def test_compile_writes_the_firmware_files_for_the_board(m7_artifact):
    man = json.loads((m7_artifact / "manifest.json").read_text())
    roles = {m["file"]: m.get("role") for m in man["models"]}
    assert {f: roles.get(f) for f in tflm_firmware.FILES} == tflm_firmware.FILES
    mk = (m7_artifact / "firmware.mk").read_text()
    assert "TARGET=cortex_m_generic TARGET_ARCH=$(TFLM_ARCH)" in mk and "TFLM_ARCH := cortex-m7+fp" in mk
    assert "-mcpu=cortex-m7" in mk and "mps2-an500" in mk
    h = (m7_artifact / "forecast_entry.h").read_text()
    assert "#define FORECAST_LOOKBACK 24" in h and "#define FORECAST_HORIZON 6" in h
    assert '#include "forecast_entry.h"' in (m7_artifact / "harness.c").read_text()


@pytest.mark.skipif(not shutil.which(firmware.GCC), reason="arm-none-eabi-gcc not installed")
def test_the_c_side_of_the_firmware_compiles(m7_artifact, tmp_path):
    board = firmware.BOARDS["cortex-m7"]
    for src in ("startup.c", "harness.c"):
        firmware._run([firmware.GCC, *board.cpu_flags, *firmware.CFLAGS, f"-I{m7_artifact}", "-c",
                       str(m7_artifact / src), "-o", str(tmp_path / (src + ".o"))], src, tmp_path)


@pytest.mark.skipif(not os.environ.get("DISTILTS_TFLM_DIR"), reason="set DISTILTS_TFLM_DIR to a tflite-micro checkout")
def test_firmware_built_against_tflite_micro_runs_on_the_board(m7_artifact, tmp_path):
    man = json.loads((m7_artifact / "manifest.json").read_text())
    got = tflm_firmware.run(m7_artifact, os.environ["DISTILTS_TFLM_DIR"], tmp_path / "fw")
    step = max(man["io"]["output"]["per_variate"]["scale"])  # one int8 output step, raw units
    assert got["max_abs_diff"] <= 1.01 * step, got
    assert np.isfinite(got["outputs"]).all()


@pytest.mark.parametrize("activation,ok", [("relu", True), ("gelu_tanh", False)])
def test_itransformer_goes_below_the_pi_with_relu_and_is_refused_naming_gelu(tmp_path, activation, ok):
    d = tmp_path / "it"
    res = CliRunner().invoke(cli, ["distill", "--no-kd", "--beta", "0", "--student", "itransformer", "--d-model", "16",
                                   "--d-ff", "32", "--n-heads", "2", "-O", f"activation={activation}", "--lookback",
                                   "24", "--horizon", "6", "--epochs", "1", "--stride", "8", "--quiet", "--out", str(d)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["compile", str(d), "--target", "cortex-m7"])
    if ok:
        assert res.exit_code == 0, res.output
        man = json.loads((d / "artifacts" / "tflm-int8-cortex-m7" / "manifest.json").read_text())
        assert "SOFTMAX" in man["mcu"]["operators"] and man["verification"]["passed"]
    else:
        assert res.exit_code != 0 and "operator GELU" in res.output.strip().splitlines()[-1]
