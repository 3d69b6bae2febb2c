"""``archdsl check`` as a library call: every diagnostic of a file —
elaboration, shapes, lint rules, expectations and budgets — after the
project configuration and inline suppressions are applied."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ._gc import paused_gc
from .analysis import Analysis, analyze
from .config import Config, find_config
from .diagnostics import Diagnostic, merge_repeats
from .elaborate import Program
from .lint import lint, suppress
from .lint.contracts import check_budgets, check_expectations


@dataclass
class FileReport:
    path: Path
    program: Program
    analyses: list[Analysis]
    diagnostics: list[Diagnostic]


@paused_gc
def check_program(program: Program, path: Path | None = None, *, config: Config | None = None,
                  inputs: dict[str, tuple[int, ...]] | None = None) -> FileReport:
    config = config or (find_config(path) if path else Config())
    found = list(program.diagnostics)
    analyses = []
    wanted = {**config.inputs, **(inputs or {})}
    for model in program.models:
        overrides = {k: v for k, v in wanted.items() if k in model.inputs}
        analysis = analyze(model, inputs=overrides)
        analyses.append(analysis)
        found += analysis.diagnostics
        found += lint(analysis, config.enabled)
        found += check_expectations(analysis)
        if path is not None:
            found += check_budgets(analysis, config.budgets_for(path), str(config.path))
    graded = []
    for d in found:
        if not config.enabled(d.code):
            continue
        severity = config.severity_of(d.code, d.severity)
        graded.append(d if severity is d.severity else replace(d, severity=severity))
    diagnostics = suppress.apply(program, merge_repeats(graded))
    return FileReport(path or Path(program.path), program, analyses, diagnostics)
