"""Inline suppressions: ``# archdsl: ignore[W203, W204]``.

On a line of its own or after code, a suppression covers that line; on the
line that opens a ``block`` or ``model``, it covers the whole definition.
Errors cannot be suppressed.  Text after the bracket is a free-form reason.
"""

from __future__ import annotations

import re

from ..diagnostics import Diagnostic, Severity
from ..elaborate import Program

PATTERN = re.compile(r"#\s*archdsl:\s*ignore\[([A-Za-z0-9_,\s]+)\]")


def suppressions(program: Program) -> dict[str, list[tuple[int, int, frozenset[str]]]]:
    """file -> [(first line, last line, codes)]"""
    starts: dict[str, dict[int, int]] = {}
    for span in program.definitions:
        starts.setdefault(span.file, {})[span.line] = span.end_line
    table: dict[str, list[tuple[int, int, frozenset[str]]]] = {}
    for name, source in program.sources.items():
        for number, line in enumerate(source.text.splitlines(), start=1):
            match = PATTERN.search(line)
            if match:
                codes = frozenset(c.strip().upper() for c in match[1].split(",") if c.strip())
                last = starts.get(name, {}).get(number, number)
                table.setdefault(name, []).append((number, last, codes))
    return table


def apply(program: Program, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    table = suppressions(program)
    if not table:
        return diagnostics
    kept = []
    for d in diagnostics:
        if d.severity is not Severity.ERROR and d.span is not None:
            ranges = table.get(d.span.file, ())
            if any(first <= d.span.line <= last and d.code in codes for first, last, codes in ranges):
                continue
        kept.append(d)
    return kept
