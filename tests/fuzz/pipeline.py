"""Coverage-guided fuzzing of the whole in-process pipeline with atheris.

Each input is the bytes of a ``.cnn`` file.  It is decoded as the loader
decodes a file, except that invalid UTF-8 becomes lone surrogates
(``surrogateescape``) so that strings the loader never sees from a file are
tried too, then goes through every stage a stranger's pull request can
reach: parse, elaborate, check (shapes, lint, expects), the Graphviz DOT
text, the NumPy module export (compiled, not run) and the runtime plan.

The invariant (:func:`exercise`): every input ends in a clean result or in
diagnostics that carry a known code and a location; no exception escapes.
libFuzzer's own limits turn the other promises into crashes: ``-timeout``
(a hang), ``-rss_limit_mb`` (memory) and ``-max_len`` (the input size).

Run (about 200,000 inputs in roughly an hour on one core)::

    python tests/fuzz/pipeline.py -atheris_runs=200000 -timeout=2 -rss_limit_mb=1024 \\
        -max_len=4096 tests/fuzz/corpus

``tests/fuzz/corpus`` may be any directory: it is created and seeded from
the zoo and ``tests/invalid/`` when it is empty, and the fuzzer adds the
inputs that reach new code to it.  A crash is written as ``crash-<sha1>``
in the working directory; replay it with ``python tests/fuzz/pipeline.py
crash-<sha1>``.  ``tests/test_fuzz_atheris.py`` runs a short campaign in the
suite.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parent.parent.parent
MODELS = ROOT / "models"
SEEDS = (*sorted(MODELS.glob("*.cnn")), *sorted((MODELS / "blocks").glob("*.cnn")),
         *sorted((ROOT / "tests" / "invalid").glob("*.cnn")))

with atheris.instrument_imports(include=["archdsl"]):
    import archdsl
    from archdsl.checking import check_program
    from archdsl.diagnostics.codes import BY_CODE
    from archdsl.emit.dot import to_dot
    from archdsl.emit.numpy_module import export
    from archdsl.runtime.interpreter import CompileError, make_plan


#: The campaign's size limits.  A 4 KB input can ask for the default limit of
#: 250,000 nodes, which archdsl handles in bounded but not sub-second time
#: (benchmarks/analysis_scale.py measures that); here the bound is lower so
#: that -timeout=2 and -rss_limit_mb=1024 flag what is slow or large for its
#: size, not models that are merely as large as the limits allow.
LIMITS = archdsl.Limits(max_nodes=20_000, max_steps=200_000)


class InvariantBroken(AssertionError):
    """The pipeline broke its promise on an input: a crash for the fuzzer."""


def _located(diagnostics) -> None:
    for d in diagnostics:
        if d.code not in BY_CODE or d.span is None or d.span.line < 1 or d.span.column < 1 or not d.message:
            raise InvariantBroken(f"diagnostic without a known code or a location: {d!r}")


def exercise(text: str) -> None:
    """Runs every stage on ``text`` (imports resolve against the zoo) and
    raises :class:`InvariantBroken`, or lets a bug's exception escape."""
    program = archdsl.loads(text, name="fuzz.cnn", directory=MODELS, limits=LIMITS)
    _located(program.diagnostics)
    report = check_program(program)
    _located(report.diagnostics)
    for analysis in report.analyses:
        to_dot(analysis)
    if not program.ok:
        return
    for model in program.models:
        try:
            plan = make_plan(model)
        except CompileError as error:  # errors found by the analysis: the check above reported them
            _located(error.diagnostics)
            continue
        source = export(model, plan=plan)
        compile(source, "exported.py", "exec")  # valid Python; test_export.py proves it safe to run


def test_one_input(data: bytes) -> None:
    exercise(data.decode("utf-8", "surrogateescape"))


def seed(corpus: Path) -> None:
    """Fills an empty corpus directory with the zoo and the invalid corpus."""
    corpus.mkdir(parents=True, exist_ok=True)
    if any(corpus.iterdir()):
        return
    for path in SEEDS:
        data = path.read_bytes()
        if len(data) <= 4096:
            (corpus / f"{path.parent.name}-{path.name}").write_bytes(data)


def main(argv: list[str]) -> None:
    for argument in argv[1:]:
        if not argument.startswith("-") and not Path(argument).is_file():
            seed(Path(argument))
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
