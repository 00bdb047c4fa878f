"""`distilts serve`: an HTTP server for a compiled artifact or a model store (`pip install "distilts[serve]"`).

Modules: `request` (parse and validate a /forecast body; a fast path for one window), `oip` (the Open
Inference Protocol: metadata, JSON and binary tensors), `schema` (typed request and answer bodies for
openapi.json), `models` (the version served, hot reload with self-check and refusal), `admission`
(bounded queue, deadline, Prometheus metrics), `app` (the FastAPI application), `cli` (the command).
Numpy, the runtime, deploy's store and the server libraries only: never torch.
"""
