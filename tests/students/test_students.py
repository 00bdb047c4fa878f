"""Students: shapes, representations, export with a dynamic batch, the student directory format."""

from __future__ import annotations

import json

import pytest
import torch

from distilts.students import (build_student, load_student_dir, param_count, save_student_dir,
                                       student_options)
from distilts.errors import DistiltsError, ModelDirError

torch.set_num_threads(1)

CASES = [
    ("dlinear", {}, 2 * 12),
    ("dlinear", {"individual": True, "revin": True}, 2 * 12),
    ("itransformer", {"d_model": 16, "n_heads": 2, "d_ff": 32, "e_layers": 1}, 16),
    ("itransformer", {"d_model": 16, "n_heads": 2, "d_ff": 32, "norm": "revin"}, 16),  # the learnable-affine RevIN variant
]


def _config(name: str, kwargs: dict) -> dict:
    return {"student": {"name": name, "kwargs": kwargs}, "lookback": 48, "horizon": 12, "n_variates": 3}


@pytest.mark.parametrize("name,kwargs,d_s", CASES)
def test_shapes_and_repr(name, kwargs, d_s):
    torch.manual_seed(0)
    m = build_student(name, 48, 12, 3, **kwargs).eval()
    x = torch.randn(5, 48, 3)
    y, h = m.forward_with_repr(x)
    assert y.shape == (5, 12, 3) and h.shape == (5, 3, d_s) and m.repr_dim == d_s
    assert torch.equal(m(x), y) and torch.equal(m.represent(x), h)


def test_dlinear_moving_average_keeps_constant_and_length():
    m = build_student("dlinear", 30, 5, 2)
    z = torch.full((1, 2, 30), 3.0)
    assert torch.allclose(m.decompose(z), z)
    assert m.decompose(torch.randn(4, 2, 30)).shape == (4, 2, 30)


def test_revin_is_scale_equivariant():
    torch.manual_seed(0)
    m = build_student("dlinear", 48, 12, 3, revin=True).eval()
    x = torch.randn(2, 48, 3)
    assert torch.allclose(m(x * 10 + 5), m(x) * 10 + 5, atol=1e-3)


@pytest.mark.parametrize("name,kwargs,d_s", CASES)
def test_torch_export_dynamic_batch(name, kwargs, d_s):
    m = build_student(name, 48, 12, 3, **kwargs).eval()
    ep = torch.export.export(m, (torch.randn(2, 48, 3),), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    x = torch.randn(7, 48, 3)
    assert torch.allclose(ep.module()(x), m(x), atol=1e-5)


@pytest.mark.parametrize("name,kwargs,d_s", CASES)
def test_save_load_roundtrip(tmp_path, name, kwargs, d_s):
    m = build_student(name, 48, 12, 3, **kwargs).eval()
    save_student_dir(tmp_path / "s", m, _config(name, kwargs))
    m2, cfg = load_student_dir(tmp_path / "s")
    assert cfg["format"] == "distilts-student" and cfg["param_count"] == param_count(m)
    x = torch.randn(2, 48, 3)
    assert torch.equal(m2(x), m(x)) and not m2.training


def test_save_keeps_other_files(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / "train_log.jsonl").write_text("{}\n")
    save_student_dir(d, build_student("dlinear", 48, 12, 3), _config("dlinear", {}))
    assert (d / "train_log.jsonl").exists() and (d / "model.safetensors").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_unknown_student_and_option():
    with pytest.raises(DistiltsError, match="Unknown student"):
        build_student("lstm", 48, 12, 3)
    with pytest.raises(DistiltsError, match="no option"):
        build_student("dlinear", 48, 12, 3, d_model=4)


def test_load_errors(tmp_path):
    with pytest.raises(ModelDirError, match="not a directory"):
        load_student_dir(tmp_path / "nope")
    with pytest.raises(ModelDirError, match="no config.json"):
        load_student_dir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": "distilts-artifact"}))
    with pytest.raises(ModelDirError, match="not a distilts student"):
        load_student_dir(tmp_path)
    d = tmp_path / "s"
    save_student_dir(d, build_student("dlinear", 48, 12, 3), _config("dlinear", {}))
    (d / "model.safetensors").rename(tmp_path / "w.safetensors")
    with pytest.raises(ModelDirError, match="no model.safetensors"):
        load_student_dir(d)
    # weights of another architecture under this config
    save_student_dir(tmp_path / "t", build_student("dlinear", 48, 12, 3, individual=True), _config("dlinear", {}))
    (tmp_path / "t" / "model.safetensors").replace(d / "model.safetensors")
    with pytest.raises(ModelDirError, match="shape mismatch"):
        load_student_dir(d)
    (d / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelDirError, match="not a readable safetensors"):
        load_student_dir(d)


def test_student_defaults_are_the_official_ones():
    """DLinear: LTSF-Linear / TSLib; iTransformer: the DistilTS scripts' student at L=512."""
    point = {"quantiles": None, "quantile_rank": 8}  # a point forecaster unless levels are asked for
    assert student_options("dlinear") == {"moving_avg": 25, "individual": False, "revin": False, "revin_eps": 1e-5,
                                          **point, "n_past": 0, "n_future": 0, "n_static": 0, "future_map": "step"}
    assert student_options("itransformer") == {"d_model": 512, "n_heads": 4, "e_layers": 1, "d_ff": 2048,
                                               "dropout": 0.1, "activation": "gelu", "norm": "window", **point}


@pytest.mark.parametrize("individual", [False, True])
def test_dlinear_official_init_forecasts_the_window_mean(individual):
    """Both maps start at weight 1/L, so with zero biases the forecast is the window mean:
    mean(x - MA(x)) + mean(MA(x)) = mean(x), at every step."""
    m = build_student("dlinear", 48, 12, 3, individual=individual).eval()
    assert torch.all(m.seasonal.weight == 1 / 48) and torch.all(m.trend.weight == 1 / 48)
    with torch.no_grad():
        m.seasonal.bias.zero_()
        m.trend.bias.zero_()
    x = torch.randn(4, 48, 3)
    assert torch.allclose(m(x), x.mean(dim=1, keepdim=True).expand(4, 12, 3), atol=1e-6)


def test_itransformer_always_normalises_each_window():
    """Per-window mean/std normalisation, undone on the output: f(a x + b) = a f(x) + b (up to the
    1e-5 in the std), for the default model and without any option."""
    torch.manual_seed(0)
    m = build_student("itransformer", 48, 12, 3, d_model=16, n_heads=2, d_ff=32).eval()
    assert m.revin is not None and not m.revin.affine and not list(m.revin.parameters())
    x = torch.randn(2, 48, 3)
    assert torch.allclose(m(x * 10 + 5), m(x) * 10 + 5, atol=1e-3)
    flat = torch.full((1, 48, 3), 7.0)  # a constant window forecasts (almost) itself
    assert torch.allclose(m(flat), torch.full((1, 12, 3), 7.0), atol=0.05)


def test_saved_config_records_every_option(tmp_path):
    save_student_dir(tmp_path / "s", build_student("itransformer", 48, 12, 3, d_model=16, n_heads=2, d_ff=32),
                     _config("itransformer", {"d_model": 16, "n_heads": 2, "d_ff": 32}))
    kwargs = json.loads((tmp_path / "s" / "config.json").read_text())["student"]["kwargs"]
    assert kwargs == {**student_options("itransformer"), "d_model": 16, "n_heads": 2, "d_ff": 32}
