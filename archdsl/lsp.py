"""``archdsl lsp``: a language server over stdio (``pip install archdsl[lsp]``).

The editor-facing answers are plain functions of a :class:`Document` (the
text, the checked program and its analyses), so they are tested without a
server; :func:`serve` wires them to pygls.  Positions are LSP's: 0-based
lines and UTF-16 columns, taken as characters (the .cnn files the zoo holds
are ASCII; a non-BMP character before a cursor shifts it by one).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
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

#: Code units per character in each LSP position encoding.
_ENCODINGS = {"utf-8": "utf-8", "utf-16": "utf-16-le", "utf-32": "utf-32-le"}


def code_units(text: str, encoding: str) -> int:
    """The length of ``text`` in ``encoding``'s code units (bytes for UTF-8,
    16-bit units for UTF-16: two for a character beyond the BMP)."""
    if encoding == "utf-32":
        return len(text)
    width = 2 if encoding == "utf-16" else 1
    return len(text.encode(_ENCODINGS[encoding], "surrogatepass")) // width


@dataclass
class Document:
    """One open file, checked; ``encoding`` is the client's position encoding."""

    path: Path
    text: str
    report: FileReport
    encoding: str = "utf-16"
    version: int | None = None
    _lines: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.path.name

    def analyses(self) -> list[Analysis]:
        return self.report.analyses

    def in_file(self, span: Span | None) -> bool:
        return span is not None and span.file == self.name

    def lines(self, file: str) -> list[str]:
        """The lines of this file or of an import (by its span file name)."""
        if file not in self._lines:
            texts = {module.source.name: module.source.text for module in self.report.program.modules}
            self._lines[file] = (self.text if file == self.name else texts.get(file, "")).split("\n")
        return self._lines[file]

    def position(self, file: str, line: int, column: int) -> dict:
        """The LSP position of a span's 1-based (line, column) in ``file``."""
        lines = self.lines(file)
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        return {"line": line - 1, "character": code_units(text[: column - 1], self.encoding)}

    def range(self, span: Span) -> dict:
        return {"start": self.position(span.file, span.line, span.column),
                "end": self.position(span.file, span.end_line, span.end_column)}

    def offset(self, line: int, character: int) -> int:
        """The character offset in this file of an LSP position (a position
        inside a character, or past the line's end, is clamped)."""
        lines = self.lines(self.name)
        line = max(0, min(line, len(lines) - 1))
        text = lines[line]
        column = units = 0
        while column < len(text) and units < character:
            units += code_units(text[column], self.encoding)
            column += 1
        return sum(len(lines[n]) + 1 for n in range(line)) + column


def open_document(path: Path, text: str, encoding: str = "utf-16", version: int | None = None) -> Document:
    """Checks ``text`` as the file ``path`` (its imports resolve beside it);
    positions are exchanged in ``encoding`` (utf-8, utf-16 or utf-32)."""
    if encoding not in _ENCODINGS:
        raise ValueError(f"unknown position encoding {encoding!r}")
    program = loads(text, path.name, directory=path.parent)
    return Document(path, text, check_program(program, path), encoding, version)


# ---------------------------------------------------------------- diagnostics

_SEVERITY = {Severity.ERROR: 1, Severity.WARNING: 2, Severity.INFO: 3}


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
    related = [{"location": {"uri": _uri(doc, label.span.file), "range": doc.range(label.span)},
                "message": label.message} for label in d.labels]
    if not doc.in_file(d.span):
        related.append({"location": {"uri": _uri(doc, d.span.file), "range": doc.range(d.span)},
                        "message": d.message})
    notes = "".join(f"\n{note}" for note in d.notes) + (f"\nhelp: {d.hint}" if d.hint else "")
    return {"range": doc.range(span), "severity": _SEVERITY.get(d.severity, 3), "code": d.code,
            "source": "archdsl", "message": message + notes, "relatedInformation": related}


# ---------------------------------------------------------------- positions


def word_at(doc: Document, line: int, character: int) -> str | None:
    offset = doc.offset(line, character)
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
    """Markdown: a value's name (where it is bound or used in a model) shows
    the node it names; otherwise the node written under the cursor (output
    shape, parameters, MACs, receptive field) or the block instance (its
    totals), then the op's documentation."""
    offset = doc.offset(line, character)
    word = word_at(doc, line, character)
    value = _value_node(doc, word, offset) if word else None
    if value is not None:
        analysis, node = value
        return f"value **{word}**, the output of:\n\n{_node_text(analysis, node)}"
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
                return {"uri": _uri(doc, block.name_span.file), "range": doc.range(block.name_span)}
    offset = doc.offset(line, character)
    for module in _modules(doc):
        if module.source.name != doc.name:
            continue
        scopes: list[syntax.BlockDef | syntax.ModelDef] = [*module.blocks, *module.models]
        for definition_ in scopes:
            if not definition_.span.start <= offset <= definition_.span.end:
                continue
            span = _binding(definition_, word)
            if span is not None:
                return {"uri": doc.path.resolve().as_uri(), "range": doc.range(span)}
    return None


