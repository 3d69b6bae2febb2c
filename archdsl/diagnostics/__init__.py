"""Diagnostics: the codes table, the Diagnostic model and its renderers."""

from .codes import CODES, Code, Severity, lookup
from .hints import block_uses, did_you_mean
from .model import Diagnostic, DiagnosticError, Label, has_errors, merge_repeats

__all__ = ["CODES", "Code", "Diagnostic", "DiagnosticError", "Label", "Severity", "block_uses", "did_you_mean",
           "has_errors", "lookup", "merge_repeats"]
