"""Diagnostics: the codes table, the Diagnostic model and its renderers."""

from .codes import CODES, Code, Severity, lookup
from .model import Diagnostic, DiagnosticError, Label, has_errors

__all__ = ["CODES", "Code", "Diagnostic", "DiagnosticError", "Label", "Severity", "has_errors", "lookup"]
