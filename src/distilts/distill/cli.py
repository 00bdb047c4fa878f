"""`distilts distill` and `distilts eval`. torch is imported only inside the commands; the option
choices and defaults come from the library (`distill.config`, the teacher and student registries)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from distilts.data.options import data_options
from distilts.distill.config import (
    AMP_MODES,
    DEVICES,
    FTA_LATENT,
    LOSSES,
    QUANTILE_KD,
    SAMPLINGS,
    SCHEDULES,
    TEACHER_HIDDEN,
    DistillSpec,
    TrainConfig,
    default_beta,
)
from distilts.errors import DistiltsError
from distilts.students import STUDENTS
from distilts.teachers import TEACHERS
from distilts.teachers.spec import TEACHER_HELP, click_check, has_hidden_states, with_address

SPEC, TRAIN = DistillSpec(), TrainConfig()  # the library's defaults
# CLI parameter -> (student option, students that have it)
STUDENT_FLAGS = {
    "moving_avg": ("moving_avg", ("dlinear",)),
    "individual": ("individual", ("dlinear",)),
    "d_model": ("d_model", ("itransformer",)),
    "n_heads": ("n_heads", ("itransformer",)),
    "e_layers": ("e_layers", ("itransformer",)),
    "d_ff": ("d_ff", ("itransformer",)),
    "dropout": ("dropout", ("itransformer",)),
    "revin": ("revin", ("dlinear",)),
    "quantile_rank": ("quantile_rank", ("dlinear", "itransformer")),
}
CONFIG_ALIASES = {
    "data": "data_path",
    "split": "split_scheme",
    "teacher": "teacher_name",
    "train_stride": "stride",
    "student": "student_name",
}


class LookbackType(click.ParamType):
    """A positive integer, or 'auto' (resolved from the horizon and the data: `distill.config.auto_lookback`)."""

    name = "INTEGER|auto"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or str(value).lower() == "auto":
            return value if isinstance(value, int) else "auto"
        try:
            n = int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a positive integer nor 'auto'.", param, ctx)
        if n < 1:
            self.fail(f"{n} is not a positive integer.", param, ctx)
        return n


def _load_config_file(ctx: click.Context, _param, value: str | None) -> str | None:
    """Eager --config: the file's keys become defaults, so flags given on the command line win."""
    if not value:
        return value
    path = Path(value)
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}") from None
    except Exception as exc:
        raise click.BadParameter(f"cannot parse {path} as {path.suffix or 'JSON'}: {exc}") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path} must hold a mapping of option names to values.")
    known = {p.name for p in ctx.command.params}
    defaults: dict[str, Any] = {}
    for key, val in data.items():
        name = str(key).lstrip("-").replace("-", "_")
        name = CONFIG_ALIASES.get(name, name)
        if name not in known or name == "config":
            raise click.BadParameter(f"{path}: unknown option '{key}'. Use the long flag names of `distilts distill`.")
        if name == "columns" and isinstance(val, list):
            val = ",".join(map(str, val))
        defaults[name] = val
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


