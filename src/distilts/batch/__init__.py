"""Forecasting data files with a compiled artifact: one table's next H steps (`series`), every series of a
long-format panel in one process (`panel`) or on a Ray cluster (`ray_engine`); `distilts forecast` (`cli`).

Builds on distilts.runtime (numpy + one backend), never torch.
"""
