"""Renderers: compiler-style text (with source line and caret) and JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from ..source import SourceFile, Span
from .codes import Severity
from .model import Diagnostic

_COLOURS = {
    Severity.ERROR: "\x1b[1;31m",
    Severity.WARNING: "\x1b[1;33m",
    Severity.INFO: "\x1b[1;36m",
}
_BOLD, _BLUE, _RESET = "\x1b[1m", "\x1b[1;34m", "\x1b[0m"


def render_text(diagnostics: Iterable[Diagnostic], sources: Mapping[str, SourceFile], *,
                color: bool = False) -> str:
    return "".join(render_one(d, sources, color=color) for d in diagnostics)


def render_one(d: Diagnostic, sources: Mapping[str, SourceFile], *, color: bool = False) -> str:
    def paint(text: str, style: str) -> str:
        return f"{style}{text}{_RESET}" if color else text

    where = f"{d.span}: " if d.span else ""
    head = paint(f"{d.severity.value}[{d.code}]", _COLOURS[d.severity])
    out = [f"{paint(where, _BOLD)}{head}: {paint(d.message, _BOLD)}\n"]

    snippets: list[tuple[Span, str, str]] = []
    if d.span is not None:
        snippets.append((d.span, "^", ""))
    snippets += [(label.span, "-", label.message) for label in d.labels]
    width = max([len(str(s.line)) for s, _, _ in snippets] + [1])
    gutter = " " * width
    bar = paint("|", _BLUE)
    previous_file = d.span.file if d.span else None
    for index, (span, mark, label) in enumerate(snippets):
        source = sources.get(span.file)
        if source is None:
            continue
        if span.file != previous_file:
            out.append(f"{gutter}{paint('-->', _BLUE)} {span}\n")
            previous_file = span.file
        text = source.line_text(span.line).expandtabs(1)
        end = span.end_column if span.end_line == span.line else len(text) + 1
        length = max(1, end - span.column)
        underline = " " * (span.column - 1) + mark * length
        style = _COLOURS[d.severity] if mark == "^" else _BLUE
        if index == 0 or snippets[index - 1][0].line != span.line or snippets[index - 1][0].file != span.file:
            out.append(f"{gutter} {bar}\n")
            out.append(f"{paint(str(span.line).rjust(width), _BLUE)} {bar} {text}\n")
        out.append(f"{gutter} {bar} {paint(underline + (' ' + label if label else ''), style)}\n")
    if d.hint:
        out.append(f"{gutter} = {paint('help', _BOLD)}: {d.hint}\n")
    for note in d.notes:
        out.append(f"{gutter} = {paint('note', _BOLD)}: {note}\n")
    return "".join(out)


def render_json(diagnostics: Iterable[Diagnostic]) -> str:
    return json.dumps([d.to_dict() for d in diagnostics], indent=2, sort_keys=True) + "\n"