@click.command(name="distill")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, exists=True),
    callback=_load_config_file,
    is_eager=True,
    expose_value=False,
    help="YAML/JSON file with any of these options (flags on the command line win).",
)
@click.option(
    "--teacher",
    "teacher_name",
    default=SPEC.teacher,
    show_default=True,
    callback=click_check,
    help=TEACHER_HELP.format(families=", ".join(TEACHERS)) + " Its outputs come from the teacher cache.",
)
@click.option(
    "--teacher-path", default=None, help="Teacher checkpoint directory or hub id (default: the family's model)."
)
@click.option("--student", "student_name", type=click.Choice(list(STUDENTS)), default=SPEC.student, show_default=True)
@data_options
@click.option(
    "--lookback",
    type=LookbackType(),
    default=SPEC.lookback,
    show_default=True,
    help="Context length L, or 'auto': 7 x the horizon (the longest N-BEATS lookback), rounded up to whole "
    "seasons when the data's frequency is known, and cut to what the data leaves room for (the median series).",
)
@click.option(
    "--horizon", type=click.IntRange(min=1), default=SPEC.horizon, show_default=True, help="Forecast length H."
)
@click.option(
    "--loss",
    type=click.Choice(LOSSES),
    default=TRAIN.loss,
    show_default=True,
    help="Point error of the supervised and KD terms: mse; mae (on the per-series z-scored values); or mase "
    "(the M4 recipe, N-BEATS' MASE loss: each window's errors over its input's mean absolute step, so every "
    "window weighs alike). Early stopping: val MSE for mse, val MAE otherwise.",
)
@click.option(
    "--sampling",
    type=click.Choice(SAMPLINGS),
    default=TRAIN.sampling,
    show_default=True,
    help="Training windows per epoch: 'window' (every window once), or 'series' (panel data: the same number "
    "from every series, drawn anew each epoch, so long series do not drown short ones).",
)
@click.option(
    "--ensemble-lookbacks",
    default=None,
    metavar="L1,L2,...",
    help="Train an ensemble of the student, one member per lookback (an integer, or a multiple of the horizon "
    "such as 2H; 'nbeats' = 2H,3H,...,7H), folded into ONE student averaging its members' forecasts "
    "(students/ensemble.py); the run's lookback is the longest.",
)
@click.option(
    "--ensemble-losses",
    default=None,
    metavar="LOSS1,LOSS2",
    help=f"One member per lookback and loss ({', '.join(LOSSES)}), e.g. smape,mase: N-BEATS mixes losses so the "
    "ensemble is good on both M4 metrics.",
)
@click.option(
    "--ensemble-combine",
    type=click.Choice(("mean", "median")),
    default=None,
    help="How the ensemble's members become one forecast: mean (default) or the elementwise median (N-BEATS).",
)
@click.option(
    "--calibrate-intervals/--no-calibrate-intervals",
    default=TRAIN.calibrate_intervals,
    show_default=True,
    help="Quantile students: widen each central interval by split conformal prediction (CQR) on the validation "
    "windows, so that it covers its nominal share there; the widening is part of the student and its artifacts.",
)
@click.option(
    "--season",
    type=click.IntRange(min=0),
    default=TRAIN.season,
    show_default=True,
    help="Seasonal period of --loss mase and --lookback auto (0: from the data's frequency, 1 when unknown; "
    "M4 rows carry no dates: pass 24 for Hourly).",
)
@click.option(
    "--ensemble-seeds",
    type=click.IntRange(min=1),
    default=None,
    help="Members per lookback (different initialisations); alone: an ensemble of this many at --lookback.",
)
@click.option(
    "--stride",
    "--train-stride",
    "stride",
    type=click.IntRange(min=1),
    default=SPEC.stride,
    show_default=True,
    help="Step between train/val windows (and of the teacher cache); test windows always use 1.",
)
@click.option(
    "--max-train-windows",
    type=click.IntRange(min=1),
    default=None,
    help="Use at most this many training windows, evenly spaced over the train part (raises the "
    "train stride); for quick runs and smoke tests. Val and test windows are unaffected.",
)
@click.option(
    "--tau",
    type=float,
    default=TRAIN.tau,
    show_default=True,
    help="Horizon-weight temperature of the KD loss (0 = uniform over steps).",
)
@click.option(
    "--alpha",
    type=click.FloatRange(min=0),
    default=TRAIN.alpha,
    show_default=True,
    help="Weight of the KD loss (DistilTS kd_alpha).",
)
@click.option(
    "--beta",
    type=click.FloatRange(min=0),
    default=None,
    help="Weight of the FTA (hidden-state alignment) loss; 0 = off. Default as the DistilTS scripts: "
    "0.3 for itransformer, 0 (off) for dlinear (FTA measured no gain for DLinear: "
    "benchmarks/RESULTS.md).",
)
@click.option("--no-kd", is_flag=True, help="No distillation loss (with --beta 0: ground truth only, no teacher).")
@click.option("--epochs", type=click.IntRange(min=1), default=TRAIN.epochs, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=TRAIN.batch_size, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=TRAIN.lr, show_default=True)
@click.option(
    "--weight-decay",
    type=click.FloatRange(min=0),
    default=TRAIN.weight_decay,
    show_default=True,
    help="AdamW weight decay.",
)
@click.option(
    "--lr-schedule",
    type=click.Choice(SCHEDULES),
    default=TRAIN.schedule,
    show_default=True,
    help="Per epoch: cosine to 0, step = halve every epoch, or constant.",
)
@click.option(
    "--patience",
    type=click.IntRange(min=1),
    default=TRAIN.patience,
    show_default=True,
    help="Stop after this many epochs without a better validation MSE.",
)
@click.option("--seed", type=int, default=TRAIN.seed, show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default=TRAIN.device, show_default=True)
@click.option(
    "--amp",
    type=click.Choice(AMP_MODES),
    default=TRAIN.amp,
    show_default=True,
    help="Mixed precision (CUDA only; ignored on CPU).",
)
@click.option(
    "--moving-avg", type=click.IntRange(min=1), default=None, help="[dlinear] decomposition kernel (odd; default 25)."
)
@click.option("--individual/--shared", default=None, help="[dlinear] one linear map per variate, or shared (default).")
@click.option("--d-model", type=click.IntRange(min=1), default=None, help="[itransformer] token width (default 512).")
@click.option("--n-heads", type=click.IntRange(min=1), default=None, help="[itransformer] attention heads (default 4).")
@click.option("--e-layers", type=click.IntRange(min=1), default=None, help="[itransformer] encoder layers (default 1).")
@click.option(
    "--d-ff", type=click.IntRange(min=1), default=None, help="[itransformer] feed-forward width (default 2048)."
)
@click.option("--dropout", type=click.FloatRange(0, 1), default=None, help="[itransformer] dropout (default 0.1).")
@click.option(
    "--revin/--no-revin",
    default=None,
    help="[dlinear] RevIN instance normalization (default off, as the official DLinear). iTransformer "
    "always normalises each window (its official definition).",
)
@click.option(
    "--student-option",
    "-O",
    "student_option",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any keyword option of the student's constructor (repeatable), parsed by the type of its default: "
    "-O d_model=64 -O activation=relu -O pool_sizes=2,2,1. `distilts students` lists each student's options.",
)
@click.option(
    "--quantiles",
    default=None,
    help="Make a probabilistic student forecasting these quantile levels: comma-separated in (0, 1), "
    "sorted, with 0.5 (e.g. 0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9), or a named set: deciles, "
    "chronos-2. Loss: pinball vs truth + alpha x horizon-weighted KD vs the teacher's quantiles.",
)
@click.option(
    "--quantile-kd",
    type=click.Choice(QUANTILE_KD),
    default=TRAIN.quantile_kd,
    show_default=True,
    help="[--quantiles] KD term: pinball loss against the teacher's quantile values, or L2 between the "
    "quantile vectors (benchmarks/RESULTS.md compares them).",
)
@click.option(
    "--quantile-rank",
    type=click.IntRange(min=1),
    default=None,
    help="[--quantiles] width of the low-rank features the level gaps are computed from (default 8).",
)
@click.option(
    "--fta-latent",
    type=click.IntRange(min=1),
    default=TRAIN.fta_latent,
    show_default=True,
    help=f"FTA latent width u (DistilTS: {FTA_LATENT}).",
)
@click.option(
    "--hidden-tokens",
    type=click.IntRange(min=0),
    default=SPEC.hidden_tokens,
    show_default=True,
    help="Teacher tokens FTA aligns with: 0 = all of them (the DistilTS code); N > 0 mean-pools them to N "
    "to bound the cache (hidden states cost N_windows x D x tokens x d_teacher x 2 bytes: "
    "TimeMoE-50M at L=512, stride 1 on ETTh1: ~37 GB for all 512 tokens, ~1.2 GB for 16).",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Teacher cache root (default: $DISTILTS_CACHE_DIR, else the user cache directory).",
)
@click.option(
    "--address",
    default=None,
    help="Statistical teachers: fill their cache as Ray tasks on this cluster ('auto', HOST:PORT, or 'local'; "
    "default: worker processes on this machine).",
)
@click.option(
    "--teacher-hidden",
    type=click.Choice(TEACHER_HIDDEN),
    default=SPEC.teacher_hidden,
    show_default=True,
    help="Where FTA's teacher hidden states come from: the teacher cache (computed once, stored on disk), "
    "or the teacher run on every training batch (no hidden-state cache; for GPUs where recomputing "
    "is cheaper than storing).",
)
@click.option(
    "--max-cache-gb",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Refuse up front a teacher cache fill whose entry would exceed this many GB.",
)
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output student directory.")
@click.option("--resume", is_flag=True, help="Continue the killed run in --out from its last epoch checkpoint.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--stop-after-epoch",
    type=click.IntRange(min=1),
    default=None,
    hidden=True,
    help="Testing aid: stop (as if killed) after this epoch's checkpoint.",
)
def distill(
    teacher_name: str,
    teacher_path: str | None,
    student_name: str,
    data_args: dict,
    lookback: int | str,
    horizon: int,
    loss: str,
    sampling: str,
    ensemble_lookbacks: str | None,
    ensemble_losses: str | None,
    ensemble_combine: str | None,
    season: int,
    ensemble_seeds: int | None,
    stride: int,
    max_train_windows: int | None,
    tau: float,
    alpha: float,
    beta: float | None,
    no_kd: bool,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    lr_schedule: str,
    patience: int,
    seed: int,
    device: str,
    amp: str,
    student_option: tuple[str, ...],
    calibrate_intervals: bool,
    quantiles: str | None,
    quantile_kd: str,
    fta_latent: int,
    hidden_tokens: int,
    cache_dir: str | None,
    teacher_hidden: str,
    address: str | None,
    max_cache_gb: float | None,
    out: str,
    resume: bool,
    quiet: bool,
    stop_after_epoch: int | None,
    **student_flags: Any,
) -> None:
    """Distil a teacher into a small student (`distilts students` lists them) and write a student directory.

    \b
    Loss = MSE(student, truth) + alpha * horizon-weighted KD(student, teacher; tau)
           + beta * FTA(student representation, teacher hidden states)
    Teacher outputs come from the teacher cache (filled once, on first use).
    FTA is on by default only for itransformer (weight 0.3, as the DistilTS scripts); for dlinear it is
    off (the DistilTS scripts set vt_loss 0 for DLinear, and it measured no gain here); --beta > 0 turns it on.
    Ablations: --no-kd --beta 0 (ground truth only, no teacher), --tau 0 (uniform KD), --beta 0 (no FTA).
    Writes model.safetensors, config.json, metrics.json, card.md, plots/, train_log.jsonl and checkpoint/.
    Under torchrun: DistributedDataParallel, --batch-size is the global batch, rank 0 writes --out.
    """
    from distilts import distributed
    from distilts.distill.run import distill_student
    from distilts.students.registry import parse_option_values

    if not has_hidden_states(teacher_name) and beta:  # statistical, ensemble and student teachers: no FTA
        raise DistiltsError(
            f"--beta {beta:g} asks for FTA, which needs the teacher's hidden states; the {teacher_name} teacher has "
            "none: use --beta 0 (point and quantile KD still apply)."
        )
    if beta is None:
        beta = default_beta(student_name)
        if beta and not has_hidden_states(teacher_name):
            click.echo(f"warning: the {teacher_name} teacher has no hidden states: FTA is off (--beta 0 for this run)")
            beta = 0.0
    student_kwargs = _student_kwargs(student_name, student_flags)
    for key, value in parse_option_values(student_name, student_option).items():
        if key in student_kwargs and student_kwargs[key] != value:
            raise DistiltsError(f"Student option '{key}' is given twice (a flag and -O) with different values.")
        student_kwargs[key] = value
    if quantiles is not None:
        from distilts.quantiles import parse_levels

        student_kwargs["quantiles"] = list(parse_levels(quantiles))
    elif "quantile_rank" in student_kwargs:
        raise DistiltsError("--quantile-rank applies to quantile students only: add --quantiles or drop it.")
    if student_name == "ensemble":  # --student ensemble -O ...: the quantile head belongs to the members
        member = student_kwargs.setdefault("member_options", {})
        for key in ("quantiles", "quantile_rank"):
            if key in student_kwargs:
                member[key] = student_kwargs.pop(key)
    if any(v is not None for v in (ensemble_lookbacks, ensemble_seeds, ensemble_losses, ensemble_combine)):
        from distilts.students.ensemble import NAME, ensemble_kwargs

        if student_name == NAME:
            raise DistiltsError(
                "--ensemble-lookbacks/--ensemble-losses/--ensemble-seeds build the ensemble; "
                "pick its member as --student."
            )
        views = parse_lookbacks(ensemble_lookbacks, horizon) if ensemble_lookbacks else []
        if views:
            explicit = click.get_current_context().get_parameter_source("lookback") is not ParameterSource.DEFAULT
            if explicit and lookback not in ("auto", max(views)):
                raise DistiltsError(
                    f"--lookback {lookback} disagrees with --ensemble-lookbacks (the longest, {max(views)}, is the "
                    "ensemble's lookback): drop --lookback."
                )
            lookback = max(views)
        kinds = [k.strip() for k in (ensemble_losses or "").split(",") if k.strip()]
        if bad := [k for k in kinds if k not in LOSSES]:
            raise DistiltsError(f"--ensemble-losses: unknown loss {bad[0]!r}; use some of {', '.join(LOSSES)}.")
        student_kwargs = ensemble_kwargs(
            student_name, student_kwargs, views, ensemble_seeds or 1, kinds, ensemble_combine or "mean"
        )
        student_name = NAME

    spec = DistillSpec(
        student=student_name,
        student_kwargs=student_kwargs,
        teacher=with_address(teacher_name, address),
        teacher_path=teacher_path,
        data=data_args,
        lookback=lookback,
        horizon=horizon,
        stride=stride,
        hidden_tokens=hidden_tokens,
        cache_dir=cache_dir,
        max_train_windows=max_train_windows,
        teacher_hidden=teacher_hidden,
        max_cache_gb=max_cache_gb,
        train=TrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            schedule=lr_schedule,
            patience=patience,
            seed=seed,
            device=device,
            amp=amp,
            alpha=alpha,
            beta=beta,
            tau=tau,
            kd=not no_kd,
            fta_latent=fta_latent,
            quantile_kd=quantile_kd,
            loss=loss,
            sampling=sampling,
            season=season,
            calibrate_intervals=calibrate_intervals,
        ),
    )

    def stop_hook(epoch: int, _record: dict) -> None:
        if stop_after_epoch is not None and epoch >= stop_after_epoch and epoch < epochs:
            raise _Stopped(epoch)

    with distributed.session(device) as comm:
        echo = click.echo if comm.is_main else (lambda *_a, **_k: None)
        if comm.active:
            echo(f"torchrun: {comm.world} ranks ({distributed.backend_for(device)}), global batch {batch_size}")
        if not spec.uses_teacher:
            echo("ground truth only (--no-kd, --beta 0): no teacher is used")
        try:
            config, metrics, result = distill_student(
                spec, out, resume=resume, progress=not quiet and comm.is_main, on_epoch_end=stop_hook, log=echo
            )
        except _Stopped as stop:
            echo(f"stopped after epoch {stop.epoch} (checkpoint saved); continue with --resume")
            raise SystemExit(75) from None
    if metrics is None:  # not rank 0
        return
    click.echo(
        f"best epoch {result.best_epoch} of {result.epochs_run}"
        + (" (early stop)" if result.stopped_early else "")
        + f", {result.wall_s:.1f} s"
    )
    _print_metrics(metrics, config)
    click.echo(f"student directory: {out}")


