"""Graphviz diagrams of a model (``archdsl render``).

Nodes show the op and the arguments written in the source; edges carry the
shape that flows along them; each op family has its own colour, explained in
a legend.  Name scopes (block instances, ``layer1``-style sequential scopes)
are clusters; ``depth`` collapses scopes deeper than N name components into
one node, and identical consecutive blocks can be drawn once with "×N".
Nodes whose shape could not be inferred because of an error are red and
carry the message.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

from ..analysis import Analysis
from ..ops import Family, Input
from ..ops.base import show_shape
from ..values import show_value

FAMILY_COLOURS = {
    Family.INPUT: "#e6e6e6",
    Family.CONVOLUTION: "#cfe2f3",
    Family.POOLING: "#d9ead3",
    Family.NORMALIZATION: "#fff2cc",
    Family.ACTIVATION: "#fce5cd",
    Family.LINEAR: "#d9d2e9",
    Family.MERGE: "#f4cccc",
    Family.RESHAPE: "#eeeeee",
    Family.REGULARIZATION: "#f3f3f3",
}
BLOCK_COLOUR = "#c9daf8"
ERROR_COLOUR = "#e06666"
FIGURES = ("params", "macs", "flops")


@dataclass
class RenderOptions:
    rankdir: str = "TB"
    depth: int | None = None
    collapse_repeats: bool = False
    show: tuple[str, ...] = ()
    legend: bool = True


@dataclass
class _Group:
    """A drawn node: one graph node, or a collapsed scope of several."""

    key: str
    members: list[str]
    repeat: int = 1
    collapsed_keys: list[str] = field(default_factory=list)


def _label(lines: list[str]) -> str:
    """A multi-line DOT label; backslashes in user text stay literal."""
    return "\\n".join(line.replace("\\", "\\\\") for line in lines)


def _shape_text(shape) -> str:
    return "×".join(str(d) for d in shape) if shape is not None else "?"


def _call_text(node) -> str:
    """``conv2d(64, 3, stride=2)``: the arguments written in the source."""
    spec = node.spec
    written = [name for name in spec.model_fields_set if name != "op"]
    positional = []
    for name in spec.positional[:2]:  # the rest read better as keywords
        if name in written:
            positional.append(show_value(getattr(spec, name)))
            written.remove(name)
        else:
            break
    keywords = [f"{name}={show_value(getattr(spec, name))}" for name in sorted(written)]
    arguments = ", ".join(positional + keywords)
    return f"{spec.op}({arguments})" if arguments else spec.op


def _figures(analysis: Analysis, names: list[str], show: tuple[str, ...]) -> list[str]:
    lines = []
    costs = [analysis.costs.get(n) for n in names]
    for figure in show:
        total = sum(getattr(c, figure) for c in costs if c is not None)
        if total:
            lines.append(f"{figure}: {total:,}")
    return lines


def _groups(analysis: Analysis, options: RenderOptions) -> list[_Group]:
    model = analysis.model
    groups: dict[str, _Group] = {}
    for name in model.nodes:
        parts = name.split(".")
        depth = options.depth
        key = ".".join(parts[:depth]) if depth is not None and len(parts) > depth else name
        groups.setdefault(key, _Group(key, [])).members.append(name)
    ordered = list(groups.values())
    if options.collapse_repeats:
        ordered = _collapse_repeats(analysis, ordered)
    return ordered


def _collapse_repeats(analysis: Analysis, groups: list[_Group]) -> list[_Group]:
    """Merges runs of collapsed block instances with the same block and
    arguments, each feeding only the next, into one group drawn "×N"."""
    model = analysis.model
    out: list[_Group] = []
    for group in groups:
        previous = out[-1] if out else None
        instance = model.blocks.get(group.key)
        if previous is not None and instance is not None and len(group.members) > 1:
            last_key = previous.collapsed_keys[-1] if previous.collapsed_keys else previous.key
            before = model.blocks.get(last_key)
            entry_inputs = {i for m in group.members for i in model.nodes[m].inputs} - set(group.members)
            if (
                before is not None
                and before.block == instance.block
                and before.arguments == instance.arguments
                and before.parent == instance.parent
                and entry_inputs <= set(previous.members)
            ):
                previous.members += group.members
                previous.repeat += 1
                previous.collapsed_keys.append(group.key)
                continue
        out.append(group)
    return out


def failing_nodes(analysis: Analysis) -> dict[str, str]:
    """Nodes whose own shape rule failed, with the diagnostic's message."""
    model = analysis.model
    messages = {}
    for node in model.nodes.values():
        if analysis.shapes.get(node.name) is not None:
            continue
        if all(analysis.shapes.get(i) is not None for i in node.inputs):
            spans = {node.span, *node.argument_spans.values()}
            message = next((d.message for d in analysis.diagnostics if d.span in spans), "shape error")
            messages[node.name] = message
    return messages


