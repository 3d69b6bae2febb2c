"""The parser (archdsl/syntax.py): the syntax tree is built in the LALR
reductions over the automaton Lark computes for grammars/cnn.lark, with
Lark's own parser reporting syntax errors.  These tests pin what the
restructuring must not change (spans, to the closing bracket) and cover its
new parts: the fallback to Lark's contextual lexer and the cached tables."""

import dataclasses
import json

import pytest

import archdsl
from archdsl import syntax
from archdsl.diagnostics import DiagnosticError
from archdsl.source import SourceFile, Span

# Every construct of the language, with optional parts present and absent,
# trailing commas and parenthesised expressions.
SNIPPET = r"""import "lib.cnn"
block B(c, s = 1, flag = (1 < 2),) {
    y = in -> conv1: conv2d(c, 3, stride=s, padding=(1), bias=false) -> bn: batchnorm2d
    z = in -> if flag { (conv2d(c, 1) -> relu) } else { identity }
    if s > 1 and not flag { t = y } else if s == 1 { t = z } else { t = y }
    return add(y, z,) -> relu
}
model M {
    input x: [3, 32, (16 + 16),]
    h = x -> "conv{1 + 1}": conv2d(8, (3, 3), padding=1) -> 0: relu
      -> stage: repeat 2 as i { B(8, s = if i == 0 then 2 else 1) -> dropout(0.5) }
      -> (pad(-(1) * 2 + (3) // 1 % 4.5 >= 0, 'x\'y') -> narrow(1, 0, 2))
    out: concat(h, h -> maxpool2d(kernel_size=(2,)), dim=1)
    output y = h -> global_avgpool -> flatten -> linear(10)
    output z
    expect macs <= 4.2G
    expect output y: [10]
    expect output: [10]
    return h
}
"""


def spans(node, text: str, out: list) -> list:
    """(Class.field, covered text) of every span, depth first, in field order."""
    if isinstance(node, list):
        for item in node:
            spans(item, text, out)
    elif dataclasses.is_dataclass(node) and not isinstance(node, (Span, SourceFile)):
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if isinstance(value, Span):
                out.append((f"{type(node).__name__}.{f.name}", text[value.start:value.end]))
            else:
                spans(value, text, out)
    return out


