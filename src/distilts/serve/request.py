"""Parse and validate the JSON body of `POST /forecast`; every problem is a `RequestError` (4xx)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from distilts.errors import DataError, require
from distilts.runtime.forecaster import Forecaster

orjson = require("orjson", "serve", "distilts serve")
try:  # optional: parses a window straight into a float buffer (2-3x faster than orjson + numpy.asarray)
    import simdjson
except ImportError:  # pragma: no cover - the general path below gives the same answers
    simdjson = None  # type: ignore[assignment]
_local = threading.local()  # one simdjson parser per thread (a parser holds one document at a time)
EXAMPLE = '{"window": [[v1, ..., vD], ... L rows], "columns": [...], "last_timestamp": "2018-06-26 19:00:00"}'


class RequestError(Exception):
    """A bad request: HTTP `status` and a message naming the problem and the fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class ForecastRequest:
    x: np.ndarray  # float32 [B, L, D], columns in the manifest's order
    single: bool  # "window" (answer [H][D]) rather than "windows" (answer [B][H][D])
    timestamps: list[list[str]] | None  # per window, H timestamps
    covariates: dict = field(default_factory=dict)  # Forecaster.predict keywords: past, future, static, timestamps


def parse_request(body: bytes, fc: Forecaster, max_batch: int) -> ForecastRequest:
    """The windows of a request body, validated against the artifact (shape, values, columns, batch)."""
    fast = simdjson is not None and fc.covariates is None
    x = _fast_window(body, fc.lookback, len(fc.columns)) if fast else None
    if x is not None:  # {"window": [L][D] numbers} and nothing else: the common request
        try:
            return ForecastRequest(fc.check_window(x), True, None)
        except DataError as exc:
            raise RequestError(422, str(exc)) from None
    try:
        req = orjson.loads(body)  # ~10x faster than json; strict JSON (no NaN/Infinity literals)
    except orjson.JSONDecodeError:
        try:  # the standard parser also reads NaN/Infinity, so they get their own message below
            req = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RequestError(400, f"The body is not valid JSON ({exc}). Send e.g. {EXAMPLE}") from None
    if not isinstance(req, dict):
        raise RequestError(422, f"The body must be a JSON object, e.g. {EXAMPLE}")
    roles = [r for r in fc.input_columns if r != "x"] if fc.covariates is not None else []
    unknown = sorted(set(req) - {"window", "windows", "columns", "last_timestamp", "step_seconds", *roles})
    if unknown:
        raise RequestError(
            422,
            f"Unknown field(s) {', '.join(unknown)}; the fields are window or windows, "
            + (f"the covariates {', '.join(roles)}, " if roles else "")
            + "and optionally columns, last_timestamp, step_seconds.",
        )
    if ("window" in req) == ("windows" in req):
        raise RequestError(422, "Give exactly one of 'window' (one [L][D] window) or 'windows' (a batch [B][L][D]).")
    single = "window" in req
    L, D = fc.lookback, len(fc.columns)
    x = _array(req["window"] if single else req["windows"], 2 if single else 3, L, D, fc.columns)
    if not single and not 1 <= x.shape[0] <= max_batch:
        raise RequestError(
            413 if x.shape[0] else 422,
            f"'windows' holds {x.shape[0]} windows; this server takes 1 to {max_batch} per request "
            "(split the batch, or start the server with a larger --max-batch).",
        )
    if "columns" in req:
        x = _reorder(x, req["columns"], fc.columns)
    covariates: dict = {}
    for role in roles:
        if role in req:
            try:
                covariates[role] = np.asarray(req[role], dtype=np.float32)
            except (TypeError, ValueError):
                raise RequestError(422, f"'{role}' must be a rectangular array of numbers.") from None
    try:
        if fc.calendar_columns:
            covariates["timestamps"] = window_timestamps(req, x.shape[0], fc)
            if single:
                covariates["timestamps"] = covariates["timestamps"][0]
        if fc.covariates is not None:
            fc.check_inputs(x, **covariates)
        x = fc.check_window(x)  # shape and NaN/inf, with the runtime's messages
    except DataError as exc:
        raise RequestError(422, str(exc)) from None
    if single and covariates:  # the window goes to predict as a batch of one: so do its covariates
        covariates = {k: v[None] for k, v in covariates.items()}
    stamps = _timestamps(req, x.shape[0], fc) if "last_timestamp" in req else None
    return ForecastRequest(np.ascontiguousarray(x), single, stamps, covariates)


def _fast_window(body: bytes, L: int, D: int) -> np.ndarray | None:
    """`[L, D]` float32 from a body that is exactly {"window": [L rows of D numbers]}, else None (then the
    general path parses it, with its messages)."""
    if body.count(b"[") != L + 1:  # one per row and one around them: no deeper nesting
        return None
    parser = _local.parser = getattr(_local, "parser", None) or simdjson.Parser()
    doc = w = None
    try:
        doc = parser.parse(body)
        w = doc["window"] if isinstance(doc, simdjson.Object) and len(doc) == 1 else None
        # a row that is not an array: len() raises TypeError (the general path below)
        if not isinstance(w, simdjson.Array) or len(w) != L or {len(row) for row in w} != {D}:  # type: ignore[arg-type]
            return None
        flat = np.frombuffer(w.as_buffer(of_type="d"), dtype=np.float64)
    except RuntimeError:  # the parser's last document is still referenced somewhere: a new parser next time
        _local.parser = None
        return None
    except (ValueError, TypeError, KeyError, AttributeError):  # not JSON, not numbers, scalar rows: general path
        return None
    finally:
        doc = w = None  # a parser cannot parse again while proxies of its document live
    with np.errstate(over="ignore"):  # beyond float32: inf, refused with the NaN/inf message
        return flat.astype(np.float32).reshape(L, D)