def to_graphviz(analysis: Analysis, options: RenderOptions | None = None):
    """A ``graphviz.Digraph`` of the analysed model."""
    import graphviz

    options = options or RenderOptions()
    model = analysis.model
    graph = graphviz.Digraph(
        model.name,
        graph_attr={
            "rankdir": options.rankdir, "fontname": "Helvetica", "fontsize": "12", "nodesep": "0.25",
            "ranksep": "0.3", "label": f"{model.name}", "labelloc": "t", "compound": "true",
        },
        node_attr={"fontname": "Helvetica", "fontsize": "10", "shape": "box", "style": "rounded,filled",
                   "margin": "0.12,0.04", "height": "0.3"},
        edge_attr={"fontname": "Helvetica", "fontsize": "8", "color": "#555555", "arrowsize": "0.6"},
    )
    drawing = _Drawing(analysis, options)
    drawing.draw_scope(graph, "")
    drawing.draw_edges(graph)
    if options.legend:
        drawing.draw_legend(graph)
    return graph


def _scope_tree(groups: list[_Group]) -> dict[str, list[_Group]]:
    """Scope clusters: every name prefix shared by two or more drawn groups,
    with the groups drawn directly in it; every intermediate scope is
    present (perhaps empty), so that nesting is kept."""
    tree: dict[str, list[_Group]] = {}
    for group in groups:
        tree.setdefault(group.key.rpartition(".")[0], []).append(group)
    for scope in list(tree):
        parts = scope.split(".")
        for i in range(1, len(parts)):
            tree.setdefault(".".join(parts[:i]), [])
    return tree


