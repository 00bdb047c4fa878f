"""Quantile heads of DLinear and iTransformer: shape, levels that never cross, scale passing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distilts.quantiles import DECILES, QuantileError
from distilts.students import build_student
from distilts.students.quantile import QuantileOutput


def test_levels_are_the_median_plus_cumulative_gaps():
    head = QuantileOutput((0.1, 0.25, 0.5, 0.9), 1, rank=1)
    with torch.no_grad():
        head.gaps.weight.zero_()
        head.gaps.bias.copy_(torch.tensor([1.0, -2.0, 3.0]))  # gaps |1|, |-2|, |3|
    q = head(torch.full((1, 1, 1), 10.0), torch.zeros(1, 1, 1))
    assert q.flatten().tolist() == [7.0, 8.0, 10.0, 13.0]


@pytest.mark.parametrize("name, kwargs", [("dlinear", {}), ("dlinear", {"individual": True}),
                                          ("itransformer", {"d_model": 16, "n_heads": 2, "d_ff": 32})])
def test_quantile_student_shape_median_and_no_crossing(name, kwargs):
    torch.manual_seed(0)
    model = build_student(name, 48, 12, 3, quantiles=list(DECILES), **kwargs).eval()
    with torch.no_grad():  # wild weights: the construction, not the training, keeps the order
        for p in model.parameters():
            p.normal_(0, 3.0)
        y, h = model.forward_with_repr(torch.randn(5, 48, 3) * 10)
    assert y.shape == (5, 12, 3, 9) and model.levels == DECILES
    assert torch.all(torch.diff(y, dim=-1) >= 0)
    assert torch.all(torch.diff(y, dim=-1).sum(-1) > 0)  # not collapsed onto the median
    assert h.shape[:2] == (5, 3)


def test_point_students_keep_their_weights_layout():
    model = build_student("dlinear", 48, 12, 3)
    assert model.seasonal.weight.shape == (12, 48) and model.quantile_head is None
    q = build_student("dlinear", 48, 12, 3, quantiles=[0.1, 0.5, 0.9], quantile_rank=4)
    assert q.seasonal.weight.shape == (16, 48)
    assert torch.all(q.seasonal.weight[:12] == 1 / 48)  # the official 1/L init of the median map


def test_bad_levels_and_revin_are_refused():
    with pytest.raises(QuantileError, match="lack the median"):
        build_student("dlinear", 48, 12, 3, quantiles=[0.1, 0.9])
    with pytest.raises(QuantileError, match="increasing"):
        build_student("itransformer", 48, 12, 3, quantiles=[0.9, 0.5, 0.1])
    with pytest.raises(Exception, match="revin"):
        build_student("dlinear", 48, 12, 3, quantiles=[0.1, 0.5, 0.9], revin=True)


def test_scaled_head_equals_denormalized_levels():
    torch.manual_seed(1)
    head = QuantileOutput(DECILES, 6, rank=3)
    with torch.no_grad():
        head.gaps.weight.normal_()
        head.gaps.bias.normal_()
    median, feat = torch.randn(2, 4, 6), torch.randn(2, 4, 3)  # [B, D, H], [B, D, rank]
    sd, mu = torch.tensor([0.5, 2.0, 3.0, 10.0]), torch.tensor([1.0, -1.0, 0.0, 5.0])
    want = head(median, feat) * sd[:, None, None] + mu[:, None, None]  # [B, D, H, Q]
    got = head.scaled(sd.numpy())(median * sd[:, None] + mu[:, None], feat * sd[:, None])
    assert got.shape == (2, 4, 6, 9) and torch.allclose(got, want, atol=1e-5)
    assert np.allclose(head.levels, DECILES)
