"""The Diagnostic: a code, a severity, a primary span and what helps fix it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..source import Span
from .codes import Severity, lookup


@dataclass(frozen=True)
class Label:
    """A secondary span with its own message ("declared here")."""

    span: Span
    message: str


@dataclass(frozen=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    span: Span | None
    labels: tuple[Label, ...] = ()
    hint: str | None = None
    notes: tuple[str, ...] = ()

    @classmethod
    def make(cls, code: str, message: str, span: Span | None, *, hint: str | None = None,
             labels: tuple[Label, ...] | list[Label] = (), notes: tuple[str, ...] | list[str] = (),
             severity: Severity | None = None) -> Diagnostic:
        return cls(code, severity or lookup(code).severity, message, span, tuple(labels), hint, tuple(notes))

    # `error` reads better at call sites that can only produce errors.
    error = make

    @property
    def name(self) -> str:
        return lookup(self.code).name

    def sort_key(self) -> tuple:
        s = self.span
        return (s.file, s.start, s.end, self.code) if s else ("", 0, 0, self.code)

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity.value,
            "message": self.message,
            "span": None if self.span is None else _span_dict(self.span),
            "labels": [{"span": _span_dict(label.span), "message": label.message} for label in self.labels],
            "hint": self.hint,
            "notes": list(self.notes),
        }


def _span_dict(span: Span) -> dict:
    return {
        "file": span.file,
        "line": span.line,
        "column": span.column,
        "end_line": span.end_line,
        "end_column": span.end_column,
    }


@dataclass
class DiagnosticError(Exception):
    """Raised where analysis of a unit cannot go on; carries what was found."""

    diagnostics: list[Diagnostic] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{d.span}: {d.code}: {d.message}" for d in self.diagnostics)


def has_errors(diagnostics) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)


def merge_repeats(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """One diagnostic per (code, span), sorted by position.  A mistake in a
    block body is one mistake however many instances hit it; when the
    instances saw it differently (other shapes), a note says how many."""
    first: dict[tuple, Diagnostic] = {}
    others: dict[tuple, int] = {}
    for d in diagnostics:
        key = (d.code, d.span)
        if key not in first:
            first[key] = d
        elif d.message != first[key].message:
            others[key] = others.get(key, 0) + 1
    out = []
    for key, d in first.items():
        if key in others:
            n = others[key]
            d = replace(d, notes=(*d.notes, f"{n} more use{'s' if n > 1 else ''} of this code report the same "
                                            "problem with other values"))
        out.append(d)
    return sorted(out, key=Diagnostic.sort_key)