class _Drawing:
    """One diagram: the analysed model, its drawn groups and scopes, and the
    families met so far (for the legend)."""

    def __init__(self, analysis: Analysis, options: RenderOptions) -> None:
        self.analysis = analysis
        self.options = options
        self.model = analysis.model
        self.errors = failing_nodes(analysis)
        self.groups = _groups(analysis, options)
        self.outputs = {node: name for name, node in self.model.outputs.items()}
        self.families_used: set[Family] = set()
        self.tree = _scope_tree(self.groups)

    def draw_layer(self, target, name: str) -> None:
        """A group of one layer: its call (or input shape), figures, output, error."""
        node = self.model.nodes[name]
        family = node.spec.family
        self.families_used.add(family)
        lines = [node.name, _call_text(node)] if node.name != node.op else [node.op]
        attrs = {"fillcolor": FAMILY_COLOURS[family]}
        if isinstance(node.spec, Input):
            shape = self.analysis.shapes.get(node.name)
            lines = [node.name, show_shape(node.spec.shape if shape is None else shape)]
        lines += _figures(self.analysis, [name], self.options.show)
        if isinstance(node.spec, Input):
            attrs.update(shape="invhouse", style="filled")
        if node.name in self.outputs:
            attrs.update(peripheries="2")
            lines.append(f"output: {self.outputs[node.name]}")
        if node.name in self.errors:
            attrs.update(fillcolor=ERROR_COLOUR, color="#990000", penwidth="2")
            lines += textwrap.wrap("error: " + self.errors[node.name], 48)
        target.node(node.name, _label(lines), **attrs)

    def draw_group(self, target, group: _Group) -> None:
        if len(group.members) == 1:
            self.draw_layer(target, group.members[0])
            return
        instance = self.model.blocks.get(group.key)
        last = group.members[-1]
        title = group.key
        if group.repeat > 1:
            title = f"{group.key} … {group.collapsed_keys[-1]}"
        if instance is not None:
            args = ", ".join(f"{k}={v}" for k, v in instance.arguments.items())
            lines = [title, f"{instance.block}({args})" + (f" ×{group.repeat}" if group.repeat > 1 else "")]
        else:
            lines = [title, f"{len(group.members)} layers"]
        last_shape = self.analysis.shapes.get(last)
        lines.append(show_shape(last_shape) if last_shape is not None else "?")
        lines += _figures(self.analysis, group.members, self.options.show)
        attrs = {"fillcolor": BLOCK_COLOUR, "shape": "box3d" if group.repeat > 1 else "box", "style": "filled"}
        failed = [m for m in group.members if m in self.errors]
        if failed:
            attrs.update(fillcolor=ERROR_COLOUR, color="#990000", penwidth="2")
            lines += textwrap.wrap("error: " + self.errors[failed[0]], 48)
        if last in self.outputs:
            attrs.update(peripheries="2")
            lines.append(f"output: {self.outputs[last]}")
        target.node(group.key, _label(lines), **attrs)

    def draw_scope(self, target, scope: str) -> None:
        tree = self.tree
        for group in tree.get(scope, []):
            self.draw_group(target, group)
        children = sorted({s for s in tree if s != scope and s.rsplit(".", 1)[0] == scope and "." in s}
                          | ({s for s in tree if s and "." not in s} if scope == "" else set()),
                          key=_scope_order(tree))
        for child in children:
            with target.subgraph(name=f"cluster_{child}") as cluster:
                instance = self.model.blocks.get(child)
                label = f"{child}: {instance.block}" if instance is not None else child
                cluster.attr(label=label, style="rounded,dashed", color="#999999", fontsize="10",
                             fontcolor="#444444")
                self.draw_scope(cluster, child)

    def draw_edges(self, graph) -> None:
        """One edge per (drawn source, drawn target, tensor), labelled with its shape."""
        drawn_as = {member: group.key for group in self.groups for member in group.members}
        drawn_edges = set()
        for node in self.model.nodes.values():
            target = drawn_as[node.name]
            for source in dict.fromkeys(node.inputs):
                origin = drawn_as[source]
                if origin == target or (origin, target, source) in drawn_edges:
                    continue
                drawn_edges.add((origin, target, source))
                graph.edge(origin, target, label=_shape_text(self.analysis.shapes.get(source)))

    def draw_legend(self, graph) -> None:
        with graph.subgraph(name="cluster_legend") as legend:
            legend.attr(label="legend", style="rounded", color="#cccccc", fontsize="9", rank="sink")
            # Graphviz lays a rank out right to left here; add in reverse to read left to right.
            if self.errors:
                legend.node("legend:error", "error", fillcolor=ERROR_COLOUR, fontsize="8", height="0.2")
            if any(len(g.members) > 1 for g in self.groups):
                legend.node("legend:block", "block", fillcolor=BLOCK_COLOUR, fontsize="8", height="0.2")
            for family in sorted(self.families_used, key=list(FAMILY_COLOURS).index, reverse=True):
                legend.node(f"legend:{family.value}", family.value, fillcolor=FAMILY_COLOURS[family],
                            fontsize="8", height="0.2")


def _scope_order(tree: dict[str, list[_Group]]):
    """Scopes in the order their first node appears."""
    first: dict[str, int] = {}
    index = 0
    for scope, groups in tree.items():
        for _ in groups:
            first.setdefault(scope, index)
            index += 1

    def key(scope: str) -> int:
        candidates = [i for s, i in first.items() if s == scope or s.startswith(scope + ".")]
        return min(candidates) if candidates else 1 << 30

    return key


def to_dot(analysis: Analysis, options: RenderOptions | None = None) -> str:
    """The DOT source text (no Graphviz program needed)."""
    return to_graphviz(analysis, options).source
