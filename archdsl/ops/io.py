"""The model input: a tensor of a declared shape (batch excluded)."""

from __future__ import annotations

from typing import Literal

from pydantic import PositiveInt

from .base import Family, OpSpec, Shape


class Input(OpSpec):
    """Declared by ``input name: [C, H, W]``; not callable in a chain."""

    family = Family.INPUT
    op: Literal["input"] = "input"
    min_inputs = 0
    max_inputs = 0
    shape: tuple[PositiveInt, ...]

    def infer(self, inputs: list[Shape]) -> Shape:
        return self.shape
