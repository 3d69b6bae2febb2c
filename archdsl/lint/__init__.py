"""Lint rules: small checks over an analysed model, registered by code.

To add a rule: give it a code in ``archdsl/diagnostics/codes.py`` (name,
severity, summary, rationale, example), write a function
``check(context) -> Iterator[Finding]`` in the module of its family, and
list it in ``RULES`` below.  ``tests/test_lint.py`` holds a positive and a
negative case per rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..analysis import Analysis
from ..diagnostics import Diagnostic
from . import geometry, redundancy, structure
from .base import Finding, LintContext

RULES: tuple[tuple[str, Callable[[LintContext], Iterator[Finding]]], ...] = (
    ("W201", geometry.dropped_pixels),
    ("W202", geometry.stride_exceeds_kernel),
    ("W203", redundancy.bias_before_batchnorm),
    ("W204", redundancy.double_activation),
    ("W205", redundancy.dropout_before_batchnorm),
    ("W206", redundancy.activation_after_softmax),
    ("W207", geometry.even_kernel_same_padding),
    ("W208", geometry.collapsed_spatial_map),
    ("W209", structure.misaligned_merge),
    ("I301", structure.limited_receptive_field),
    ("I302", structure.dominant_layer),
)


def lint(analysis: Analysis, enabled: Callable[[str], bool] = lambda code: True) -> list[Diagnostic]:
    """Runs every enabled rule; findings become diagnostics with the rule's
    code and default severity (the configuration may change it later)."""
    context = LintContext(analysis)
    found = []
    for code, rule in RULES:
        if not enabled(code):
            continue
        for finding in rule(context):
            found.append(Diagnostic.make(code, finding.message, finding.span, hint=finding.hint,
                                         labels=finding.labels))
    return found
