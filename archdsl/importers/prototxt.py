"""Protocol Buffers text format (Caffe's .prototxt), parsed without Caffe.

The grammar is ``prototxt.lark`` beside this file.  The result is a tree of
:class:`Message` whose fields keep their spans, so every later complaint
about a value points at it.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass, field
from pathlib import Path

from ..diagnostics import Diagnostic
from ..diagnostics.model import DiagnosticError
from ..source import SourceFile, Span

Scalar = str | int | float


@dataclass(frozen=True)
class Identifier:
    """An unquoted value: an enum constant (``MAX``) or ``true``/``false``."""

    text: str


@dataclass
class Field:
    name: str
    value: Scalar | Identifier | Message
    span: Span


@dataclass
class Message:
    span: Span
    fields: list[Field] = field(default_factory=list)

    def all(self, name: str) -> list[Field]:
        return [f for f in self.fields if f.name == name]

    def first(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def messages(self, name: str) -> list[Message]:
        out = []
        for f in self.all(name):
            if not isinstance(f.value, Message):
                raise _invalid(f, "a { ... } message")
            out.append(f.value)
        return out

    def message(self, name: str) -> Message | None:
        found = self.messages(name)
        return found[-1] if found else None

    def string(self, name: str, default: str | None = None) -> str | None:
        f = self._last(name)
        if f is None:
            return default
        if not isinstance(f.value, str):
            raise _invalid(f, "a quoted string")
        return f.value

    def strings(self, name: str) -> list[str]:
        out = []
        for f in self.all(name):
            if not isinstance(f.value, str):
                raise _invalid(f, "a quoted string")
            out.append(f.value)
        return out

    def ints(self, name: str) -> list[int]:
        out = []
        for f in self.all(name):
            if isinstance(f.value, bool) or not isinstance(f.value, int):
                raise _invalid(f, "an integer")
            out.append(f.value)
        return out

    def int(self, name: str, default: int | None = None) -> int | None:
        found = self.ints(name)
        return found[-1] if found else default

    def floats(self, name: str) -> list[float]:
        out = []
        for f in self.all(name):
            if not isinstance(f.value, int | float):
                raise _invalid(f, "a number")
            out.append(float(f.value))
        return out

    def float(self, name: str, default: float) -> float:
        found = self.floats(name)
        return found[-1] if found else default

    def enum(self, name: str, default: str) -> str:
        f = self._last(name)
        if f is None:
            return default
        if isinstance(f.value, Identifier):
            return f.value.text
        if isinstance(f.value, str):  # some files quote enum values
            return f.value
        if isinstance(f.value, int):  # or give their number
            return str(f.value)
        raise _invalid(f, "an enum constant")

    def bool(self, name: str, default: bool) -> bool:
        f = self._last(name)
        if f is None:
            return default
        if isinstance(f.value, Identifier) and f.value.text.lower() in ("true", "false", "t", "f"):
            return f.value.text.lower().startswith("t")
        if isinstance(f.value, int) and f.value in (0, 1):
            return bool(f.value)
        raise _invalid(f, "true or false")

    def _last(self, name: str) -> Field | None:
        found = self.all(name)
        return found[-1] if found else None


def _invalid(f: Field, expected: str) -> DiagnosticError:
    return DiagnosticError([Diagnostic.error("E605", f"'{f.name}' must be {expected}", f.span)])


@functools.cache
def _parser():
    import lark

    grammar = (Path(__file__).parent / "prototxt.lark").read_text(encoding="utf-8")
    return lark.Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def parse(source: SourceFile) -> Message:
    """The top-level message of a prototxt file, or E601 where it breaks."""
    import lark

    try:
        tree = _parser().parse(source.text)
    except lark.exceptions.UnexpectedInput as error:
        offset = getattr(error, "pos_in_stream", None) or 0
        span = source.span(offset, offset + 1)
        expected = sorted(getattr(error, "expected", None) or getattr(error, "allowed", None) or ())
        hint = f"expected one of: {', '.join(expected)}" if expected else None
        token = getattr(error, "token", None)
        what = "the end of the file" if token is not None and token.type == "$END" else (
            f"'{token}'" if token is not None else f"'{source.text[offset:offset + 1]}'")
        raise DiagnosticError([Diagnostic.error("E601", f"prototxt syntax error at {what}", span,
                                                hint=hint)]) from None
    return Message(source.span(0, len(source.text)), _fields(tree.children, source))


def _fields(trees, source: SourceFile) -> list[Field]:
    fields: list[Field] = []
    for tree in trees:
        name = str(tree.children[0])
        span = source.span(tree.meta.start_pos, tree.meta.end_pos)
        if tree.data == "message":
            fields.append(Field(name, Message(span, _fields(tree.children[1:], source)), span))
        else:
            # `dim: [1, 3]` is the same as `dim: 1 dim: 3`.
            fields += [Field(name, _value(value, source), span) for value in tree.children[1:]]
    return fields


def _value(tree, source: SourceFile) -> Scalar | Identifier:
    if tree.data == "string":
        return "".join(ast.literal_eval(str(token)) for token in tree.children)
    text = str(tree.children[0])
    if tree.data == "identifier":
        return Identifier(text)
    stripped = text.rstrip("fF") if not text.lstrip("-+").startswith(("inf", "nan")) else text
    try:
        return int(stripped)
    except ValueError:
        return float(stripped)
