"""Small building blocks shared by the zoo students: activation by name, Keras-style initialisation."""

from __future__ import annotations

from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU(approximate="tanh")}


def activation_layer(name: str) -> nn.Module:
    """The activation module named `name`: "relu", "gelu" (exact) or "gelu_tanh" (tanh approximation)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)} (got {name!r}).")
    return ACTIVATIONS[name]()


def keras_init(*modules: nn.Module) -> None:
    """Keras Dense's initialisation on every Linear in `modules`: Glorot-uniform weights, zero biases."""
    for module in modules:
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