@click.command(name="eval")
@click.argument("model_dir", type=click.Path(file_okay=False))
@data_options
@click.option(
    "--lookback", type=click.IntRange(min=1), default=None, help="Expected lookback (checked against the student's)."
)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option(
    "--teacher/--no-teacher",
    "with_teacher",
    default=True,
    show_default=True,
    help="Also score the student's teacher (from the teacher cache) when its checkpoint directory exists.",
)
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None, help="Teacher cache root.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON only.")
def eval_cmd(
    model_dir: str,
    data_args: dict,
    lookback: int | None,
    device: str,
    with_teacher: bool,
    cache_dir: str | None,
    as_json: bool,
) -> None:
    """Score a student directory on the standard test split (stride-1 windows, normalized scale).

    Writes metrics.json, plots/ and card.md into MODEL_DIR. The data must have the student's columns.
    """
    from distilts.distill.run import evaluate_student
    from distilts.students.io import read_student_config

    metrics = evaluate_student(
        model_dir,
        data_args,
        device=device,
        with_teacher=with_teacher,
        lookback=lookback,
        cache_dir=cache_dir,
        progress=not as_json,
    )
    config = read_student_config(model_dir)
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
        return
    teacher = config.get("teacher") or {}
    if with_teacher and teacher and metrics.get("teacher") is None:
        click.echo(
            f"note: the teacher's checkpoint directory {teacher.get('path')} is not here, so its metrics are left out"
        )
    _print_metrics(metrics, config)


