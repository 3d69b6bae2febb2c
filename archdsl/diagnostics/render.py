"""Renderers of diagnostics, one per output format of ``archdsl check``,
side by side: compiler-style text (source line and caret), JSON, SARIF
2.1.0 and GitHub workflow commands (see :data:`CHECK_RENDERERS`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ..source import SourceFile, Span
from .codes import Severity
from .model import Diagnostic

_COLOURS = {
    Severity.ERROR: "\x1b[1;31m",
    Severity.WARNING: "\x1b[1;33m",
    Severity.INFO: "\x1b[1;36m",
}
_BOLD, _BLUE, _RESET = "\x1b[1m", "\x1b[1;34m", "\x1b[0m"


#: ``render_text`` shows this many diagnostics of one code, then a count of the rest.
MAX_PER_CODE = 50
#: A snippet line longer than this (in printed characters) is clipped around the caret.
MAX_SNIPPET_WIDTH = 120
#: Of a clipped line, this many characters are shown before the marked region.
_CONTEXT_BEFORE = 40
_ELLIPSIS = "…"


def render_text(diagnostics: Iterable[Diagnostic], sources: Mapping[str, SourceFile], *,
                color: bool = False) -> str:
    """The diagnostics as a compiler prints them; past :data:`MAX_PER_CODE`
    of one code, one line says how many more there are (a 10,000-step
    chain must not print 10,000 snippets)."""
    shown: dict[str, int] = {}
    out = []
    for d in diagnostics:
        shown[d.code] = shown.get(d.code, 0) + 1
        if shown[d.code] <= MAX_PER_CODE:
            out.append(render_one(d, sources, color=color))
    for code, count in shown.items():
        if count > MAX_PER_CODE:
            out.append(f"... and {count - MAX_PER_CODE:,} more {code} like this\n")
    return "".join(out)


def printable(text: str) -> str:
    """``text`` safe to print on a terminal or in a CI log: control
    characters (an escape sequence, NUL, a carriage return) and lone
    surrogates are shown as escapes (``\\x1b``); a tab as a space."""
    if text.isprintable():
        return text
    return "".join(_printable_char(ch) for ch in text)


def _printable_char(ch: str) -> str:
    if ch == "\t":
        return " "
    if ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF:
        return ch
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _snippet(line: str, column: int, end_column: int, first: int | None = None) -> tuple[str, int, int, int]:
    """A source line as printed: escaped (:func:`printable`, char by char
    so the marks stay under their characters), then clipped to about
    :data:`MAX_SNIPPET_WIDTH` around the marked columns with an ellipsis.
    ``first`` keeps the window of a previous mark on the same line.
    Returns the text, the marked region's start and length in it, and the
    window's first character."""
    pieces = [_printable_char(ch) for ch in line]
    before = sum(len(p) for p in pieces[: max(0, column - 1)])
    marked = max(1, sum(len(p) for p in pieces[max(0, column - 1): max(0, end_column - 1)]))
    text = "".join(pieces)
    if len(text) <= MAX_SNIPPET_WIDTH:
        return text, before, marked, 0
    first = max(0, before - _CONTEXT_BEFORE) if first is None else first
    last = min(len(text), first + MAX_SNIPPET_WIDTH)
    head = _ELLIPSIS if first > 0 else ""
    tail = _ELLIPSIS if last < len(text) else ""
    start = before - first + len(head)
    if not first <= before <= last:  # a second mark outside the first one's window: at the edge
        start = len(head) if before < first else len(head) + last - first
        return head + text[first:last] + tail, start, 1, first
    length = max(1, min(marked, last - before + (1 if tail else 0)))
    return head + text[first:last] + tail, start, length, first


def render_one(d: Diagnostic, sources: Mapping[str, SourceFile], *, color: bool = False) -> str:
    def paint(text: str, style: str) -> str:
        text = printable(text)
        return f"{style}{text}{_RESET}" if color and style else text

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
    window = 0
    for index, (span, mark, label) in enumerate(snippets):
        source = sources.get(span.file)
        if source is None:
            continue
        if span.file != previous_file:
            out.append(f"{gutter}{paint('-->', _BLUE)} {paint(str(span), '')}\n")
            previous_file = span.file
        line = source.line_text(span.line)
        end = span.end_column if span.end_line == span.line else len(line) + 1
        new_line = (index == 0 or snippets[index - 1][0].line != span.line
                    or snippets[index - 1][0].file != span.file)
        text, start, length, window = _snippet(line, span.column, end, None if new_line else window)
        underline = " " * start + mark * length
        style = _COLOURS[d.severity] if mark == "^" else _BLUE
        if new_line:
            out.append(f"{gutter} {bar}\n")
            out.append(f"{paint(str(span.line).rjust(width), _BLUE)} {bar} {text}\n")
        out.append(f"{gutter} {bar} {paint(underline + (' ' + label if label else ''), style)}\n")
    if d.hint:
        out.append(f"{gutter} = {paint('help', _BOLD)}: {paint(d.hint, '')}\n")
    for note in d.notes:
        out.append(f"{gutter} = {paint('note', _BOLD)}: {paint(note, '')}\n")
    return "".join(out)


