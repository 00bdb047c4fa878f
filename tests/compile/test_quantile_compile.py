"""Quantile students through compile and the runtime: the fold keeps one MatMul + Add before the
non-crossing head, every format (fp32 and int8) carries `[B, H, D, Q]`, verification is per level
with no crossing, the manifest lists the levels, `predict` is the median, `predict_quantiles` all."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from distilts.cli import cli

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

L, H, LEVELS = 24, 6, [0.1, 0.5, 0.9]


@pytest.fixture(scope="module")
def qstudent(tmp_path_factory):
    def make(name: str):
        out = tmp_path_factory.mktemp("qstudent") / name
        extra = ["--d-model", "16", "--d-ff", "32", "--n-heads", "2"] if name == "itransformer" else []
        res = CliRunner().invoke(cli, ["distill", "--no-kd", "--beta", "0", "--student", name, "--lookback", str(L),
                                       "--horizon", str(H), "--epochs", "1", "--stride", "8", "--quiet",
                                       "--quantiles", ",".join(map(str, LEVELS)), "--quantile-rank", "3",
                                       "--out", str(out), *extra])
        assert res.exit_code == 0, res.output
        return out
    return make


def _compile(student_dir, target, int8, tmp_path):
    from distilts.compile.pipeline import compile_student
    from distilts.targets import resolve_job

    [res] = compile_student(student_dir, [resolve_job(target, int8=int8)], tmp_path, calib_windows=32,
                            verify_windows=32)
    return res.directory


@pytest.mark.parametrize("student, target, int8", [("dlinear", "onnx", False), ("dlinear", "openvino", True),
                                                   ("dlinear", "tflite", True), ("itransformer", "onnx", False),
                                                   ("dlinear", "cortex-m7", True), ("dlinear", "ethos-u55-128", True)])
def test_quantile_artifact_matches_the_student_level_by_level(qstudent, tmp_path, student, target, int8):
    from distilts.compile.wrapper import torch_predict, wrap_student
    from distilts.runtime import Forecaster
    from distilts.students import load_student_dir

    sdir = qstudent(student)
    art = _compile(sdir, target, int8, tmp_path)
    man = json.loads((art / "manifest.json").read_text())
    assert man["quantiles"]["levels"] == LEVELS and man["quantiles"]["median_index"] == 1
    assert man["output"]["shape"][1:] == [4, H, 3] and man["quantiles"]["layout"] == "[B, D, H, Q]"
    assert man["verification"]["crossings"] == 0 and "worst_level_rel_mse" in man["verification"]
    if (art / "main.cc").exists():  # TFLite Micro / Ethos-U: the online calibration step rides along
        assert "void distilts_calibrate_update(" in (art / "main.cc").read_text()
    fc = Forecaster.load(art)
    assert fc.levels == tuple(LEVELS)
    model, config = load_student_dir(sdir)
    from distilts.data import load_dataset

    raw = load_dataset(None).series.values  # the synthetic series the student was trained on (test part)
    x = np.stack([raw[7100 + 20 * i: 7100 + 20 * i + L] for i in range(9)]).astype(np.float32)
    q = fc.predict_quantiles(x)
    ref = torch_predict(wrap_student(model, config), x).transpose(0, 2, 1, 3)  # artifact [B, D, H, Q] -> [B, H, D, Q]
    assert q.shape == (9, H, 4, 3) and np.all(np.diff(q, axis=-1) >= 0)
    err = np.abs(q - ref) / np.asarray(config["scaler"]["std"])[:, None]  # normalized units
    assert err.max() < (0.5 if int8 else 1e-4)
    np.testing.assert_array_equal(fc.predict(x), q[..., 1])
    np.testing.assert_allclose(fc.predict(x[0]), q[0, ..., 1], rtol=1e-5, atol=1e-5)


def test_fold_is_one_matmul_and_add_before_the_head(qstudent, tmp_path):
    import onnx

    from distilts.compile.passes import fold_linear
    from distilts.students import load_student_dir

    model, config = load_student_dir(qstudent("dlinear"))
    folded = fold_linear.fold(model, config["scaler"]["mean"], config["scaler"]["std"], dtype=torch.float64)
    mu, sd = (torch.tensor(config["scaler"][k], dtype=torch.float64) for k in ("mean", "std"))
    x = torch.randn(5, L, 4, dtype=torch.float64) * sd + mu
    with torch.no_grad():
        want = (model.double()((x - mu) / sd) * sd[:, None] + mu[:, None]).transpose(1, 2)  # [B, D, H, Q]
        assert torch.allclose(folded(x), want, atol=1e-9)
    art = _compile(qstudent("dlinear"), "onnx", False, tmp_path)
    ops = [n.op_type for n in onnx.load(str(art / "model.onnx")).graph.node]
    first_abs = ops.index("Abs")
    assert ops[:first_abs].count("MatMul") == 2  # the folded map, then the rank -> gaps map
    assert ops.count("Abs") == 1 and ops[first_abs + 1:].count("MatMul") == 1  # the cumulative sums
    assert ops.count("Transpose") == 1  # the input's; the output stays in the artifact layout [B, D, H, Q]
    assert "ReduceMean" not in ops and "AveragePool" not in ops  # the moving average is folded


def test_predict_quantiles_on_a_point_artifact_names_the_fix(tmp_path_factory):
    from compiled_factory import compiled

    from distilts.errors import DistiltsError
    from distilts.runtime import Forecaster

    fc = Forecaster.load(compiled(tmp_path_factory, "onnx"))
    assert fc.levels is None
    with pytest.raises(DistiltsError, match="--quantiles"):
        fc.predict_quantiles(fc.manifest.golden_input)


def test_forecast_writes_level_columns_and_a_band_plot(qstudent, tmp_path):
    import csv

    art = _compile(qstudent("dlinear"), "onnx", False, tmp_path)
    out, png = tmp_path / "f.csv", tmp_path / "f.png"
    res = CliRunner().invoke(cli, ["forecast", str(art), "--at-row", "7000", "--out", str(out), "--plot", str(png)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == H
    assert list(rows[0])[:6] == ["date", "load", "temperature", "solar", "price", "load_q0.1"]
    for r in rows:
        assert r["load"] == r["load_q0.5"]
        assert float(r["price_q0.1"]) <= float(r["price_q0.5"]) <= float(r["price_q0.9"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_serve_answers_the_levels(qstudent, tmp_path):
    pytest.importorskip("fastapi")
    import urllib.request

    from distilts.runtime import Forecaster
    from distilts.serve.app import create_app
    from serve_server import running

    fc = Forecaster.load(_compile(qstudent("dlinear"), "onnx", False, tmp_path))
    window = fc.manifest.golden_input[0]
    with running(create_app(fc)) as url:
        req = urllib.request.Request(url + "/forecast", data=json.dumps({"window": window.tolist()}).encode(),
                                     headers={"Content-Type": "application/json"})
        answer = json.loads(urllib.request.urlopen(req).read())
        model = json.loads(urllib.request.urlopen(url + "/model").read())
    assert model["quantiles"] == LEVELS and answer["quantiles"]["levels"] == LEVELS
    values = np.asarray(answer["quantiles"]["values"])
    assert values.shape == (H, 4, 3) and np.all(np.diff(values, axis=-1) >= 0)
    np.testing.assert_allclose(answer["forecast"], values[..., 1])
    np.testing.assert_allclose(values, fc.predict_quantiles(window), rtol=1e-6)
