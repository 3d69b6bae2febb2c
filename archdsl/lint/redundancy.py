"""Rules about layers that undo or waste each other's work."""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Label
from ..ops import Family
from ..ops.activation import Softmax
from ..ops.reshape import Dropout
from .base import Finding, LintContext


def bias_before_batchnorm(context: LintContext) -> Iterator[Finding]:
    """W203, once per model: the first such layer, the others as labels."""
    found = []
    for node in context.nodes():
        if node.spec.has_bias:
            reader = context.only_consumer(node)
            if reader is not None and reader.spec.uses_batch_statistics:
                found.append((node, reader))
    if not found:
        return
    node, reader = found[0]
    wasted = sum(context.shape_of(n.name)[0] for n, _ in found)
    others = tuple(Label(context.span_of(n, "bias"), f"'{n.name}' too") for n, _ in found[1:])
    layers = f"{node.spec.op} '{node.name}'" + (f" and {len(others)} more layers have" if others else " has")
    yield Finding(
        context.span_of(node, "bias"),
        f"{layers} a bias that the {reader.spec.op} right after cancels (it subtracts the mean): "
        f"{wasted:,} parameters trained for nothing",
        hint=f"write {node.spec.op}(..., bias=false)",
        labels=(Label(reader.span, "normalised here"), *others),
    )


def double_activation(context: LintContext) -> Iterator[Finding]:
    """W204"""
    for node in context.nodes():
        if node.spec.family is not Family.ACTIVATION or isinstance(node.spec, Softmax):
            continue
        reader = context.only_consumer(node)
        if reader is not None and reader.spec.family is Family.ACTIVATION and not isinstance(reader.spec, Softmax):
            yield Finding(
                reader.span,
                f"{reader.spec.op} directly after {node.spec.op}: two activations in a row",
                labels=(Label(node.span, "first activation"),),
                hint="remove one of them",
            )


def dropout_before_batchnorm(context: LintContext) -> Iterator[Finding]:
    """W205"""
    for node in context.nodes():
        if isinstance(node.spec, Dropout):
            reader = context.only_consumer(node)
            if reader is not None and reader.spec.uses_batch_statistics:
                yield Finding(
                    node.span,
                    f"dropout feeds {reader.spec.op}: its running statistics will not match inference",
                    labels=(Label(reader.span, "normalised here"),),
                    hint="apply dropout after the normalisation",
                )


def activation_after_softmax(context: LintContext) -> Iterator[Finding]:
    """W206"""
    for node in context.nodes():
        if not isinstance(node.spec, Softmax):
            continue
        for name in context.consumers.get(node.name, []):
            reader = context.model.nodes[name]
            if reader.spec.family is Family.ACTIVATION:
                yield Finding(
                    reader.span,
                    f"{reader.spec.op} after softmax: the probabilities are transformed again",
                    labels=(Label(node.span, "softmax here"),),
                    hint="end the classifier with the softmax, or drop it and let the loss take logits",
                )