# What Lark's propagate_positions gave, recorded before the parser was
# restructured: a node runs from its first to its last token, closing
# brackets included; a parenthesised expression is the inner expression, but
# whatever is built around it covers the brackets (padding=(1), (3) // 1).
EXPECTED = [
    ('BlockDef.name_span', 'B'),
    ('Param.span', 'c'),
    ('Param.span', 's'),
    ('Literal.span', '1'),
    ('Param.span', 'flag'),
    ('Literal.span', '1'),
    ('Literal.span', '2'),
    ('Binary.span', '1 < 2'),
    ('Binary.op_span', '<'),
    ('Assign.name_span', 'y'),
    ('Name.span', 'in'),
    ('Step.label_span', 'conv1'),
    ('Name.span', 'c'),
    ('Argument.span', 'c'),
    ('Literal.span', '3'),
    ('Argument.span', '3'),
    ('Name.span', 's'),
    ('Argument.span', 'stride=s'),
    ('Argument.name_span', 'stride'),
    ('Literal.span', '1'),
    ('Argument.span', 'padding=(1)'),
    ('Argument.name_span', 'padding'),
    ('Literal.span', 'false'),
    ('Argument.span', 'bias=false'),
    ('Argument.name_span', 'bias'),
    ('OpCall.span', 'conv2d(c, 3, stride=s, padding=(1), bias=false)'),
    ('OpCall.name_span', 'conv2d'),
    ('Step.span', 'conv1: conv2d(c, 3, stride=s, padding=(1), bias=false)'),
    ('Step.label_span', 'bn'),
    ('OpRef.span', 'batchnorm2d'),
    ('Step.span', 'bn: batchnorm2d'),
    ('Chain.span', 'in -> conv1: conv2d(c, 3, stride=s, padding=(1), bias=false) -> bn: batchnorm2d'),
    ('Assign.span', 'y = in -> conv1: conv2d(c, 3, stride=s, padding=(1), bias=false) -> bn: batchnorm2d'),
    ('Assign.name_span', 'z'),
    ('Name.span', 'in'),
    ('Name.span', 'flag'),
    ('Name.span', 'c'),
    ('Argument.span', 'c'),
    ('Literal.span', '1'),
    ('Argument.span', '1'),
    ('OpCall.span', 'conv2d(c, 1)'),
    ('OpCall.name_span', 'conv2d'),
    ('Step.span', 'conv2d(c, 1)'),
    ('OpRef.span', 'relu'),
    ('Step.span', 'relu'),
    ('Group.span', '(conv2d(c, 1) -> relu)'),
    ('Step.span', '(conv2d(c, 1) -> relu)'),
    ('OpRef.span', 'identity'),
    ('Step.span', 'identity'),
    ('CondStep.span', 'if flag { (conv2d(c, 1) -> relu) } else { identity }'),
    ('Step.span', 'if flag { (conv2d(c, 1) -> relu) } else { identity }'),
    ('Chain.span', 'in -> if flag { (conv2d(c, 1) -> relu) } else { identity }'),
    ('Assign.span', 'z = in -> if flag { (conv2d(c, 1) -> relu) } else { identity }'),
    ('Name.span', 's'),
    ('Literal.span', '1'),
    ('Binary.span', 's > 1'),
    ('Binary.op_span', '>'),
    ('Name.span', 'flag'),
    ('Unary.span', 'not flag'),
    ('Binary.span', 's > 1 and not flag'),
    ('Binary.op_span', 's > 1 and not flag'),
    ('Assign.name_span', 't'),
    ('Name.span', 'y'),
    ('Chain.span', 'y'),
    ('Assign.span', 't = y'),
    ('Name.span', 's'),
    ('Literal.span', '1'),
    ('Binary.span', 's == 1'),
    ('Binary.op_span', '=='),
    ('Assign.name_span', 't'),
    ('Name.span', 'z'),
    ('Chain.span', 'z'),
    ('Assign.span', 't = z'),
    ('Assign.name_span', 't'),
    ('Name.span', 'y'),
    ('Chain.span', 'y'),
    ('Assign.span', 't = y'),
    ('If.span', 'if s == 1 { t = z } else { t = y }'),
    ('If.span', 'if s > 1 and not flag { t = y } else if s == 1 { t = z } else { t = y }'),
    ('Name.span', 'y'),
    ('Argument.span', 'y'),
    ('Name.span', 'z'),
    ('Argument.span', 'z'),
    ('Call.span', 'add(y, z,)'),
    ('Call.func_span', 'add'),
    ('OpRef.span', 'relu'),
    ('Step.span', 'relu'),
    ('Chain.span', 'add(y, z,) -> relu'),
    ('Return.span', 'return add(y, z,) -> relu'),
    ('BlockDef.span', 'block B(c, s = 1, flag = (1 < 2),) {\n    y = in -> conv1: conv2d(c, 3, stride=s, padding=(1), bias=false) -> bn: batchnorm2d\n    z = in -> if flag { (conv2d(c, 1) -> relu) } else { identity }\n    if s > 1 and not flag { t = y } else if s == 1 { t = z } else { t = y }\n    return add(y, z,) -> relu\n}'),
    ('ModelDef.name_span', 'M'),
    ('InputDecl.name_span', 'x'),
    ('Literal.span', '3'),
    ('Literal.span', '32'),
    ('Literal.span', '16'),
    ('Literal.span', '16'),
    ('Binary.span', '16 + 16'),
    ('Binary.op_span', '+'),
    ('InputDecl.dims_span', '[3, 32, (16 + 16),]'),
    ('InputDecl.span', 'input x: [3, 32, (16 + 16),]'),
    ('Assign.name_span', 'h'),
    ('Name.span', 'x'),
    ('LabelTemplate.span', '"conv{1 + 1}"'),
    ('Step.label_span', '"conv{1 + 1}"'),
    ('Literal.span', '8'),
    ('Argument.span', '8'),
    ('Literal.span', '3'),
    ('Literal.span', '3'),
    ('TupleExpr.span', '(3, 3)'),
    ('Argument.span', '(3, 3)'),
    ('Literal.span', '1'),
    ('Argument.span', 'padding=1'),
    ('Argument.name_span', 'padding'),
    ('OpCall.span', 'conv2d(8, (3, 3), padding=1)'),
    ('OpCall.name_span', 'conv2d'),
    ('Step.span', '"conv{1 + 1}": conv2d(8, (3, 3), padding=1)'),
    ('Step.label_span', '0'),
    ('OpRef.span', 'relu'),
    ('Step.span', '0: relu'),
    ('Step.label_span', 'stage'),
    ('Literal.span', '2'),
    ('Repeat.index_span', 'i'),
    ('Literal.span', '8'),
    ('Argument.span', '8'),
    ('Name.span', 'i'),
    ('Literal.span', '0'),
    ('Binary.span', 'i == 0'),
    ('Binary.op_span', '=='),
    ('Literal.span', '2'),
    ('Literal.span', '1'),
    ('Conditional.span', 'if i == 0 then 2 else 1'),
    ('Argument.span', 's = if i == 0 then 2 else 1'),
    ('Argument.name_span', 's'),
    ('OpCall.span', 'B(8, s = if i == 0 then 2 else 1)'),
    ('OpCall.name_span', 'B'),
    ('Step.span', 'B(8, s = if i == 0 then 2 else 1)'),
    ('Literal.span', '0.5'),
    ('Argument.span', '0.5'),
    ('OpCall.span', 'dropout(0.5)'),
    ('OpCall.name_span', 'dropout'),
    ('Step.span', 'dropout(0.5)'),
    ('Repeat.span', 'repeat 2 as i { B(8, s = if i == 0 then 2 else 1) -> dropout(0.5) }'),
    ('Step.span', 'stage: repeat 2 as i { B(8, s = if i == 0 then 2 else 1) -> dropout(0.5) }'),
    ('Literal.span', '1'),
    ('Unary.span', '-(1)'),
    ('Literal.span', '2'),
    ('Binary.span', '-(1) * 2'),
    ('Binary.op_span', '*'),
    ('Literal.span', '3'),
    ('Literal.span', '1'),
    ('Binary.span', '(3) // 1'),
    ('Binary.op_span', '//'),
    ('Literal.span', '4.5'),
    ('Binary.span', '(3) // 1 % 4.5'),
    ('Binary.op_span', '%'),
    ('Binary.span', '-(1) * 2 + (3) // 1 % 4.5'),
    ('Binary.op_span', '+'),
    ('Literal.span', '0'),
    ('Binary.span', '-(1) * 2 + (3) // 1 % 4.5 >= 0'),
    ('Binary.op_span', '>='),
    ('Argument.span', '-(1) * 2 + (3) // 1 % 4.5 >= 0'),
    ('Literal.span', "'x\\'y'"),
    ('Argument.span', "'x\\'y'"),
    ('OpCall.span', "pad(-(1) * 2 + (3) // 1 % 4.5 >= 0, 'x\\'y')"),
    ('OpCall.name_span', 'pad'),
    ('Step.span', "pad(-(1) * 2 + (3) // 1 % 4.5 >= 0, 'x\\'y')"),
    ('Literal.span', '1'),
    ('Argument.span', '1'),
    ('Literal.span', '0'),
    ('Argument.span', '0'),
    ('Literal.span', '2'),
    ('Argument.span', '2'),
    ('OpCall.span', 'narrow(1, 0, 2)'),
    ('OpCall.name_span', 'narrow'),
    ('Step.span', 'narrow(1, 0, 2)'),
    ('Group.span', "(pad(-(1) * 2 + (3) // 1 % 4.5 >= 0, 'x\\'y') -> narrow(1, 0, 2))"),
    ('Step.span', "(pad(-(1) * 2 + (3) // 1 % 4.5 >= 0, 'x\\'y') -> narrow(1, 0, 2))"),
    ('Chain.span', 'x -> "conv{1 + 1}": conv2d(8, (3, 3), padding=1) -> 0: relu\n      -> stage: repeat 2 as i { B(8, s = if i == 0 then 2 else 1) -> dropout(0.5) }\n      -> (pad(-(1) * 2 + (3) // 1 % 4.5 >= 0, \'x\\\'y\') -> narrow(1, 0, 2))'),
    ('Assign.span', 'h = x -> "conv{1 + 1}": conv2d(8, (3, 3), padding=1) -> 0: relu\n      -> stage: repeat 2 as i { B(8, s = if i == 0 then 2 else 1) -> dropout(0.5) }\n      -> (pad(-(1) * 2 + (3) // 1 % 4.5 >= 0, \'x\\\'y\') -> narrow(1, 0, 2))'),
    ('Chain.label_span', 'out'),
    ('Name.span', 'h'),
    ('Argument.span', 'h'),
    ('Name.span', 'h'),
    ('Literal.span', '2'),
    ('TupleExpr.span', '(2,)'),
    ('Argument.span', 'kernel_size=(2,)'),
    ('Argument.name_span', 'kernel_size'),
    ('OpCall.span', 'maxpool2d(kernel_size=(2,))'),
    ('OpCall.name_span', 'maxpool2d'),
    ('Step.span', 'maxpool2d(kernel_size=(2,))'),
    ('ChainExpr.span', 'h -> maxpool2d(kernel_size=(2,))'),
    ('Argument.span', 'h -> maxpool2d(kernel_size=(2,))'),
    ('Literal.span', '1'),
    ('Argument.span', 'dim=1'),
    ('Argument.name_span', 'dim'),
    ('Call.span', 'concat(h, h -> maxpool2d(kernel_size=(2,)), dim=1)'),
    ('Call.func_span', 'concat'),
    ('Chain.span', 'out: concat(h, h -> maxpool2d(kernel_size=(2,)), dim=1)'),
    ('ChainStmt.span', 'out: concat(h, h -> maxpool2d(kernel_size=(2,)), dim=1)'),
    ('OutputDecl.name_span', 'y'),
    ('Name.span', 'h'),
    ('OpRef.span', 'global_avgpool'),
    ('Step.span', 'global_avgpool'),
    ('OpRef.span', 'flatten'),
    ('Step.span', 'flatten'),
    ('Literal.span', '10'),
    ('Argument.span', '10'),
    ('OpCall.span', 'linear(10)'),
    ('OpCall.name_span', 'linear'),
    ('Step.span', 'linear(10)'),
    ('Chain.span', 'h -> global_avgpool -> flatten -> linear(10)'),
    ('OutputDecl.span', 'output y = h -> global_avgpool -> flatten -> linear(10)'),
    ('OutputDecl.name_span', 'z'),
    ('OutputDecl.span', 'output z'),
    ('ExpectFigure.figure_span', 'macs'),
    ('Literal.span', '4.2G'),
    ('ExpectFigure.span', 'expect macs <= 4.2G'),
    ('ExpectOutput.name_span', 'y'),
    ('Literal.span', '10'),
    ('ExpectOutput.span', 'expect output y: [10]'),
    ('ExpectOutput.name_span', 'expect output: [10]'),
    ('Literal.span', '10'),
    ('ExpectOutput.span', 'expect output: [10]'),
    ('Name.span', 'h'),
    ('Chain.span', 'h'),
    ('Return.span', 'return h'),
    ('ModelDef.span', 'model M {\n    input x: [3, 32, (16 + 16),]\n    h = x -> "conv{1 + 1}": conv2d(8, (3, 3), padding=1) -> 0: relu\n      -> stage: repeat 2 as i { B(8, s = if i == 0 then 2 else 1) -> dropout(0.5) }\n      -> (pad(-(1) * 2 + (3) // 1 % 4.5 >= 0, \'x\\\'y\') -> narrow(1, 0, 2))\n    out: concat(h, h -> maxpool2d(kernel_size=(2,)), dim=1)\n    output y = h -> global_avgpool -> flatten -> linear(10)\n    output z\n    expect macs <= 4.2G\n    expect output y: [10]\n    expect output: [10]\n    return h\n}'),
    ('Import.span', '"lib.cnn"'),
]


