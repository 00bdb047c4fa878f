"""students/layers.py: the cheaper dropout keeps nn.Dropout's distribution and is the identity in eval."""

import torch

from distilts.students.layers import Dropout, ReLUDropout


def test_dropout_keeps_the_probability_and_scales_like_nn_dropout() -> None:
    torch.manual_seed(0)
    x = torch.ones(512, 1024)
    for p in (0.1, 0.5, 0.9):
        y = Dropout(p)(x)
        kept = (y > 0).float().mean().item()
        assert abs(kept - (1 - p)) < 0.005
        assert torch.allclose(y[y > 0], torch.full_like(y[y > 0], 1 / (1 - p)))
        assert abs(y.mean().item() - 1.0) < 0.05


def test_dropout_is_the_identity_in_eval_and_at_zero() -> None:
    x = torch.randn(3, 5, 7)
    assert Dropout(0.0)(x) is x
    layer = Dropout(0.9).eval()
    assert layer(x) is x


def test_dropout_on_an_odd_shape_backpropagates_through_its_mask() -> None:
    torch.manual_seed(1)
    x = torch.randn(3, 5, 7, requires_grad=True)
    y = Dropout(0.5)(x)
    y.sum().backward()
    assert x.grad is not None
    assert torch.equal(x.grad != 0, y != 0)


def test_relu_dropout_equals_relu_then_dropout_for_the_same_draws() -> None:
    x = torch.randn(4, 33, 9, requires_grad=True)
    fused = ReLUDropout(0.7)
    torch.manual_seed(3)
    y = fused(x)
    y.sum().backward()
    g_fused = x.grad.clone()
    x.grad = None
    torch.manual_seed(3)
    ref = Dropout(0.7)(torch.relu(x))
    ref.sum().backward()
    assert torch.equal(y, ref)
    assert torch.equal(g_fused, x.grad)
    assert torch.equal(fused.eval()(x), torch.relu(x))
