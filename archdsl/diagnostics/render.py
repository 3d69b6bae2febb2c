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
