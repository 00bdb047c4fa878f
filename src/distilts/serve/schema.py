"""Typed schemas of the HTTP API (pydantic), sized to the served model, for openapi.json and /docs.

They document; the handlers parse with the fast path of `request.py` and `oip.py` (orjson + numpy),
which gives the same answers and messages. `install_openapi` puts the request bodies (which the
handlers read raw, so FastAPI cannot see them) into the app's OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from distilts.runtime.forecaster import Forecaster

F32_MAX = 3.4028234e38  # values beyond float32's range cannot be forecast


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer (the Open Inference Protocol's error shape too)."""

    error: str = Field(description="What is wrong and how to fix it.")


def forecast_models(fc: Forecaster, max_batch: int) -> dict[str, Any]:
    """Pydantic models of POST /forecast for this model's lookback, columns and horizon."""
    L, H, D = fc.lookback, fc.horizon, len(fc.columns)
    cols = ", ".join(fc.columns)
    Value = Annotated[float, Field(ge=-F32_MAX, le=F32_MAX)]
    Row = Annotated[list[Value], Field(min_length=D, max_length=D, description=f"one time step: {cols}")]
    Window = Annotated[list[Row], Field(min_length=L, max_length=L, description=f"{L} time steps, oldest first")]
    Stamp = Annotated[
        str,
        Field(
            description="ISO 8601 date-time of the window's last row",
            examples=["2018-06-26 19:00:00"],
            json_schema_extra={"format": "date-time"},
        ),
    ]
    Column: Any = Literal[tuple(fc.columns)]  # a type built at run time from the artifact's columns
    common: dict[str, Any] = {
        "columns": (
            Annotated[list[Column], Field(min_length=D, max_length=D, json_schema_extra={"uniqueItems": True})] | None,
            Field(None, description=f"the order of the values in each row when it is not the model's ({cols})"),
        ),
        "step_seconds": (
            float | None,
            Field(
                None,
                gt=0,
                description="seconds between rows (default: the artifact's frequency); used with last_timestamp",
            ),
        ),
    }
    one_cov, many_cov = covariate_fields(fc, Value)
    cfg = ConfigDict(extra="forbid")
    from pydantic import create_model

    one = create_model(
        "ForecastOne",
        __config__=cfg,
        __doc__="One window; the answer's forecast is [H][D].",
        window=(Window, ...),
        last_timestamp=(Stamp | None, None),
        **common,
        **one_cov,
    )
    many = create_model(
        "ForecastBatch",
        __config__=cfg,
        __doc__="A batch of windows; the answer's forecast is [B][H][D].",
        windows=(Annotated[list[Window], Field(min_length=1, max_length=max_batch)], ...),
        last_timestamp=(Stamp | list[Stamp] | None, Field(None, description="one per window, or one for all")),
        **common,
        **many_cov,
    )
    Out = Annotated[list[Annotated[list[float], Field(min_length=D, max_length=D)]], Field(min_length=H, max_length=H)]
    answer = create_model(
        "ForecastAnswer",
        __doc__="The forecast in raw units, columns in the model's order.",
        columns=(list[str], Field(description="the model's columns", examples=[fc.columns])),
        forecast=(Out | list[Out], Field(description=f"[{H}][{D}] for a window, [B][{H}][{D}] for windows")),
        timestamps=(
            list[str] | list[list[str]] | None,
            Field(None, description="the forecast's time stamps, when last_timestamp was given"),
        ),
        quantiles=(
            dict[str, Any] | None,
            Field(
                None,
                description="quantile models only: {levels: [Q], values: "
                f"[{H}][{D}][Q] or [B][{H}][{D}][Q]}} (forecast is "
                "the 0.5 level)",
            ),
        ),
    )
    return {"ForecastRequest": Union[one, many], "ForecastAnswer": answer}  # noqa: UP007 - types built at run time


def covariate_fields(fc: Forecaster, value: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The covariate fields of POST /forecast (one window, a batch): past [L][P], future [L+H][F] (calendar
    columns excluded: generated from last_timestamp), static [S]; empty for an artifact without covariates."""
    if fc.covariates is None:
        return {}, {}
    one: dict[str, Any] = {}
    many: dict[str, Any] = {}
    tails = fc.manifest.input_tails
    for role, cols in fc.input_columns.items():
        if role == "x" or not cols:
            continue
        row = Annotated[list[value], Field(min_length=len(cols), max_length=len(cols))]
        steps = tails[role][0] if role != "static" else None
        block: Any = row if steps is None else Annotated[list[row], Field(min_length=steps, max_length=steps)]
        what = f"raw {', '.join(cols)}" + (
            ""
            if steps is None
            else f" over {steps} steps (lookback + horizon)"
            if role == "future"
            else f" over the {steps} lookback steps"
        )
        one[role] = (block, Field(..., description=what))
        many[role] = (list[block], Field(..., description=f"one per window: {what}"))
    return one, many


# --- the Open Inference Protocol (KServe v2) ------------------------------------------------------------------
class TensorIn(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = Field(None, description="row-major values; omitted when sent as binary data")


class OutputWanted(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    """KServe v2 inference request; with the header Inference-Header-Content-Length the JSON is followed by
    the binary tensor data (parameters.binary_data_size per input)."""

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[TensorIn]
    outputs: list[OutputWanted] | None = None


class TensorOut(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[float] | None = None


class InferResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    outputs: list[TensorOut]


class TensorMeta(BaseModel):
    name: str
    datatype: Literal["FP32"]
    shape: list[int] = Field(description="-1: any batch size")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMeta]
    outputs: list[TensorMeta]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


def install_openapi(app, models: dict[str, Any], bodies: dict[tuple[str, str], str], path_values) -> None:
    """Make `app.openapi()` add `models` to components, the request bodies `bodies[(path, method)] = model`, and
    the only values of path parameters, `path_values()` -> {name: value} (the model's name and version)."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            for name, model in {**models, "InferRequest": InferRequest}.items():
                s = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(s.pop("$defs", {}))
                schemas[name] = s
            for (path, method), name in bodies.items():
                op = doc["paths"][path][method]
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
                }
            values = path_values()
            for ops in doc["paths"].values():
                for op in ops.values():
                    for p in op.get("parameters", []):
                        if p.get("in") == "path" and p["name"] in values:
                            p["schema"] = {**p.get("schema", {}), "enum": [values[p["name"]]]}
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi
