"""The runtime: import boundary, golden numbers, batch chunking, and every documented error."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from artifact_factory import artifact, copy_artifact
from distilts.errors import ArtifactError, DataError, MissingExtraError
from distilts.runtime import Forecaster, plan_chunks, read_manifest

BACKENDS = ["onnx", "openvino", "tflite"]
OTHER_LIBS = {"onnx": "onnxruntime", "openvino": "openvino", "tflite": "ai_edge_litert"}


@pytest.fixture(scope="module", params=BACKENDS)
def art(request, tmp_path_factory):
    return artifact(tmp_path_factory, request.param)


def test_import_boundary_in_subprocess(tmp_path_factory):
    path = artifact(tmp_path_factory, "onnx")
    code = (
        "import sys, numpy as np\n"
        "import distilts.runtime as rt\n"
        f"fc = rt.Forecaster.load({str(path)!r}, threads=1)\n"
        "y = fc.predict(fc.manifest.golden_input[0])\n"
        "assert y.shape == (fc.horizon, len(fc.columns))\n"
        "mods = ('torch', 'transformers', 'pandas', 'distilts.compile', 'distilts.distill', 'openvino', 'ai_edge_litert')\n"
        "print('LOADED', sorted(m for m in mods if m in sys.modules), 'onnxruntime' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "LOADED [] True" in out.stdout, out.stdout + out.stderr


def test_predict_matches_golden(art):
    fc = Forecaster.load(art, threads=1)
    man = fc.manifest
    y = fc.predict(man.golden_input[0])
    assert y.shape == (man.horizon, len(man.columns)) and y.dtype == np.float32
    np.testing.assert_allclose(y, man.golden_output[0], atol=man.atol, rtol=man.rtol)
    yb = fc.predict(man.golden_input)
    assert yb.shape == (1, man.horizon, len(man.columns))


@pytest.mark.parametrize("n", [1, 3, 4, 7, 9])
def test_batch_chunking_equals_one_by_one(art, n):
    fc = Forecaster.load(art, threads=1)
    rng = np.random.default_rng(n)
    x = fc.manifest.golden_input[0] + rng.normal(0, 1, (n, fc.lookback, len(fc.columns))).astype(np.float32)
    batched = fc.predict(x)
    single = np.stack([fc.predict(w) for w in x])
    assert batched.shape == (n, fc.horizon, len(fc.columns))
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-5)


def test_run_file_pads_fixed_batches_like_the_forecaster(tmp_path_factory):
    from distilts.runtime.batching import run_file

    art = artifact(tmp_path_factory, "tflite")  # files for batch 1 and 4
    fc = Forecaster.load(art, threads=1)
    x = fc.manifest.golden_input[0] + np.random.default_rng(0).normal(0, 1, (7, fc.lookback, len(fc.columns)))
    x = x.astype(np.float32)
    b4 = next(m for m in fc.manifest.models if m.batch == 4)
    y = run_file("tflite", fc.manifest.path(b4), 4, x)  # chunks of 4, the last one padded from 3
    assert y.shape == (7, fc.horizon, len(fc.columns))
    np.testing.assert_allclose(y, fc.predict(x), rtol=1e-5, atol=1e-5)


def test_plan_chunks():
    assert plan_chunks(7, [1, 4]) == [(0, 4, 4), (4, 5, 1), (5, 6, 1), (6, 7, 1)]
    assert plan_chunks(3, [4]) == [(0, 3, 4)]  # padded up to the fixed batch
    assert plan_chunks(9, [4, 8]) == [(0, 8, 8), (8, 9, 4)]
    assert plan_chunks(5, [None]) == [(0, 5, None)]
    assert sum(hi - lo for lo, hi, _ in plan_chunks(2500, [None])) == 2500


def test_tampered_file_is_refused(tmp_path, tmp_path_factory):
    art = copy_artifact(artifact(tmp_path_factory, "onnx"), tmp_path / "a")
    with open(art / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ArtifactError, match=r"model\.onnx.*re-run `distilts compile`|model\.onnx(?s:.*)distilts compile"):
        Forecaster.load(art)


def test_missing_file_and_manifest(tmp_path, tmp_path_factory):
    art = copy_artifact(artifact(tmp_path_factory, "openvino"), tmp_path / "a")
    (art / "model.bin").unlink()
    with pytest.raises(ArtifactError, match=r"model\.bin is missing"):
        Forecaster.load(art)
    with pytest.raises(ArtifactError, match="no manifest.json"):
        Forecaster.load(tmp_path)
    with pytest.raises(ArtifactError, match="not found"):
        Forecaster.load(tmp_path / "nope")


def test_newer_manifest_version_is_refused(tmp_path, tmp_path_factory):
    art = copy_artifact(artifact(tmp_path_factory, "onnx"), tmp_path / "a")
    man = json.loads((art / "manifest.json").read_text())
    man["version"] = 3  # 2: artifacts with covariate inputs (test_covariate_forecaster.py)
    (art / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ArtifactError, match="version 3 is not supported"):
        read_manifest(art)


def test_golden_mismatch_refuses_to_serve(tmp_path, tmp_path_factory):
    art = copy_artifact(artifact(tmp_path_factory, "tflite"), tmp_path / "a")
    man = json.loads((art / "manifest.json").read_text())
    out = np.asarray(man["golden"]["output"])
    out.flat[0] += 10 * max(man["scaler"]["std"])  # as if the backend computed something else
    man["golden"]["output"] = out.tolist()
    (art / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ArtifactError, match="Refusing to serve"):
        Forecaster.load(art)
    Forecaster.load(art, verify=False)  # an explicit opt-out still loads


def test_wrong_shapes_and_non_finite(tmp_path_factory):
    fc = Forecaster.load(artifact(tmp_path_factory, "onnx"), threads=1)
    L, D = fc.lookback, len(fc.columns)
    with pytest.raises(DataError, match=rf"expects {L} x {D}.*load, temperature, solar, price"):
        fc.predict(np.zeros((L - 1, D), np.float32))
    with pytest.raises(DataError, match=rf"expects {L} x {D}"):
        fc.predict(np.zeros((2, L, D + 1), np.float32))
    with pytest.raises(DataError, match="expects"):
        fc.predict(np.zeros(L, np.float32))
    x = np.zeros((3, L, D), np.float32)
    x[1, 5, 2] = np.nan
    with pytest.raises(DataError, match=r"NaN/inf.*window 1, step 5, column 'solar'"):
        fc.predict(x)
    x[1, 5, 2] = np.inf
    with pytest.raises(DataError, match="NaN/inf"):
        fc.predict(x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_backend_names_the_extra(monkeypatch, tmp_path_factory, backend):
    path = artifact(tmp_path_factory, backend)
    monkeypatch.setitem(sys.modules, OTHER_LIBS[backend], None)  # import now fails
    with pytest.raises(MissingExtraError, match=rf'pip install "distilts\[{backend}\]"'):
        Forecaster.load(path)
