"""Presenting an analysis: the summary table (text, Markdown, CSV) and its
stable JSON form (documented in docs/analysis.md)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from fractions import Fraction

from .analysis import Analysis
from .ops.base import Shape, show_shape

# ---------------------------------------------------------------- numbers


def thousands(n: int) -> str:
    return f"{n:,}"


def si(n: float, unit: str = "") -> str:
    """4,089,184,256 -> '4.09 G'."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {prefix}{unit}"
    return f"{n:g} {unit}".rstrip()


def megabytes(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def number(x: Fraction | int | float):
    """A Fraction as JSON: an int when whole, else a float."""
    if isinstance(x, Fraction):
        return int(x) if x.denominator == 1 else float(x)
    return x


# ---------------------------------------------------------------- rows


@dataclass
class Row:
    name: str
    op: str
    shape: tuple[int, ...] | None
    params: int
    macs: int
    field: str


def _listed(shape: Shape | None) -> list[int] | None:
    """A shape as JSON writes it; None (null) when unknown or empty."""
    return list(shape) if shape else None


def covers_input(analysis: Analysis, node: str, origin: str) -> bool:
    """Whether each output position of ``node`` sees all of input ``origin``."""
    field = analysis.fields[node][origin]
    shape = analysis.shapes.get(node) or ()
    return field.covers(tuple((analysis.shapes.get(origin) or ())[1:]), tuple(shape[1:]))


def _field_text(analysis: Analysis, node: str) -> str:
    fields = analysis.fields.get(node)
    if not fields:
        return ""
    origin, first = next(iter(fields.items()))
    if covers_input(analysis, node, origin):
        return "all"
    sizes = [number(s) for s in first.size]
    if not sizes:
        return ""
    return str(sizes[0]) if len(set(sizes)) == 1 else "x".join(str(s) for s in sizes)


def rows(analysis: Analysis, depth: int | None = None) -> list[Row]:
    """One row per node, or per name prefix of ``depth`` components with the
    figures summed (a collapsed block or sequential scope)."""
    model = analysis.model
    batch = analysis.settings.batch
    groups: dict[str, list[str]] = {}
    for name in model.nodes:
        parts = name.split(".")
        key = ".".join(parts[:depth]) if depth is not None and len(parts) > depth else name
        groups.setdefault(key, []).append(name)
    out = []
    for key, members in groups.items():
        costs = [analysis.costs.get(m) for m in members]
        params = sum(c.params for c in costs if c)
        macs = batch * sum(c.macs for c in costs if c)
        last = members[-1]
        if members == [key]:
            op = model.nodes[key].op
        else:
            instance = model.blocks.get(key)
            op = instance.block if instance else f"{len(members)} nodes"
        out.append(Row(key, op, analysis.shapes.get(last), params, macs, _field_text(analysis, last)))
    return out


# ---------------------------------------------------------------- formats


HEADER = ("Layer", "Op", "Output shape", "Params", "MACs", "RF")


def _cells(row: Row) -> tuple[str, ...]:
    shape = show_shape(row.shape) if row.shape is not None else "?"
    return (row.name, row.op, shape, thousands(row.params), thousands(row.macs), row.field)


def _totals_lines(analysis: Analysis) -> list[tuple[str, str]]:
    t = analysis.totals
    return [
        ("Trainable parameters", thousands(t.params)),
        ("Buffers (running statistics)", thousands(t.buffers)),
        ("MACs", f"{thousands(t.macs)} ({si(t.macs)})"),
        ("FLOPs", f"{thousands(t.flops)} ({si(t.flops)})"),
        ("Parameter size", megabytes(t.param_bytes)),
        ("Peak activations (inference)", megabytes(t.peak_activation_bytes)),
        ("Activations kept for training", megabytes(t.training_activation_bytes)),
    ]


def _heading(analysis: Analysis) -> list[str]:
    model = analysis.model
    inputs = ", ".join(f"{name} {show_shape(analysis.shapes[name] or ())}" for name in model.inputs)
    return [f"{model.name}: {inputs}", f"Counting: {analysis.settings.describe()}"]


def render_text(analysis: Analysis, depth: int | None = None) -> str:
    table = [HEADER, *(_cells(r) for r in rows(analysis, depth))]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    right = {3, 4, 5}

    def line(cells) -> str:
        padded = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        return "  ".join(padded).rstrip()

    rule = "─" * len(line(HEADER))
    out = [*_heading(analysis), rule, line(HEADER), rule]
    out += [line(cells) for cells in table[1:]]
    out.append(rule)
    label_width = max(len(k) for k, _ in _totals_lines(analysis))
    out += [f"{k.ljust(label_width)}  {v}" for k, v in _totals_lines(analysis)]
    if not analysis.ok:
        out.append("Some shapes are unknown ('?') because of the errors reported; totals cover the known nodes.")
    return "\n".join(out) + "\n"


def render_markdown(analysis: Analysis, depth: int | None = None) -> str:
    out = [f"**{line}**  " if i == 0 else f"{line}" for i, line in enumerate(_heading(analysis))]
    out += ["", "| " + " | ".join(HEADER) + " |", "|" + "---|" * 2 + "---|" + "---:|" * 3]
    for row in rows(analysis, depth):
        cells = [c.replace("|", "\\|") for c in _cells(row)]
        cells[0] = f"`{cells[0]}`"
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "| Total | |", "|---|---:|"]
    out += [f"| {k} | {v} |" for k, v in _totals_lines(analysis)]
    return "\n".join(out) + "\n"


