"""Renderers of diagnostics, one per output format of ``archdsl check``,
side by side: compiler-style text (source line and caret), JSON, SARIF
2.1.0, GitHub workflow commands, GitLab Code Quality and JUnit XML (see
:data:`CHECK_RENDERERS`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ..source import SourceFile, Span
from .codes import Severity
from .locations import fingerprints, locate
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
    """GitHub Actions workflow commands: ``::error file=…,line=…,col=…::message``,
    with the file relative to the repository root (GitHub resolves it so)."""
    level = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}
    lines = []
    for d in diagnostics:
        props = [f"title={_github_escape(f'{d.code} {d.name}', True)}"]
        if d.span is not None:
            s = d.span
            props = [f"file={_github_escape(locate(s.file).path, True)}", f"line={s.line}", f"col={s.column}",
                     f"endLine={s.end_line}", f"endColumn={s.end_column}", *props]
        message = d.message + (f" (help: {d.hint})" if d.hint else "")
        lines.append(f"::{level[d.severity]} {','.join(props)}::{_github_escape(message)}")
    return "".join(line + "\n" for line in lines)


def _artifact(file: str) -> dict:
    location = locate(file)
    if location.relative is not None:
        return {"uri": location.uri, "uriBaseId": "%SRCROOT%"}
    return {"uri": location.uri}


def _region(span: Span) -> dict:
    return {"startLine": span.line, "startColumn": span.column, "endLine": span.end_line,
            "endColumn": span.end_column}


def project_urls() -> dict[str, str]:
    """The package's ``[project.urls]`` as installed (name -> URL), so that
    links in SARIF point where the package itself says its pages are; empty
    when it declares none."""
    from importlib import metadata

    try:
        entries = metadata.metadata("archdsl").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return {}
    urls = {}
    for entry in entries:
        name, _, url = entry.partition(",")
        urls[name.strip().lower()] = url.strip()
    return urls


def sarif_log(diagnostics: list[Diagnostic], version: str,
              sources: Mapping[str, SourceFile] | None = None) -> dict:
    """A SARIF 2.1.0 log (GitHub code scanning) with one run of archdsl.
    ``helpUri`` and ``informationUri`` come from the package's
    ``[project.urls]`` (``Rules`` and ``Homepage``) when it declares them."""
    from .codes import CODES, describe

    urls = project_urls()
    rule_index = {c.code: i for i, c in enumerate(CODES)}
    level = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
    rules = []
    for c in CODES:
        rule = {
            "id": c.code,
            "name": c.name,
            "shortDescription": {"text": c.summary},
            "fullDescription": {"text": c.rationale or c.summary},
            # GitHub code scanning shows the markdown (the rule's page, as
            # `archdsl rules CODE` prints it); other viewers the text.
            "help": {"text": (c.rationale + "\n\nExample: " if c.rationale else "Example: ") + c.example,
                     "markdown": describe(c).strip()},
            "defaultConfiguration": {"level": level[c.severity]},
        }
        if "rules" in urls:
            rule["helpUri"] = f"{urls['rules']}#{c.code.lower()}"
        rules.append(rule)
    results = []
    for d, fingerprint in zip(diagnostics, fingerprints(diagnostics, sources or {})):
        result = {
            "ruleId": d.code,
            "ruleIndex": rule_index[d.code],
            "level": level[d.severity],
            "message": {"text": d.message + (f"\nhelp: {d.hint}" if d.hint else "")},
            "partialFingerprints": {"archdslLineHash/v1": fingerprint},
        }
        if d.span is not None:
            result["locations"] = [{"physicalLocation": {"artifactLocation": _artifact(d.span.file),
                                                         "region": _region(d.span)}}]
        if d.labels:
            result["relatedLocations"] = [
                {"id": i, "message": {"text": label.message},
                 "physicalLocation": {"artifactLocation": _artifact(label.span.file),
                                      "region": _region(label.span)}}
                for i, label in enumerate(d.labels)
            ]
        results.append(result)
    driver = {"name": "archdsl", "version": version, "rules": rules}
    if "homepage" in urls:
        driver["informationUri"] = urls["homepage"]
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "results": results}],
    }


def render_sarif(diagnostics: list[Diagnostic], version: str,
                 sources: Mapping[str, SourceFile] | None = None) -> str:
    return json.dumps(sarif_log(diagnostics, version, sources), indent=2) + "\n"


# ------------------------------------------------------------------ archdsl check


@dataclass(frozen=True)
class CheckedFile:
    """One checked file as the renderers see it."""

    path: str
    models: tuple[str, ...]
    nodes: int
    diagnostics: list[Diagnostic]
    sources: Mapping[str, SourceFile]
    #: What was not checked and why (``--input-shape`` over a folder).
    notes: tuple[str, ...] = ()
    #: Blocks defined in the file and the files it imports.
    blocks: int = 0

    def describe(self) -> str:
        if self.models:
            return f"{', '.join(self.models)}; {self.nodes} nodes"
        return f"no models; {self.blocks} block{'s' if self.blocks != 1 else ''} checked"


@dataclass(frozen=True)
class CheckOutput:
    """How the report is to look: colour (text), ``--quiet`` (text),
    ``--statistics`` (text), the tool version (SARIF), and how many
    information diagnostics were found but not asked for (``--infos``)."""

    color: bool = False
    quiet: bool = False
    version: str = ""
    statistics: bool = False
    hidden_infos: int = 0


def _counts(files: list[CheckedFile]) -> dict[Severity, int]:
    counts = dict.fromkeys(Severity, 0)
    for f in files:
        for d in f.diagnostics:
            counts[d.severity] += 1
    return counts


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _closing_line(files: list[CheckedFile], output: CheckOutput) -> str:
    counts = _counts(files)
    infos = _plural(counts[Severity.INFO] + output.hidden_infos, "info")
    if output.hidden_infos:
        infos += " (not shown; --infos shows them)"
    return (f"checked {_plural(len(files), 'file')}: {_plural(counts[Severity.ERROR], 'error')}, "
            f"{_plural(counts[Severity.WARNING], 'warning')}, {infos}\n")


def statistics(diagnostics: Iterable[Diagnostic]) -> list[tuple[str, str, Severity, int]]:
    """(code, name, severity, count) per code found, most frequent first."""
    counts: dict[str, int] = {}
    first: dict[str, Diagnostic] = {}
    for d in diagnostics:
        counts[d.code] = counts.get(d.code, 0) + 1
        first.setdefault(d.code, d)
    return [(code, first[code].name, first[code].severity, n)
            for code, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def render_check_text(files: list[CheckedFile], output: CheckOutput) -> str:
    """Each file's diagnostics (or "ok"), or with ``--statistics`` the count
    per code; then the totals."""
    out = []
    if output.statistics:
        for code, name, severity, count in statistics(d for f in files for d in f.diagnostics):
            out.append(f"{count:>6}  {code}  {name:<24} {severity.value}\n")
    else:
        for f in files:
            if f.diagnostics:
                out.append(render_text(f.diagnostics, f.sources, color=output.color))
            elif not output.quiet and (f.models or not f.notes):
                out.append(f"{f.path}: ok ({f.describe()})\n")
            if not output.quiet:
                out += [f"{f.path}: note: {note}\n" for note in f.notes]
    counts = _counts(files)
    if not output.quiet or counts[Severity.ERROR] or counts[Severity.WARNING]:
        out.append(_closing_line(files, output))
    return "".join(out)


def render_check_json(files: list[CheckedFile], output: CheckOutput) -> str:
    counts = _counts(files)
    payload = {
        "files": [{"path": f.path, "models": list(f.models), "diagnostics": [d.to_dict() for d in f.diagnostics],
                   "notes": list(f.notes)}
                  for f in files],
        "errors": counts[Severity.ERROR],
        "warnings": counts[Severity.WARNING],
        "infos": counts[Severity.INFO] + output.hidden_infos,
        "statistics": [{"code": code, "name": name, "severity": severity.value, "count": count}
                       for code, name, severity, count in statistics(d for f in files for d in f.diagnostics)],
    }
    return json.dumps(payload, indent=2, sort_keys=True) + "\n"


def _all_sources(files: list[CheckedFile]) -> dict[str, SourceFile]:
    return {name: source for f in files for name, source in f.sources.items()}


def render_check_sarif(files: list[CheckedFile], output: CheckOutput) -> str:
    return render_sarif([d for f in files for d in f.diagnostics], output.version, _all_sources(files))


def render_check_github(files: list[CheckedFile], output: CheckOutput) -> str:
    return render_github([d for f in files for d in f.diagnostics])


#: GitLab Code Quality severities (info, minor, major, critical, blocker).
_GITLAB_SEVERITY = {Severity.ERROR: "major", Severity.WARNING: "minor", Severity.INFO: "info"}


def gitlab_report(files: list[CheckedFile]) -> list[dict]:
    """GitLab Code Quality: one issue per diagnostic, with the fields GitLab
    requires (description, check_name, fingerprint, severity,
    location.path, location.lines.begin)."""
    import hashlib  # here: its OpenSSL library is slow to load, and only GitLab's report hashes

    issues = []
    for f in files:
        for d, fingerprint in zip(f.diagnostics, fingerprints(f.diagnostics, f.sources)):
            path = locate(d.span.file if d.span is not None else f.path).path
            issues.append({
                "type": "issue",
                "description": f"{d.code} {d.message}" + (f" (help: {d.hint})" if d.hint else ""),
                "check_name": d.code,
                "fingerprint": hashlib.sha256(fingerprint.encode("utf-8")).hexdigest(),
                "severity": _GITLAB_SEVERITY[d.severity],
                "location": {"path": path, "lines": {"begin": d.span.line if d.span is not None else 1}},
            })
    return issues


def render_check_gitlab(files: list[CheckedFile], output: CheckOutput) -> str:
    return json.dumps(gitlab_report(files), indent=2) + "\n"


def render_check_junit(files: list[CheckedFile], output: CheckOutput) -> str:
    """JUnit XML: one testcase per file, one failure per error; warnings and
    information go to the testcase's system-out."""
    import xml.etree.ElementTree as ET

    failures = sum(1 for f in files if any(d.severity is Severity.ERROR for d in f.diagnostics))
    suites = ET.Element("testsuites", name="archdsl", tests=str(len(files)), failures=str(failures), errors="0")
    suite = ET.SubElement(suites, "testsuite", name="archdsl check", tests=str(len(files)),
                          failures=str(failures), errors="0", skipped="0")
    for f in files:
        case = ET.SubElement(suite, "testcase", name=locate(f.path).path, classname="archdsl.check")
        others = []
        for d in f.diagnostics:
            where = f"{locate(d.span.file).path}:{d.span.line}:{d.span.column}: " if d.span is not None else ""
            line = f"{where}{d.severity.value}[{d.code}]: {d.message}"
            if d.severity is Severity.ERROR:
                failure = ET.SubElement(case, "failure", message=d.message, type=d.code)
                failure.text = line + (f"\nhelp: {d.hint}" if d.hint else "")
            else:
                others.append(line)
        if others:
            ET.SubElement(case, "system-out").text = "\n".join(others)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


#: ``archdsl check --format`` -> its renderer.
CHECK_RENDERERS: dict[str, Callable[[list[CheckedFile], CheckOutput], str]] = {
    "text": render_check_text,
    "json": render_check_json,
    "sarif": render_check_sarif,
    "github": render_check_github,
    "gitlab": render_check_gitlab,
    "junit": render_check_junit,
}