def parse_lookbacks(text: str, horizon: int) -> list[int]:
    """'96,192,336' / '2H,4H,7H' / 'nbeats' (2H..7H, the N-BEATS lookbacks) -> lookbacks in steps."""
    if text.strip().lower() == "nbeats":
        return [k * horizon for k in range(2, 8)]
    out = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        try:
            n = int(float(item[:-1]) * horizon) if item[-1:].upper() == "H" else int(item)
        except ValueError:
            n = 0
        if n < 1:
            raise DistiltsError(
                f"--ensemble-lookbacks: '{item}' is not a positive lookback; give steps (96) or horizons (2H), "
                "comma-separated, or 'nbeats'."
            )
        out.append(n)
    if not out:
        raise DistiltsError("--ensemble-lookbacks is empty; give e.g. 96,192,336 or 2H,4H,7H or nbeats.")
    return out


class _Stopped(Exception):
    def __init__(self, epoch: int) -> None:
        super().__init__(f"stopped after epoch {epoch}")
        self.epoch = epoch


def _student_kwargs(student: str, flags: dict[str, Any]) -> dict[str, Any]:
    """Student options given on the command line; an option of the other student is an error."""
    kwargs = {}
    for param, value in flags.items():
        if value is None:
            continue
        option, owners = STUDENT_FLAGS[param]
        if param == "revin" and student == "itransformer":
            raise DistiltsError(
                "--revin/--no-revin does not apply to itransformer: it always normalises each input "
                "window (mean and std over time, undone on the output), as its official code does."
            )
        if student not in owners:
            raise DistiltsError(
                f"--{param.replace('_', '-')} is an option of {', '.join(owners)}, not of "
                f"'{student}'. Drop it or pick --student {owners[0]}."
            )
        kwargs[option] = value
    return kwargs


