"""The distilts benchmark harness: `python -m benchmarks list | run NAME [--preset quick|full] | report`.

Benchmarks are the modules of benchmarks/suite/ (docs/benchmarks.md); records go to benchmarks/results/,
RESULTS.md is generated from them.
"""
