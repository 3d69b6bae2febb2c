"""``archdsl explain``: the arithmetic behind one node, as a person checks it
by hand (shape formula with the numbers in, each weight tensor's product,
the MAC product, the receptive field)."""

from __future__ import annotations

from .analysis import Analysis
from .ops.base import numel, show_shape
from .passes.shapes import known_inputs
from .report import number
from .values import show_value


def _product(shape) -> str:
    return "·".join(str(d) for d in shape) if shape else "1"


def explain(analysis: Analysis, name: str) -> str:
    model = analysis.model
    node = model.nodes[name]
    spec = node.spec
    inputs = known_inputs(analysis.shapes, node)
    output = analysis.shapes.get(name)
    cost = analysis.costs.get(name)
    arguments = ", ".join(f"{k}={show_value(v)}" for k, v in spec.arguments().items() if v is not None)
    lines = [f"{name}: {spec.op}({arguments})",
             f"  defined at {node.span}"]
    if node.block:
        lines.append(f"  in block {model.blocks[node.block].block} ({node.block})")
    if output is None or inputs is None or cost is None:
        lines.append("  shape unknown: see the diagnostics above")
        return "\n".join(lines) + "\n"
    for source, shape in zip(node.inputs, inputs):
        lines.append(f"  input  {source}: {show_shape(shape)}")
    lines.append(f"  output {show_shape(output)}")
    for line in spec.explain_shape(inputs, output):
        lines.append(f"    {line}")
    if cost.parameter_shapes:
        parts = []
        for key, shape in cost.parameter_shapes.items():
            product = f" = {_product(shape)}" if len(shape) > 1 else ""
            lines.append(f"  {key} {show_shape(shape)}{product} = {numel(shape):,}")
            parts.append(f"{numel(shape):,}")
        if len(parts) > 1:
            lines.append(f"  params = {' + '.join(parts)} = {cost.params:,}")
    else:
        lines.append("  params = 0")
    for key, shape in cost.buffer_shapes.items():
        lines.append(f"  buffer {key} {show_shape(shape)} = {numel(shape):,}")
    macs = spec.explain_macs(inputs, output)
    lines.append(f"  MACs = {macs}" if macs else f"  MACs = {cost.macs:,}")
    lines.append(f"  FLOPs = {cost.flops:,}  ({analysis.settings.conventions.describe()})")
    lines.append(f"  activation = {_product(output)}·{analysis.memory.activation_bytes[name] // max(numel(output), 1)}"
                 f" bytes = {analysis.memory.activation_bytes[name]:,} bytes")
    for origin, field in analysis.fields.get(name, {}).items():
        size = "x".join(str(number(s)) for s in field.size)
        jump = "x".join(str(number(s)) for s in field.jump)
        start = ", ".join(str(number(s)) for s in field.start)
        lines.append(f"  receptive field on {origin}: {size}, jump {jump}, first centre at ({start})")
    return "\n".join(lines) + "\n"