def _print_metrics(metrics: dict, config: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    prob = "quantiles" in metrics["test"]
    table = Table(
        title=f"Test metrics (normalized, stride 1, {metrics['test']['windows']} windows"
        + ("; MSE/MAE of the median" if prob else "")
        + ")"
    )
    for col in ("model", "params", "test MSE", "test MAE", "val MSE"):
        table.add_column(col, justify="left" if col == "model" else "right")
    table.add_row(
        f"student ({config['student']['name']})",
        f"{config['param_count']:,}",
        f"{metrics['test']['mse']:.4f}",
        f"{metrics['test']['mae']:.4f}",
        f"{metrics['val']['mse']:.4f}",
    )
    teacher = metrics.get("teacher")
    if teacher:
        val = teacher.get("val", {}).get("mse")
        table.add_row(
            f"teacher ({teacher['name']})",
            "",
            f"{teacher['test']['mse']:.4f}",
            f"{teacher['test']['mae']:.4f}",
            "" if val is None else f"{val:.4f}",
        )
    Console().print(table)
    if prob:
        Console().print(_quantile_table(metrics, config))


def _quantile_table(metrics: dict, config: dict):
    """WQL, MASE and the 0.1-0.9 interval of the student (and the teacher's quantiles when cached)."""
    from rich.table import Table

    table = Table(title="Probabilistic test metrics (WQL; MASE of the median; 0.1-0.9 interval)")
    for col in ("model", "WQL", "MASE", "80% coverage", "80% width", "MSIS", "crossings"):
        table.add_column(col, justify="left" if col == "model" else "right")
    rows = [(f"student ({config['student']['name']})", metrics["test"].get("quantiles"))]
    teacher = metrics.get("teacher") or {}
    if teacher.get("test", {}).get("quantiles"):
        rows.append((f"teacher ({teacher['name']})", teacher["test"]["quantiles"]))
    for name, q in rows:
        iv = q.get("interval") or {}
        table.add_row(
            name,
            f"{q['wql']:.4f}",
            f"{q['mase']:.3f}",
            *((f"{iv['coverage']:.1%}", f"{iv['mean_width']:.3f}", f"{iv['msis']:.3f}") if iv else ("",) * 3),
            str(q["crossings"]),
        )
    return table
