"""Teacher hidden states computed in the training loop instead of read from the teacher cache.

The hidden-state cache grows as windows x variates x tokens x d_model (Traffic at L=512 with
TimeMoE-50M: ~125 GB at 16 pooled tokens). On a GPU, running the frozen teacher on each training
batch can be cheaper than storing that, which is what the official DistilTS code does.
`OnlineHidden` stands in for the cached `[N, D, T', d]` array: the trainer indexes it with a batch
of window indices and gets the same pooled states (float32; the cache stores float16).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from distilts.cache.fill import pool_tokens

if TYPE_CHECKING:
    from distilts.data.windows import Windows
    from distilts.teachers.base import Teacher


class OnlineHidden:
    """Array-like `[N, D, T', d_model]` whose rows are computed by the teacher when indexed."""

    def __init__(self, teacher: Teacher, windows: Windows, hidden_tokens: int) -> None:
        self.teacher, self.windows, self.hidden_tokens = teacher, windows, hidden_tokens
        teacher.check_window(windows.lookback, windows.horizon)
        tokens = teacher.hidden_tokens(windows.lookback)
        kept = tokens if hidden_tokens <= 0 else min(tokens, hidden_tokens)
        self.shape = (len(windows), windows.values.shape[1], kept, int(teacher.d_model))
        self.calls = 0

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx: np.ndarray) -> np.ndarray:
        x, _ = self.windows.batch(np.asarray(idx))
        out = self.teacher.predict(x, self.windows.horizon, hidden=True)
        self.calls += 1
        assert out.hidden is not None  # predict(hidden=True) gives them
        return pool_tokens(out.hidden, self.hidden_tokens).astype(np.float32, copy=False)
