"""`distilts search`: the most accurate student that fits a device budget (see distilts.choose)."""

from __future__ import annotations

import click

from distilts.data.options import data_options
from distilts.students import STUDENTS
from distilts.targets import TARGETS
from distilts.teachers import TEACHERS


@click.command(name="search")
@data_options
@click.option(
    "--teacher",
    "teacher_name",
    type=click.Choice(list(TEACHERS)),
    default=None,
    help="Teacher to distil from (its outputs cached once, shared by every trial). Default: ground truth only.",
)
@click.option("--teacher-path", default=None, help="Teacher checkpoint directory or hub id.")
@click.option(
    "--target",
    "target_name",
    type=click.Choice(list(TARGETS)),
    required=True,
    help="The device: decides the backends, precisions and students searched (`distilts targets`).",
)
@click.option("--horizon", type=click.IntRange(min=1), default=96, show_default=True)
@click.option(
    "--lookback-max",
    type=click.IntRange(min=2),
    default=512,
    show_default=True,
    help="Longest lookback searched (96, 192, 336, 512, 720 up to it, and it).",
)
@click.option("--max-latency-ms", default=None, help="Budget: ms per batch-1 forecast (units: us, ms, s).")
@click.option("--max-flash-kib", default=None, help="Budget: model flash in KiB (units: B, KB, KiB, MiB). MCUs only.")
@click.option("--max-ram-kib", default=None, help="Budget: tensor arena RAM in KiB (units as flash). MCUs only.")
@click.option("--trials", type=click.IntRange(min=1), default=40, show_default=True)
@click.option(
    "--timeout-min",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop starting trials after this many minutes.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Trials in parallel (worker processes here, or Ray tasks with --address).",
)
@click.option("--address", default=None, help="A Ray cluster address (e.g. auto or ray://host:10001).")
@click.option(
    "--student",
    "students",
    multiple=True,
    type=click.Choice(list(STUDENTS)),
    help="Search only these students (repeatable; default: every student the target runs).",
)
@click.option("--epochs", type=click.IntRange(min=1), default=8, show_default=True, help="Epochs per trial (max).")
@click.option(
    "--stride", type=click.IntRange(min=1), default=2, show_default=True, help="Step between training windows."
)
@click.option("--max-train-windows", type=click.IntRange(min=1), default=None)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None, help="Teacher cache root.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    required=True,
    help="Search directory (study.db, trials/, trials.json, pareto.json/png, card.md, best/).",
)
def search_cmd(
    data_args: dict,
    teacher_name: str | None,
    teacher_path: str | None,
    target_name: str,
    horizon: int,
    lookback_max: int,
    max_latency_ms: str | None,
    max_flash_kib: str | None,
    max_ram_kib: str | None,
    trials: int,
    timeout_min: float | None,
    jobs: int,
    address: str | None,
    students: tuple[str, ...],
    epochs: int,
    stride: int,
    max_train_windows: int | None,
    seed: int,
    cache_dir: str | None,
    out: str,
) -> None:
    """Search students, sizes, lookbacks, backends and precisions for a device; keep the most accurate that fits.

    \b
    Each trial distils a candidate (a cost model rejects what cannot fit before training; losing trials
    stop early), compiles it for the target and measures the artifact; the study lives in OUT/study.db,
    so a killed search resumes with the same command. OUT/best is the chosen student with its verified
    artifact in best/artifacts/<target>/; OUT/card.md says what the budget cost.
    """
    from distilts.choose.run import search

    search(
        data_args,
        target=target_name,
        out=out,
        horizon=horizon,
        lookback_max=lookback_max,
        teacher=teacher_name,
        teacher_path=teacher_path,
        max_latency_ms=max_latency_ms,
        max_flash_kib=max_flash_kib,
        max_ram_kib=max_ram_kib,
        trials=trials,
        timeout_min=timeout_min,
        jobs=jobs,
        address=address,
        students=students,
        epochs=epochs,
        stride=stride,
        seed=seed,
        cache_dir=cache_dir,
        max_train_windows=max_train_windows,
        echo=click.echo,
    )
