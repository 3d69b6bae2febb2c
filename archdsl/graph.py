"""The elaborated layer graph: nodes with validated specs and source spans.

Elaboration creates nodes in dependency order (every input exists before its
consumer), so ``Model.nodes`` is already a deterministic topological order;
``Model.graph`` is the same graph as a networkx DiGraph for graph algorithms.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .ops import LayerSpec
from .source import Span


class Node(BaseModel):
    """One layer: a named op applied to the outputs of other nodes."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    name: str = Field(description="Unique hierarchical name, like a PyTorch module path: layer1.0.conv1")
    spec: LayerSpec = Field(description="The op and its validated arguments")
    inputs: tuple[str, ...] = Field(description="Names of the nodes whose outputs this node consumes, in order")
    span: Span = Field(description="Where the op is written")
    argument_spans: dict[str, Span] = Field(default_factory=dict, description="Where each explicit argument is written")
    block: str | None = Field(None, description="Path of the innermost block instance this node belongs to")
    piped: bool = Field(False, description="A merge whose first input is the chain's value (x -> concat(y))")

    @property
    def op(self) -> str:
        return self.spec.op


class BlockInstance(BaseModel):
    """One instantiation of a ``block``: a scope of nodes, drawn as a cluster."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    path: str = Field(description="Node-name prefix of the instance, e.g. layer1.0")
    block: str = Field(description="The block's name")
    arguments: dict[str, str] = Field(description="Compile-time arguments, as source text")
    parent: str | None = Field(None, description="Path of the enclosing block instance")
    span: Span


class Expectation(BaseModel):
    """An ``expect`` statement: a figure compared with a value, or an output's shape."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    figure: str = Field(description="params, buffers, macs, flops, param_bytes, peak_activation, "
                                    "training_activation, or 'output' for an output shape")
    op: str = Field(description="Comparison: == != < <= > >=; '==' for output shapes")
    value: float | int | tuple[int, ...]
    output: str | None = Field(None, description="The output's name, for output shapes (None: the only output)")
    span: Span


#: Figures an ``expect`` statement can name, and what they measure.
FIGURES = {
    "params": "trainable parameters",
    "buffers": "buffer elements",
    "macs": "multiply-accumulates",
    "flops": "floating-point operations",
    "param_bytes": "parameter bytes",
    "peak_activation": "peak activation bytes (inference)",
    "training_activation": "activation bytes kept for training",
}


class Model(BaseModel):
    """One ``model``: its inputs, outputs and nodes in topological order."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    name: str
    span: Span
    inputs: tuple[str, ...] = Field(description="Names of the input nodes, in declaration order")
    outputs: dict[str, str] = Field(description="Output name -> node name")
    nodes: dict[str, Node] = Field(description="Every node by name, in topological order")
    blocks: dict[str, BlockInstance] = Field(default_factory=dict, description="Block instances by path")
    expectations: tuple[Expectation, ...] = Field((), description="The model's expect statements")

    def node(self, name: str) -> Node:
        return self.nodes[name]

    def order(self) -> list[Node]:
        """Nodes in deterministic topological order (inputs first)."""
        return list(self.nodes.values())

    @functools.cached_property
    def graph(self) -> Any:
        """networkx DiGraph: node attribute ``node``; edge attribute ``ports``
        lists the input positions an edge feeds (``add(x, x)`` has two)."""
        import networkx as nx

        graph = nx.DiGraph()
        for node in self.nodes.values():
            graph.add_node(node.name, node=node)
            for port, source in enumerate(node.inputs):
                if graph.has_edge(source, node.name):
                    graph.edges[source, node.name]["ports"].append(port)
                else:
                    graph.add_edge(source, node.name, ports=[port])
        return graph

    def consumers(self) -> dict[str, list[str]]:
        """Node name -> names of the nodes that read it, in order."""
        result: dict[str, list[str]] = {name: [] for name in self.nodes}
        for node in self.nodes.values():
            for source in dict.fromkeys(node.inputs):
                result[source].append(node.name)
        return result


def json_schema() -> dict:
    """The JSON Schema of an elaborated model, as ``archdsl parse --json`` prints it."""
    return Model.model_json_schema()
