"""The activation hyperparameter of the zoo students: one name, one module.

GELU (erf) exists in ONNX, OpenVINO and TFLite but not in TFLite Micro's int8 kernels nor in Vela, so a
student built with `activation="gelu"` cannot go below the Pi. Its tanh approximation ("gelu_tanh") and
ReLU are the variants a microcontroller target (and `distilts search`) may choose instead: a
hyperparameter of the same model, not a fork.
"""

from __future__ import annotations

from torch import nn

ACTIVATIONS = ("relu", "gelu", "gelu_tanh")


def make_activation(name: str) -> nn.Module:
    """The module for activation `name` (one of ACTIVATIONS)."""
    if name == "relu":
        return nn.ReLU()
    if name == "gelu":
        return nn.GELU()
    if name == "gelu_tanh":
        return nn.GELU(approximate="tanh")
    raise ValueError(f"activation must be one of {ACTIVATIONS} (got {name!r}).")