def test_every_span_of_a_program_covers_what_it_did():
    module = syntax.parse(SourceFile("s.cnn", SNIPPET))
    got = []
    for part in (module.blocks, module.models, module.imports):
        spans(part, SNIPPET, got)
    assert got == EXPECTED


def test_lines_and_columns_agree_with_offsets():
    source = SourceFile("s.cnn", SNIPPET)
    module = syntax.parse(source)
    checked = 0

    def check(node):
        nonlocal checked
        if isinstance(node, list):
            for item in node:
                check(item)
        elif dataclasses.is_dataclass(node) and not isinstance(node, (Span, SourceFile)):
            for f in dataclasses.fields(node):
                value = getattr(node, f.name)
                if isinstance(value, Span):
                    assert value.file == "s.cnn"
                    assert (value.line, value.column) == source.position(value.start), value
                    assert (value.end_line, value.end_column) == source.position(value.end), value
                    checked += 1
                else:
                    check(value)

    check([module.imports, module.blocks, module.models])
    assert checked == len(EXPECTED)


def test_windows_line_endings_tabs_and_comments_count_as_lark_counts_them():
    text = "# a comment\r\nmodel M {\r\n\tinput x: [3, 8, 8]  # café\r\n\tx -> relu\r\n}\r\n"
    module = syntax.parse(SourceFile("w.cnn", text))
    decl, chain = module.models[0].body
    assert (decl.name_span.line, decl.name_span.column) == (3, 8)
    step = chain.chain.steps[0]
    assert (step.span.line, step.span.column, step.span.end_column) == (4, 7, 11)
    assert text[step.span.start:step.span.end] == "relu"


