"""Teacher specifications beyond a family name (pure Python: `--help` and the CLI check them).

patchtst                                   a registered family (its checkpoint from --teacher-path)
statsforecast:AutoETS                      a statistical model, season from the data frequency
statsforecast:AutoETS?season=24            ... with options: `season` (the seasonal period) and any
statsforecast:AutoARIMA?season=24&approximation=true   keyword of the model's constructor; `n_jobs`
                                           (worker processes) does not change the numbers or the cache key
student                                    a distilts student directory (--teacher-path DIR)
ensemble:patchtst=PATH+statsforecast:AutoETS   members joined by `+`; a member that needs a
                                           checkpoint takes it after `=` (or --teacher-path when it is the
                                           only such member)
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import dataclass, field

from distilts.errors import DistiltsError, MissingExtraError
from distilts.teachers.registry import TEACHERS

STATS_PREFIX = "statsforecast:"
ENSEMBLE_PREFIX = "ensemble:"
STATS_MODELS = ("AutoARIMA", "AutoETS", "AutoTheta", "MSTL", "SeasonalNaive")
NO_HIDDEN_FAMILIES = ("student",)  # registered families whose forecasts come without hidden states
RUN_OPTIONS = ("n_jobs", "address")  # how the fill runs, not what it computes: left out of the canonical name


@dataclass(frozen=True)
class StatSpec:
    """A statsforecast teacher: `model`, `season` (None: from the data frequency), constructor `options`."""

    model: str
    season: int | None = None
    options: dict = field(default_factory=dict)
    n_jobs: int | None = None
    address: str | None = None  # a Ray cluster ("auto", "HOST:PORT", or "local" to start one here)

    @property
    def run_options(self) -> str:
        """The run options (n_jobs, address) as `&key=value` pairs, to put back after `name`."""
        opts = {"n_jobs": self.n_jobs, "address": self.address}
        return "".join(f"&{k}={v}" for k, v in opts.items() if v is not None)

    @property
    def name(self) -> str:
        """The canonical spec (sorted options, no run options): names and keys the teacher cache."""
        opts = ([f"season={self.season}"] if self.season is not None else []) + [
            f"{k}={_text(v)}" for k, v in sorted(self.options.items())
        ]
        return f"{STATS_PREFIX}{self.model}" + (f"?{'&'.join(opts)}" if opts else "")


@dataclass(frozen=True)
class Member:
    """One ensemble member: its teacher spec and checkpoint path (None: none needed, or the default)."""

    spec: str
    path: str | None = None


def stat_identity(stat: StatSpec) -> str:
    """What keys a statistical teacher's cache in place of a checkpoint hash: its canonical spec and the
    statsforecast version (an upgrade may change the numbers)."""
    try:
        version = importlib.metadata.version("statsforecast")
    except importlib.metadata.PackageNotFoundError:
        raise MissingExtraError("statsforecast", "statistical", f"the {stat.name} teacher") from None
    return hashlib.sha256(f"{stat.name}|statsforecast {version}".encode()).hexdigest()


def is_statistical(spec: str) -> bool:
    return spec.startswith(STATS_PREFIX)


def is_ensemble(spec: str) -> bool:
    return spec.startswith(ENSEMBLE_PREFIX)


def has_hidden_states(spec: str) -> bool:
    """False for teachers without hidden states (statistical models, ensembles, a distilts student): FTA
    cannot use them."""
    return needs_checkpoint(spec) and spec not in NO_HIDDEN_FAMILIES


def needs_checkpoint(spec: str) -> bool:
    """True for a model family (weights from a directory or hub id); False for statistical models and ensembles."""
    return not (is_statistical(spec) or is_ensemble(spec))


def parse_stat(spec: str) -> StatSpec:
    """`statsforecast:MODEL[?season=N&key=value...]` as a StatSpec, or a one-line DistiltsError naming the fix."""
    body = spec[len(STATS_PREFIX) :] if is_statistical(spec) else spec
    model, _, query = body.partition("?")
    if model not in STATS_MODELS:
        raise DistiltsError(
            f"Unknown statsforecast model '{model}' in --teacher {spec}: use one of "
            f"{', '.join(STATS_PREFIX + m for m in STATS_MODELS)} "
            f"(options after '?', e.g. {STATS_PREFIX}AutoETS?season=24)."
        )
    season, n_jobs, address, options = None, None, None, {}
    for item in filter(None, query.split("&")):
        key, eq, text = item.partition("=")
        if not eq or not key:
            raise DistiltsError(
                f"Cannot read option '{item}' of --teacher {spec}: write key=value pairs joined by '&' after '?' "
                f"(e.g. {STATS_PREFIX}{model}?season=24)."
            )
        value = _value(text)
        if key in ("season", "season_length"):
            if not isinstance(value, int) or value < 1:
                raise DistiltsError(f"season must be a positive integer in --teacher {spec} (e.g. ?season=24).")
            season = value
        elif key == "n_jobs":
            if not isinstance(value, int) or value < 1:
                raise DistiltsError(f"n_jobs must be a positive integer in --teacher {spec} (e.g. ?n_jobs=2).")
            n_jobs = value
        elif key == "address":
            address = text
        else:
            options[key] = value
    return StatSpec(model, season, options, n_jobs, address)


def parse_ensemble(spec: str, teacher_path: str | None = None) -> list[Member]:
    """The members of `ensemble:A+B+...`; `--teacher-path` goes to the one member that needs a checkpoint
    and has none after `=` (a DistiltsError when that is ambiguous)."""
    body = spec[len(ENSEMBLE_PREFIX) :]
    parts = [p.strip() for p in body.split("+")]
    if len(parts) < 2 or not all(parts):
        raise DistiltsError(
            f"--teacher {spec}: an ensemble needs at least two members joined by '+', e.g. "
            f"ensemble:patchtst=PATH+{STATS_PREFIX}AutoETS."
        )
    members = []
    for part in parts:
        if is_ensemble(part):
            raise DistiltsError(
                f"--teacher {spec}: an ensemble member cannot be an ensemble; list its members instead."
            )
        if is_statistical(part):
            parse_stat(part)
            members.append(Member(part))  # as given: run options (n_jobs) reach the member's fill
            continue
        name, _, path = part.partition("=")
        check_teacher(name)
        members.append(Member(name, path or None))
    unpathed = [i for i, m in enumerate(members) if needs_checkpoint(m.spec) and m.path is None]
    if teacher_path:
        if len(unpathed) != 1:
            raise DistiltsError(
                f"--teacher-path is ambiguous for --teacher {spec}: give each member that needs a checkpoint "
                f"its own after '=' (e.g. ensemble:patchtst=PATH+{STATS_PREFIX}AutoETS) and drop --teacher-path."
            )
        members[unpathed[0]] = Member(members[unpathed[0]].spec, teacher_path)
    if len({(parse_stat(m.spec).name if is_statistical(m.spec) else m.spec, m.path) for m in members}) != len(members):
        raise DistiltsError(f"--teacher {spec} lists a member twice: give each member once.")
    return members


def with_address(spec: str, address: str | None) -> str:
    """`spec` with its statistical models (itself, or an ensemble's members) run on the Ray cluster `address`."""
    if not address:
        return spec
    if is_statistical(spec):
        return f"{spec}{'&' if '?' in spec else '?'}address={address}"
    if is_ensemble(spec):
        return ENSEMBLE_PREFIX + "+".join(with_address(p, address) for p in spec[len(ENSEMBLE_PREFIX) :].split("+"))
    return spec


def check_teacher(spec: str) -> str:
    """`spec` if it names a teacher (family, statsforecast model or ensemble), else a DistiltsError
    listing the valid ones."""
    if is_statistical(spec):
        parse_stat(spec)
    elif is_ensemble(spec):
        parse_ensemble(spec)
    elif spec not in TEACHERS:
        raise DistiltsError(
            f"Unknown teacher '{spec}'. Use one of: {', '.join(TEACHERS)}, "
            f"{', '.join(STATS_PREFIX + m for m in STATS_MODELS)}, or ensemble:A+B (members joined by '+')."
        )
    return spec


def click_check(_ctx: object, _param: object, value: str | None) -> str | None:
    """A click callback for --teacher: `check_teacher`'s message as click's usage error."""
    import click

    if value is None:
        return value
    try:
        return check_teacher(value)
    except DistiltsError as exc:
        raise click.BadParameter(str(exc)) from None


TEACHER_HELP = (
    "Teacher: a family ({families}), a statistical model statsforecast:MODEL[?season=N&option=value] "
    f"({', '.join(STATS_MODELS)}), or ensemble:A+B+... (members joined by '+', a checkpoint after '=', "
    f"e.g. ensemble:patchtst=DIR+{STATS_PREFIX}AutoETS)."
)


def _value(text: str) -> bool | int | float | str:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