def _github_escape(text: str, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def render_github(diagnostics: Iterable[Diagnostic]) -> str:
    """GitHub Actions workflow commands: ``::error file=…,line=…,col=…::message``."""
    level = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}
    lines = []
    for d in diagnostics:
        props = [f"title={_github_escape(f'{d.code} {d.name}', True)}"]
        if d.span is not None:
            s = d.span
            props = [f"file={_github_escape(s.file, True)}", f"line={s.line}", f"col={s.column}",
                     f"endLine={s.end_line}", f"endColumn={s.end_column}", *props]
        message = d.message + (f" (help: {d.hint})" if d.hint else "")
        lines.append(f"::{level[d.severity]} {','.join(props)}::{_github_escape(message)}")
    return "".join(line + "\n" for line in lines)


def _uri(path: str) -> str:
    return path.replace("\\", "/")


def _region(span: Span) -> dict:
    return {"startLine": span.line, "startColumn": span.column, "endLine": span.end_line,
            "endColumn": span.end_column}


def sarif_log(diagnostics: list[Diagnostic], version: str) -> dict:
    """A SARIF 2.1.0 log (GitHub code scanning) with one run of archdsl."""
    from .codes import CODES

    rule_index = {c.code: i for i, c in enumerate(CODES)}
    level = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
    rules = [
        {
            "id": c.code,
            "name": c.name,
            "shortDescription": {"text": c.summary},
            "fullDescription": {"text": c.rationale or c.summary},
            "help": {"text": (c.rationale + "\n\nExample: " if c.rationale else "Example: ") + c.example},
            "defaultConfiguration": {"level": level[c.severity]},
        }
        for c in CODES
    ]
    results = []
    for d in diagnostics:
        result = {
            "ruleId": d.code,
            "ruleIndex": rule_index[d.code],
            "level": level[d.severity],
            "message": {"text": d.message + (f"\nhelp: {d.hint}" if d.hint else "")},
        }
        if d.span is not None:
            result["locations"] = [{"physicalLocation": {"artifactLocation": {"uri": _uri(d.span.file)},
                                                         "region": _region(d.span)}}]
        if d.labels:
            result["relatedLocations"] = [
                {"id": i, "message": {"text": label.message},
                 "physicalLocation": {"artifactLocation": {"uri": _uri(label.span.file)},
                                      "region": _region(label.span)}}
                for i, label in enumerate(d.labels)
            ]
        results.append(result)
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "archdsl", "version": version, "rules": rules}},
            "results": results,
        }],
    }


def render_sarif(diagnostics: list[Diagnostic], version: str) -> str:
    return json.dumps(sarif_log(diagnostics, version), indent=2) + "\n"


# ------------------------------------------------------------------ archdsl check


@dataclass(frozen=True)
class CheckedFile:
    """One checked file as the renderers see it."""

    path: str
    models: tuple[str, ...]
    nodes: int
    diagnostics: list[Diagnostic]
    sources: Mapping[str, SourceFile]


@dataclass(frozen=True)
class CheckOutput:
    """How the report is to look: colour (text), ``--quiet`` (text), and the
    tool version (SARIF)."""

    color: bool = False
    quiet: bool = False
    version: str = ""


def _counts(files: list[CheckedFile]) -> tuple[int, int]:
    everything = [d for f in files for d in f.diagnostics]
    return (sum(d.severity is Severity.ERROR for d in everything),
            sum(d.severity is Severity.WARNING for d in everything))


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def render_check_text(files: list[CheckedFile], output: CheckOutput) -> str:
    """Each file's diagnostics (or "ok"), then the totals."""
    out = []
    for f in files:
        if f.diagnostics:
            out.append(render_text(f.diagnostics, f.sources, color=output.color))
        elif not output.quiet:
            out.append(f"{f.path}: ok ({', '.join(f.models) or 'no models'}; {f.nodes} nodes)\n")
    errors, warnings = _counts(files)
    if not output.quiet or errors or warnings:
        out.append(f"checked {_plural(len(files), 'file')}: {_plural(errors, 'error')}, "
                   f"{_plural(warnings, 'warning')}\n")
    return "".join(out)


def render_check_json(files: list[CheckedFile], output: CheckOutput) -> str:
    errors, warnings = _counts(files)
    payload = {
        "files": [{"path": f.path, "models": list(f.models), "diagnostics": [d.to_dict() for d in f.diagnostics]}
                  for f in files],
        "errors": errors,
        "warnings": warnings,
    }
    return json.dumps(payload, indent=2, sort_keys=True) + "\n"


def render_check_sarif(files: list[CheckedFile], output: CheckOutput) -> str:
    return render_sarif([d for f in files for d in f.diagnostics], output.version)


def render_check_github(files: list[CheckedFile], output: CheckOutput) -> str:
    return render_github([d for f in files for d in f.diagnostics])


#: ``archdsl check --format`` -> its renderer.
CHECK_RENDERERS: dict[str, Callable[[list[CheckedFile], CheckOutput], str]] = {
    "text": render_check_text,
    "json": render_check_json,
    "sarif": render_check_sarif,
    "github": render_check_github,
}