@pytest.mark.parametrize("text", ["", "   \n", "# nothing but a comment\n"])
def test_empty_files_parse_to_an_empty_module(text):
    module = syntax.parse(SourceFile("e.cnn", text))
    assert (module.imports, module.blocks, module.models) == ([], [], [])


def test_text_the_contextual_lexer_reads_differently_parses_as_lark_parses_it():
    # After 'else' only '{' or 'if' can follow, so Lark's contextual lexer
    # reads "iffy" as 'if' then 'fy'; the plain lexer of the fast road reads
    # a name, rejects, and Lark's token stream is parsed instead.
    text = "model M {\n  input x: [3]\n  if true { y = x } else iffy { y = x }\n  output y\n}\n"
    statement = syntax.parse(SourceFile("q.cnn", text)).models[0].body[1]
    assert isinstance(statement, syntax.If)
    (inner,) = statement.orelse
    assert isinstance(inner, syntax.If) and isinstance(inner.test, syntax.Name) and inner.test.id == "fy"
    assert text[inner.test.span.start:inner.test.span.end] == "fy"


def test_syntax_errors_are_lark_s():
    with pytest.raises(DiagnosticError) as caught:
        syntax.parse(SourceFile("e.cnn", "model M {\n  input x: [3, 8, 8]\n  x -> conv2d(8 3)\n}\n"))
    (d,) = caught.value.diagnostics
    assert (d.code, d.span.line, d.span.column) == ("E101", 3, 17)
    assert d.message == "expected ')', ',' or '->', found '3'"
    assert d.hint == "arguments are separated by commas"


