"""``archdsl lsp``: a language server over stdio (``pip install archdsl[lsp]``).

The editor-facing answers are plain functions of a :class:`Document` (the
text, the checked program and its analyses), so they are tested without a
server; :func:`serve` wires them to pygls.  Positions are LSP's: 0-based
lines and UTF-16 columns, taken as characters (the .cnn files the zoo holds
are ASCII; a non-BMP character before a cursor shifts it by one).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import syntax
from .analysis import Analysis
from .checking import FileReport, check_program
from .diagnostics import Diagnostic, Severity
from .elaborate import loads
from .graph import Node
from .ops import CALLABLE, lookup
from .source import Span


@dataclass
class Document:
    """One open file, checked."""

    path: Path
    text: str
    report: FileReport

    @property
    def name(self) -> str:
        return self.path.name

    def analyses(self) -> list[Analysis]:
        return self.report.analyses

    def in_file(self, span: Span | None) -> bool:
        return span is not None and span.file == self.name


def open_document(path: Path, text: str) -> Document:
    """Checks ``text`` as the file ``path`` (its imports resolve beside it)."""
    program = loads(text, path.name, directory=path.parent)
    return Document(path, text, check_program(program, path))


# ---------------------------------------------------------------- diagnostics

_SEVERITY = {Severity.ERROR: 1, Severity.WARNING: 2, Severity.INFO: 3}


def lsp_range(span: Span) -> dict:
    return {"start": {"line": span.line - 1, "character": span.column - 1},
            "end": {"line": span.end_line - 1, "character": span.end_column - 1}}


def _uri(doc: Document, file: str) -> str:
    """The URI of a span's file: the open file by its name, an import by the
    path the loader gave it."""
    path = doc.path if file == doc.name else Path(file)
    return path.resolve().as_uri()


def diagnostics(doc: Document) -> list[dict]:
    """Every check, lint and expect result as LSP diagnostics: those in an
    imported file are shown at the first place this file leads to them (the
    call site), with the call chain in the message."""
    out = []
    for d in doc.report.diagnostics:
        if d.span is None:
            continue
        out.append(_lsp_diagnostic(doc, d))
    return out


def _lsp_diagnostic(doc: Document, d: Diagnostic) -> dict:
    assert d.span is not None
    span = d.span
    message = d.message
    if not doc.in_file(span):
        message = f"{d.message} (in {span.file}:{span.line}:{span.column})"
        span = next((label.span for label in d.labels if doc.in_file(label.span)), Span(doc.name, 1, 1, 1, 1))
    related = [{"location": {"uri": _uri(doc, label.span.file), "range": lsp_range(label.span)},
                "message": label.message} for label in d.labels]
    if not doc.in_file(d.span):
        related.append({"location": {"uri": _uri(doc, d.span.file), "range": lsp_range(d.span)},
                        "message": d.message})
    notes = "".join(f"\n{note}" for note in d.notes) + (f"\nhelp: {d.hint}" if d.hint else "")
    return {"range": lsp_range(span), "severity": _SEVERITY.get(d.severity, 3), "code": d.code,
            "source": "archdsl", "message": message + notes, "relatedInformation": related}


# ---------------------------------------------------------------- positions


def _offset(text: str, line: int, character: int) -> int:
    lines = text.split("\n")
    line = min(line, len(lines) - 1)
    return sum(len(lines[n]) + 1 for n in range(line)) + min(character, len(lines[line]))


def word_at(doc: Document, line: int, character: int) -> str | None:
    offset = _offset(doc.text, line, character)
    from .fmt import tokens

    try:
        found = tokens(doc.text)
    except ValueError:
        return None
    for tok in found:
        if tok.start <= offset <= tok.start + len(tok.text) and tok.kind == "NAME":
            return tok.text
    return None


def _nodes_at(doc: Document, offset: int) -> list[tuple[Analysis, Node]]:
    """The nodes written at ``offset`` (a block's nodes where it is called),
    innermost span first."""
    found = []
    for analysis in doc.analyses():
        for node in analysis.model.nodes.values():
            if doc.in_file(node.span) and node.span.start <= offset <= node.span.end and node.block is None:
                found.append((analysis, node))
    return sorted(found, key=lambda pair: pair[1].span.end - pair[1].span.start)


def _node_text(analysis: Analysis, node: Node) -> str:
    shape = analysis.shapes.get(node.name)
    cost = analysis.costs.get(node.name)
    lines = [f"**{node.name}**: `{node.op}` → `{list(shape) if shape is not None else '?'}`"]
    if cost is not None:
        lines.append(f"parameters {cost.params:,} · MACs {cost.macs:,}")
    field = analysis.fields.get(node.name)
    if field:
        first = next(iter(field.values()))
        lines.append(f"receptive field {tuple(int(s) for s in first.size)}")
    return "\n\n".join(lines)


def _block_instances_at(doc: Document, offset: int) -> list[tuple[Analysis, Any]]:
    found = []
    for analysis in doc.analyses():
        for instance in analysis.model.blocks.values():
            span = instance.span
            if doc.in_file(span) and span.start <= offset <= span.end and instance.parent is None:
                found.append((analysis, instance))
    return sorted(found, key=lambda pair: pair[1].span.end - pair[1].span.start)


def hover(doc: Document, line: int, character: int) -> str | None:
    """Markdown: the node written under the cursor (output shape, parameters,
    MACs, receptive field) or the block instance (its totals), then the op's
    documentation."""
    offset = _offset(doc.text, line, character)
    parts = []
    nodes = _nodes_at(doc, offset)
    if nodes:
        parts.append(_node_text(*nodes[0]))
    else:
        instances = _block_instances_at(doc, offset)
        if instances:
            analysis, instance = instances[0]
            prefix = instance.path + "."
            inside = [n for n in analysis.model.nodes if n.startswith(prefix)]
            costs = [analysis.costs.get(n) for n in inside]
            params = sum(c.params for c in costs if c is not None)
            macs = sum(c.macs for c in costs if c is not None)
            last = inside[-1] if inside else None
            shape = analysis.shapes.get(last) if last else None
            parts.append(f"**{instance.path}**: block `{instance.block}` → `{list(shape) if shape else '?'}`\n\n"
                         f"parameters {params:,} · MACs {macs:,}")
    word = word_at(doc, line, character)
    op = lookup(word) if word else None
    if op is not None:
        parts.append(f"`{op.kind()}`({_signature(op)})\n\n{inspect.cleandoc(op.__doc__ or '')}")
    return "\n\n---\n\n".join(parts) or None


def _signature(op: Any) -> str:
    items = []
    for name, info in op.model_fields.items():
        if name == "op":
            continue
        default = "" if info.is_required() else f" = {info.default!r}"
        items.append(f"{name}: {_type_name(info.annotation)}{default}")
    return ", ".join(items)


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


# ---------------------------------------------------------------- definitions


def _modules(doc: Document) -> list[syntax.Module]:
    return list(doc.report.program.modules)


def definition(doc: Document, line: int, character: int) -> dict | None:
    """The location of the block (in this file or an import) or the value
    (an input, an assignment, a block parameter) named under the cursor."""
    word = word_at(doc, line, character)
    if word is None:
        return None
    for module in _modules(doc):
        for block in module.blocks:
            if block.name == word:
                return {"uri": _uri(doc, block.name_span.file), "range": lsp_range(block.name_span)}
    offset = _offset(doc.text, line, character)
    for module in _modules(doc):
        if module.source.name != doc.name:
            continue
        scopes: list[syntax.BlockDef | syntax.ModelDef] = [*module.blocks, *module.models]
        for definition_ in scopes:
            if not definition_.span.start <= offset <= definition_.span.end:
                continue
            span = _binding(definition_, word)
            if span is not None:
                return {"uri": doc.path.resolve().as_uri(), "range": lsp_range(span)}
    return None


def _binding(definition_: syntax.BlockDef | syntax.ModelDef, word: str) -> Span | None:
    if isinstance(definition_, syntax.BlockDef):
        for param in definition_.params:
            if param.name == word:
                return param.span
    pending = list(definition_.body)
    while pending:
        stmt = pending.pop(0)
        if isinstance(stmt, syntax.InputDecl | syntax.Assign | syntax.OutputDecl) and stmt.name == word:
            return stmt.name_span
        if isinstance(stmt, syntax.If):
            pending += stmt.body + stmt.orelse
    return None


# ---------------------------------------------------------------- completion


def completion(doc: Document, line: int, character: int) -> list[dict]:
    """Inside an op's parentheses: its keyword arguments (type and default);
    elsewhere: op and block names."""
    offset = _offset(doc.text, line, character)
    op = _enclosing_call(doc.text[:offset])
    if op is not None:
        items = []
        for name, info in op.model_fields.items():
            if name == "op":
                continue
            default = "required" if info.is_required() else f"default {info.default!r}"
            items.append({"label": f"{name}=", "kind": 5, "detail": f"{_type_name(info.annotation)}, {default}",
                          "insertText": f"{name}="})
        return items
    items = [{"label": name, "kind": 3, "detail": f"op {op_.kind()}",
              "documentation": inspect.cleandoc(op_.__doc__ or "")} for name, op_ in sorted(CALLABLE.items())]
    for module in _modules(doc):
        for block in module.blocks:
            params = ", ".join(p.name for p in block.params)
            items.append({"label": block.name, "kind": 7, "detail": f"block {block.name}({params})"})
    return items


def _enclosing_call(before: str) -> Any:
    """The op whose argument list the text ``before`` the cursor ends inside."""
    depth = 0
    for i in range(len(before) - 1, -1, -1):
        ch = before[i]
        if ch in ")]":
            depth += 1
        elif ch in "([":
            if depth == 0:
                name = before[:i].rstrip()
                j = len(name)
                while j and (name[j - 1].isalnum() or name[j - 1] == "_"):
                    j -= 1
                return lookup(name[j:]) if ch == "(" else None
            depth -= 1
        elif ch in "{}\n" and depth == 0 and ch != "\n":
            return None
    return None


# ---------------------------------------------------------------- symbols, formatting


def symbols(doc: Document) -> list[dict]:
    """Models (with their labelled top-level nodes) and blocks."""
    out = []
    nodes_of = {a.model.name: a.model.nodes for a in doc.analyses()}
    for module in _modules(doc):
        if module.source.name != doc.name:
            continue
        for block in module.blocks:
            out.append({"name": block.name, "kind": 12, "range": lsp_range(block.span),
                        "selectionRange": lsp_range(block.name_span), "children": []})
        for model in module.models:
            children = [{"name": name, "kind": 13, "detail": node.op, "range": lsp_range(node.span),
                         "selectionRange": lsp_range(node.span)}
                        for name, node in nodes_of.get(model.name, {}).items()
                        if "." not in name and doc.in_file(node.span)]
            out.append({"name": model.name, "kind": 5, "range": lsp_range(model.span),
                        "selectionRange": lsp_range(model.name_span), "children": children})
    return out


def formatting(doc: Document) -> list[dict]:
    """One edit replacing the whole text with ``archdsl fmt``'s layout (none
    on a syntax error or when the file is formatted)."""
    from .diagnostics import DiagnosticError
    from .fmt import format_text

    try:
        new = format_text(doc.text, doc.name)
    except (DiagnosticError, RecursionError):
        return []
    if new == doc.text:
        return []
    lines = doc.text.split("\n")
    end = {"line": len(lines) - 1, "character": len(lines[-1])}
    return [{"range": {"start": {"line": 0, "character": 0}, "end": end}, "newText": new}]


# ---------------------------------------------------------------- the server


def serve() -> int:  # pragma: no cover - exercised over pipes in tests/test_lsp.py
    """Runs the server on standard input and output until the client exits."""
    from .lsp_server import build_server

    build_server().start_io()
    return 0
