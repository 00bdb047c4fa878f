"""TiDE (Das et al., 2023, "Long-term Forecasting with TiDE: Time-series Dense Encoder").

Defined as the official code (google-research/google-research `tide`: `models.py`, `train.py`,
`scripts/etth1.sh`), channel-independent (each variate is one series, the weights are shared):

    encoder input  = [lookback ++ variate embedding (16)]              (`encoder_input`)
    encoding       = residual MLP stack (hidden_size x num_layers)     [B, D, hidden_size]
    decoded        = residual MLP stack -> H x decoder_output_dim      [B, D, H, p]
    forecast       = temporal decoder (residual MLP p -> final_decoder_hidden -> 1, per step)
                     + global linear residual `Dense(L -> H)` of the lookback

A residual block is `Dense(hidden) -> ReLU -> Dense(out) -> dropout` plus a linear skip `Dense(out)`, then
an optional LayerNorm (Keras epsilon 1e-3); a stack of widths [w_1 .. w_n] is n-1 such blocks (one Dense when
n = 1), as the official `_make_dnn_residual`. Dense layers start as Keras' (Glorot-uniform, zero biases).
Defaults are `scripts/etth1.sh` at H in {96, 192} (L=720, hidden 512, 2 layers, p=32, temporal decoder 16,
dropout 0.5, layer norm).

Covariates (`n_past`, `n_future`, `n_static`), as the paper and the official `TideModel.call`: the feature
projection (`time_encoder`, a residual block `F -> feature_hidden (64) -> feature_dim (4)`, the official
`time_encoder_dims=[64, 4]`) maps the known-future covariates of every step of lookback + horizon to
`feature_dim` values; the encoder input is `[lookback ++ projected features over L + H (flattened) ++ static
attributes ++ variate embedding]` and the temporal decoder's input at step t is `[decoded_t ++ projected
feature_{L+t}]` (p + feature_dim). Past-only covariates (not in the paper, whose dynamic covariates are all
known ahead) get their own projection of the same shape over the lookback, joining the encoder input.
Static attributes enter the encoder input as their normalized values (the official code embeds categorical
ones). The covariates are shared by the D variates of a window, as the official covariates by its series.

`norm`: "window" (per-window mean/std normalisation undone on the output, the default), "revin" (with a
learnable affine per variate: the official `transform=true`) or "none".

FTA representation (`represent`): the dense encoding per variate, `[B, D, hidden_size]`.
"""

from __future__ import annotations

import torch
from torch import nn

from distilts.students.covariates import check_covariate_dims, covariate_inputs
from distilts.students.layers import keras_init
from distilts.students.quantile import DEFAULT_RANK, QuantileOutput, head_forecast
from distilts.students.revin import window_norm


class WidthOneLayerNorm(nn.LayerNorm):
    """LayerNorm of a 1-wide feature, written as what it computes: its bias (the centred value is exactly 0).

    The same parameters and gradients as `nn.LayerNorm(1)`; the exported graph holds a constant instead of a
    zero-range tensor, which int8 converters cannot quantize (LiteRT aborts on it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is None:
            return torch.zeros_like(x)
        return self.bias.expand(x.shape)


class ResidualBlock(nn.Module):
    """`Dense(hidden) -> ReLU -> Dense(out) -> dropout`, plus a linear skip `Dense(out)`, then LayerNorm."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, dropout: float, layer_norm: bool) -> None:
        super().__init__()
        self.hidden = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim), nn.Dropout(dropout)
        )
        self.skip = nn.Linear(in_dim, out_dim)
        norm = WidthOneLayerNorm if out_dim == 1 else nn.LayerNorm
        self.norm = norm(out_dim, eps=1e-3) if layer_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.hidden(x) + self.skip(x))


def residual_stack(in_dim: int, widths: list[int], dropout: float, layer_norm: bool) -> nn.Module:
    """The official `_make_dnn_residual`: blocks `widths[i] -> widths[i + 1]`; one Dense if one width."""
    if len(widths) < 2:
        return nn.Linear(in_dim, widths[-1])
    dims = [in_dim, *widths[1:]]
    return nn.Sequential(
        *(ResidualBlock(dims[i], widths[i], dims[i + 1], dropout, layer_norm) for i in range(len(widths) - 1))
    )