def render_csv(analysis: Analysis, depth: int | None = None) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", "op", "shape", "params", "macs", "receptive_field"])
    for row in rows(analysis, depth):
        shape = "x".join(map(str, row.shape)) if row.shape is not None else ""
        writer.writerow([row.name, row.op, shape, row.params, row.macs, row.field])
    return buffer.getvalue()


def to_json(analysis: Analysis) -> dict:
    """The stable JSON document of ``archdsl summary --format json``."""
    model = analysis.model
    batch = analysis.settings.batch
    nodes = []
    for node in model.nodes.values():
        cost = analysis.costs.get(node.name)
        shape = analysis.shapes.get(node.name)
        nodes.append({
            "name": node.name,
            "op": node.op,
            "family": node.spec.family.value,
            "block": node.block,
            "inputs": list(node.inputs),
            "shape": list(shape) if shape is not None else None,
            "params": cost.params if cost else None,
            "parameters": {k: list(v) for k, v in cost.parameter_shapes.items()} if cost else None,
            "buffers": cost.buffers if cost else None,
            "macs": batch * cost.macs if cost else None,
            "flops": batch * cost.flops if cost else None,
            "activation_bytes": analysis.memory.activation_bytes.get(node.name) if shape is not None else None,
            "receptive_field": {
                origin: {"size": [number(x) for x in f.size], "jump": [number(x) for x in f.jump],
                         "start": [number(x) for x in f.start],
                         "whole_input": covers_input(analysis, node.name, origin)}
                for origin, f in analysis.fields.get(node.name, {}).items()
            },
            "span": {"file": node.span.file, "line": node.span.line, "column": node.span.column},
        })
    t = analysis.totals
    return {
        "schema_version": 1,
        "model": model.name,
        "settings": {
            "batch": batch,
            "dtype": analysis.settings.dtype,
            "batchnorm": analysis.settings.conventions.batchnorm,
            "bias_in_flops": analysis.settings.conventions.bias,
        },
        "inputs": {name: list(analysis.shapes[name] or ()) for name in model.inputs},
        "outputs": {
            name: {"node": node, "shape": _listed(analysis.shapes.get(node))}
            for name, node in model.outputs.items()
        },
        "nodes": nodes,
        "totals": {
            "params": t.params,
            "buffers": t.buffers,
            "macs": t.macs,
            "flops": t.flops,
            "param_bytes": t.param_bytes,
            "peak_activation_bytes": t.peak_activation_bytes,
            "peak_activation_node": analysis.memory.peak_node,
            "training_activation_bytes": t.training_activation_bytes,
        },
        "diagnostics": [d.to_dict() for d in analysis.diagnostics],
    }


