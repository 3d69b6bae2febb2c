"""``archdsl check`` as a library call: every diagnostic of a file —
elaboration, shapes, lint rules, expectations and budgets — after the
project configuration and inline suppressions are applied.

>>> import archdsl
>>> report = archdsl.check('''
... model Tiny {
...     input x: [3, 4, 4]
...     x -> conv2d(8, 7)
... }''')
>>> report.ok, [d.code for d in report.diagnostics]
(False, ['E401'])
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ._gc import paused_gc
from .analysis import Analysis, analyze
from .config import Config, find_config
from .diagnostics import Diagnostic, has_errors, merge_repeats
from .elaborate import Program, load, loads
from .graph import Model
from .lint import lint, suppress
from .lint.blocks import check_unused_blocks
from .lint.contracts import check_budgets, check_expectations
from .ops import Input

#: The key of an input size given without a name (``--input-shape 3x64x64``):
#: it applies to every model with a single input.
ONLY_INPUT = "*"


@dataclass
class FileReport:
    """What checking one file found."""

    path: Path
    program: Program
    analyses: list[Analysis]
    diagnostics: list[Diagnostic]
    #: What was left out and why (models without the input asked for,
    #: ``expect`` figures counted at another size), for the reader.
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No errors (warnings and information allowed)."""
        return not has_errors(self.diagnostics)


def check(source: str | Path, *, config: Config | None = None,
          inputs: dict[str, tuple[int, ...]] | None = None) -> FileReport:
    """What ``archdsl check`` reports for one file or text: every diagnostic
    (errors, warnings, information), with the nearest ``pyproject.toml``'s
    ``[tool.archdsl]`` for a path (or ``config``) and inline suppressions
    applied.  ``source`` is a path (a :class:`~pathlib.Path`, or a string
    ending in ``.cnn`` on one line) or the text of a ``.cnn`` file.
    ``inputs`` checks at other input sizes, by input name."""
    if isinstance(source, Path) or ("\n" not in source and source.strip().endswith(".cnn")):
        path = Path(source)
        return check_program(load(path), path, config=config, inputs=inputs)
    return check_program(loads(source), config=config or Config(), inputs=inputs)


def _declared(model: Model, name: str) -> tuple[int, ...]:
    spec = model.nodes[name].spec
    if not isinstance(spec, Input):
        raise TypeError(f"{name} is not an input of {model.name}")
    return tuple(spec.shape)


def _sizes_for(model: Model, inputs: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]] | str:
    """The sizes of ``inputs`` that apply to ``model``, or why none do."""
    if ONLY_INPUT in inputs:
        if len(model.inputs) != 1:
            return (f"model {model.name} has {len(model.inputs)} inputs ({', '.join(model.inputs)}); "
                    "an unnamed input size applies to models with one; name it: NAME=CxHxW")
        return {model.inputs[0]: inputs[ONLY_INPUT]}
    sizes = {name: shape for name, shape in inputs.items() if name in model.inputs}
    if not sizes:
        return (f"model {model.name} has no input named {', '.join(sorted(inputs))} "
                f"(its inputs: {', '.join(model.inputs)})")
    for name, shape in sizes.items():
        declared = _declared(model, name)
        if len(shape) != len(declared):
            return f"model {model.name}: {len(shape)} dimensions given for input '{name}', it declares {len(declared)}"
    return sizes


@paused_gc
def check_program(program: Program, path: Path | None = None, *, config: Config | None = None,
                  inputs: dict[str, tuple[int, ...]] | None = None) -> FileReport:
    """Checks a loaded program.  ``inputs`` (by input name, or ``"*"`` for
    a model's only input) checks at other sizes: a model that has none of
    the inputs named is skipped, and its ``expect`` statements are not
    judged when a size differs from the declared one (both with a note)."""
    config = config or (find_config(path) if path else Config())
    found = list(program.diagnostics)
    found += check_unused_blocks(program)
    analyses = []
    notes: list[str] = []
    for model in program.models:
        sizes = {k: v for k, v in config.inputs.items() if k in model.inputs}
        resized = False
        if inputs:
            wanted = _sizes_for(model, inputs)
            if isinstance(wanted, str):
                notes.append(f"skipped: {wanted}")
                continue
            resized = any(_declared(model, k) != tuple(v) for k, v in wanted.items())
            sizes.update(wanted)
        analysis = analyze(model, inputs=sizes)
        analyses.append(analysis)
        found += analysis.diagnostics
        found += lint(analysis, config.enabled)
        if resized and model.expectations:
            notes.append(f"model {model.name}: {len(model.expectations)} expect statement(s) not judged: "
                         "they describe the declared input size, not "
                         + ", ".join(f"{k} {list(v)}" for k, v in sizes.items()))
        else:
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
    return FileReport(path or Path(program.path), program, analyses, diagnostics, notes)
