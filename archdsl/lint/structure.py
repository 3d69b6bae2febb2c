"""Rules about the graph as a whole: merges, receptive field, parameter
distribution."""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Label
from ..ops.base import show_sizes
from ..ops.linear import Linear
from ..ops.merge import Add, Concat
from ..report import covers_input, number
from .base import Finding, LintContext


def misaligned_merge(context: LintContext) -> Iterator[Finding]:
    """W209: merged inputs whose fields have different jumps or centres."""
    fields = context.analysis.fields
    for node in context.nodes():
        if not isinstance(node.spec, (Add, Concat)):
            continue
        for origin in fields.get(node.name, {}):
            seen = []
            for source in dict.fromkeys(node.inputs):
                field = fields.get(source, {}).get(origin)
                if field is not None:
                    seen.append((source, field))
            if len(seen) < 2:
                continue
            first_name, first = seen[0]
            for name, field in seen[1:]:
                if field.jump != first.jump or field.start != first.start:
                    def describe(f):
                        return (f"jump {show_sizes(number(j) for j in f.jump)}, centre "
                                f"({', '.join(str(number(s)) for s in f.start)})")
                    yield Finding(
                        node.span,
                        f"{node.spec.op} merges branches that sample '{origin}' differently: "
                        f"{describe(first)} vs {describe(field)}",
                        labels=(Label(context.model.nodes[first_name].span, describe(first)),
                                Label(context.model.nodes[name].span, describe(field))),
                        hint="give the branches the same total stride and symmetric padding",
                    )
                    break
            else:
                continue
            break


def limited_receptive_field(context: LintContext) -> Iterator[Finding]:
    """I301"""
    analysis = context.analysis
    for output_name, node_name in context.model.outputs.items():
        for origin, field in analysis.fields.get(node_name, {}).items():
            extent = context.shape_of(origin)[1:]
            if any(r < e for r, e in zip(field.size, extent)) and not covers_input(analysis, node_name, origin):
                sizes = show_sizes(number(r) for r in field.size)
                yield Finding(
                    context.model.nodes[node_name].span,
                    f"output '{output_name}' sees {sizes} of the {show_sizes(extent)} input '{origin}'",
                    hint="add depth, stride, dilation or global pooling if each output should see the whole input",
                )


#: In a model of two or three weighted layers one of them always dominates;
#: the rule speaks about real networks.
MIN_LAYERS_FOR_DOMINANCE = 4


def dominant_layer(context: LintContext) -> Iterator[Finding]:
    """I302"""
    costs = context.analysis.costs
    total = sum(c.params for c in costs.values() if c is not None)
    layers = sum(1 for c in costs.values() if c is not None and c.params)
    if not total or layers < MIN_LAYERS_FOR_DOMINANCE:
        return
    for node in context.nodes():
        cost = costs.get(node.name)
        if cost is not None and cost.params * 2 > total:
            if isinstance(node.spec, Linear):
                hint = "global pooling before the classifier usually shrinks such a layer"
            else:
                hint = "fewer output channels, a smaller kernel or a bottleneck (1x1 reduce) shrink such a layer"
            yield Finding(
                node.span,
                f"'{node.name}' holds {cost.params:,} of the model's {total:,} parameters "
                f"({100 * cost.params / total:.0f}%)",
                hint=hint,
            )