def render_json(analyses: list[Analysis]) -> str:
    return json.dumps({"models": [to_json(a) for a in analyses]}, indent=2) + "\n"


# ---------------------------------------------------------------- tree view

#: Columns of the tree view (``summary --tree --columns``), in display order.
COLUMNS = ("input", "output", "kernel", "params", "macs", "memory", "rf", "connected")
DEFAULT_COLUMNS = ("output", "params", "macs", "rf")
_TITLES = {"input": "Input shape", "output": "Output shape", "kernel": "Kernel", "params": "Params",
           "macs": "MACs", "memory": "Memory", "rf": "RF", "connected": "Connected to"}
_RIGHT = {"params", "macs", "memory", "rf"}


@dataclass
class TreeRow:
    """A row of the tree view: a layer, or a scope (container) with the
    figures of every layer under it."""

    name: str
    level: int  # 0 for top-level names
    is_scope: bool
    op: str
    members: list[str]
    inputs: list[str]  # nodes outside the row that it reads, in order
    input_shapes: list[Shape | None]
    shape: Shape | None
    kernel: str
    params: int
    macs: int  # batch included
    memory: int  # activation bytes of the row's outputs (a scope: of all its layers), batch included
    field: str
    span_line: int | None
    collapsed: bool = False  # a scope at --depth whose children are not shown


def _kernel_text(spec) -> str:
    geometry = spec.geometry()
    if geometry is None:
        return ""
    kernel = "x".join(str(k) for k in geometry.kernel)
    strides = set(geometry.stride)
    return kernel + (f" /{geometry.stride[0]}" if strides != {1} and len(strides) == 1 else "")


def _scope_row(analysis: Analysis, scope: str, members: list[str], collapsed: bool) -> TreeRow:
    model = analysis.model
    inside = set(members)
    entry = list(dict.fromkeys(i for m in members for i in model.nodes[m].inputs if i not in inside))
    costs = [analysis.costs.get(m) for m in members]
    instance = model.blocks.get(scope)
    last = members[-1]
    return TreeRow(
        name=scope, level=scope.count("."), is_scope=True,
        op=instance.block if instance is not None else "scope", members=members, inputs=entry,
        input_shapes=[analysis.shapes.get(i) for i in entry], shape=analysis.shapes.get(last), kernel="",
        params=sum(c.params for c in costs if c), macs=analysis.settings.batch * sum(c.macs for c in costs if c),
        memory=sum(analysis.memory.activation_bytes.get(m, 0) for m in members),
        field=_field_text(analysis, last), span_line=instance.span.line if instance is not None else None,
        collapsed=collapsed)


def _layer_row(analysis: Analysis, name: str) -> TreeRow:
    node = analysis.model.nodes[name]
    cost = analysis.costs.get(name)
    inputs = list(dict.fromkeys(node.inputs))
    return TreeRow(
        name=name, level=name.count("."), is_scope=False, op=node.op, members=[name], inputs=inputs,
        input_shapes=[analysis.shapes.get(i) for i in inputs], shape=analysis.shapes.get(name),
        kernel=_kernel_text(node.spec), params=cost.params if cost else 0,
        macs=analysis.settings.batch * cost.macs if cost else 0,
        memory=analysis.memory.activation_bytes.get(name, 0), field=_field_text(analysis, name),
        span_line=node.span.line)


