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
from dataclasses import dataclass, field, replace
from html import escape

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


#: The automatic view (``archdsl render`` without ``--depth``) is the deepest
#: one that draws at most this many nodes ...
AUTO_MAX_NODES = 60
#: ... on a longest path of at most this many nodes: at about 80 px a rank
#: (a two-line node, the edge's shape label, the gap), 24 ranks keep a
#: top-to-bottom drawing under about 2000 px at 96 dpi.
AUTO_MAX_RANKS = 24
#: What is left over is scaled down to this long side, in inches (2000 px
#: at 96 dpi), so that no default drawing needs scrolling in two directions.
AUTO_MAX_INCHES = 2000 / 96


@dataclass
class RenderOptions:
    rankdir: str = "TB"
    depth: int | None = None
    collapse_repeats: bool = False
    show: tuple[str, ...] = ()
    legend: bool = True
    #: Choose ``depth`` (and collapsing) by the AUTO_* limits; see choose_view.
    auto: bool = False


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


def _depth_key(name: str, depth: int | None) -> str:
    parts = name.split(".")
    return ".".join(parts[:depth]) if depth is not None and len(parts) > depth else name


def _groups(analysis: Analysis, options: RenderOptions) -> list[_Group]:
    model = analysis.model
    groups: dict[str, _Group] = {}
    for name in model.nodes:
        key = _depth_key(name, options.depth)
        groups.setdefault(key, _Group(key, [])).members.append(name)
    ordered = list(groups.values())
    if options.collapse_repeats:
        ordered = _collapse_repeats(analysis, ordered, options.depth)
    return ordered


def _instance_members(model, path: str) -> list[str]:
    prefix = path + "."
    return [n for n in model.nodes if n.startswith(prefix)]


def _signature(model, path: str, members: list[str]) -> tuple:
    """What makes two block instances identical: the same block, and the
    same nodes (by relative name) with the same arguments and the same
    wiring inside.  Source-text arguments are not compared: ``stride = if
    i == 0 then 2 else 1`` reads the same in every instance."""
    cut = len(path) + 1
    inside = set(members)
    nodes = []
    for name in members:
        node = model.nodes[name]
        wiring = tuple(i[cut:] if i in inside else "<in>" for i in node.inputs)
        nodes.append((name[cut:], node.spec, wiring))
    return (model.blocks[path].block, tuple(nodes))


def _repeat_runs(model, depth: int | None) -> list[list[str]]:
    """Runs of two or more identical sibling block instances, each fed only
    by the one before it, outermost first (an instance inside a run found
    earlier is not looked at again); instances deeper than ``depth`` are
    already drawn inside their collapsed scope."""
    runs: list[list[str]] = []
    taken: set[str] = set()
    order = {name: i for i, name in enumerate(model.nodes)}
    paths = sorted((p for p in model.blocks if depth is None or p.count(".") < depth),
                   key=lambda p: (p.count("."), order.get(next(iter(_instance_members(model, p)), ""), 0)))
    members = {p: _instance_members(model, p) for p in paths}
    current: list[str] = []
    for path in paths + [""]:
        if any(path.startswith(t + ".") for t in taken):
            continue
        previous = current[-1] if current else None
        if previous is not None and path and _follows(model, previous, path, members, order):
            current.append(path)
            continue
        if len(current) > 1:
            runs.append(current)
            taken.update(current)
        current = [path] if path and members[path] else []
    return runs


def _follows(model, previous: str, path: str, members: dict[str, list[str]], order: dict[str, int]) -> bool:
    before, now = members[previous], members[path]
    if not now or previous.rpartition(".")[0] != path.rpartition(".")[0]:
        return False
    if order[now[0]] != order[before[-1]] + 1:
        return False
    entry = {i for m in now for i in model.nodes[m].inputs} - set(now)
    return entry <= set(before) and _signature(model, previous, before) == _signature(model, path, now)


