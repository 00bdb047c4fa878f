"""Factorized Temporal Alignment: shapes, the separable boundary case, training-only."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distilts.distill.fta import FTA

torch.set_num_threads(1)


def test_shapes():
    fta = FTA(d_student=12, d_teacher=20, n_tokens=5, latent=8)
    h = torch.randn(3, 4, 12)
    assert fta(h).shape == (3, 4, 5, 20)
    assert fta.loss(h, torch.randn(3, 4, 5, 20, dtype=torch.float16)).ndim == 0


def test_fits_time_separable_teacher_states_with_one_hot_time_embeddings():
    """Boundary case: H[b, d, t] = f(h[b, d]) * g(t) with f linear; with E_t fixed one-hot (u = T)
    and phi = identity FTA is a rank-1 factorisation per token, so gradient descent fits it to ~0.
    (With GELU the same target is exactly representable, see the next test, but the fit is
    non-convex: Adam from a random init often stalls in a local minimum, so that is not asserted.)"""
    torch.manual_seed(0)
    B, D, d_s, T, d_t = 64, 3, 8, 6, 10
    h = torch.randn(B, D, d_s)
    direction, g = torch.randn(d_s), torch.randn(T, d_t)
    teacher = (h @ direction)[..., None, None] * g  # [B, D, T, d_T]

    fta = FTA(d_s, d_t, T, latent=T, phi=nn.Identity)
    with torch.no_grad():
        fta.E.copy_(torch.eye(T))
    fta.E.requires_grad_(False)
    opt = torch.optim.Adam([p for p in fta.parameters() if p.requires_grad], lr=1e-2)
    start = fta.loss(h, teacher).item()
    for _ in range(800):
        opt.zero_grad()
        loss = fta.loss(h, teacher)
        loss.backward()
        opt.step()
    assert loss.item() < 1e-4 * start and loss.item() < 1e-4 * teacher.var().item()


def test_exact_solution_exists():
    """The construction in the docstring above gives zero loss without training."""
    torch.manual_seed(1)
    d_s, T, d_t = 5, 4, 3
    h = torch.randn(7, 2, d_s)
    direction, g = torch.randn(d_s), torch.randn(T, d_t)
    teacher = F.gelu(h @ direction)[..., None, None] * g
    fta = FTA(d_s, d_t, T, latent=T)
    with torch.no_grad():
        fta.E.copy_(torch.eye(T))
        fta.W_s.weight.copy_(direction.expand(T, d_s))
        fta.W_out.weight.copy_(g.T)
    assert fta.loss(h, teacher).item() < 1e-10


def test_a_default_fta_is_the_distilts_aligner():
    """VarTimeFactorAligner: u = 256, GELU, no biases, E ~ N(0, 1/u), blocks of 128 tokens."""
    fta = FTA(12, 20, 512)
    assert fta.latent == 256 and isinstance(fta.phi, nn.GELU) and fta.block == 128
    assert fta.W_s.bias is None and fta.W_out.bias is None
    assert abs(fta.E.std().item() - 1 / 16) < 0.002 and abs(fta.E.mean().item()) < 0.002


def test_loss_is_the_mean_of_per_block_mses():
    torch.manual_seed(0)
    fta = FTA(6, 5, 130, latent=8)
    h, target = torch.randn(2, 3, 6), torch.randn(2, 3, 130, 5)
    pred = fta(h)
    expected = (F.mse_loss(pred[:, :, :128], target[:, :, :128]) + F.mse_loss(pred[:, :, 128:], target[:, :, 128:])) / 2
    assert torch.allclose(fta.loss(h, target), expected)
