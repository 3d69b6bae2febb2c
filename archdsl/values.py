"""Compile-time values of the language as the elaborator holds them, and
as messages and diagrams write them back as source text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tensor:
    """The output of a node, by node name."""

    node: str


def show_value(value: Any) -> str:
    """A compile-time value as source text: true, "same", (1, 7)."""
    if isinstance(value, Tensor):
        return f"tensor {value.node}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "(" + ", ".join(show_value(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)
