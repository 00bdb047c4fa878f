"""The Open Inference Protocol (KServe v2 REST) for one forecaster: metadata, and infer requests and
answers as JSON tensors or with the binary tensor data extension (what `tritonclient` sends by default).

One input, `window` FP32 [B, L, D] (raw values, columns in the model's order), and one output,
`forecast` FP32 [B, H, D]. Extra outputs (e.g. quantiles) are added by listing them in `outputs(...)`.
An artifact with covariates takes named inputs: `x` (the window; `window` is accepted too) and its
covariate inputs `past` [B, L, P], `future` [B, L + H, F] (raw known-future columns, calendar ones excluded)
and `static` [B, S]; with calendar features the request's parameters give `last_timestamp` (the window's last
timestamp, ISO 8601; one, or one per window) and optionally `step_seconds`, from which the server generates
the lookback + horizon timestamps, as `Forecaster.predict(timestamps=)` takes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from distilts.errors import DataError
from distilts.runtime.forecaster import Forecaster
from distilts.serve.request import RequestError, orjson, window_timestamps

INPUT, OUTPUT = "window", "forecast"
HEADER = "inference-header-content-length"
DTYPES = {"FP32": np.float32}  # the model's only input type


def metadata(name: str, version: str, fc: Forecaster) -> dict:
    """GET /v2/models/{name}: input and output names, datatypes and shapes (-1: any batch); with covariates,
    every named input and, in `parameters.inputs`, its columns (and the calendar columns generated)."""
    D = len(fc.columns)
    inputs = [{"name": n, "datatype": "FP32", "shape": [-1, *t]} for n, t in input_tails(fc).items()]
    params: dict = {"columns": fc.columns, "precision": fc.manifest.precision}
    if fc.covariates is not None:
        params["inputs"] = fc.input_columns
        params["calendar"] = fc.calendar_columns
    return {
        "name": name,
        "versions": [version],
        "platform": f"distilts_{fc.backend}",
        "inputs": inputs,
        "outputs": [{"name": o, "datatype": "FP32", "shape": [-1, fc.horizon, D]} for o in outputs(fc)],
        "parameters": params,
    }


def input_tails(fc: Forecaster) -> dict[str, tuple[int, ...]]:
    """{input name: shape of one row} a request sends: `window` alone, or `x` and the covariate inputs
    (`future` without the calendar columns, which the server generates)."""
    if fc.covariates is None:
        return {INPUT: (fc.lookback, len(fc.columns))}
    tails = dict(fc.manifest.input_tails)
    cols = fc.input_columns
    if "future" in tails:
        if cols["future"]:
            tails["future"] = (fc.lookback + fc.horizon, len(cols["future"]))
        else:
            del tails["future"]  # calendar features only: generated from last_timestamp
    return tails


def outputs(fc: Forecaster) -> list[str]:
    """The output tensors this model answers (one point forecast today)."""
    return [OUTPUT]


@dataclass
class InferCall:
    x: np.ndarray  # float32 [B, L, D]
    id: str | None
    binary: dict[str, bool]  # output name -> answer it as binary data
    covariates: dict = field(default_factory=dict)  # Forecaster.predict keywords: past, future, static, timestamps


def parse_infer(body: bytes, header_length: str | None, fc: Forecaster, max_batch: int) -> InferCall:
    """An infer request (JSON, or JSON + binary tensor data) -> the window batch, validated."""
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise RequestError(
                400,
                f"Inference-Header-Content-Length {header_length!r} is not a size within the body ({len(body)} bytes).",
            )
        json_part, rest = body[: int(header_length)], memoryview(body)[int(header_length) :]
    else:
        json_part, rest = body, memoryview(b"")
    try:
        req = orjson.loads(json_part)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, f"The inference request header is not valid JSON ({exc}).") from None
    if not isinstance(req, dict) or not isinstance(req.get("inputs"), list):
        raise RequestError(
            400,
            "An inference request is a JSON object with 'inputs': [{name, shape, datatype, "
            "data}] (Open Inference Protocol).",
        )
    names = [i.get("name") if isinstance(i, dict) else None for i in req["inputs"]]
    tails = input_tails(fc)
    wanted_names = list(tails)
    if fc.covariates is not None:
        names = ["x" if n == INPUT else n for n in names]
    if len(tails) == 1 and names != [INPUT]:
        raise RequestError(
            400,
            f"This model takes one input tensor named '{INPUT}' (FP32 [B, {fc.lookback}, "
            f"{len(fc.columns)}]); the request has inputs {names}.",
        )
    if sorted(map(str, names)) != sorted(wanted_names):
        expect = ", ".join(f"'{n}' FP32 [B, {', '.join(map(str, t))}]" for n, t in tails.items())
        raise RequestError(
            400,
            f"This model takes the input tensor(s) {expect}; the request has inputs {names}.",
        )
    offset = 0
    arrays: dict[str, np.ndarray] = {}
    for name, spec in zip(names, req["inputs"], strict=True):  # binary data follows in the inputs' order
        name = str(name)  # every name was matched against the model's input names above
        arrays[name], used = _tensor(spec, rest[offset:], fc, name, tails[name])
        offset += used
    x = arrays.pop(wanted_names[0])
    if any(len(a) != len(x) for a in arrays.values()):
        raise RequestError(400, f"Every input must hold the same number of windows ({len(x)}, as '{wanted_names[0]}').")
    if offset != len(rest):
        raise RequestError(
            400, f"The body has {len(rest) - offset} bytes of binary data beyond the inputs' binary_data_size."
        )
    if not 1 <= x.shape[0] <= max_batch:
        raise RequestError(
            400, f"The input holds {x.shape[0]} windows; this server takes 1 to {max_batch} per request (--max-batch)."
        )
    params = req.get("parameters") or {}
    covariates: dict = dict(arrays)
    if fc.calendar_columns:
        covariates["timestamps"] = window_timestamps(params if isinstance(params, dict) else {}, len(x), fc)
    try:
        if covariates:
            fc.check_inputs(x, **covariates)
        else:
            x = fc.check_window(x)
    except DataError as exc:
        raise RequestError(400, str(exc)) from None
    default_binary = bool(isinstance(params, dict) and params.get("binary_data_output"))
    wanted = req.get("outputs")
    binary: dict[str, bool] = {}
    for o in wanted if isinstance(wanted, list) else [{"name": n} for n in outputs(fc)]:
        name = o.get("name") if isinstance(o, dict) else None
        if name not in outputs(fc):
            raise RequestError(400, f"Unknown output {name!r}; this model's outputs: {', '.join(outputs(fc))}.")
        p = o.get("parameters") or {}
        binary[name] = bool(p.get("binary_data", default_binary)) if isinstance(p, dict) else default_binary
    rid = req.get("id")
    return InferCall(np.ascontiguousarray(x), rid if isinstance(rid, str) else None, binary, covariates)


def _tensor(
    spec: dict, rest: memoryview, fc: Forecaster, name: str = INPUT, tail: tuple[int, ...] | None = None
) -> tuple[np.ndarray, int]:
    tail = tail or (fc.lookback, len(fc.columns))
    shape, dtype = spec.get("shape"), spec.get("datatype")
    if dtype not in DTYPES:
        raise RequestError(400, f"Input '{name}' has datatype {dtype!r}; this model takes FP32.")
    if (
        not isinstance(shape, list)
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in shape)
        or len(shape) != len(tail) + 1
        or shape[1:] != list(tail)
        or shape[0] < 0
    ):
        cols = fc.input_columns.get(name, fc.columns) if fc.covariates is not None else fc.columns
        raise RequestError(
            400,
            f"Input '{name}' has shape {shape}; this model takes [B, {', '.join(map(str, tail))}] "
            f"(columns: {', '.join(cols)}).",
        )
    n = shape[0] * int(np.prod(tail))
    params = spec.get("parameters") or {}
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is not None:
        if size != n * 4 or len(rest) < size:
            raise RequestError(
                400,
                f"Input '{name}': binary_data_size {size} does not hold {n} FP32 values "
                f"({n * 4} bytes) or is beyond the body ({len(rest)} bytes of binary data).",
            )
        return np.frombuffer(rest[:size], dtype="<f4").reshape(shape), size
    data = spec.get("data")
    try:
        x = np.asarray(data, dtype=np.float32)
    except (TypeError, ValueError):
        raise RequestError(400, f"Input '{name}': 'data' must be {n} numbers (flat or nested, row-major).") from None
    if x.size != n:
        raise RequestError(400, f"Input '{name}': 'data' holds {x.size} values; shape {shape} needs {n}.")
    return x.reshape(shape), 0


def encode_infer(name: str, version: str, call: InferCall, results: dict[str, np.ndarray]) -> tuple[bytes, dict]:
    """The infer answer: JSON, or JSON + binary tensor data; returns (body, headers)."""
    outs, blobs = [], []
    for oname, want_binary in call.binary.items():
        y = np.ascontiguousarray(results[oname], dtype="<f4")
        o: dict = {"name": oname, "datatype": "FP32", "shape": list(y.shape)}
        if want_binary:
            blob = y.tobytes()
            o["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            o["data"] = y.reshape(-1)
        outs.append(o)
    head: dict = {"model_name": name, "model_version": version, "outputs": outs}
    if call.id is not None:
        head["id"] = call.id
    text = orjson.dumps(head, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return text, {"content-type": "application/json"}
    return b"".join([text, *blobs]), {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(text)),
    }
