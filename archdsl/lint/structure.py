"""Rules about the graph as a whole: merges, receptive field, parameter
distribution."""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Label
from ..ops.base import show_sizes
from ..ops.conv import _ConvTranspose
from ..ops.linear import Linear
from ..ops.merge import Add, Concat
from ..ops.reshape import Upsample
from ..report import covers_input, number
from .base import Finding, LintContext


def _coarse_jump(context: LintContext, name: str, origin: str) -> tuple:
    """The jump a branch had before it was upsampled (nearest or linear
    interpolation) on its way to ``name``, or () if it was not: the position
    of an upsampled feature is only known to within that jump."""
    fields = context.analysis.fields
    nodes = context.model.nodes
    while name in nodes and nodes[name].inputs and not isinstance(nodes[name].spec, (Add, Concat)):
        node = nodes[name]
        if isinstance(node.spec, (Upsample, _ConvTranspose)):
            field = fields.get(node.inputs[0], {}).get(origin)
            return field.jump if field is not None else ()
        name = node.inputs[0]
    return ()


def _aligned(first, other, tolerance: tuple) -> bool:
    if first.jump != other.jump:
        return False
    if not tolerance:
        return first.start == other.start
    return all(abs(a - b) < t for a, b, t in zip(first.start, other.start, tolerance))


def misaligned_merge(context: LintContext) -> Iterator[Finding]:
    """W209: merged inputs whose fields have different jumps or centres.
    A branch that was upsampled (FPN, U-Net, YOLO's route) is aligned to
    within its coarse jump and no better: centres that differ by less than
    that are the upsampling's own rounding, not a wiring mistake."""
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
            coarse = [_coarse_jump(context, source, origin) for source, _ in seen]
            tolerance = max(coarse, key=lambda jump: tuple(jump))
            first_name, first = seen[0]
            for name, field in seen[1:]:
                if not _aligned(first, field, tolerance):
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


#: I301 speaks when an output misses a real part of its input; a field that
#: covers 99% of an audio clip (M5) is the design's rounding, not a blind spot.
MIN_FIELD_SHARE = 0.9


def limited_receptive_field(context: LintContext) -> Iterator[Finding]:
    """I301"""
    analysis = context.analysis
    for output_name, node_name in context.model.outputs.items():
        for origin, field in analysis.fields.get(node_name, {}).items():
            extent = context.shape_of(origin)[1:]
            blind = any(r < e * MIN_FIELD_SHARE for r, e in zip(field.size, extent))
            if blind and not covers_input(analysis, node_name, origin):
                sizes = show_sizes(number(r) for r in field.size)
                yield Finding(
                    context.model.nodes[node_name].span,
                    f"output '{output_name}' sees {sizes} of the {show_sizes(extent)} input '{origin}'",
                    hint="add depth, stride, dilation or global pooling if each output should see the whole input",
                )


#: In a small model (LeNet, M5: five convolutions and linear layers) one
#: layer often holds most weights by design; the rule speaks about deep
#: networks, where such a layer (AlexNet's, VGG's fc6) is worth knowing of.
MIN_LAYERS_FOR_DOMINANCE = 8


def _is_layer(node) -> bool:
    """A convolution or a linear layer (normalisation's weights are not layers)."""
    return isinstance(node.spec, Linear) or node.spec.geometry() is not None


def dominant_layer(context: LintContext) -> Iterator[Finding]:
    """I302"""
    costs = context.analysis.costs
    total = sum(c.params for c in costs.values() if c is not None)
    nodes = context.model.nodes
    layers = sum(1 for name, c in costs.items() if c is not None and c.params and _is_layer(nodes[name]))
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
