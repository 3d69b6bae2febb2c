"""``archdsl fmt``: canonical, idempotent, comment-preserving and
semantics-preserving.

The reference for "the same model" is the elaborated graph itself: every
model's ``model_dump`` (what ``archdsl parse --json`` prints: node names,
specs, inputs, spans excluded) before and after formatting."""

from __future__ import annotations

import random

import pytest
from conftest import MODELS
from hypothesis import given, settings
from test_parser_differential import programs

import archdsl
from archdsl import fmt, syntax

ZOO = sorted(MODELS.glob("*.cnn")) + sorted((MODELS / "blocks").glob("*.cnn"))


def graphs(text: str, directory) -> list[dict]:
    program = archdsl.loads(text, "model.cnn", directory=directory)
    assert program.ok, [str(d) for d in program.diagnostics]
    return [_without_spans(model.model_dump(mode="json")) for model in program.models]


def _without_spans(value):
    """The graph with source positions removed (formatting moves them)."""
    if isinstance(value, dict):
        return {k: _without_spans(v) for k, v in value.items() if not k.endswith(("span", "spans"))}
    if isinstance(value, list):
        return [_without_spans(v) for v in value]
    return value


def lark_tree(text: str):
    """Lark's own parse tree of ``text``, positions left out."""

    def plain(node):
        if hasattr(node, "data"):
            return (str(node.data), tuple(plain(child) for child in node.children))
        return node if node is None else (node.type, str(node))

    return plain(syntax._parser().parse(text, start="start"))


def comments(text: str) -> list[str]:
    return [t.text.rstrip() for t in fmt.tokens(text) if t.kind == "COMMENT"]


