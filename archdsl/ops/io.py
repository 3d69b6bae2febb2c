"""The model input: a tensor of a declared shape (batch excluded)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import PositiveInt

from .base import Family, OpSpec, Shape

if TYPE_CHECKING:
    from ..emit.onnx import OnnxGraph


class Input(OpSpec):
    """Declared by ``input name: [C, H, W]``; not callable in a chain."""

    family = Family.INPUT
    op: Literal["input"] = "input"
    min_inputs = 0
    max_inputs = 0
    shape: tuple[PositiveInt, ...]

    def infer(self, inputs: list[Shape]) -> Shape:
        """The declared shape."""
        return self.shape

    onnx_ops = ("graph input",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """A graph input named as the model's input (at the size exported)."""
        return g.graph_input()


#: This family's ops, in the order the registry (``archdsl.ops.OPS``) lists them.
OPS: tuple[type[OpSpec], ...] = (
    Input,
)