def _collapse_repeats(analysis: Analysis, groups: list[_Group], depth: int | None) -> list[_Group]:
    """Replaces the groups of each run of identical block instances by one
    group drawn "×N"."""
    runs = _repeat_runs(analysis.model, depth)
    run_of = {}
    for run in runs:
        for path in run:
            run_of[path] = run
    out: list[_Group] = []
    merged: dict[str, _Group] = {}
    for group in groups:
        owner = next((p for p in _prefixes(group.key) if p in run_of), None)
        if owner is None:
            out.append(group)
            continue
        run = run_of[owner]
        if run[0] not in merged:
            merged[run[0]] = _Group(run[0], [], repeat=len(run), collapsed_keys=run[1:])
            out.append(merged[run[0]])
        merged[run[0]].members += group.members
    return out


def _prefixes(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _longest_path(model, groups: list[_Group]) -> int:
    """Nodes on the longest path of the drawn graph (its number of ranks)."""
    drawn_as = {m: g.key for g in groups for m in g.members}
    length: dict[str, int] = {}
    for node in model.nodes.values():  # topological order
        key = drawn_as[node.name]
        best = length.get(key, 1)
        for source in node.inputs:
            origin = drawn_as[source]
            if origin != key:
                best = max(best, length.get(origin, 1) + 1)
        length[key] = best
    return max(length.values(), default=0)


def choose_view(analysis: Analysis, options: RenderOptions) -> RenderOptions:
    """The options to draw with.  With ``auto``: the deepest ``depth`` whose
    drawing has at most AUTO_MAX_NODES nodes and AUTO_MAX_RANKS ranks,
    trying each depth first as it is, then with runs of identical blocks
    collapsed; the shallowest depth when none fits."""
    if not options.auto:
        return options
    model = analysis.model
    deepest = max((n.count(".") + 1 for n in model.nodes), default=1)
    tries = [(d, c) for d in range(deepest, 0, -1) for c in ((True,) if options.collapse_repeats else (False, True))]
    for depth, collapse in tries:
        view = replace(options, depth=None if depth == deepest else depth, collapse_repeats=collapse, auto=False)
        groups = _groups(analysis, view)
        if len(groups) <= AUTO_MAX_NODES and _longest_path(model, groups) <= AUTO_MAX_RANKS:
            return view
    return replace(options, depth=1, collapse_repeats=True, auto=False)


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
    limit = {"size": f"{AUTO_MAX_INCHES:.2f},{AUTO_MAX_INCHES:.2f}"} if options.auto else {}
    options = choose_view(analysis, options)
    model = analysis.model
    graph = graphviz.Digraph(
        model.name,
        graph_attr={
            "rankdir": options.rankdir, "fontname": "Helvetica", "fontsize": "12", "nodesep": "0.25",
            "ranksep": "0.3", "label": f"{model.name}", "labelloc": "t", "compound": "true",
            **limit,
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
            title = f"{group.key} … {group.collapsed_keys[-1].rpartition('.')[2]}"
        if instance is not None:
            args = ", ".join(f"{k}={v}" for k, v in instance.arguments.items())
            call = f"{instance.block}({args})" + (f" ×{group.repeat}" if group.repeat > 1 else "")
        else:
            call = f"{len(group.members)} layers"
        last_shape = self.analysis.shapes.get(last)
        extra = _figures(self.analysis, group.members, self.options.show)
        attrs = {"fillcolor": BLOCK_COLOUR, "shape": "box3d" if group.repeat > 1 else "box", "style": "filled"}
        failed = [m for m in group.members if m in self.errors]
        if failed:
            attrs.update(fillcolor=ERROR_COLOUR, color="#990000", penwidth="2")
            extra += textwrap.wrap("error: " + self.errors[failed[0]], 48)
        if last in self.outputs:
            attrs.update(peripheries="2")
            extra.append(f"output: {self.outputs[last]}")
        branches = _branches(self.model, group) if group.repeat == 1 else {}
        if len(branches) >= 2:
            attrs.update(shape="plain", margin="0")
            label = _branch_table(self, title, call, branches, last_shape, extra, attrs["fillcolor"])
            target.node(group.key, label, **{k: v for k, v in attrs.items() if k != "fillcolor"})
            return
        lines = [title, call, show_shape(last_shape) if last_shape is not None else "?", *extra]
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
                # Titles at the top left, where edges into the cluster seldom pass.
                cluster.attr(label=label, style="rounded,dashed", color="#999999", fontsize="9",
                             fontcolor="#444444", labeljust="l", labelloc="t")
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
        """One small table node under the drawing, three swatches a row, so
        that it never sets the width of a narrow graph."""
        entries = [(family.value, FAMILY_COLOURS[family])
                   for family in sorted(self.families_used, key=list(FAMILY_COLOURS).index)]
        if any(len(g.members) > 1 for g in self.groups):
            entries.append(("block", BLOCK_COLOUR))
        if self.errors:
            entries.append(("error", ERROR_COLOUR))
        rows = ["<TR>" + "".join(f'<TD BGCOLOR="{colour}">{escape(text)}</TD>' for text, colour in entries[i:i + 3])
                + "</TR>" for i in range(0, len(entries), 3)]
        table = ('<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="2" CELLPADDING="2" COLOR="#bbbbbb">'
                 + "".join(rows) + "</TABLE>>")
        with graph.subgraph(name="legend_rank") as bottom:
            bottom.attr(rank="sink")
            bottom.node("legend", table, shape="plain", fontsize="7", tooltip="legend")


def _branches(model, group: _Group) -> dict[str, list[str]]:
    """The parallel branches of a collapsed scope: its sub-scopes that read
    only from outside it (e.g. an Inception block's branch1..branch4)."""
    cut = len(group.key) + 1
    inside = set(group.members)
    children: dict[str, list[str]] = {}
    for name in group.members:
        child, dot, _ = name[cut:].partition(".")
        if dot:
            children.setdefault(child, []).append(name)
    branches = {}
    for child, members in children.items():
        own = set(members)
        entry = {i for m in members for i in model.nodes[m].inputs} - own
        if not entry & inside:
            branches[child] = members
    return branches


def _branch_steps(model, scope: str, members: list[str]) -> list[str]:
    """A branch as its steps: block instances as calls, other layers as ops."""
    steps: list[str] = []
    seen: set[str] = set()
    for name in members:
        if scope in model.blocks:  # the branch is one block instance (GoogLeNet's branch1)
            instance = model.blocks[scope]
            return [f"{instance.block}({', '.join(instance.arguments.values())})"]
        instance_path = next((p for p in _prefixes(name)[:-1] if p.startswith(scope + ".") and p in model.blocks),
                             None)
        if instance_path is not None:
            if instance_path not in seen:
                seen.add(instance_path)
                instance = model.blocks[instance_path]
                steps.append(f"{instance.block}({', '.join(instance.arguments.values())})")
        else:
            steps.append(_call_text(model.nodes[name]))
    return steps


def _branch_table(drawing: _Drawing, title: str, call: str, branches: dict[str, list[str]], shape,
                  extra: list[str], colour: str) -> str:
    """An HTML-like label: the block's title and call over one cell per branch."""
    model = drawing.model
    prefix = title.split(" ")[0]
    cells = []
    for child, members in branches.items():
        steps = _branch_steps(model, f"{prefix}.{child}", members)
        if len(steps) > 3:
            steps = steps[:2] + [f"… {len(steps) - 2} more"]
        out = drawing.analysis.shapes.get(members[-1])
        lines = [f"<B>{escape(child)}</B>", *(escape(s) for s in steps), escape(_shape_text(out))]
        cells.append(f'<TD BGCOLOR="white" CELLPADDING="2"><FONT POINT-SIZE="8">{"<BR/>".join(lines)}</FONT></TD>')
    span = len(cells)
    head = [escape(title), escape(call), escape(show_shape(shape) if shape is not None else "?")]
    rows = [f'<TR><TD COLSPAN="{span}">{escape(title)}<BR/>{head[1]}</TD></TR>',
            "<TR>" + "".join(cells) + "</TR>",
            f'<TR><TD COLSPAN="{span}">{"<BR/>".join([head[2], *(escape(e) for e in extra)])}</TD></TR>']
    return (f'<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="3" BGCOLOR="{colour}" COLOR="#777777">'
            + "".join(rows) + "</TABLE>>")


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