@pytest.mark.parametrize("path", ZOO, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_the_zoo_is_formatted_and_formatting_keeps_its_graphs(path):
    text = path.read_text(encoding="utf-8")
    formatted = fmt.format_text(text, str(path))
    assert formatted == text, f"{path} is not formatted: run archdsl fmt {path}"
    # Squashing every line break and indent (the inverse of the layout)
    # and formatting again gives a file with the same graphs and comments.
    squashed = squash(text)
    assert squashed != text
    again = fmt.format_text(squashed, str(path))
    assert fmt.format_text(again) == again
    assert comments(again) == comments(text)
    if path.parent.name != "blocks":
        assert graphs(again, path.parent) == graphs(text, path.parent)


def squash(text: str) -> str:
    """``text`` with all whitespace between tokens on a line reduced to one
    space and every indent removed (comments keep their lines)."""
    out = []
    for tok in fmt.tokens(text):
        out.append(("\n" * tok.newlines if tok.newlines else " ") + tok.text)
    return "".join(out).lstrip() + "\n"


def scramble(text: str, seed: int) -> str:
    """``text`` with random whitespace and line breaks between tokens."""
    rng = random.Random(seed)
    out = []
    previous = None
    for tok in fmt.tokens(text):
        if previous == "COMMENT" or tok.newlines and rng.random() < 0.5:
            gap = "\n" * rng.randint(1, 3) + " " * rng.randint(0, 9)
        else:
            gap = rng.choice([" ", "  ", "\n", "\t", "\n\n  "])
        out.append(gap + tok.text)
        previous = tok.kind
    return "".join(out)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("name", ["resnet50", "googlenet", "mobilenet_v2", "shufflenet_v2_x1_0", "unet"])
def test_scrambled_zoo_files_format_to_the_same_graphs_and_comments(name, seed):
    path = MODELS / f"{name}.cnn"
    text = path.read_text(encoding="utf-8")
    scrambled = scramble(text, seed)
    formatted = fmt.format_text(scrambled)
    assert fmt.format_text(formatted) == formatted
    assert comments(formatted) == comments(text)
    assert graphs(formatted, MODELS) == graphs(text, MODELS)
    assert all(line == line.rstrip() for line in formatted.splitlines())
    assert "\n\n\n" not in formatted


@settings(max_examples=200, deadline=None, derandomize=True)
@given(programs())
def test_generated_programs_keep_their_syntax_tree_and_format_idempotently(text):
    formatted = fmt.format_text(text)
    assert lark_tree(formatted) == lark_tree(text)
    assert fmt.format_text(formatted) == formatted


CASES = [
    # spacing, one statement per line, bodies opened and closed on their own lines
    ("model M{input x:[3,4,4] x->conv2d(8,3,padding=1)->relu}",
     "model M {\n    input x: [3, 4, 4]\n    x -> conv2d(8, 3, padding=1) -> relu\n}\n"),
    # a keyword argument with a comparison or keyword in its value is spaced
    ("block B(a,b=-1){return in->conv2d(a,(1,2),stride=if a>1 then 2 else 1,padding=b*-2)}",
     "block B(a, b = -1) {\n    return in -> conv2d(a, (1, 2), stride = if a > 1 then 2 else 1, padding=b * -2)\n}\n"),
    # trailing commas: added when the bracket closes on its own line, dropped on one line, kept in (x,)
    ("block B(a,\nb,) {\nc = concat(in,\nin\n)\nd = (1,)\nreturn c}",
     "block B(a,\n    b) {\n    c = concat(in,\n        in,\n    )\n    d = (1,)\n    return c\n}\n"),
    # blank lines: at most one, none at the start or end of a body; continuation lines indented once
    ("\n\nmodel M {\n\n\n  input x: [3, 4, 4]\n\n\n\n  x\n  -> relu\n\n}\n\n\n",
     "model M {\n    input x: [3, 4, 4]\n\n    x\n        -> relu\n}\n"),
    # comments: trailing ones aligned in a run, others at the indent of the next line
    ("model M {\n# a\ninput x: [3, 4, 4] # b\nx -> relu   # c\n  # d\n}",
     "model M {\n    # a\n    input x: [3, 4, 4]  # b\n    x -> relu           # c\n    # d\n}\n"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_the_canonical_layout(text, expected):
    assert fmt.format_text(text) == expected
    assert fmt.format_text(expected) == expected


def test_a_long_chain_gets_one_step_per_line():
    steps = " -> ".join(f"c{i}: conv2d(16, 3, padding=1)" for i in range(5))
    text = f"model M {{\n    input x: [3, 8, 8]\n    y = x -> {steps}\n}}\n"
    formatted = fmt.format_text(text)
    assert formatted.splitlines()[2] == "    y = x"
    assert formatted.splitlines()[3:8] == [f"        -> c{i}: conv2d(16, 3, padding=1)" for i in range(5)]
    assert graphs(formatted, MODELS) == graphs(text, MODELS)


def test_the_formatter_s_tokens_are_the_parser_s(monkeypatch):
    """The token stream (comments left out) is the one Lark's own lexer
    reads, on every zoo file."""
    from archdsl import syntax

    for path in ZOO:
        text = path.read_text(encoding="utf-8")
        ours = [(t.kind, t.text) for t in fmt.tokens(text) if t.kind != "COMMENT"]
        types, entries = syntax._contextual_tokens(text, "start")
        lark = [(kind, entry[0]) for kind, entry in zip(types, entries, strict=True) if entry is not None]
        assert ours == [(kind if kind != "_ARROW" else "_ARROW", value) for kind, value in lark], path


def test_a_bug_that_would_change_a_token_is_refused(monkeypatch):
    monkeypatch.setattr(fmt, "_render", lambda toks, lines, spacer: "model M { input x: [3, 4, 5] }\n")
    with pytest.raises(fmt.FormatError):
        fmt.format_text("model M { input x: [3, 4, 4] }")


def test_check_diff_and_rewrite(cli, tmp_path):
    messy = tmp_path / "m.cnn"
    messy.write_text("model M{input x:[3,4,4] x->relu}")
    tidy = tmp_path / "tidy.cnn"
    tidy.write_text("model M {\n    input x: [3, 4, 4]\n    x -> relu\n}\n")

    result = cli("fmt", "--check", str(tmp_path))
    assert result.returncode == 1
    assert f"would reformat {messy}" in result.stderr and "tidy" not in result.stderr
    assert messy.read_text() == "model M{input x:[3,4,4] x->relu}"  # --check changes nothing

    result = cli("fmt", "--diff", str(messy))
    assert result.returncode == 0
    assert "-model M{input x:[3,4,4] x->relu}\n\\ No newline at end of file\n+model M {\n" in result.stdout
    assert messy.read_text() == "model M{input x:[3,4,4] x->relu}"

    result = cli("fmt", str(tmp_path))
    assert result.returncode == 0
    assert messy.read_text() == tidy.read_text()
    assert cli("fmt", "--check", str(tmp_path)).returncode == 0


def test_stdin_to_stdout(cli):
    result = cli("fmt", "-", input="model M{input x:[3,4,4]}")
    assert (result.returncode, result.stdout) == (0, "model M {\n    input x: [3, 4, 4]\n}\n")


def test_a_syntax_error_is_reported_and_nothing_is_written(cli, tmp_path):
    broken = tmp_path / "b.cnn"
    broken.write_text("model M { input x: [3,4,4] x->relu")
    result = cli("fmt", str(broken))
    assert result.returncode == 1
    assert "E101" in result.stderr and f"{broken}:1:" in result.stderr
    assert broken.read_text() == "model M { input x: [3,4,4] x->relu"


def test_usage_errors(cli, tmp_path):
    assert cli("fmt", str(tmp_path / "missing.cnn")).returncode == 2
    assert cli("fmt").returncode == 2


def test_the_zoo_is_clean_under_check(cli):
    result = cli("fmt", "--check", "models/")
    assert (result.returncode, result.stderr) == (0, "")
