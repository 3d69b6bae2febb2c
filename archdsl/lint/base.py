"""What every lint rule gets (the analysed model and convenient views of
it) and what it returns."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..analysis import Analysis
from ..diagnostics import Label
from ..graph import Node
from ..ops.base import Shape
from ..source import Span


@dataclass(frozen=True)
class Finding:
    span: Span
    message: str
    hint: str | None = None
    labels: tuple[Label, ...] = ()


class LintContext:
    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self.model = analysis.model
        self.shapes = analysis.shapes
        self._shared: dict = {}

    @functools.cached_property
    def consumers(self) -> dict[str, list[str]]:
        return self.model.consumers()

    @functools.cached_property
    def _known(self) -> list[Node]:
        shapes = self.shapes
        return [node for node in self.model.nodes.values() if shapes.get(node.name) is not None]

    def nodes(self) -> list[Node]:
        """Nodes with a known shape (rules say nothing about broken ones), in
        graph order; listed once for all the rules."""
        return self._known

    def shared(self, compute):
        """``compute(context)``, computed once per context: a view of the
        model that several rules walk (see geometry.windowed)."""
        try:
            return self._shared[compute]
        except KeyError:
            value = self._shared[compute] = compute(self)
            return value

    def shape_of(self, name: str) -> Shape:
        """The shape of a node the rules look at: one of :meth:`nodes`, or
        an input of one (a node's shape is known only if its inputs' are)."""
        shape = self.shapes[name]
        if shape is None:
            raise KeyError(f"{name} has no known shape; rules look only at context.nodes()")
        return shape

    def only_consumer(self, node: Node) -> Node | None:
        """The single node reading ``node``'s output, if exactly one does and
        it is not also a model output."""
        readers = self.consumers.get(node.name, [])
        if len(readers) != 1 or node.name in self.model.outputs.values():
            return None
        return self.model.nodes[readers[0]]

    def span_of(self, node: Node, argument: str | None = None) -> Span:
        return node.argument_spans.get(argument, node.span) if argument else node.span
