"""Shape inference: every node's output shape, or a diagnostic at the op.

A node whose input is unknown (because an earlier node failed) is unknown
too and is not reported again, so each mistake is reported once and
independent mistakes are all reported.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..diagnostics import Diagnostic, Label, block_uses
from ..graph import Model, Node
from ..ops import Input
from ..ops.base import Shape, ShapeError, show_shape
from ..source import Span


def infer_shapes(model: Model, input_shapes: Mapping[str, Shape] | None = None
                 ) -> tuple[dict[str, Shape | None], list[Diagnostic]]:
    """Output shape of every node (None where unknown) and the errors found.

    ``input_shapes`` overrides declared input shapes (``--input``)."""
    overrides = dict(input_shapes or {})
    shapes: dict[str, Shape | None] = {}
    diagnostics: list[Diagnostic] = []
    for node in model.nodes.values():
        if isinstance(node.spec, Input):
            shapes[node.name] = tuple(overrides.get(node.name, node.spec.shape))
            continue
        inputs = known_inputs(shapes, node)
        if inputs is None:
            shapes[node.name] = None
            continue
        try:
            shapes[node.name] = node.spec.output_shape(inputs)
        except ShapeError as error:
            shapes[node.name] = None
            diagnostics.append(_diagnostic(model, node, inputs, error, shapes))
    return shapes, diagnostics


def known_inputs(shapes: Mapping[str, Shape | None], node: Node) -> list[Shape] | None:
    """The shapes of ``node``'s inputs, in order, or None if any is unknown
    (a pass says nothing about a node downstream of an error)."""
    inputs = []
    for name in node.inputs:
        shape = shapes.get(name)
        if shape is None:
            return None
        inputs.append(shape)
    return inputs


def _diagnostic(model: Model, node: Node, inputs: list[Shape], error: ShapeError,
                shapes: Mapping[str, Shape | None]) -> Diagnostic:
    span = node.argument_spans.get(error.argument, node.span) if error.argument else node.span
    labels = []
    for index in error.inputs:
        producer = model.nodes[node.inputs[index]]
        what = f"input '{producer.name}'" if isinstance(producer.spec, Input) else f"'{producer.name}'"
        produced = f"{what} produces {show_shape(inputs[index])}"
        if error.code == "E402" and producer.spec.op == "flatten" and producer.inputs:
            # A feature count is easier to fix knowing the map it was flattened from.
            before = shapes.get(producer.inputs[0])
            if before is not None:
                produced += f" from the {show_shape(before)} map"
        labels.append(Label(producer.span, produced))
    return Diagnostic.error(error.code, error.message, span, labels=[*labels, *block_uses(_uses(model, node), span)],
                            hint=error.hint, notes=_piped_merge_notes(model, node, error))


def _piped_merge_notes(model: Model, node: Node, error: ShapeError) -> list[str]:
    """Says so when the node, or a producer the error points at, is a merge
    that took the chain's value as an extra first input: ``x -> concat(a, b)``
    concatenates three tensors, which is rarely what was meant."""
    merges = [node, *(model.nodes[node.inputs[index]] for index in error.inputs)]
    notes = []
    for merge in merges:
        if merge.piped and len(merge.inputs) >= 3:
            written = len(merge.inputs) - 1
            notes.append(
                f"'{merge.name}' has {len(merge.inputs)} inputs: the chain's value '{merge.inputs[0]}' "
                f"and the {written} written in {merge.spec.op}(...); to combine only those, "
                f"start a new chain with {merge.spec.op}(...)"
            )
    return notes


def _uses(model: Model, node: Node) -> list[tuple[str, Span]]:
    """The block uses ``node`` was made in, innermost first."""
    uses = []
    path = node.block
    while path is not None:
        instance = model.blocks[path]
        uses.append((instance.block, instance.span))
        path = instance.parent
    return uses
