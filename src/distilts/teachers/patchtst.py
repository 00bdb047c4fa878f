"""PatchTST teacher: a larger forecaster trained here (`distilts train-teacher`), served through the
same interface as the foundation-model teachers.

It exists because real foundation-model weights cannot be downloaded on every machine: a PatchTST
trained on the target series is a strong, honest teacher whose outputs can be cached and distilled
exactly like TimeMoE's. The checkpoint is a `save_pretrained` directory (config.json +
model.safetensors) of `transformers.PatchTSTForPrediction`; no remote code, no pickles.

Hidden states: the encoder's last hidden state, one token per patch and per variate
(channel-independent), `[B, D, T_patches, d_model]`.

Quantile PatchTST (`train-teacher --quantiles`): the same model with a head of `H x Q` outputs, read
as the median `[H]` and the `H x (Q-1)` gaps between neighbouring levels (|.|, so levels never cross),
in the window-scaled space before PatchTST's own de-scaling; `config.json` records the levels as
`distilts_quantiles` (and `prediction_length` = H x Q). The point forecast is the 0.5 level.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers import PatchTSTForPrediction
from transformers.utils import logging as hf_logging

from distilts.errors import DistiltsError, ModelDirError
from distilts.teachers.base import Teacher, TeacherOutput, check_layout, hash_checkpoint, resolve_device

DEFAULT_PATH = None  # trained locally: there is no published checkpoint, --teacher-path DIR is required
FAMILY = "patchtst"


def quantile_forecast(model, x: torch.Tensor, levels: tuple[float, ...] | None):
    """(forecast `[b, H', D]`, quantiles `[b, H', D, Q]` or None, model output) of a PatchTST on `x`:
    H' the trained horizon; with `levels` the head's `H' x Q` outputs are the median and the level gaps."""
    out = model.model(past_values=x, return_dict=True)
    y = model.head(out.last_hidden_state)  # [b, H' (x Q), D], window-scaled
    if not levels:
        return y * out.scale + out.loc, None, out
    q_n = len(levels)
    h = y.shape[1] // q_n
    m = levels.index(0.5)
    gaps = torch.abs(y[:, h:]).unflatten(1, (h, q_n - 1))  # [b, H', Q-1, D]
    below = -torch.flip(torch.cumsum(torch.flip(gaps[:, :, :m], [2]), 2), [2])  # levels 0..m-1
    above = torch.cumsum(gaps[:, :, m:], 2)  # levels m+1..Q-1
    med = y[:, :h].unsqueeze(2)
    q = torch.cat([med + below, med, med + above], dim=2)  # [b, H', Q, D]
    q = q * out.scale.unsqueeze(1) + out.loc.unsqueeze(1)
    return q[:, :, m], q.transpose(2, 3), out


def num_patches(context_length: int, patch_length: int, patch_stride: int) -> int:
    """Patches PatchTST cuts from a window of `context_length` steps (its patchifier's formula)."""
    return (max(context_length, patch_length) - patch_length) // patch_stride + 1


class PatchTSTTeacher(Teacher):
    """A trained `PatchTSTForPrediction` (point forecasts, MSE head) in eval mode. Channel-independent
    (`channel_attention` off), but its model takes the windows `[B, L, D]` whole: `predict` is its own."""

    name = FAMILY

    def __init__(self, model, path: str, device: str = "cpu", batch_size: int = 256) -> None:
        self.model = model.eval().to(device)
        self.batch_size = batch_size
        cfg = model.config
        levels = getattr(cfg, "distilts_quantiles", None)
        self.quantile_levels = tuple(float(v) for v in levels) if levels else None
        self.context_length = int(cfg.context_length)
        self.prediction_length = int(cfg.prediction_length) // (len(levels) if levels else 1)
        self.n_variates = int(cfg.num_input_channels)
        super().__init__(str(path), hash_checkpoint(path), device, int(cfg.d_model))

    def hidden_tokens(self, lookback: int) -> int:
        cfg = self.model.config
        return num_patches(lookback, int(cfg.patch_length), int(cfg.patch_stride)) + int(bool(cfg.use_cls_token))

    def _check(self, x: np.ndarray, horizon: int) -> None:
        if x.ndim != 3:
            raise DistiltsError(f"PatchTST teacher expects windows [B, L, D]; got shape {tuple(x.shape)}.")
        if x.shape[1] != self.context_length:
            raise DistiltsError(
                f"This PatchTST teacher ({self.path}) was trained with lookback {self.context_length}, "
                f"but the windows have {x.shape[1]} steps. PatchTST's patching and linear head are tied to "
                f"the training context: use --lookback {self.context_length}, or train a teacher for "
                f"lookback {x.shape[1]} with `distilts train-teacher --lookback {x.shape[1]}`."
            )
        if horizon > self.prediction_length:
            raise DistiltsError(
                f"This PatchTST teacher ({self.path}) forecasts {self.prediction_length} steps (its linear "
                f"head's size), but horizon {horizon} was asked for. Train one for this horizon (or longer) "
                f"with `distilts train-teacher --horizon {horizon}` and pass that directory."
            )

    def predict(
        self,
        x: np.ndarray,
        horizon: int,
        hidden: bool = False,
        quantiles: bool = False,
        covariates: dict[str, np.ndarray] | None = None,
    ) -> TeacherOutput:
        """Forecast `[B, H, D]` (same scale as `x`; the first H steps of the trained horizon), and
        optionally the encoder states per patch and the quantiles `[B, H, D, Q]`."""
        x = np.asarray(x, dtype=np.float32)
        self._check(x, horizon)
        levels = self.require_quantiles() if quantiles else self.quantile_levels
        forecasts, states, qs = [], [], []
        with torch.inference_mode():
            for lo in range(0, x.shape[0], self.batch_size):
                xb = torch.from_numpy(x[lo : lo + self.batch_size]).to(self.device)
                y, q, out = quantile_forecast(self.model, xb, levels)  # [b, H_trained, D]
                forecasts.append(y[:, :horizon].float().cpu().numpy())  # a longer-horizon teacher serves shorter ones
                if quantiles:
                    qs.append(q[:, :horizon].float().cpu().numpy())
                if hidden:
                    states.append(out.last_hidden_state.float().cpu().numpy())  # [b, D, T, d_model]
        forecast = np.concatenate(forecasts, axis=0) if forecasts else np.zeros((0, horizon, x.shape[2]), np.float32)
        hid = None
        if hidden:
            hid = (
                np.concatenate(states, axis=0)
                if states
                else np.zeros((0, x.shape[2], self.hidden_tokens(x.shape[1]), self.d_model), np.float32)
            )
        quant = None
        if quantiles:
            quant = np.concatenate(qs) if qs else np.zeros((0, horizon, x.shape[2], len(levels or ())), np.float32)
        return TeacherOutput(forecast=forecast, hidden=hid, quantiles=quant)


def load(path: str, device: str = "auto") -> PatchTSTTeacher:
    """Load a PatchTST teacher from a local `save_pretrained` directory (safetensors only)."""
    local = Path(path).expanduser()
    if not local.is_dir():
        raise ModelDirError(
            f"PatchTST teacher directory {local} does not exist. PatchTST teachers are trained here: "
            f"`distilts train-teacher --data DATA.csv --lookback L --horizon H --out {local}`."
        )
    check_layout(local, FAMILY, ("config.json",))
    hf_logging.disable_progress_bar()  # no "Loading weights" bar on every load
    try:
        model = PatchTSTForPrediction.from_pretrained(str(local), use_safetensors=True)
    except Exception as exc:  # wrong model type, corrupt weights...
        raise ModelDirError(
            f"{local} is not a PatchTSTForPrediction checkpoint ({type(exc).__name__}: {exc})."
        ) from None
    if getattr(model.config, "loss", "mse") != "mse":
        raise ModelDirError(f"{local}: only point-forecast PatchTST checkpoints (loss='mse') can be teachers.")
    return PatchTSTTeacher(model, str(local), resolve_device(device))
