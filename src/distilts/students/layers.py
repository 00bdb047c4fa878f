"""Keras-style initialisation for the zoo students whose official code is Keras (TSMixer, TiDE)."""

from __future__ import annotations

from torch import nn


def keras_init(*modules: nn.Module) -> None:
    """Keras Dense's initialisation on every Linear in `modules`: Glorot-uniform weights, zero biases."""
    for module in modules:
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
