"""The server's routes, one module per group: forecast, ops (health, model, stats, metrics), oip (KServe v2)."""
