"""The TimeDistill-style MLP student, the -O student options and `distilts students`."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from distilts.cli import cli
from distilts.errors import DistiltsError
from distilts.students import build_student, load_student_dir, param_count
from distilts.students.registry import parse_option_values

torch.set_num_threads(1)


def test_official_default_size_and_shapes():
    m = build_student("mlp", 720, 96, 7).eval()
    # Linear(720 -> 512) + BatchNorm1d(7) + Linear(512 -> 96) + RevIN affine (7 + 7)
    assert param_count(m) == 720 * 512 + 512 + 2 * 7 + 512 * 96 + 96 + 2 * 7, param_count(m)
    y, h = m.forward_with_repr(torch.randn(3, 720, 7))
    assert y.shape == (3, 96, 7) and h.shape == (3, 7, 512) and m.repr_dim == 512


def test_revin_makes_it_scale_equivariant():
    torch.manual_seed(0)
    m = build_student("mlp", 48, 12, 3, d_model=16).eval()
    x = torch.randn(2, 48, 3)
    assert torch.allclose(m(x * 10 + 5), m(x) * 10 + 5, atol=1e-3)


def test_quantile_levels_never_cross_and_use_revin_without_affine():
    torch.manual_seed(0)
    m = build_student("mlp", 48, 12, 3, d_model=16, quantiles=[0.1, 0.5, 0.9]).eval()
    with torch.no_grad():
        m.quantile_head.gaps.weight.normal_()
    y = m(torch.randn(6, 48, 3) * 5)
    assert y.shape == (6, 12, 3, 3) and bool((y.diff(dim=-1) >= 0).all())
    assert m.levels == (0.1, 0.5, 0.9) and not m.revin.affine


def test_unknown_activation_is_an_error():
    with pytest.raises(DistiltsError, match="activation must be one of"):
        build_student("mlp", 48, 12, 3, activation="swish")


@pytest.mark.parametrize(
    "pairs,expected",
    [
        (["d_model=64", "batch_norm=false", "activation=gelu_tanh", "dropout=0.1"],
         {"d_model": 64, "batch_norm": False, "activation": "gelu_tanh", "dropout": 0.1}),
        (["d-model=8"], {"d_model": 8}),
        (["quantiles=0.1,0.5,0.9"], {"quantiles": [0.1, 0.5, 0.9]}),
    ],
)
def test_options_parse_by_the_type_of_their_default(pairs, expected):
    assert parse_option_values("mlp", pairs) == expected


@pytest.mark.parametrize(
    "pair,match",
    [("d_model", "not KEY=VALUE"), ("width=3", "has no option 'width'"), ("d_model=big", "not a valid int"),
     ("batch_norm=maybe", "not a valid bool")],
)
def test_bad_options_are_one_line_errors(pair, match):
    with pytest.raises(DistiltsError, match=match):
        parse_option_values("mlp", [pair])


def test_distill_with_student_options_and_list_students(tmp_path):
    out = tmp_path / "mlp"
    res = CliRunner().invoke(cli, ["distill", "--no-kd", "--beta", "0", "--student", "mlp", "-O", "d_model=8", "-O",
                                   "batch_norm=false", "--lookback", "24", "--horizon", "6", "--epochs", "1",
                                   "--stride", "8", "--quiet", "--out", str(out)])
    assert res.exit_code == 0, res.output
    model, config = load_student_dir(out)
    assert config["student"]["kwargs"]["d_model"] == 8 and config["student"]["kwargs"]["batch_norm"] is False
    assert model.hidden.out_features == 8
    res = CliRunner().invoke(cli, ["distill", "--student", "mlp", "-O", "e_layers=2", "--out", str(tmp_path / "x")])
    assert res.exit_code != 0 and "has no option 'e_layers'" in res.output
    res = CliRunner().invoke(cli, ["students", "--lookback", "96", "--horizon", "24", "--variates", "7"])
    assert res.exit_code == 0, res.output
    assert "mlp  (" in res.output and "dlinear  (" in res.output and "d_model=512" in res.output
