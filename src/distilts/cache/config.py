"""The teacher cache's settings and defaults, defined once (torch- and numpy-free, for `--help`).

LOOKBACK, HORIZON and DEVICES are the window and device defaults of every command from here on
(distill.config re-exports them)."""

from __future__ import annotations

LOOKBACK = 512  # context length L of every command
HORIZON = 96  # forecast length H
DEVICES = ("auto", "cpu", "cuda")
PARTS = ("train", "val", "test")
HIDDEN_DTYPES = ("float16", "float32")
HIDDEN_TOKENS = 0  # teacher tokens kept per window: 0 = all of them (the DistilTS code); N > 0 mean-pools to N
TEACH_BATCH = 64  # windows per teacher call (one resumable chunk)
