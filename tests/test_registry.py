"""The registries are explicit; these tests keep them complete and the
generated documents in sync with them."""

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import archdsl.ops as ops
from archdsl import docgen
from archdsl.diagnostics.codes import CODES
from archdsl.ops.base import OpSpec
from archdsl.ops.catalog import undocumented_facets

DOCS = Path(__file__).resolve().parent.parent / "docs"
ARCHDSL = Path(ops.__file__).resolve().parent.parent


def all_op_classes():
    """Every concrete OpSpec subclass defined in archdsl/ops/*.py."""
    found = set()
    for info in pkgutil.iter_modules(ops.__path__):
        module = importlib.import_module(f"archdsl.ops.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, OpSpec) and "op" in cls.model_fields and cls.__module__ == module.__name__:
                found.add(cls)
    return found


def test_every_op_class_is_registered():
    assert all_op_classes() == set(ops.OPS)


def test_op_names_are_unique_and_callable_names_resolve():
    kinds = [op.kind() for op in ops.OPS]
    assert len(kinds) == len(set(kinds))
    for name, op in ops.CALLABLE.items():
        assert ops.lookup(name) is op
    assert ops.lookup("swish") is ops.lookup("silu")
    assert ops.lookup("input") is None  # declared, never called


@pytest.mark.parametrize("op", [op for op in ops.OPS], ids=lambda op: op.kind())
def test_every_op_is_documented(op):
    doc = inspect.getdoc(op)
    assert doc and doc != inspect.getdoc(OpSpec), f"{op.kind()} needs a docstring with its formula"
    for name in op.positional:
        assert name in op.model_fields, f"{op.kind()}: positional {name} is not an argument"


def test_codes_are_unique_well_formed_and_documented():
    codes = [c.code for c in CODES]
    assert len(codes) == len(set(codes))
    names = [c.name for c in CODES]
    assert len(names) == len(set(names))
    for c in CODES:
        assert re.fullmatch(r"[EWI]\d{3}", c.code)
        assert c.severity.value[0].upper() == c.code[0] or c.code[0] == "E"
        assert c.summary and c.example


def test_every_code_used_in_the_source_is_in_the_table():
    known = {c.code for c in CODES}
    used = set()
    for path in ARCHDSL.rglob("*.py"):
        used |= set(re.findall(r'"([EWI]\d{3})"', path.read_text(encoding="utf-8")))
    assert used <= known, used - known


def test_generated_docs_are_in_sync():
    """docs/ops.md, docs/rules.md and the generated tables of analysis.md,
    runtime.md and export.md are what the registries give."""
    assert [path.name for path in docgen.stale(DOCS)] == [], "run: python scripts/gen_docs.py"


def test_every_facet_method_documents_its_rule():
    """The docs' per-op tables are the facet methods' docstrings: an op that
    overrides infer, parameter_shapes, buffer_shapes, macs, flops or window
    must say what its version computes."""
    assert undocumented_facets() == []


def test_generated_sections_are_replaced_and_missing_ones_reported():
    text = "a\n<!-- generated: t -->\nold\n<!-- end generated -->\nb\n"
    assert docgen.replace_sections(text, {"t": "new\n"}) == "a\n<!-- generated: t -->\nnew\n<!-- end generated -->\nb\n"
    with pytest.raises(docgen.MissingSection, match="u"):
        docgen.replace_sections(text, {"u": "x\n"})


def test_language_doc_example_elaborates():
    """The first example of docs/language.md is a working program."""
    import archdsl

    text = (DOCS / "language.md").read_text(encoding="utf-8")
    example = re.search(r"```\n(.*?)```", text, re.S).group(1)
    program = archdsl.loads(example, name="example.cnn", directory=DOCS.parent / "models")
    assert program.check() == []
    analysis = archdsl.analyze(program.model())
    assert analysis.shapes["fc"] == (10,)
