"""Rules about layers that undo or waste each other's work."""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Label
from ..ops import Family
from ..ops.activation import Softmax
from ..ops.reshape import Dropout
from .base import Finding, LintContext


def bias_before_batchnorm(context: LintContext) -> Iterator[Finding]:
    """W203"""
    for node in context.nodes():
        if node.spec.has_bias:
            reader = context.only_consumer(node)
            if reader is not None and reader.spec.uses_batch_statistics:
                yield Finding(
                    context.span_of(node, "bias"),
                    f"{node.spec.op} '{node.name}' has a bias, but {reader.spec.op} '{reader.name}' "
                    "right after it subtracts the mean and cancels it",
                    hint=f"write {node.spec.op}(..., bias=false)",
                    labels=(Label(reader.span, "normalised here"),),
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
