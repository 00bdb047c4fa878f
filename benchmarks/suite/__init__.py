"""One module per benchmark (the harness contract: benchmarks/harness.py)."""
