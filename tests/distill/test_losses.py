"""Horizon weights and the KD / total losses."""

from __future__ import annotations

import math

import pytest
import torch

from distilts.distill.losses import horizon_weights, kd_loss, mse_per_step, total_loss


@pytest.mark.parametrize("T", [1, 2, 24, 96])
@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 3.0, -1.0])
def test_weights_sum_to_one(T, tau):
    w = horizon_weights(T, tau)
    assert w.shape == (T,) and torch.isclose(w.sum(), torch.tensor(1.0), atol=1e-6)


def test_weights_increase_with_t_for_positive_tau():
    w = horizon_weights(24, 1.0)
    assert torch.all(w[1:] > w[:-1])
    # the last step carries e^tau times the weight of the first
    assert math.isclose((w[-1] / w[0]).item(), math.e, rel_tol=1e-5)


def test_weights_uniform_at_tau_zero_and_single_step():
    assert torch.allclose(horizon_weights(10, 0.0), torch.full((10,), 0.1))
    assert torch.equal(horizon_weights(1, 5.0), torch.ones(1))
    with pytest.raises(ValueError):
        horizon_weights(0, 1.0)


def test_weights_match_formula():
    T, tau = 5, 2.0
    raw = [math.exp(tau * t / (T - 1)) for t in range(T)]
    expected = torch.tensor([r / sum(raw) for r in raw])
    assert torch.allclose(horizon_weights(T, tau), expected, atol=1e-7)


def test_kd_loss_is_weighted_per_step_mse():
    torch.manual_seed(0)
    s, t = torch.randn(4, 6, 3), torch.randn(4, 6, 3)
    w = horizon_weights(6, 1.0)
    per_step = torch.stack([((s[:, i] - t[:, i]) ** 2).mean() for i in range(6)])
    assert torch.allclose(mse_per_step(s, t), per_step)
    assert torch.isclose(kd_loss(s, t, w), (w * per_step).sum())
    # uniform weights give the plain MSE
    assert torch.isclose(kd_loss(s, t, horizon_weights(6, 0.0)), ((s - t) ** 2).mean())


def test_total_loss():
    one = torch.tensor(1.0)
    assert total_loss(one, torch.tensor(2.0), torch.tensor(4.0), alpha=0.5, beta=0.25).item() == 3.0
    assert total_loss(one, None, None, alpha=1.0, beta=1.0).item() == 1.0


def test_pinball_by_hand_and_quantile_kd_terms():
    from distilts.distill.losses import pinball_loss, pinball_per_step, quantile_kd_loss

    levels = torch.tensor([0.1, 0.5, 0.9])
    pred = torch.tensor([[[[0.0, 1.0, 2.0]], [[2.0, 2.5, 4.0]]]])  # [1, 2, 1, 3]
    y = torch.tensor([[[1.0], [3.0]]])
    # step 1: 0.1, 0, 0.1; step 2: 0.1, 0.25, 0.1 (means over levels)
    assert torch.allclose(pinball_per_step(pred, y, levels), torch.tensor([0.2 / 3, 0.45 / 3]))
    assert torch.isclose(pinball_loss(pred, y, levels), torch.tensor(0.65 / 6))
    teacher = pred + torch.tensor([0.5, 0.0, -1.0])
    w = horizon_weights(2, 0.0)
    # pinball against the teacher's values: rho_0.1(0.5) = 0.05, rho_0.9(-1) = 0.1, per step (0.15 / 3)
    assert torch.isclose(quantile_kd_loss(pred, teacher, levels, w, "pinball"), torch.tensor(0.05))
    assert torch.isclose(quantile_kd_loss(pred, teacher, levels, w, "l2"), torch.tensor((0.25 + 1.0) / 3))
    assert quantile_kd_loss(pred, pred, levels, horizon_weights(2, 1.0), "pinball") == 0
    with pytest.raises(ValueError, match="unknown quantile KD"):
        quantile_kd_loss(pred, teacher, levels, w, "kl")
