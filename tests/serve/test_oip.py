"""The Open Inference Protocol (KServe v2 REST) with tritonclient as the client, binary and JSON tensors,
and POST /forecast: every route answers what `Forecaster.predict` gives."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlparse

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

from artifact_factory import artifact  # noqa: E402
from distilts.runtime import Forecaster  # noqa: E402
from distilts.serve.app import ServeOptions, create_app  # noqa: E402
from serve_server import running  # noqa: E402

NAME = "etth1"


@pytest.fixture(scope="module")
def fc(tmp_path_factory):
    return Forecaster.load(artifact(tmp_path_factory, "onnx"), threads=1)


@pytest.fixture(scope="module")
def server(fc):
    with running(create_app(fc, ServeOptions(max_batch=16, name=NAME))) as url:
        yield url


@pytest.fixture
def client(server):
    c = httpclient.InferenceServerClient(urlparse(server).netloc)
    yield c
    c.close()


def windows(fc, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (fc.manifest.golden_input[0] + rng.normal(0, 1, (n, fc.lookback, len(fc.columns)))).astype(np.float32)


def post(url: str, body: bytes, headers: dict | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_server_and_model_metadata(client, fc):
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(NAME)
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    meta = client.get_model_metadata(NAME)
    D = len(fc.columns)
    assert meta["inputs"] == [{"name": "window", "datatype": "FP32", "shape": [-1, fc.lookback, D]}]
    assert meta["outputs"] == [{"name": "forecast", "datatype": "FP32", "shape": [-1, fc.horizon, D]}]
    version = meta["versions"][0]
    assert client.get_model_metadata(NAME, version)["name"] == NAME
    assert client.is_model_ready(NAME, version) and not client.is_model_ready(NAME, "nope")
    assert not client.is_model_ready("other")


@pytest.mark.parametrize("binary_in, binary_out", [(True, True), (False, False), (True, False), (False, True)])
def test_infer_binary_and_json_equal_predict(client, fc, binary_in, binary_out):
    x = windows(fc, 3)
    inp = httpclient.InferInput("window", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary_in)
    out = httpclient.InferRequestedOutput("forecast", binary_data=binary_out)
    res = client.infer(NAME, [inp], outputs=[out], request_id="r1")
    np.testing.assert_array_equal(res.as_numpy("forecast"), fc.predict(x))
    assert res.get_response()["id"] == "r1"


def test_infer_default_outputs_come_back_binary(client, fc):
    """tritonclient's default (no outputs named): binary_data_output for every output."""
    x = windows(fc, 1, seed=3)
    inp = httpclient.InferInput("window", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    res = client.infer(NAME, [inp])
    assert res.get_output("forecast")["parameters"]["binary_data_size"] == fc.horizon * len(fc.columns) * 4
    np.testing.assert_array_equal(res.as_numpy("forecast"), fc.predict(x))


def test_forecast_route_equals_infer_and_predict(server, fc):
    """The curl route (POST /forecast) and the OIP route give the same numbers, and name the version."""
    x = windows(fc, 1, seed=5)[0]
    status, headers, body = post(f"{server}/forecast", json.dumps({"window": x.tolist()}).encode())
    assert status == 200
    np.testing.assert_array_equal(np.asarray(json.loads(body)["forecast"], np.float32), fc.predict(x))
    version = {k.lower(): v for k, v in headers.items()}["x-model-version"]
    req = {"inputs": [{"name": "window", "shape": [1, *x.shape], "datatype": "FP32", "data": x.tolist()}]}
    status, headers, body = post(f"{server}/v2/models/{NAME}/versions/{version}/infer", json.dumps(req).encode())
    assert status == 200
    out = json.loads(body)
    assert out["model_name"] == NAME and out["model_version"] == version
    [o] = out["outputs"]
    assert o["shape"] == [1, fc.horizon, len(fc.columns)]
    np.testing.assert_array_equal(np.asarray(o["data"], np.float32).reshape(fc.horizon, -1), fc.predict(x))


@pytest.mark.parametrize("req, match", [
    ({"inputs": [{"name": "x", "shape": [1, 24, 4], "datatype": "FP32", "data": [0] * 96}]}, "named 'window'"),
    ({"inputs": [{"name": "window", "shape": [1, 24, 4], "datatype": "INT64", "data": [0] * 96}]}, "datatype"),
    ({"inputs": [{"name": "window", "shape": [1, 23, 4], "datatype": "FP32", "data": [0] * 92}]}, "shape"),
    ({"inputs": [{"name": "window", "shape": [1, 24, 4], "datatype": "FP32", "data": [0] * 95}]}, "holds 95"),
    ({"inputs": [{"name": "window", "shape": [17, 24, 4], "datatype": "FP32", "data": [0] * 17 * 96}]}, "1 to 16"),
    ({"inputs": [{"name": "window", "shape": [1, 24, 4], "datatype": "FP32", "data": [0] * 96}],
      "outputs": [{"name": "quantiles"}]}, "Unknown output"),
    ({"inputs": [{"name": "window", "shape": [1, 24, 4], "datatype": "FP32", "data": ["a"] * 96}]}, "numbers"),
    ({"inputs": "no"}, "'inputs'"),
])
def test_infer_errors_are_400_with_an_error_field(server, req, match):
    status, _, body = post(f"{server}/v2/models/{NAME}/infer", json.dumps(req).encode())
    assert status == 400 and match in json.loads(body)["error"]


def test_infer_unknown_model_or_version_is_404_and_nan_is_400(client, server, fc):
    x = windows(fc, 1)
    x[0, 3, 1] = np.nan
    inp = httpclient.InferInput("window", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    with pytest.raises(InferenceServerException, match="NaN/inf"):
        client.infer(NAME, [inp])
    status, _, body = post(f"{server}/v2/models/other/infer", b"{}")
    assert status == 404 and "serves 'etth1'" in json.loads(body)["error"]
    status, _, body = post(f"{server}/v2/models/{NAME}/versions/0/infer", b"{}")
    assert status == 404 and "no version '0'" in json.loads(body)["error"]
    # a binary section that does not match binary_data_size
    head = json.dumps({"inputs": [{"name": "window", "shape": [1, 24, 4], "datatype": "FP32",
                                   "parameters": {"binary_data_size": 384}}]}).encode()
    status, _, body = post(f"{server}/v2/models/{NAME}/infer", head + b"\0" * 100,
                           {"Inference-Header-Content-Length": str(len(head))})
    assert status == 400 and "binary_data_size" in json.loads(body)["error"]


def test_openapi_documents_the_forecast_body(server, fc):
    with urllib.request.urlopen(f"{server}/openapi.json", timeout=30) as r:
        doc = json.loads(r.read())
    body = doc["paths"]["/forecast"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ForecastRequest"}
    schemas = doc["components"]["schemas"]
    one = schemas["ForecastOne"]["properties"]["window"]
    assert (one["minItems"], one["maxItems"]) == (fc.lookback, fc.lookback)
    assert one["items"]["minItems"] == len(fc.columns)
    assert "ForecastAnswer" in schemas and "InferRequest" in schemas
    assert doc["paths"][f"/v2/models/{{model_name}}/infer"]["post"]["requestBody"]
