"""`distilts train-teacher`: train a PatchTST teacher here when no foundation-model weights are at hand."""

from __future__ import annotations

import click

from distilts.data.options import data_options


@click.command("train-teacher")
@data_options
@click.option("--lookback", type=int, default=512, show_default=True, help="Context length (steps).")
@click.option("--horizon", type=int, default=96, show_default=True, help="Forecast length (one teacher per horizon).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Checkpoint directory to write.")
@click.option("--epochs", type=int, default=10, show_default=True, help="Maximum epochs (early stop on val MSE).")
@click.option("--d-model", type=int, default=64, show_default=True, help="Transformer width.")
@click.option("--layers", type=int, default=3, show_default=True, help="Encoder layers.")
@click.option("--heads", type=int, default=4, show_default=True, help="Attention heads (must divide --d-model).")
@click.option("--ffn-dim", type=int, default=None, help="Feed-forward width (default 2 x --d-model).")
@click.option("--dropout", type=click.FloatRange(0, 1), default=0.2, show_default=True, help="Encoder dropout.")
@click.option("--patch-length", type=int, default=16, show_default=True)
@click.option("--patch-stride", type=int, default=8, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Peak learning rate (one-cycle).")
@click.option("--patience", type=int, default=3, show_default=True, help="Epochs without val improvement before stopping.")
@click.option("--stride", type=int, default=1, show_default=True, help="Step between train windows (>1 trains faster).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
def train_teacher(data_args: dict, lookback: int, horizon: int, out_dir: str, epochs: int, d_model: int,
                  layers: int, heads: int, ffn_dim: int | None, dropout: float, patch_length: int, patch_stride: int, batch_size: int, lr: float,
                  patience: int, stride: int, seed: int, device: str) -> None:
    """Train a PatchTST teacher (transformers PatchTSTForPrediction) on the train split.

    \b
    Writes config.json + model.safetensors + training.json (val/test MSE) to --out; use it with
      distilts teach --teacher patchtst --teacher-path OUT ...
    """
    from distilts.data import load_dataset
    from distilts.distill.train_teacher import train_patchtst

    dataset = load_dataset(**data_args)
    info = train_patchtst(
        dataset, lookback, horizon, out_dir, epochs, d_model=d_model, layers=layers, heads=heads, ffn_dim=ffn_dim, dropout=dropout,
        patch_length=patch_length, patch_stride=patch_stride, batch_size=batch_size, lr=lr, patience=patience,
        stride=stride, seed=seed, device=device, log=lambda s: click.echo(s, err=True),
    )
    t = info["test"]
    click.echo(f"{out_dir}: {info['model']['param_count']:,} parameters, best epoch {info['train']['best_epoch']}, "
               f"test MSE {t['mse']:.4f} MAE {t['mae']:.4f} (normalized)")