def test_label_expressions_point_at_their_template():
    template = Span("t.cnn", 4, 9, 4, 24, 50, 65)
    expr = syntax.parse_expression("(i + 1) * 2", template)
    assert isinstance(expr, syntax.Binary) and expr.op == "*"
    assert expr.span is template and expr.left.span is template and expr.left.right.span is template
    with pytest.raises(DiagnosticError) as caught:
        syntax.parse_expression("i +", template)
    assert [(d.code, d.span) for d in caught.value.diagnostics] == [("E101", template)]


def sum_of_ones(n: int) -> str:
    return "model M { input x: [3, 8, 8]\n x -> conv2d(" + " + ".join(["1"] * n) + ", 3) }"


def test_deep_nesting_is_refused_as_the_recursive_stages_need():
    # The tree walk the parser replaced recursed once per level; a sum of
    # 5000 terms nests 5000 deep and was refused by it, and still is.
    (d,) = archdsl.loads(sum_of_ones(5000), name="deep.cnn").diagnostics
    assert (d.code, d.message, str(d.span)) == ("E901", "the file nests expressions too deeply to analyse",
                                                "deep.cnn:1:1")
    assert archdsl.loads(sum_of_ones(500), name="ok.cnn").ok


# ---------------------------------------------------------------- the cached tables


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A fresh cache folder, and fresh tables in memory before and after."""
    monkeypatch.setenv("ARCHDSL_CACHE_DIR", str(tmp_path))
    syntax._tables.cache_clear()
    yield tmp_path
    syntax._tables.cache_clear()


def model_text() -> str:
    return "model M {\n  input x: [3, 8, 8]\n  x -> conv2d(4, 3, padding=1) -> relu\n}\n"


def parsed(text: str) -> str:
    return repr(syntax.parse(SourceFile("m.cnn", text)))


def test_tables_are_computed_once_then_read_from_the_cache(cache_dir, monkeypatch):
    expected = parsed(model_text())
    (stored,) = cache_dir.glob("parser-*.json")
    data = json.loads(stored.read_text(encoding="utf-8"))
    assert data["grammar"] == syntax.grammar_path().read_text(encoding="utf-8")

    syntax._tables.cache_clear()

    def no_lark(grammar):
        raise AssertionError("the tables should come from the cache")

    monkeypatch.setattr(syntax, "_compute_tables", no_lark)
    assert parsed(model_text()) == expected


def test_a_corrupt_or_stale_cache_is_recomputed(cache_dir):
    expected = parsed(model_text())
    (stored,) = cache_dir.glob("parser-*.json")
    for damage in ("{not json", json.dumps({**json.loads(stored.read_text(encoding="utf-8")), "grammar": "old"})):
        stored.write_text(damage, encoding="utf-8")
        syntax._tables.cache_clear()
        assert parsed(model_text()) == expected
        assert json.loads(stored.read_text(encoding="utf-8"))["grammar"] != "old"


def test_the_cache_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHDSL_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    syntax._tables.cache_clear()
    try:
        assert parsed(model_text())
        assert not list(tmp_path.rglob("*.json"))
    finally:
        syntax._tables.cache_clear()


@pytest.mark.parametrize("environment, expected", [
    ({"ARCHDSL_CACHE_DIR": "/x/cache"}, "/x/cache"),
    ({"ARCHDSL_CACHE_DIR": ""}, None),
    ({"XDG_CACHE_HOME": "/x/xdg", "HOME": "/x/home"}, "/x/xdg/archdsl"),
    ({"XDG_CACHE_HOME": "relative", "HOME": "/x/home"}, "/x/home/.cache/archdsl"),  # XDG: relative is ignored
    ({"HOME": "/x/home"}, "/x/home/.cache/archdsl"),
])
def test_the_cache_folder_follows_the_environment(monkeypatch, environment, expected):
    for name in ("ARCHDSL_CACHE_DIR", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    folder = syntax.cache_folder()
    assert (None if folder is None else str(folder)) == expected


def test_no_home_directory_means_no_cache_and_parsing_still_works(tmp_path, monkeypatch):
    """HOME unset and no passwd entry: expanduser leaves "~" as it is, which
    must not become a folder named "~" under the current directory."""
    for name in ("ARCHDSL_CACHE_DIR", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(syntax.os.path, "expanduser", lambda path: path)
    monkeypatch.chdir(tmp_path)
    assert syntax.cache_folder() is None
    syntax._tables.cache_clear()
    try:
        assert parsed(model_text())
        assert list(tmp_path.iterdir()) == []
    finally:
        syntax._tables.cache_clear()


def test_an_unwritable_cache_folder_is_no_error(tmp_path, monkeypatch):
    """A cache folder that cannot be made (here under a regular file, which
    stops root too): tables and Lark are built in memory, errors still reported."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("ARCHDSL_CACHE_DIR", str(blocker / "archdsl"))
    syntax._tables.cache_clear()
    syntax._lark.cache_clear()
    try:
        assert parsed(model_text())
        with pytest.raises(DiagnosticError):  # a syntax error is reported through Lark, built without its cache
            parsed("model M {")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    finally:
        syntax._tables.cache_clear()
        syntax._lark.cache_clear()


def test_lark_s_own_cache_is_in_archdsl_s_folder(tmp_path, monkeypatch):
    """Lark's cache is a pickle: it must live in the user's archdsl cache
    folder, not at a predictable name in a shared temporary folder."""
    monkeypatch.setenv("ARCHDSL_CACHE_DIR", str(tmp_path))
    syntax._lark.cache_clear()
    try:
        syntax._lark(syntax.grammar_path().read_text(encoding="utf-8"))
        assert list(tmp_path.glob("lark-*.pickle"))
    finally:
        syntax._lark.cache_clear()


def test_every_grammar_rule_has_a_builder():
    data = syntax._compute_tables(syntax.grammar_path().read_text(encoding="utf-8"))
    built = {argument for size, origin, how, argument, layout, trailing in data["rules"] if how == syntax._NODE}
    assert {name.removeprefix("r_") for name in vars(syntax._Builder) if name.startswith("r_")} == built
