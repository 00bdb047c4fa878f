"""Serving an artifact with covariate inputs (issue 28): the Open Inference Protocol with named inputs x, past,
future, static (tritonclient as the client; the calendar from the `last_timestamp` parameter) and the typed
JSON of POST /forecast both answer what `Forecaster.predict` returns; the metadata lists the inputs."""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import urlparse

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

from covariate_factory import HORIZON, LOOKBACK, artifact, student_dir, window  # noqa: E402
from distilts.runtime import Forecaster  # noqa: E402
from distilts.serve.app import ServeOptions, create_app  # noqa: E402
from serve_server import running  # noqa: E402

NAME = "covtoy"


@pytest.fixture(scope="module")
def fc(tmp_path_factory):
    return Forecaster.load(artifact(tmp_path_factory, "onnx"), threads=1)


@pytest.fixture(scope="module")
def windows(tmp_path_factory):
    csv = student_dir(tmp_path_factory).parent / "data.csv"
    return [window(csv, 600), window(csv, 650)]


@pytest.fixture(scope="module")
def server(fc):
    with running(create_app(fc, ServeOptions(max_batch=16, name=NAME))) as url:
        yield url


@pytest.fixture
def client(server):
    c = httpclient.InferenceServerClient(urlparse(server).netloc)
    yield c
    c.close()


def _last(w) -> str:
    return str(w["timestamps"][LOOKBACK - 1]).replace("T", " ")


def _inputs(ws, binary: bool = True):
    arrays = {
        "x": np.stack([w["values"] for w in ws]),
        "past": np.stack([w["past"] for w in ws]),
        "future": np.stack([w["future"] for w in ws]),
        "static": np.stack([w["static"] for w in ws]),
    }
    out = []
    for name, a in arrays.items():
        inp = httpclient.InferInput(name, list(a.shape), "FP32")
        inp.set_data_from_numpy(np.ascontiguousarray(a, np.float32), binary_data=binary)
        out.append(inp)
    return out


def test_metadata_lists_the_named_inputs(client, fc):
    meta = client.get_model_metadata(NAME)
    shapes = {i["name"]: i["shape"] for i in meta["inputs"]}
    assert shapes == {
        "x": [-1, LOOKBACK, 1],
        "past": [-1, LOOKBACK, 1],
        "future": [-1, LOOKBACK + HORIZON, 1],
        "static": [-1, 1],
    }
    assert meta["parameters"]["inputs"]["future"] == ["temp"]
    assert meta["parameters"]["calendar"] == ["calendar:hour_of_day", "calendar:day_of_week", "calendar:month"]


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_infer_equals_predict(client, fc, windows, binary):
    res = client.infer(NAME, _inputs(windows, binary), parameters={"last_timestamp": [_last(w) for w in windows]})
    got = res.as_numpy("forecast")
    want = np.stack([fc.predict(**w) for w in windows])
    np.testing.assert_array_equal(got, want)


def test_infer_without_a_covariate_or_timestamp_is_refused_in_one_line(client, windows):
    with pytest.raises(InferenceServerException) as e:
        client.infer(NAME, _inputs(windows)[:3], parameters={"last_timestamp": _last(windows[0])})
    assert "'static'" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(InferenceServerException) as e:
        client.infer(NAME, _inputs(windows))
    assert "last_timestamp" in str(e.value) and "calendar:hour_of_day" in str(e.value)


def test_typed_json_forecast_equals_predict(server, fc, windows):
    w = windows[0]
    body = {
        "window": w["values"].tolist(),
        "past": w["past"].tolist(),
        "future": w["future"].tolist(),
        "static": w["static"].tolist(),
        "last_timestamp": _last(w),
    }
    req = urllib.request.Request(
        server + "/forecast", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        out = json.loads(r.read())
    np.testing.assert_allclose(np.array(out["forecast"], np.float32), fc.predict(**w), rtol=1e-6)
    assert out["timestamps"][0] == str(w["timestamps"][LOOKBACK]).replace("T", " ")
    bad = dict(body, future=w["future"][:LOOKBACK].tolist())
    req = urllib.request.Request(
        server + "/forecast", data=json.dumps(bad).encode(), headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    msg = json.loads(e.value.read())["error"]
    assert e.value.code == 422 and "'future'" in msg and "\n" not in msg


def test_openapi_schema_lists_the_covariate_fields(server):
    with urllib.request.urlopen(server + "/openapi.json", timeout=30) as r:
        schemas = json.loads(r.read())["components"]["schemas"]
    one = schemas["ForecastOne"]
    assert {"past", "future", "static"} <= set(one["required"])
    assert one["properties"]["future"]["minItems"] == LOOKBACK + HORIZON
