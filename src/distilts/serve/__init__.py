"""`distilts serve`: an HTTP server for one compiled artifact (`pip install "distilts[serve]"`).

Modules: `request` (parse and validate a forecast request), `batcher` (run forecasts off the event
loop, micro-batching concurrent requests), `app` (the FastAPI application), `cli` (the command).
Numpy, the runtime and the server library only: never torch.
"""
