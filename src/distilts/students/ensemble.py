"""An ensemble of students folded into one module: the N-BEATS recipe (Oreshkin et al., 2020: several
lookbacks and initialisations, one combined forecast) as one artifact.

`Ensemble(lookback, horizon, n_variates, member="mlp", lookbacks=(96, 192, 336), seeds=2, member_options={...})`
holds `len(lookbacks) x len(losses) x seeds` students of one family; member `(l, k, s)` reads the last `l` steps
of the window (the longest lookback is the ensemble's own), and the forecast is the **mean** (`combine="mean"`,
one Add chain and a Mul) or the elementwise **median** (`combine="median"`, N-BEATS' choice: a sorting network
of ReLU-written compare-exchanges) of the members' forecasts; both run on every backend, TFLite Micro's int8 kernels
included, and both keep a quantile student's levels sorted.

Training (`distill/trainer.py`): a model with `member_forecasts` is trained on the mean of its members'
losses, each against the truth (and the teacher), never the loss of the average; `losses` gives members
their own loss (`member_losses`: N-BEATS trains members on sMAPE, MASE and MAPE). The members share no
parameter, so each member's gradient is the one of its own loss: the members are trained
independently, as N-BEATS does, in one pass over the data (the same batches and LR schedule; different
initialisations from one seeded stream); early stopping watches the ensemble's forecast.

Linear members (DLinear without RevIN): the mean of linear maps is the linear map of the mean weights
(zero-padded to the longest lookback), so compile's fold of such an ensemble could be one DLinear, exactly;
with RevIN over different lookbacks the window statistics differ per member and the fold is not exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from distilts.students.registry import build_student, student_class

NAME = "ensemble"


class Ensemble(nn.Module):
    """`[B, L, D] -> [B, H, D]` (`[B, H, D, Q]` for quantile members): the mean of its members' forecasts.

    lookbacks: each member group's lookback (<= L; empty: every member reads all L steps); losses: one member
    per lookback and loss (empty: the run's --loss for all; the N-BEATS ensemble mixes sMAPE and MASE losses);
    seeds: members per lookback and loss (different initialisations); member_options: every member's options.
    """

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_variates: int,
        *,
        member: str = "mlp",
        lookbacks: tuple[int, ...] = (),
        seeds: int = 1,
        losses: tuple[str, ...] = (),
        combine: str = "mean",
        member_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if member == NAME:
            raise ValueError("an ensemble's members cannot be ensembles; pick a student family as member")
        views = tuple(int(v) for v in (lookbacks if isinstance(lookbacks, Sequence) else (lookbacks,))) or (lookback,)
        if any(v < 1 or v > lookback for v in views):
            raise ValueError(f"every member lookback must be in 1..{lookback} (the ensemble's lookback); got {views}")
        if int(seeds) < 1:
            raise ValueError(f"seeds must be at least 1 (got {seeds})")
        if combine not in COMBINE:
            raise ValueError(f"combine must be one of {COMBINE} (got {combine!r})")
        self.combine = combine
        self.lookback, self.horizon, self.n_variates = lookback, horizon, n_variates
        self.member_name = member
        kinds = tuple(str(k) for k in ((losses,) if isinstance(losses, str) else losses)) or (None,)
        grid = [(v, k) for v in views for k in kinds for _ in range(int(seeds))]
        self.views = tuple(v for v, _ in grid)
        # the training loss of each member (None: the run's --loss); read by distill/trainer.py only
        self.member_losses = None if kinds == (None,) else [k for _, k in grid]
        opts = dict(member_options or {})
        self.members = nn.ModuleList(build_student(member, v, horizon, n_variates, **opts) for v in self.views)
        self.repr_dim = sum(int(getattr(m, "repr_dim", 0)) for m in self.members)
        # quantile members with RevIN: the member family decides whether its RevIN keeps the levels' order
        self.quantile_revin = bool(getattr(student_class(member), "quantile_revin", False))

    @property
    def levels(self) -> tuple[float, ...] | None:
        return getattr(self.members[0], "levels", None)

    def member_forecasts(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every member's forecast of the window `x [B, L, D]`, each reading its own tail of it."""
        L = self.lookback
        return [m(x if v == L else x[:, L - v :, :]) for m, v in zip(self.members, self.views, strict=True)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return COMBINE[self.combine](self.member_forecasts(x))

    def forward_with_repr(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean forecast and the members' representations concatenated `[B, D, repr_dim]` (FTA)."""
        L = self.lookback
        outs = [
            m.forward_with_repr(x if v == L else x[:, L - v :, :])  # type: ignore[operator]  # each member: a student
            for m, v in zip(self.members, self.views, strict=True)
        ]
        return COMBINE[self.combine]([y for y, _ in outs]), torch.cat([h for _, h in outs], dim=-1)

    def represent(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_repr(x)[1]


def combine(forecasts: list[torch.Tensor]) -> torch.Tensor:
    """The members' mean: a sum and one multiply (exports as Add + Mul)."""
    total = forecasts[0]
    for f in forecasts[1:]:
        total = total + f
    return total if len(forecasts) == 1 else total * (1.0 / len(forecasts))


def median(forecasts: list[torch.Tensor]) -> torch.Tensor:
    """The members' elementwise median (the N-BEATS combination): an odd-even transposition sort of the members
    (n rounds of neighbour compare-exchanges, each written with one ReLU, a Sub and an Add, which every backend
    and TFLite Micro's int8 kernels run), then the middle value (the mean of the middle two for an even count)."""
    v = list(forecasts)
    n = len(v)
    for r in range(n):
        for i in range(r % 2, n - 1, 2):
            # min(a, b) = b - relu(b - a), max(a, b) = a + relu(b - a): ReLU, Sub and Add have full-integer
            # kernels everywhere (ai-edge-quantizer leaves Minimum/Maximum in float)
            gap = torch.relu(v[i + 1] - v[i])
            v[i], v[i + 1] = v[i + 1] - gap, v[i] + gap
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) * 0.5


# how the members' forecasts become one: "mean" (one Add chain) or "median" (robust to a member gone astray;
# monotone, so quantile levels stay sorted)
COMBINE = {"mean": combine, "median": median}


def ensemble_kwargs(
    member: str,
    member_options: dict[str, Any],
    lookbacks: Sequence[int],
    seeds: int,
    losses: Sequence[str] = (),
    combine: str = "mean",
) -> dict:
    """The `Ensemble` options for `distilts distill --ensemble-lookbacks/--ensemble-losses/--ensemble-seeds/
    --ensemble-combine`."""
    return {
        "member": member,
        "lookbacks": [int(v) for v in lookbacks],
        "seeds": int(seeds),
        "losses": [str(k) for k in losses],
        "combine": combine,
        "member_options": dict(member_options),
    }
