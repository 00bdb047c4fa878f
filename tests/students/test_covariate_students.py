"""The students that take covariates (DLinear's covariate branch, TiDE as its paper, TSMixer-Ext): shapes,
that the known-future covariates over the horizon change the forecast, TiDE's official sizes, and the
one-line refusals."""

from __future__ import annotations

import pytest
import torch

from distilts.errors import DistiltsError
from distilts.students.registry import build_student

L, H, D, P, F, S = 48, 12, 2, 3, 4, 2
TINY = {
    "dlinear": {},
    "tide": {"hidden_size": 32, "decoder_output_dim": 4, "final_decoder_hidden": 8, "dropout": 0.0},
    "tsmixer": {"n_block": 2, "ff_dim": 16, "hidden": 8, "dropout": 0.0},
}


def inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(5, L, D, generator=g),
        torch.randn(5, L, P, generator=g),
        torch.randn(5, L + H, F, generator=g),
        torch.randn(5, S, generator=g),
    )


@pytest.mark.parametrize("name", sorted(TINY))
def test_shapes_and_future_covariates_change_the_forecast(name):
    torch.manual_seed(0)
    model = build_student(name, L, H, D, n_past=P, n_future=F, n_static=S, **TINY[name]).eval()
    assert model.covariate_dims == (P, F, S)
    if name == "dlinear":  # the branch starts at zero (the plain DLinear): give it weights
        torch.nn.init.normal_(model.covariate_map.weight)
        torch.nn.init.normal_(model.step_map.weight)
    x, past, future, static = inputs()
    y = model(x, past=past, future=future, static=static)
    assert y.shape == (5, H, D)
    assert model.represent(x, past=past, future=future, static=static).shape == (5, D, model.repr_dim)
    later = future.clone()
    later[:, L:] += 1.0  # only the horizon part of the known-future covariates
    assert (model(x, past=past, future=later, static=static) - y).abs().max() > 1e-3
    other_static = static + 1.0
    assert (model(x, past=past, future=future, static=other_static) - y).abs().max() > 1e-3
    with pytest.raises(DistiltsError, match="pass `future=`"):
        model(x, past=past, static=static)
    with pytest.raises(DistiltsError, match="future covariates have shape"):
        model(x, past=past, future=future[..., :2], static=static)


@pytest.mark.parametrize("name", sorted(TINY))
def test_without_covariates_the_student_is_unchanged(name):
    torch.manual_seed(0)
    plain = build_student(name, L, H, D, **TINY[name])
    torch.manual_seed(0)
    zero = build_student(name, L, H, D, n_past=0, n_future=0, n_static=0, **TINY[name])
    assert plain.state_dict().keys() == zero.state_dict().keys()
    x = inputs()[0]
    torch.testing.assert_close(plain.eval()(x), zero.eval()(x))


@pytest.mark.parametrize("future_map", ["step", "horizon", "full"])
def test_dlinear_future_map(future_map):
    """"step": one map F -> D shared by the horizon's steps (step t sees only f_{L+t}); "horizon": every step sees
    the horizon's block (not the lookback's); "full": the whole block."""
    model = build_student("dlinear", L, H, D, n_future=F, future_map=future_map).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p)
    x, _, future, _ = inputs()
    y = model(x, future=future)
    changed = future.clone()
    changed[:, L + 3] += 1.0  # one horizon step
    diff = (model(x, future=changed) - y).abs().amax(dim=(0, 2))
    past = future.clone()
    past[:, L - 1] += 1.0  # one lookback step
    seen_past = (model(x, future=past) - y).abs().amax()
    if future_map == "step":
        assert diff[3] > 1e-3 and torch.all(diff[torch.arange(H) != 3] == 0)
        assert sum(p.numel() for n, p in model.named_parameters() if "step_map" in n) == F * D + D
    elif future_map == "horizon":
        assert torch.all(diff > 1e-3) and seen_past == 0
        assert model.covariate_map.in_features == H * F
    else:
        assert torch.all(diff > 1e-3)


def test_tide_official_sizes():
    """The official TideModel: time_encoder_dims [64, 4] (one residual block F -> 64 -> 4), the encoder input
    [lookback, projected features over L + H, static, 16-wide series embedding], the temporal decoder
    input [p, 4] per step (scripts/etth1.sh sizes: hidden 512, p = 32, temporal decoder hidden 16)."""
    model = build_student("tide", 720, 96, 1, n_future=F, n_static=S)
    proj = model.feature_projection[0]
    assert (proj.hidden[0].in_features, proj.hidden[0].out_features, proj.hidden[2].out_features) == (F, 64, 4)
    assert proj.skip.out_features == 4
    first = model.encoder[0]
    assert first.hidden[0].in_features == 720 + (720 + 96) * 4 + S + 16
    assert first.hidden[0].out_features == 512
    assert model.temporal_decoder.hidden[0].in_features == 32 + 4
    assert model.temporal_decoder.hidden[0].out_features == 16


@pytest.mark.parametrize("name", ["mlp", "itransformer", "patchtst", "nhits"])
def test_other_students_refuse_covariates(name):
    with pytest.raises(DistiltsError, match=f"Student '{name}' takes no covariates"):
        build_student(name, L, H, D, n_future=2)
    build_student(name, L, H, D, n_past=0, n_future=0, n_static=0)  # zero sizes: a univariate student


def test_tsmixer_ext_refuses_quantiles():
    with pytest.raises(DistiltsError, match="point forecasts only"):
        build_student("tsmixer", L, H, D, n_future=2, quantiles=(0.1, 0.5, 0.9), **TINY["tsmixer"])
