"""Compile-time values of the language as the elaborator holds them, and
as messages and diagrams write them back as source text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tensor:
    """The output of a node, by node name."""

    node: str


@dataclass(frozen=True, eq=False)
class OpValue:
    """An op or block as a value (``act = leaky_relu(0.1)``), with the
    arguments given so far, applied later with ``-> act``.  ``args`` are
    syntax-tree arguments whose values are already evaluated (literals at
    the places they were written)."""

    name: str
    args: tuple[Any, ...]
    text: str  # as written: leaky_relu(0.1)


def show_value(value: Any) -> str:
    """A compile-time value as source text: true, "same", (1, 7)."""
    if isinstance(value, Tensor):
        return f"tensor {value.node}"
    if isinstance(value, OpValue):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "(" + ", ".join(show_value(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)
