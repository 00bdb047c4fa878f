"""`distilts search`: the most accurate student that fits a device budget (and the Pareto front it was
chosen from). The package is named `choose` so that `distilts.search` can be the function.

budget (what must fit) -> space (what is searched, per target) -> cost (rejects before training) ->
trial (distil, compile, measure) -> study (Optuna, resumable, parallel) -> report (trials, front, plot,
card) -> run (`search`, the function behind the command). Imports no torch at package level.
"""

from __future__ import annotations

from distilts.lazy import lazy_names

_LAZY = {"search": "run", "Budget": "budget", "SearchSettings": "settings"}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
