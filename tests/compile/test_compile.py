"""distilts compile: every format x precision for both students, verified, checksummed, atomic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from compiled_factory import compiled, student_dir
from distilts.cli import cli
from distilts.errors import ArtifactError, DataError, ModelDirError
from distilts.targets import UnknownTargetError, resolve_job

FORMATS = ["onnx", "openvino", "tflite"]
SIZE = (96, 24)  # lookback, horizon of the students compiled in every format x precision


def _student_forecast(sdir: Path, x: np.ndarray) -> np.ndarray:
    from distilts.compile.wrapper import torch_predict, wrap_student
    from distilts.students import load_student_dir

    model, config = load_student_dir(sdir)
    return torch_predict(wrap_student(model, config), x)


def _windows(sdir: Path, n: int = 16) -> np.ndarray:
    from distilts.compile.data import load_compile_data
    from distilts.students.io import read_student_config

    return load_compile_data(read_student_config(sdir), None).windows("test", n)


@pytest.mark.parametrize("student", ["dlinear", "itransformer"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_and_precision_matches_the_student(tmp_path_factory, student, fmt):
    from distilts.compile import verify
    from distilts.runtime import Forecaster
    from distilts.runtime.manifest import read_manifest

    sdir = student_dir(tmp_path_factory, student, *SIZE)  # large enough that int8 weights dominate the file
    x = _windows(sdir, 64)  # the verification windows (int8 error is checked on these at compile time)
    ref = _student_forecast(sdir, x)
    config = json.loads((sdir / "config.json").read_text())
    mean, std = np.asarray(config["scaler"]["mean"]), np.asarray(config["scaler"]["std"])
    sizes = {}
    for int8 in (False, True):
        art = compiled(tmp_path_factory, fmt, int8=int8, student=student, lookback=SIZE[0], horizon=SIZE[1])
        man = read_manifest(art)  # raises on any checksum mismatch
        raw = man.raw
        precision = "int8" if int8 else "fp32"
        assert raw["backend"] == fmt and raw["precision"] == precision
        assert raw["verification"]["passed"] and raw["verification"]["windows"] == 64
        assert [raw["lookback"], raw["horizon"]] == list(SIZE) and raw["columns"] == config["columns"]
        assert raw["normalization"] == "in-graph" and raw["student"]["name"] == student
        if fmt == "onnx":
            assert raw["opset"] >= 18
        if int8:
            q = raw["quantization"]
            assert q["calib_windows"] == 64 and q["calib_part"] == "train" and q["method"] in q["candidates"]
            # the rule that kept it, in words; when it is "fastest", the kept one is the fastest at the goal
            from distilts.compile import select

            assert q["chosen_by"] in (select.FASTEST, select.SMALLEST), q["chosen_by"]
            good = {m: c for m, c in q["candidates"].items() if c["rel_mse"] <= select.INT8_GOAL and c["latency_ms_b1"]}
            if q["chosen_by"] == select.FASTEST and len(good) > 1:
                assert q["method"] == min(good, key=lambda m: good[m]["latency_ms_b1"])
        pred = Forecaster.load(art).predict(x)  # golden self-check passes on load
        errs = verify.errors(pred, ref, mean, std)
        assert verify.within(errs, precision), errs
        if not int8:
            assert errs["rel_mse"] < 1e-8
        # weight-bearing files (OpenVINO: the .bin; its XML graph text does not shrink with int8)
        sizes[precision] = sum(f.size for f in man.files if fmt != "openvino" or f.role == "weights")
    assert sizes["int8"] < sizes["fp32"], sizes


def test_named_target_rpi4_runs_with_its_threads_and_batch(tmp_path_factory):
    from distilts.runtime import Forecaster

    art = compiled(tmp_path_factory, "rpi4")  # tflite int8, 4 threads, batch 1, latency
    assert art.name == "tflite-int8-rpi4"
    fc = Forecaster.load(art)
    assert (fc.backend, fc.manifest.precision, fc.batch_sizes) == ("tflite", "int8", [1])
    assert (fc.threads, fc.mode) == (4, "latency")  # the runtime's settings come from the target


def test_tflite_fixed_batches_chunk_to_the_same_numbers(tmp_path_factory):
    from distilts.runtime import Forecaster

    art = compiled(tmp_path_factory, "tflite", batches=(1, 4))
    fc = Forecaster.load(art)
    assert sorted(m.batch for m in fc.manifest.models) == [1, 4]
    x = _windows(student_dir(tmp_path_factory), 7)
    whole = fc.predict(x)
    one_by_one = np.stack([fc.predict(w) for w in x])
    np.testing.assert_allclose(whole, one_by_one, rtol=1e-5, atol=1e-5)


def test_cli_compiles_several_targets_and_prints_the_table(tmp_path_factory, tmp_path):
    sdir = student_dir(tmp_path_factory)
    res = CliRunner().invoke(cli, ["compile", str(sdir), "--target", "onnx,rpi5", "--verify-windows", "8",
                                   "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx-fp32", "tflite-fp32-rpi5"]
    assert "onnx-fp32" in res.output and "rel-MSE" in res.output


def test_recompile_replaces_the_artifact_and_leaves_no_temp_dirs(tmp_path_factory, tmp_path):
    from distilts.compile.pipeline import compile_student

    sdir = student_dir(tmp_path_factory)
    for _ in range(2):
        [r] = compile_student(sdir, [resolve_job("onnx")], tmp_path, verify_windows=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx-fp32"]
    assert sorted(p.name for p in r.directory.iterdir()) == ["manifest.json", "model.onnx"]


def test_too_large_error_fails_loudly_and_writes_nothing(tmp_path_factory, tmp_path, monkeypatch):
    from distilts.compile import pipeline, verify

    monkeypatch.setitem(verify.TOLERANCES, "int8", {"rel_mse": 1e-12, "max_abs": 1e-12})
    with pytest.raises(ArtifactError, match="does not match the PyTorch student.*not written"):
        pipeline.compile_student(student_dir(tmp_path_factory), [resolve_job("onnx", int8=True)], tmp_path,
                                 calib_windows=8, verify_windows=8)
    assert list(tmp_path.iterdir()) == []


def test_not_a_student_dir(tmp_path):
    from distilts.compile.pipeline import compile_student

    with pytest.raises(ModelDirError, match="no config.json.*distilts distill"):
        compile_student(tmp_path, [resolve_job("onnx")], tmp_path / "out")
    res = CliRunner().invoke(cli, ["compile", str(tmp_path), "--target", "onnx"])
    assert res.exit_code != 0 and "not a student directory" in res.output


def test_unknown_target_lists_the_choices(tmp_path_factory):
    with pytest.raises(UnknownTargetError, match="onnx, openvino, tflite.*rpi4"):
        resolve_job("raspberry")
    res = CliRunner().invoke(cli, ["compile", str(student_dir(tmp_path_factory)), "--target", "coral"])
    assert res.exit_code != 0 and "Unknown target 'coral'" in res.output and "distilts targets" in res.output


def test_int8_without_calibration_windows(tmp_path_factory, tmp_path):
    from distilts.compile.pipeline import compile_student

    with pytest.raises(DataError, match="int8 needs calibration windows"):
        compile_student(student_dir(tmp_path_factory), [resolve_job("tflite", int8=True)], tmp_path,
                        calib_windows=0)


def test_missing_extra_names_the_pip_command(tmp_path_factory, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "litert_torch" else real(name, *a))
    res = CliRunner().invoke(cli, ["compile", str(student_dir(tmp_path_factory)), "--target", "tflite"])
    assert res.exit_code != 0
    assert "litert_torch" in res.output and 'pip install "distilts[compile]"' in res.output


def test_student_data_not_found_asks_for_data(tmp_path_factory, tmp_path):
    import shutil

    from distilts.compile.pipeline import compile_student

    sdir = tmp_path / "moved"
    shutil.copytree(student_dir(tmp_path_factory), sdir)
    cfg = json.loads((sdir / "config.json").read_text())
    cfg["data"]["source"] = str(tmp_path / "gone.csv")
    (sdir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(DataError, match="--data"):
        compile_student(sdir, [resolve_job("onnx")], tmp_path / "out")


def test_artifact_permissions_follow_the_umask(tmp_path_factory, tmp_path):
    import os

    from distilts.compile.pipeline import compile_student

    mask = os.umask(0o022)
    try:
        [r] = compile_student(student_dir(tmp_path_factory), [resolve_job("onnx")], tmp_path, verify_windows=4)
    finally:
        os.umask(mask)
    assert r.directory.stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0700: copies to a device stay readable
    assert (r.directory / "manifest.json").stat().st_mode & 0o777 == 0o644
