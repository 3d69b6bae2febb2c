"""Budgets and contracts: ``expect`` statements in the file (E501) and
``[[tool.archdsl.budgets]]`` in the project (E502)."""

from __future__ import annotations

import operator

from ..analysis import Analysis
from ..diagnostics import Diagnostic
from ..ops.base import show_shape
from ..report import si

COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
           ">=": operator.ge}


def figure(analysis: Analysis, name: str) -> int:
    totals = analysis.totals
    return {
        "params": totals.params,
        "buffers": totals.buffers,
        "macs": totals.macs,
        "flops": totals.flops,
        "param_bytes": totals.param_bytes,
        "peak_activation": totals.peak_activation_bytes,
        "training_activation": totals.training_activation_bytes,
    }[name]


def _amount(value) -> str:
    return f"{value:,}" + (f" ({si(value)})" if abs(value) >= 1000 else "")


def check_expectations(analysis: Analysis) -> list[Diagnostic]:
    """E501 for each ``expect`` that does not hold.  Figures are only judged
    when every shape is known (otherwise the totals are incomplete)."""
    found = []
    model = analysis.model
    for e in model.expectations:
        if e.figure == "output":
            if e.output is None and len(model.outputs) != 1:
                names = ", ".join(model.outputs)
                found.append(Diagnostic.make("E501", f"model {model.name} has {len(model.outputs)} outputs; "
                                             "name the one to check", e.span,
                                             hint=f"expect output NAME: [...] with NAME one of {names}"))
                continue
            name = e.output if e.output is not None else next(iter(model.outputs))
            node = model.outputs.get(name)
            if node is None:
                found.append(Diagnostic.make("E501", f"model {model.name} has no output '{e.output}'", e.span,
                                             hint=f"its outputs: {', '.join(model.outputs) or 'none'}"))
                continue
            shape = analysis.shapes.get(node)
            expected = e.value
            if not isinstance(expected, tuple):  # elaboration gives "expect output" a shape
                raise TypeError(f"expect output '{name}': {expected!r} is not a shape")
            if shape is not None and tuple(shape) != expected:
                found.append(Diagnostic.make(
                    "E501", f"expected output '{name}' to be {show_shape(expected)}, but it is {show_shape(shape)}",
                    e.span))
            continue
        if not analysis.ok:
            continue
        actual = figure(analysis, e.figure)
        if not COMPARE[e.op](actual, e.value):
            found.append(Diagnostic.make(
                "E501",
                f"expect {e.figure} {e.op} {_amount(e.value)} failed: the model has {_amount(actual)}",
                e.span,
                notes=[f"counted with {analysis.settings.describe()}"],
            ))
    return found


def check_budgets(analysis: Analysis, budgets, source: str) -> list[Diagnostic]:
    """E502 for each configured upper bound the model exceeds."""
    if not analysis.ok:
        return []
    found = []
    for budget in budgets:
        for name, limit in budget.limits.items():
            actual = figure(analysis, name)
            if actual > limit:
                scope = f" for {budget.glob}" if budget.glob else ""
                found.append(Diagnostic.make(
                    "E502",
                    f"{name} {_amount(actual)} exceeds the budget of {_amount(limit)}{scope}",
                    analysis.model.span,
                    notes=[f"budget set in {source}"],
                ))
    return found
