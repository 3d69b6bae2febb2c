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
