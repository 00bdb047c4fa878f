# The runtime-only serving image: distilts[serve,<backend>] (numpy, one inference library, FastAPI/uvicorn;
# no torch) serving an artifact or a model store mounted at /models.
#   docker build -t distilts-serve:0.1.0 .                       # --build-arg BACKEND=openvino|tflite
#   docker run -p 8000:8000 -v $PWD/ARTIFACT:/models:ro distilts-serve:0.1.0
# UNTESTED: no container engine was available where this was written (docs/runtime.md, "A container").
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ARG BACKEND=onnx
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir "$(ls /wheels/distilts-*.whl)[serve,${BACKEND}]" && rm -rf /wheels \
    && useradd --system --uid 10001 distilts
USER distilts
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=4)"
CMD ["distilts", "serve", "/models", "--host", "0.0.0.0", "--port", "8000"]
