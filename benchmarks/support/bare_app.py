"""The ceiling of the HTTP stack `distilts serve` runs on: a bare FastAPI + uvicorn app that reads the body,
parses it with orjson and answers a fixed body of the size of a real answer (no model, no numpy).

    BARE_ANSWER_BYTES=4500 uvicorn bare_app:app --app-dir benchmarks --no-access-log
"""

import os

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

ANSWER = b'{"forecast": [' + b"1.2345678," * max(1, int(os.environ.get("BARE_ANSWER_BYTES", "4500")) // 10) + b"0]}"
app = FastAPI()


@app.post("/forecast")
async def forecast(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(ANSWER, media_type="application/json")
