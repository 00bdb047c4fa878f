"""`distilts serve`: an HTTP server for one compiled artifact (`pip install "distilts[serve]"`).

Modules: `request` (parse and validate a forecast request), `app` (the FastAPI application; forecasts
run on a thread pool off the event loop), `cli` (the command).
Numpy, the runtime and the server library only: never torch.
"""