def _binding(definition_: syntax.BlockDef | syntax.ModelDef, word: str) -> Span | None:
    if isinstance(definition_, syntax.BlockDef):
        for param in definition_.params:
            if param.name == word:
                return param.span
    stmt = _binding_statement(definition_, word)
    return None if stmt is None else stmt.name_span


_Binder = syntax.InputDecl | syntax.Assign | syntax.OutputDecl


def _binding_statement(definition_: syntax.BlockDef | syntax.ModelDef, word: str) -> _Binder | None:
    """The first statement of the body (or of its ``if`` branches) that binds ``word``."""
    pending = list(definition_.body)
    while pending:
        stmt = pending.pop(0)
        if isinstance(stmt, _Binder) and stmt.name == word:
            return stmt
        if isinstance(stmt, syntax.If):
            pending += stmt.body + stmt.orelse
    return None


def _value_node(doc: Document, word: str, offset: int) -> tuple[Analysis, Node] | None:
    """The node whose output the value ``word`` names, for a name bound in
    the model written at ``offset`` (inside a block a name has one value per
    call, so none is shown)."""
    for module in _modules(doc):
        if module.source.name != doc.name:
            continue
        for model in module.models:
            if not model.span.start <= offset <= model.span.end:
                continue
            stmt = _binding_statement(model, word)
            analysis = next((a for a in doc.analyses() if a.model.name == model.name), None)
            if stmt is None or analysis is None:
                return None
            found = _bound_node(analysis, stmt)
            return None if found is None else (analysis, found)
    return None


def _bound_node(analysis: Analysis, stmt: _Binder) -> Node | None:
    model = analysis.model
    if isinstance(stmt, syntax.InputDecl):
        return model.nodes.get(stmt.name)
    if isinstance(stmt, syntax.OutputDecl):
        name = model.outputs.get(stmt.name)
        return None if name is None else model.nodes.get(name)
    # an assignment names its chain's value: the last node (in topological
    # order) written in the chain, or made by a block called in it
    span = stmt.chain.span
    last = None
    for node in model.nodes.values():
        site = _call_site(analysis, node)
        if site.file == span.file and span.start <= site.start and site.end <= span.end:
            last = node
    return last


def _call_site(analysis: Analysis, node: Node) -> Span:
    """Where ``node`` is written in the model: its own span, or for a node of
    a block, the span of the outermost block call that made it."""
    if node.block is None:
        return node.span
    blocks = analysis.model.blocks
    instance = blocks[node.block]
    while instance.parent is not None:
        instance = blocks[instance.parent]
    return instance.span


# ---------------------------------------------------------------- inlay hints


def inlay_hints(doc: Document, first_line: int, last_line: int) -> list[dict]:
    """The output shape after each op and block call written in a model,
    on the 0-based lines ``first_line`` to ``last_line``: for a block call
    its output's, for a call repeated by ``repeat`` the last repetition's."""
    found: dict[tuple[int, int], dict] = {}
    for analysis in doc.analyses():
        for node in analysis.model.nodes.values():
            shape = analysis.shapes.get(node.name)
            site = _call_site(analysis, node)
            if node.op == "input" or shape is None or not doc.in_file(site):
                continue
            position = doc.position(site.file, site.end_line, site.end_column)
            if first_line <= position["line"] <= last_line:
                # nodes come in topological order: the last one written at a place is its output
                found[(position["line"], position["character"])] = {
                    "position": position, "label": f"{list(shape)}", "kind": 1, "paddingLeft": True,
                    "tooltip": f"{node.name}: output shape"}
    return [found[key] for key in sorted(found)]


# ---------------------------------------------------------------- completion


def completion(doc: Document, line: int, character: int) -> list[dict]:
    """Inside an op's parentheses: its keyword arguments (type and default);
    elsewhere: op and block names."""
    offset = doc.offset(line, character)
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
            out.append({"name": block.name, "kind": 12, "range": doc.range(block.span),
                        "selectionRange": doc.range(block.name_span), "children": []})
        for model in module.models:
            children = [{"name": name, "kind": 13, "detail": node.op, "range": doc.range(node.span),
                         "selectionRange": doc.range(node.span)}
                        for name, node in nodes_of.get(model.name, {}).items()
                        if "." not in name and doc.in_file(node.span)]
            out.append({"name": model.name, "kind": 5, "range": doc.range(model.span),
                        "selectionRange": doc.range(model.name_span), "children": children})
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
    end = {"line": len(lines) - 1, "character": code_units(lines[-1], doc.encoding)}
    return [{"range": {"start": {"line": 0, "character": 0}, "end": end}, "newText": new}]


# ---------------------------------------------------------------- the server


def serve() -> int:  # pragma: no cover - exercised over pipes in tests/test_lsp.py
    """Runs the server on standard input and output until the client exits."""
    from .lsp_server import build_server

    build_server().start_io()
    return 0
