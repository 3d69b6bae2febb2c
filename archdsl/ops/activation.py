"""Elementwise activations and softmax: the output shape is the input's."""

from __future__ import annotations

from typing import Literal

from .base import Family, OpSpec


class _Activation(OpSpec):
    family = Family.ACTIVATION


class ReLU(_Activation):
    """``max(0, x)``"""

    op: Literal["relu"] = "relu"


class ReLU6(_Activation):
    """``min(max(0, x), 6)``"""

    op: Literal["relu6"] = "relu6"


class LeakyReLU(_Activation):
    """``x if x >= 0 else negative_slope·x``"""

    op: Literal["leaky_relu"] = "leaky_relu"
    positional = ("negative_slope",)
    negative_slope: float = 0.01


class Sigmoid(_Activation):
    """``1 / (1 + exp(-x))``"""

    op: Literal["sigmoid"] = "sigmoid"


class Tanh(_Activation):
    """``tanh(x)``"""

    op: Literal["tanh"] = "tanh"


class GELU(_Activation):
    """``x·Φ(x)`` (exact, with erf), or its tanh approximation."""

    op: Literal["gelu"] = "gelu"
    approximate: Literal["none", "tanh"] = "none"


class SiLU(_Activation):
    """``x·sigmoid(x)``, also called swish."""

    op: Literal["silu"] = "silu"
    op_aliases = ("swish",)


class Hardswish(_Activation):
    """``x·relu6(x + 3)/6``"""

    op: Literal["hardswish"] = "hardswish"


class Hardsigmoid(_Activation):
    """``relu6(x + 3)/6``"""

    op: Literal["hardsigmoid"] = "hardsigmoid"


class Softmax(_Activation):
    """``exp(x_i) / sum_j exp(x_j)`` along ``dim`` (batch is dim 0)."""

    op: Literal["softmax"] = "softmax"
    positional = ("dim",)
    dim: int = 1
