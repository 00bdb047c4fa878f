"""N-HiTS and N-BEATS (its special case): shapes, the official defaults and sizes, the export-friendly
forms of pooling and interpolation against the official operations, option errors, and a 1-epoch
distil + compile (ONNX, TFLite int8) through the CLI."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from distilts.cli import cli
from distilts.errors import DistiltsError
from distilts.students import build_student, param_count, student_options
from distilts.students.nhits import NBEATS, NHiTS, NHiTSBlock, interpolation_matrix

torch.set_num_threads(1)
TINY = {"mlp_units": (16, 16)}


@pytest.mark.parametrize("name", ["nhits", "nbeats"])
@pytest.mark.parametrize("quantiles", [None, [0.1, 0.5, 0.9]])
def test_shapes_repr_and_quantiles_never_cross(name, quantiles):
    torch.manual_seed(0)
    m = build_student(name, 48, 12, 3, n_blocks=(1, 2) if name == "nhits" else (2,),
                      n_pool_kernel_size=(4, 1) if name == "nhits" else (1,),
                      n_freq_downsample=(3, 1) if name == "nhits" else (1,), quantiles=quantiles, **TINY).eval()
    n_blocks = 3 if name == "nhits" else 2
    if quantiles:
        with torch.no_grad():  # wild weights: the construction keeps the order
            for p in m.parameters():
                p.normal_(0, 3.0)
    x = torch.randn(5, 48, 3) * 4
    y, h = m.forward_with_repr(x)
    assert y.shape == ((5, 12, 3) if quantiles is None else (5, 12, 3, 3))
    assert h.shape == (5, 3, 16 * n_blocks) and m.repr_dim == 16 * n_blocks
    assert torch.equal(m(x), y) and torch.equal(m.represent(x), h)
    if quantiles:
        assert m.levels == (0.1, 0.5, 0.9) and bool((y.diff(dim=-1) >= 0).all())


def test_official_default_sizes():
    """neuralforecast's N-HiTS (3 stacks x 1 block, pools 2/2/1, downsampling 4/2/1, 2 x 512) at L=480 = 5H,
    H=96; N-BEATS generic (30 blocks of 4 x 512)."""
    assert student_options("nhits") == {
        "n_blocks": (1, 1, 1), "mlp_units": (512, 512), "n_pool_kernel_size": (2, 2, 1), "n_freq_downsample": (4, 2, 1),
        "dropout": 0.0, "activation": "relu", "norm": "none", "quantiles": None, "quantile_rank": 8}
    assert student_options("nbeats") == {**student_options("nhits"), "n_blocks": (30,), "mlp_units": (512,) * 4,
                                         "n_pool_kernel_size": (1,), "n_freq_downsample": (1,)}

    def block(pooled, knots, L=480):
        return pooled * 512 + 512 + 512 * 512 + 512 + 512 * (L + knots) + L + knots

    m = build_student("nhits", 480, 96, 7)
    want = block(240, 24) + block(240, 48) + block(480, 96)
    assert param_count(m) == want, f"N-HiTS default at L=480, H=96: {param_count(m):,} parameters"
    assert [b.n_knots for b in m.blocks] == [24, 48, 96] and m.blocks[2].interp is None
    nb = build_student("nbeats", 480, 96, 7)
    each = 480 * 512 + 512 + 3 * (512 * 512 + 512) + 512 * (480 + 96) + 480 + 96
    assert isinstance(nb, NHiTS) and len(nb.blocks) == 30
    assert param_count(nb) == 30 * each, f"N-BEATS generic at L=480, H=96: {param_count(nb):,} parameters"


def test_interpolation_matrix_is_the_official_linear_interpolation():
    torch.manual_seed(0)
    for knots, horizon in [(24, 96), (5, 12), (1, 7), (7, 7)]:
        theta = torch.randn(6, knots)
        want = F.interpolate(theta[:, None, :], size=horizon, mode="linear")[:, 0]
        assert torch.allclose(theta @ interpolation_matrix(knots, horizon), want, atol=1e-6)


@pytest.mark.parametrize("lookback,pool", [(48, 4), (50, 4), (7, 3), (9, 1)])
def test_pooling_is_the_official_ceil_mode_pooling_of_the_flipped_window(lookback, pool):
    block = NHiTSBlock(lookback, 6, pool, 1, (8,), "relu", 0.0, 0)
    r = torch.randn(2, 3, lookback)
    official = F.max_pool1d(r.flip(-1), pool, stride=pool, ceil_mode=True)  # cchallu/n-hits: residuals flipped
    assert torch.equal(block.pooled(r).flip(-1), official)
    assert block.mlp[0].in_features == official.shape[-1]


def test_level_is_the_last_value_and_blocks_fit_residuals():
    m = build_student("nhits", 24, 6, 2, **TINY).eval()
    with torch.no_grad():
        for b in m.blocks:
            b.theta.weight.zero_()
            b.theta.bias.zero_()
    x = torch.randn(3, 24, 2)
    assert torch.equal(m(x), x[:, -1:, :].expand(3, 6, 2))  # Naive1 when every block is silent


def test_nbeats_is_nhits_without_pooling_or_interpolation():
    torch.manual_seed(0)
    a = NBEATS(24, 6, 2, n_blocks=(2,), mlp_units=(8, 8))
    torch.manual_seed(0)
    b = NHiTS(24, 6, 2, n_blocks=(2,), mlp_units=(8, 8), n_pool_kernel_size=(1,), n_freq_downsample=(1,))
    x = torch.randn(4, 24, 2)
    assert torch.equal(a(x), b(x)) and all(blk.pool is None and blk.interp is None for blk in a.blocks)


@pytest.mark.parametrize("norm", ["window", "revin"])
def test_window_norms_are_scale_equivariant(norm):
    torch.manual_seed(0)
    m = build_student("nhits", 48, 12, 3, norm=norm, **TINY).eval()
    x = torch.randn(2, 48, 3)
    assert torch.allclose(m(x * 10 + 5), m(x) * 10 + 5, atol=1e-3)


@pytest.mark.parametrize("kwargs,match", [
    ({"n_blocks": (1, 1)}, "one entry per stack"),
    ({"n_freq_downsample": (4, 0, 1)}, "positive integers"),
    ({"activation": "swish"}, "activation must be one of"),
    ({"norm": "batch"}, "norm must be one of"),
    ({"norm": "revin", "quantiles": [0.1, 0.5, 0.9]}, "not supported with quantiles"),
    ({"dropout": 1.5}, "dropout"),
])
def test_bad_options_are_errors(kwargs, match):
    with pytest.raises(DistiltsError, match=match):
        build_student("nhits", 48, 12, 3, **kwargs)


def test_torch_export_dynamic_batch():
    m = build_student("nhits", 48, 12, 3, **TINY).eval()
    ep = torch.export.export(m, (torch.randn(2, 48, 3),), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    x = torch.randn(7, 48, 3)
    assert torch.allclose(ep.module()(x), m(x), atol=1e-5)


@pytest.mark.slow
def test_distill_then_compile_onnx_and_tflite_int8(tmp_path):
    out = tmp_path / "nhits"
    res = CliRunner().invoke(cli, ["distill", "--no-kd", "--beta", "0", "--student", "nhits", "-O", "mlp_units=8,8",
                                   "-O", "n_pool_kernel_size=4,2,1", "-O", "n_freq_downsample=3,2,1", "--lookback",
                                   "24", "--horizon", "6", "--epochs", "1", "--stride", "8", "--quiet",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    for flags in (["--target", "onnx"], ["--target", "tflite", "--int8", "--calib-windows", "16"]):
        res = CliRunner().invoke(cli, ["compile", str(out), *flags, "--verify-windows", "8",
                                       "--out", str(tmp_path / "a")])
        assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["onnx-fp32", "tflite-int8"]