class TiDE(nn.Module):
    """`[B, L, D] -> [B, H, D]`: dense encoder, dense decoder, temporal decoder + linear residual, per variate.

    With `quantiles`, `[B, L, D] -> [B, H, D, Q]` (levels sorted, never crossing)."""

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_variates: int,
        *,
        hidden_size: int = 512,
        num_layers: int = 2,
        decoder_output_dim: int = 32,
        final_decoder_hidden: int = 16,
        dropout: float = 0.5,
        layer_norm: bool = True,
        temporal_layer_norm: bool = False,
        variate_embedding: int = 16,
        norm: str = "window",
        quantiles: tuple[float, ...] | list[float] | None = None,
        quantile_rank: int = DEFAULT_RANK,
        n_past: int = 0,
        n_future: int = 0,
        n_static: int = 0,
        feature_hidden: int = 64,
        feature_dim: int = 4,
    ) -> None:
        super().__init__()
        self.covariate_dims = P, F, S = check_covariate_dims(n_past, n_future, n_static)
        sizes = {
            "hidden_size": hidden_size,
            "num_layers": num_layers,
            "decoder_output_dim": decoder_output_dim,
            "final_decoder_hidden": final_decoder_hidden,
        }
        if min(sizes.values()) < 1 or variate_embedding < 0:
            raise ValueError(
                f"sizes must be positive and variate_embedding >= 0 (got {sizes}, "
                f"variate_embedding={variate_embedding})."
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1) (got {dropout}).")
        self.lookback, self.horizon, self.n_variates = lookback, horizon, n_variates
        self.repr_dim = hidden_size
        self.decoder_output_dim = decoder_output_dim
        self.revin = window_norm(norm, n_variates, quantiles)
        self.variate_embedding = None
        if variate_embedding:  # the official per-series embedding (Keras Embedding init: U(-0.05, 0.05))
            self.variate_embedding = nn.Parameter(torch.empty(n_variates, variate_embedding).uniform_(-0.05, 0.05))
        widths = [hidden_size] * num_layers
        # the feature projections (official `time_encoder`) of the known-future and the past-only covariates
        self.feature_projection = residual_stack(F, [feature_hidden, feature_dim], dropout, layer_norm) if F else None
        self.past_projection = residual_stack(P, [feature_hidden, feature_dim], dropout, layer_norm) if P else None
        self.feature_dim = feature_dim
        n_cov = (lookback + horizon) * feature_dim * (F > 0) + lookback * feature_dim * (P > 0) + S
        self.encoder = residual_stack(lookback + n_cov + variate_embedding, widths, dropout, layer_norm)
        self.decoder = residual_stack(hidden_size, widths[:-1] + [decoder_output_dim * horizon], dropout, layer_norm)
        # the official code also normalises the temporal decoder's 1-wide output, which makes it a constant
        # (google-research#2133): `temporal_layer_norm=True` reproduces that
        self.temporal_decoder = ResidualBlock(
            decoder_output_dim + feature_dim * (F > 0),
            final_decoder_hidden,
            1,
            dropout,
            layer_norm and temporal_layer_norm,
        )
        self.residual = nn.Linear(lookback, horizon)
        keras_init(self.encoder, self.decoder, self.temporal_decoder, self.residual)
        for projection in (self.feature_projection, self.past_projection):
            if projection is not None:
                keras_init(projection)
        self.quantile_head = None
        if quantiles is not None:  # the rank features of the level gaps come from the encoding
            self.quantile_head = QuantileOutput(quantiles, horizon, quantile_rank)
            self.quantile_features = nn.Linear(hidden_size, quantile_rank)
            keras_init(self.quantile_features)

    @property
    def levels(self) -> tuple[float, ...] | None:
        return None if self.quantile_head is None else self.quantile_head.levels

    def encoder_input(self, z: torch.Tensor, covariates: list[torch.Tensor] | None = None) -> torch.Tensor:
        """The dense encoder's input per variate from the normalised lookback `z [B, D, L]`: `[B, D, L + c + e]`
        (the lookback, the flattened covariate features `[B, c]` shared by the variates, the variate embedding)."""
        parts = [z]
        B, D = z.shape[0], z.shape[1]
        for c in covariates or []:
            parts.append(c.unsqueeze(1).expand(B, D, -1))
        if self.variate_embedding is not None:
            parts.append(self.variate_embedding.unsqueeze(0).expand(B, -1, -1))  # [B, D, e]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def project_covariates(
        self, past: torch.Tensor | None, future: torch.Tensor | None, static: torch.Tensor | None
    ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """(the encoder's covariate inputs `[B, c_i]`, the projected future features over the horizon `[B, H, r]`)."""
        past, future, static = covariate_inputs(self.covariate_dims, self.lookback, past, future, static)
        flat: list[torch.Tensor] = []
        horizon_features = None
        if future is not None and self.feature_projection is not None:
            projected = self.feature_projection(future)  # [B, L + H, r]
            flat.append(projected.flatten(1))
            horizon_features = projected[:, self.lookback :]
        if past is not None and self.past_projection is not None:
            flat.append(self.past_projection(past).flatten(1))  # [B, L r]
        if static is not None:
            flat.append(static)
        return flat, horizon_features

    def forward_with_repr(
        self,
        x: torch.Tensor,
        past: torch.Tensor | None = None,
        future: torch.Tensor | None = None,
        static: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Forecast `[B, H, D]` (`[B, H, D, Q]`) and the dense encoding `[B, D, hidden_size]`."""
        mean = std = None
        if self.revin is not None:
            x, mean, std = self.revin.normalize(x)
        z = x.transpose(1, 2)  # [B, D, L]
        flat, horizon_features = self.project_covariates(past, future, static)
        h = self.encoder(self.encoder_input(z, flat))  # [B, D, hidden]
        decoded = self.decoder(h).unflatten(-1, (self.horizon, self.decoder_output_dim))  # [B, D, H, p]
        if horizon_features is not None:  # the temporal decoder sees each step's projected features
            steps = horizon_features.unsqueeze(1).expand(-1, z.shape[1], -1, -1)  # [B, D, H, r]
            decoded = torch.cat([decoded, steps], dim=-1)
        out = self.temporal_decoder(decoded).squeeze(-1) + self.residual(z)  # [B, D, H]
        if self.quantile_head is not None:
            out = torch.cat([out, self.quantile_features(h)], dim=-1)  # [B, D, H + rank]
        return head_forecast(out, self.horizon, self.quantile_head, self.revin, mean, std), h

    def forward(self, x: torch.Tensor, past=None, future=None, static=None) -> torch.Tensor:
        return self.forward_with_repr(x, past, future, static)[0]

    def represent(self, x: torch.Tensor, past=None, future=None, static=None) -> torch.Tensor:
        return self.forward_with_repr(x, past, future, static)[1]
