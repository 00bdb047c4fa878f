"""Everything a search depends on, defined once (the command line and `distilts.search` read it here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from distilts.choose.budget import Budget
from distilts.data.spec import DataSpec

STUDY_FILE = "study.db"  # the Optuna study (SQLite) in the output directory: what makes a search resumable
STUDY_NAME = "distilts-search"


@dataclass
class SearchSettings:
    """One search: data, teacher, horizon, the largest lookback, the target and its budget, and the effort."""

    out: str
    target: str
    horizon: int
    lookback_max: int
    data: Any = None  # DataSpec, or what DataSpec.of takes (None: the synthetic series)
    teacher: str | None = None  # None: ground truth only (no KD)
    teacher_path: str | None = None
    budget: Budget = field(default_factory=Budget)
    trials: int = 40
    timeout_min: float | None = None
    jobs: int = 1
    address: str | None = None  # a Ray cluster: trials run as Ray tasks sharing the study in `out`
    students: tuple[str, ...] = ()  # () = every student the target can run
    epochs: int = 8
    stride: int = 2  # step between training windows
    patience: int = 3
    alpha: float = 0.5
    seed: int = 0
    cache_dir: str | None = None
    max_train_windows: int | None = None

    def __post_init__(self) -> None:
        self.data = DataSpec.of(self.data)

    def record(self) -> dict[str, Any]:
        """JSON-able: what the card and trials.json say was searched."""
        out = asdict(self)
        out["data"] = {k: v for k, v in self.data.args().items() if v is not None}
        out["budget"] = asdict(self.budget)
        return out