def tree_rows(analysis: Analysis, depth: int | None = None) -> list[TreeRow]:
    """Rows in node order: each scope (a name prefix shared by layers, like
    ``layer1`` and ``layer1.0``) as a row before its first layer, layers
    after; with ``depth``, scopes of ``depth`` components are kept as
    collapsed rows and nothing under them is listed."""
    model = analysis.model
    members: dict[str, list[str]] = {}
    for name in model.nodes:
        parts = name.split(".")
        for i in range(1, len(parts)):
            members.setdefault(".".join(parts[:i]), []).append(name)
    out: list[TreeRow] = []
    opened: set[str] = set()
    for name in model.nodes:
        parts = name.split(".")
        hidden = False
        for i in range(1, len(parts)):
            scope = ".".join(parts[:i])
            collapsed = depth is not None and i >= depth
            if scope not in opened:
                opened.add(scope)
                out.append(_scope_row(analysis, scope, members[scope], collapsed))
            if collapsed:
                hidden = True
                break
        if not hidden:
            out.append(_layer_row(analysis, name))
    return out


def _shape_cell(shape: Shape | None, batch: int | None) -> str:
    if shape is None:
        return "?"
    return show_shape((batch, *shape) if batch is not None else shape)


def tree_cell(row: TreeRow, column: str, batch: int | None = None) -> str:
    """One cell of the tree view as text; ``batch`` prepends the batch dimension to shapes."""
    if column == "input":
        return ", ".join(_shape_cell(s, batch) for s in row.input_shapes)
    if column == "output":
        return _shape_cell(row.shape, batch)
    if column == "connected":
        return ", ".join(row.inputs)
    value = {"kernel": row.kernel, "params": thousands(row.params), "macs": thousands(row.macs),
             "memory": _bytes_text(row.memory), "rf": row.field}
    return value[column]


def _bytes_text(n: int) -> str:
    """Decimal units, as the totals' "MB"."""
    for factor, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if n >= factor:
            return f"{n / factor:.2f} {unit}"
    return f"{n} B"


def parse_columns(text: str | None) -> tuple[str, ...]:
    """``--columns input,output,...``; raises ValueError naming the unknown ones."""
    if not text:
        return DEFAULT_COLUMNS
    chosen = tuple(c.strip().lower() for c in text.split(",") if c.strip())
    unknown = [c for c in chosen if c not in COLUMNS]
    if unknown or not chosen:
        raise ValueError(f"--columns takes {','.join(COLUMNS)}; got {', '.join(unknown) or 'nothing'}")
    return tuple(dict.fromkeys(chosen))


def render_tree(analysis: Analysis, depth: int | None = None, columns: tuple[str, ...] = DEFAULT_COLUMNS,
                batch_in_shapes: bool = False) -> str:
    """The summary as a tree: scopes as rows with their totals, layers
    indented under them (two spaces a level), the chosen columns."""
    batch = analysis.settings.batch if batch_in_shapes else None
    header = ("Layer", "Op", *(_TITLES[c] for c in columns))
    table = [header]
    for row in tree_rows(analysis, depth):
        label = row.name.rpartition(".")[2] if row.level else row.name
        marker = "+ " if row.collapsed else ""
        table.append(("  " * row.level + marker + label, row.op, *(tree_cell(row, c, batch) for c in columns)))
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    right = {i + 2 for i, c in enumerate(columns) if c in _RIGHT}

    def line(cells) -> str:
        padded = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        return "  ".join(padded).rstrip()

    rule = "─" * len(line(header))
    out = [*_heading(analysis), rule, line(header), rule, *(line(r) for r in table[1:]), rule]
    label_width = max(len(k) for k, _ in _totals_lines(analysis))
    out += [f"{k.ljust(label_width)}  {v}" for k, v in _totals_lines(analysis)]
    if depth is not None:
        out.append(f"'+' marks a scope whose layers deeper than --depth {depth} are summed into its row.")
    if not analysis.ok:
        out.append("Some shapes are unknown ('?') because of the errors reported; totals cover the known nodes.")
    return "\n".join(out) + "\n"