def _array(value: object, ndim: int, L: int, D: int, columns: list[str]) -> np.ndarray:
    what = f"[{L}][{D}]" if ndim == 2 else f"[B][{L}][{D}]"
    key = "window" if ndim == 2 else "windows"
    try:
        with np.errstate(over="ignore"):  # beyond float32: inf, refused below with the NaN/inf message
            x = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise RequestError(
            422,
            f"'{key}' must be a rectangular array {what} of numbers (lookback {L} x "
            f"{D} columns: {', '.join(columns)}); it has ragged rows or non-numbers.",
        ) from None
    if x.ndim != ndim or x.shape[-2:] != (L, D):
        raise RequestError(
            422,
            f"'{key}' has shape {list(x.shape)}; this model needs {what} (lookback {L} rows "
            f"of {D} values, columns in this order: {', '.join(columns)}).",
        )
    return x


def _reorder(x: np.ndarray, given: object, columns: list[str]) -> np.ndarray:
    if not isinstance(given, list) or not all(isinstance(c, str) for c in given):
        raise RequestError(422, "'columns' must be a list of column names.")
    unknown = [c for c in given if c not in columns]
    missing = [c for c in columns if c not in given]
    if unknown or missing or len(given) != len(columns):
        parts = (
            ([f"unknown column(s) {', '.join(unknown)}"] if unknown else [])
            + ([f"missing column(s) {', '.join(missing)}"] if missing else [])
            + (["repeated column names"] if not (unknown or missing) else [])
        )
        raise RequestError(
            422,
            f"'columns' does not match the model: {'; '.join(parts)}. The model forecasts "
            f"exactly these columns: {', '.join(columns)}.",
        )
    if given == columns:
        return x
    return x[..., [given.index(c) for c in columns]]


def _timestamps(req: dict, n: int, fc: Forecaster) -> list[list[str]]:
    step = req.get("step_seconds", fc.manifest.freq_seconds)
    if step is None:
        raise RequestError(422, "'last_timestamp' needs 'step_seconds' (this artifact records no frequency).")
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0:
        raise RequestError(422, f"'step_seconds' must be a positive number, not {step!r}.")
    last = req["last_timestamp"]
    lasts = last if isinstance(last, list) else [last] * n
    if len(lasts) != n:
        raise RequestError(
            422, f"'last_timestamp' lists {len(lasts)} timestamps for {n} windows; give one per window or a single one."
        )
    out = []
    for t in lasts:
        try:
            t0 = datetime.fromisoformat(t)
        except (TypeError, ValueError):
            raise RequestError(
                422, f"'last_timestamp' {t!r} is not an ISO 8601 date-time (e.g. \"2018-06-26 19:00:00\")."
            ) from None
        try:
            out.append([(t0 + timedelta(seconds=step * k)).isoformat(sep=" ") for k in range(1, fc.horizon + 1)])
        except OverflowError:
            raise RequestError(
                422,
                f"The forecast's timestamps from {t!r} every {step} s fall outside the years "
                "1-9999; check 'last_timestamp' and 'step_seconds'.",
            ) from None
    return out


def window_timestamps(params: dict, n: int, fc: Forecaster) -> np.ndarray:
    """`[n, L + H]` datetime64 timestamps of windows ending at `last_timestamp` (one, or one per window), every
    `step_seconds` (default: the artifact's frequency): what the calendar features are generated from."""
    last = params.get("last_timestamp")
    if last is None:
        raise RequestError(
            400,
            f"This model generates the calendar features {', '.join(fc.calendar_columns)} from the timestamps: "
            "give the window's last timestamp as the request parameter 'last_timestamp' (ISO 8601).",
        )
    step = params.get("step_seconds", fc.manifest.freq_seconds)
    if step is None or isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0:
        raise RequestError(422, f"'step_seconds' must be a positive number (the artifact records none), not {step!r}.")
    lasts = last if isinstance(last, list) else [last] * n
    if len(lasts) != n:
        raise RequestError(
            422, f"'last_timestamp' lists {len(lasts)} timestamps for {n} windows; give one or one each."
        )
    try:
        t = np.array([np.datetime64(str(v).replace(" ", "T"), "s") for v in lasts])
    except ValueError:
        raise RequestError(422, f"'last_timestamp' {last!r} is not an ISO 8601 date-time.") from None
    offsets = (np.arange(fc.lookback + fc.horizon) - (fc.lookback - 1)) * int(step)
    return t[:, None] + offsets.astype("timedelta64[s]")
