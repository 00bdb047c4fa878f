"""Every setting of the distill stage and its default, defined once (the library and the command
line both read them here). Imports neither torch nor numpy, so `distilts --help` can.

`TrainConfig` is one student training run, `DistillSpec` everything a distillation depends on,
`TeacherTraining` the PatchTST teacher trained here; the constants are the teacher cache's and the
option choices.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from distilts.cache.config import (  # noqa: F401  (re-exported: every command's defaults)
    DEVICES,
    HIDDEN_DTYPES,
    HIDDEN_TOKENS,
    HORIZON,
    LOOKBACK,
    PARTS,
    TEACH_BATCH,
)
from distilts.data.spec import DataSpec
from distilts.errors import DistiltsError
from distilts.teachers.spec import is_ensemble, is_statistical

if TYPE_CHECKING:
    from distilts.data import Dataset

SCHEDULES = ("cosine", "step", "constant")
AMP_MODES = ("off", "bf16", "fp16")
TEACHER_HIDDEN = ("cache", "online")  # where FTA's teacher hidden states come from
# quantile students: the KD term against the teacher's levels (distill/losses.py); l2 first, the default: it
# measured better than pinball on ETTh1 (benchmarks/RESULTS.md, "Probabilistic students")
QUANTILE_KD = ("l2", "pinball")
# the point loss of the supervised and KD terms: mse (DistilTS), mae (absolute errors on the per-series z-scored
# values), or mase (the M4 recipe, N-BEATS' MASE loss: each window's absolute errors divided by the mean absolute
# one-step change of its own input, so every window weighs alike whatever its volatility; distill/losses.py)
# smape (panel data): the competition's sMAPE itself, 200 |f - y| / (|f| + |y|), on each series' raw values
LOSSES = ("mse", "mae", "mase", "smape")
# the order of training windows per epoch: "window" (a permutation of all windows) or "series" (the same
# number of windows from every series of a panel, drawn anew each epoch, so long series do not drown short ones)
SAMPLINGS = ("window", "series")


# FTA (Factorized Temporal Alignment; distill/fta.py)
FTA_WEIGHT = 0.3
FTA_LATENT = 256
DEFAULT_BETA = {"itransformer": FTA_WEIGHT, "dlinear": 0.0}  # the DistilTS scripts: FTA for iTransformer only


def default_beta(student: str) -> float:
    """The FTA weight a student gets when --beta is not given (0 = off, as the DistilTS scripts)."""
    return DEFAULT_BETA.get(student, 0.0)


AUTO_LOOKBACK_HORIZONS = 7  # --lookback auto: the longest N-BEATS lookback (2H..7H), in horizons


def auto_lookback(horizon: int, season: int | None, longest_allowed: int | None) -> int:
    """`--lookback auto`: 7 horizons (N-BEATS' longest lookback), rounded up to whole seasons when the season is
    known, cut to `longest_allowed` (what the median series, or the train part, leaves room for) when smaller."""
    lookback = AUTO_LOOKBACK_HORIZONS * horizon
    if season and season > 1:
        lookback = -(-lookback // season) * season
    if longest_allowed is not None and 0 < longest_allowed < lookback:
        lookback = longest_allowed
    return lookback


@dataclass
class TrainConfig:
    """One student training run (distill/trainer.py)."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    patience: int = 3
    seed: int = 0
    device: str = "auto"
    amp: str = "off"
    alpha: float = 0.5  # DistilTS kd_alpha
    beta: float = 0.0  # FTA weight; `distilts distill` picks the student's default (default_beta)
    tau: float = 1.0
    kd: bool = True
    fta_latent: int = FTA_LATENT
    quantile_kd: str = QUANTILE_KD[0]  # quantile students: KD term against the teacher's levels
    loss: str = LOSSES[0]  # point students: the supervised and KD terms' error (early stopping follows it)
    sampling: str = SAMPLINGS[0]  # training order: all windows, or equal windows per series (panel data)
    season: int = 0  # seasonal period of the mase loss (and --lookback auto); 0: from the data's frequency
    calibrate_intervals: bool = True  # quantile students: split-conformal widening on val windows (intervals.py)

    @property
    def use_kd(self) -> bool:
        return self.kd and self.alpha > 0

    @property
    def use_fta(self) -> bool:
        return self.beta > 0

    def check(self) -> None:
        """A DistiltsError naming the choices for an unknown schedule, AMP mode or quantile KD term."""
        if self.loss not in LOSSES:
            raise DistiltsError(f"Unknown loss '{self.loss}'. Use one of: {', '.join(LOSSES)}.")
        if self.sampling not in SAMPLINGS:
            raise DistiltsError(f"Unknown sampling '{self.sampling}'. Use one of: {', '.join(SAMPLINGS)}.")
        if self.quantile_kd not in QUANTILE_KD:
            raise DistiltsError(f"Unknown quantile KD term '{self.quantile_kd}'. Use one of: {', '.join(QUANTILE_KD)}.")
        if self.schedule not in SCHEDULES:
            raise DistiltsError(f"Unknown LR schedule '{self.schedule}'. Use one of: {', '.join(SCHEDULES)}.")
        if self.amp not in AMP_MODES:
            raise DistiltsError(f"Unknown AMP mode '{self.amp}'. Use one of: {', '.join(AMP_MODES)}.")


@dataclass
class DistillSpec:
    """Everything a distillation run depends on (besides the output directory)."""

    student: str = "dlinear"
    student_kwargs: dict[str, Any] = field(default_factory=dict)
    teacher: str = "timemoe"
    teacher_path: str | None = None
    data: Any = None  # DataSpec, or what DataSpec.of takes (a path, a DataFrame, a dict, None: synthetic)
    lookback: int | str = LOOKBACK  # "auto": resolved from the horizon and the data (auto_lookback)
    horizon: int = HORIZON
    stride: int = 1
    hidden_tokens: int = HIDDEN_TOKENS
    cache_dir: str | None = None
    teacher_hidden: str = "cache"  # "cache" (teacher cache) or "online" (teacher runs in the training loop)
    max_cache_gb: float | None = None
    max_train_windows: int | None = None
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        self.data = DataSpec.of(self.data)

    @property
    def levels(self) -> tuple[float, ...] | None:
        """The quantile levels of a quantile student (None: a point student)."""
        q = self.student_kwargs.get("quantiles", (self.student_kwargs.get("member_options") or {}).get("quantiles"))
        return None if q is None else tuple(float(v) for v in q)

    @property
    def needs_teacher_training_outputs(self) -> bool:
        return self.train.use_kd or self.train.use_fta

    @property
    def uses_teacher(self) -> bool:
        """The teacher is needed to train, or was named explicitly for the metrics (a checkpoint path, or a
        teacher that needs none: a statistical model, an ensemble)."""
        return (
            self.needs_teacher_training_outputs
            or self.teacher_path is not None
            or is_statistical(self.teacher)
            or is_ensemble(self.teacher)
        )

    def train_stride(self, dataset: Dataset) -> int:
        """Stride of the training windows: `stride`, raised so that at most `max_train_windows`
        windows remain (evenly spaced over the train part)."""
        if not self.max_train_windows:
            return self.stride
        if self.max_train_windows < 1:
            raise DistiltsError(f"--max-train-windows must be positive (got {self.max_train_windows}).")
        n_all = len(dataset.windows("train", self.lookback, self.horizon, 1))
        return max(self.stride, -(-n_all // self.max_train_windows))

    def settings(self) -> dict:
        """The JSON identity of the run (resume checks it; excludes the device)."""
        d = asdict(self)
        d["train"] = {k: v for k, v in d["train"].items() if k != "device"}
        d.pop("max_cache_gb")  # a disk budget does not change the numbers
        if d["teacher_hidden"] == "cache":  # the identity of runs from before the option existed
            d.pop("teacher_hidden")
        return d


@dataclass
class TeacherTraining:
    """The PatchTST teacher trained here (`distilts train-teacher`; distill/train_teacher.py)."""

    lookback: int = LOOKBACK
    horizon: int = HORIZON
    epochs: int = 10
    d_model: int = 64
    layers: int = 3
    heads: int = 4
    ffn_dim: int | None = None  # None: 2 x d_model
    patch_length: int = 16
    patch_stride: int = 8
    dropout: float = 0.2
    quantiles: tuple[float, ...] | None = None  # a quantile head at these levels (pinball loss); None: MSE point head
    batch_size: int = 64
    lr: float = 1e-3  # peak of the one-cycle schedule
    weight_decay: float = 1e-4
    patience: int = 3
    stride: int = 1
    val_stride: int = 1
    seed: int = 0
    device: str = "auto"
