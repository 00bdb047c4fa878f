"""The teacher cache: a frozen teacher's forecasts (and hidden states, quantiles) of every window, run once.

`fill_teacher_cache` (`entry`) fills or reuses an entry; `fill` writes its memory-mapped arrays chunk by
chunk (resumable, shared out over torchrun ranks); `distilts teach` (`cli`).
"""
