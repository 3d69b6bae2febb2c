"""Fully connected layer, as torch.nn.Linear."""

from __future__ import annotations

from typing import Literal

from pydantic import PositiveInt

from .base import Family, OpSpec


class Linear(OpSpec):
    """``y = x W^T + b`` over the last dimension; W is ``[out, in]``."""

    family = Family.LINEAR
    op: Literal["linear"] = "linear"
    positional = ("out_features",)
    out_features: PositiveInt
    bias: bool = True
    #: Optional: checked against the incoming features when given.
    in_features: PositiveInt | None = None
