"""Ops that combine several tensors."""

from __future__ import annotations

from typing import Literal

from .base import Family, OpSpec


class _Merge(OpSpec):
    family = Family.MERGE
    min_inputs = 2
    max_inputs = None


class Add(_Merge):
    """Elementwise sum of tensors of one shape (residual connections)."""

    op: Literal["add"] = "add"


class Mul(_Merge):
    """Elementwise product with NumPy broadcasting (squeeze-and-excitation:
    ``[C, H, W] * [C, 1, 1]``)."""

    op: Literal["mul"] = "mul"


class Concat(_Merge):
    """Concatenation along ``dim`` (batch is dim 0, so 1 is channels); the
    other dimensions must agree."""

    op: Literal["concat"] = "concat"
    dim: int = 1
