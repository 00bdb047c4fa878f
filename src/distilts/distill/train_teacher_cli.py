"""`distilts train-teacher`: train a PatchTST teacher here when no foundation-model weights are at hand."""

from __future__ import annotations

import click

from distilts.data.options import data_options
from distilts.distill.config import DEVICES, TeacherTraining

T = TeacherTraining()  # the library's defaults


@click.command("train-teacher")
@data_options
@click.option("--lookback", type=int, default=T.lookback, show_default=True, help="Context length (steps).")
@click.option(
    "--horizon", type=int, default=T.horizon, show_default=True, help="Forecast length (one teacher per horizon)."
)
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Checkpoint directory to write."
)
@click.option("--epochs", type=int, default=T.epochs, show_default=True, help="Maximum epochs (early stop on val MSE).")
@click.option("--d-model", type=int, default=T.d_model, show_default=True, help="Transformer width.")
@click.option("--layers", type=int, default=T.layers, show_default=True, help="Encoder layers.")
@click.option("--heads", type=int, default=T.heads, show_default=True, help="Attention heads (must divide --d-model).")
@click.option("--ffn-dim", type=int, default=T.ffn_dim, help="Feed-forward width (default 2 x --d-model).")
@click.option("--dropout", type=click.FloatRange(0, 1), default=T.dropout, show_default=True, help="Encoder dropout.")
@click.option("--patch-length", type=int, default=T.patch_length, show_default=True)
@click.option("--patch-stride", type=int, default=T.patch_stride, show_default=True)
@click.option("--batch-size", type=int, default=T.batch_size, show_default=True)
@click.option("--lr", type=float, default=T.lr, show_default=True, help="Peak learning rate (one-cycle).")
@click.option(
    "--patience",
    type=int,
    default=T.patience,
    show_default=True,
    help="Epochs without val improvement before stopping.",
)
@click.option(
    "--stride", type=int, default=T.stride, show_default=True, help="Step between train windows (>1 trains faster)."
)
@click.option(
    "--quantiles",
    default=None,
    help="Train a quantile head at these levels (comma-separated in (0, 1) with 0.5, or a named set: "
    "deciles, chronos-2) with the pinball loss, so the teacher can teach quantile students.",
)
@click.option("--seed", type=int, default=T.seed, show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default=T.device, show_default=True)
def train_teacher(data_args: dict, out_dir: str, **options) -> None:
    """Train a PatchTST teacher (transformers PatchTSTForPrediction) on the train split.

    \b
    Writes config.json + model.safetensors + training.json (val/test MSE) to --out; use it with
      distilts teach --teacher patchtst --teacher-path OUT ...
    """
    from distilts.data import load_dataset
    from distilts.distill.train_teacher import train_teacher as run

    if options.get("quantiles") is not None:
        from distilts.quantiles import parse_levels

        options["quantiles"] = parse_levels(options["quantiles"])

    info = run(load_dataset(**data_args), out_dir, TeacherTraining(**options), log=lambda s: click.echo(s, err=True))
    t = info["test"]
    click.echo(
        f"{out_dir}: {info['model']['param_count']:,} parameters, best epoch {info['train']['best_epoch']}, "
        f"test MSE {t['mse']:.4f} MAE {t['mae']:.4f} (normalized)"
    )
