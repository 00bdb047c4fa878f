"""`distilts teach`: run a frozen teacher once over a dataset's windows and cache its outputs."""

from __future__ import annotations

import click

from distilts.cache.config import DEVICES, HIDDEN_TOKENS, HORIZON, LOOKBACK, PARTS, TEACH_BATCH
from distilts.data.options import data_options
from distilts.teachers import TEACHERS
from distilts.teachers.spec import TEACHER_HELP, click_check, with_address


@click.command(name="teach")
@click.option(
    "--teacher",
    "teacher_name",
    required=True,
    callback=click_check,
    help=TEACHER_HELP.format(families=", ".join(TEACHERS)),
)
@click.option(
    "--teacher-path",
    default=None,
    help="Checkpoint directory in the family's official layout, or a hub id (default: the family's "
    "published small model).",
)
@data_options
@click.option("--lookback", type=click.IntRange(min=1), default=LOOKBACK, show_default=True, help="Context length L.")
@click.option("--horizon", type=click.IntRange(min=1), default=HORIZON, show_default=True, help="Forecast length H.")
@click.option("--stride", type=click.IntRange(min=1), default=1, show_default=True, help="Step between windows.")
@click.option("--parts", default=",".join(PARTS), show_default=True, help="Split parts to cache, comma-separated.")
@click.option(
    "--hidden/--no-hidden",
    default=False,
    show_default=True,
    help="Also cache the teacher's hidden states (pooled to --hidden-tokens tokens).",
)
@click.option(
    "--hidden-tokens",
    type=click.IntRange(min=0),
    default=HIDDEN_TOKENS,
    show_default=True,
    help="Mean-pool the teacher's tokens into this many contiguous groups (0 = keep all).",
)
@click.option(
    "--quantiles/--no-quantiles",
    default=False,
    show_default=True,
    help="Also cache the teacher's quantiles [N, H, D, Q] at its native levels (for quantile students; "
    "a point-only teacher is refused with the alternatives).",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Cache root (default: $DISTILTS_CACHE_DIR, else the user cache directory).",
)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=TEACH_BATCH,
    show_default=True,
    help="Windows per teacher call (one resumable chunk).",
)
@click.option(
    "--max-cache-gb",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Refuse up front (before any teacher call) a fill whose cache entry would exceed this many GB.",
)
@click.option(
    "--address",
    default=None,
    help="Statistical teachers: fit and forecast the series as Ray tasks on this cluster ('auto', HOST:PORT, or "
    "'local' to start Ray here; default: worker processes on this machine).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def teach(
    teacher_name: str,
    teacher_path: str | None,
    data_args: dict,
    lookback: int,
    horizon: int,
    stride: int,
    parts: str,
    hidden: bool,
    hidden_tokens: int,
    quantiles: bool,
    cache_dir: str | None,
    device: str,
    batch_size: int,
    max_cache_gb: float | None,
    address: str | None,
    quiet: bool,
) -> None:
    """Run a frozen teacher (TimeMoE, Chronos(-Bolt, -2), Moirai(-2), TimesFM, PatchTST, a statsforecast model or
    an ensemble of them) over every window and cache it.

    The cache is keyed by teacher checkpoint, data, window settings and hidden settings; a rerun
    with the same settings reuses it at once, and an interrupted run resumes where it stopped.
    Under torchrun (`torchrun --nproc-per-node N -m distilts teach ...`) the chunks are shared out
    across the ranks (NCCL on GPUs, gloo on CPU) and rank 0 assembles the same files.
    """
    from distilts import distributed
    from distilts.cache.entry import fill_teacher_cache
    from distilts.data import load_dataset

    dataset = load_dataset(**data_args)
    part_list = [p.strip() for p in parts.split(",") if p.strip()]
    with distributed.session(device) as comm:  # a no-op (no torch import) outside torchrun
        cache = fill_teacher_cache(
            dataset,
            with_address(teacher_name, address),
            teacher_path,
            lookback,
            horizon,
            parts=part_list,
            stride=stride,
            hidden=hidden,
            hidden_tokens=hidden_tokens,
            cache_dir=cache_dir,
            batch_size=batch_size,
            device=device,
            progress=not quiet,
            max_cache_gb=max_cache_gb,
            quantiles=quantiles,
        )
    if not comm.is_main:
        return
    if comm.active:
        click.echo(f"torchrun: {comm.world} ranks")
    records = cache.info["parts"]
    click.echo(f"teacher cache: {cache.directory}")
    click.echo(
        f"  {'reused (already complete; teacher not loaded)' if cache.reused else 'computed'}, "
        f"{_human(cache.size_bytes)} on disk"
    )
    for part in part_list:
        r = records[part]
        extra = f", hidden {tuple(r['hidden_shape'])}" if r.get("hidden_shape") else ""
        if r.get("quantiles_shape"):
            extra += (
                f", quantiles {tuple(r['quantiles_shape'])} at levels "
                f"{','.join(f'{v:g}' for v in cache.info.get('quantile_levels') or [])}"
            )
        click.echo(f"  {part}: {r['windows']} windows, forecasts {tuple(r['forecast_shape'])}{extra}")


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
