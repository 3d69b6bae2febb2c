"""The fast parser (archdsl/syntax.py) against Lark's own parser, and the
guard that keeps its builders in step with grammars/cnn.lark.

* Differential: the LALR loop of the fast road, with builders that make
  plain trees, gives the tree Lark's own parser gives (maybe_placeholders,
  propagate_positions) for the same text: same rules and aliases, same
  tokens, same None for absent optional parts, same spans.  Run on one
  program per compiled alternative of the grammar (generated from the
  grammar, every alternative reduced at least once: checked), on the zoo
  and on random programs derived from the grammar (hypothesis).
* Guard: a grammar rule the builders were not written for stops parsing
  with an error naming the rule, instead of building a wrong tree.
"""

from __future__ import annotations

import functools

import lark
import pytest
from conftest import MODELS
from hypothesis import given, settings
from hypothesis import strategies as st

import archdsl
from archdsl import syntax
from archdsl.diagnostics import DiagnosticError
from archdsl.source import SourceFile

GRAMMAR = syntax.grammar_path().read_text(encoding="utf-8")

# ---------------------------------------------------------------- two parsers, one kind of tree


class TreeBuilder(syntax._Builder):
    """The fast road's loop, building ``(rule, start, end, children)`` for
    every node instead of the syntax tree."""

    @classmethod
    def builders(cls):
        return _PlainTrees()


class _PlainTrees(dict):
    def __missing__(self, name):
        def build(builder, span, *children):
            return (name, span.start, span.end, tuple(_plain_child(c) for c in children))

        self[name] = build
        return build


def _plain_child(entry):
    if entry is None:
        return None
    value = entry[syntax._VALUE]
    if isinstance(value, str):  # a token
        return ("token", value, entry[syntax._START], entry[syntax._END])
    return value


@functools.cache
def lark_parser() -> lark.Lark:
    return lark.Lark(GRAMMAR, parser="lalr", start=["start", "expr"], maybe_placeholders=True,
                     propagate_positions=True, lexer_callbacks={"NAME": syntax._reserved_word})


def lark_tree(text: str, start: str = "start"):
    def plain(node):
        if node is None:
            return None
        if isinstance(node, lark.Token):
            return ("token", str(node), node.start_pos, node.end_pos)
        meta = node.meta
        return (str(node.data), getattr(meta, "start_pos", 0), getattr(meta, "end_pos", 0),
                tuple(plain(c) for c in node.children))

    return plain(lark_parser().parse(text, start=start))


def fast_tree(text: str, start: str = "start"):
    builder = TreeBuilder("t.cnn")
    return builder.run(*syntax._scan(text), start, SourceFile("t.cnn", text))


def assert_same_tree(text: str, start: str = "start") -> None:
    expected = lark_tree(text, start)
    assert fast_tree(text, start) == expected, text


# ---------------------------------------------------------------- programs from the grammar

# Text for each terminal that is not a fixed string (several choices for the
# random programs; the first is used for the per-rule programs).
SAMPLES = {
    "NAME": ["x", "conv2d", "b_1"],
    "INT": ["7", "0", "1_000"],
    "FLOAT": ["0.5", "1e-3", "2.5E+2"],
    "QUANTITY": ["4G", "4.2M", "3K"],
    "STRING": ['"s"', "'t{i}'", r'"a\"b"'],
    "COMPARE": ["<=", "==", "!=", "<", ">", ">="],
    "ADD_OP": ["-", "+"],
    "MUL_OP": ["*", "//", "/", "%"],
}


@functools.cache
def grammar_rules():
    """Lark's compiled rules by origin, the cheapest sentence of every
    symbol, and a way to reach every rule from ``start``."""
    parser = lark_parser()
    terminals = {t.name: t for t in parser.terminals}
    by_origin: dict[str, list] = {}
    for rule in parser.rules:
        by_origin.setdefault(rule.origin.name, []).append(rule)

    def terminal_text(name: str, choice: int = 0) -> str:
        pattern = terminals[name].pattern
        if pattern.type == "str":
            return pattern.value
        if name not in SAMPLES:
            raise AssertionError(f"terminal {name} is new: add sample text for it to SAMPLES")
        return SAMPLES[name][choice % len(SAMPLES[name])]

    cheapest: dict[str, list[str]] = {}
    changed = True
    while changed:  # fixpoint: the shortest sentence each rule name derives
        changed = False
        for origin, rules in by_origin.items():
            for rule in rules:
                parts = []
                for symbol in rule.expansion:
                    if symbol.is_term:
                        parts.append([terminal_text(symbol.name)])
                    elif symbol.name in cheapest:
                        parts.append(cheapest[symbol.name])
                    else:
                        break
                else:
                    words = [w for p in parts for w in p]
                    if origin not in cheapest or len(words) < len(cheapest[origin]):
                        cheapest[origin] = words
                        changed = True

    reached_by: dict[str, tuple] = {"start": (None, 0), "expr": (None, 0)}
    queue = ["start", "expr"]
    while queue:
        origin = queue.pop(0)
        for rule in by_origin[origin]:
            for position, symbol in enumerate(rule.expansion):
                if not symbol.is_term and symbol.name not in reached_by:
                    reached_by[symbol.name] = (rule, position)
                    queue.append(symbol.name)
    return by_origin, cheapest, reached_by, terminal_text


def program_using(rule) -> tuple[str, str]:
    """A sentence (and its start symbol) whose derivation uses ``rule``:
    the rule with the cheapest sentence of each symbol, set in the cheapest
    context that leads to it from a start symbol."""
    _, cheapest, reached_by, terminal_text = grammar_rules()

    def words(symbols):
        out = []
        for symbol in symbols:
            out += [terminal_text(symbol.name)] if symbol.is_term else cheapest[symbol.name]
        return out

    sentence = words(rule.expansion)
    origin = rule.origin.name
    while True:
        parent, position = reached_by[origin]
        if parent is None:
            return " ".join(sentence), origin
        sentence = words(parent.expansion[:position]) + sentence + words(parent.expansion[position + 1:])
        origin = parent.origin.name


def test_every_alternative_of_the_grammar_builds_the_tree_lark_builds(monkeypatch):
    by_origin, _, _, _ = grammar_rules()
    reduced: set[int] = set()

    class Recording(dict):
        def get(self, key, default=None):
            code = super().get(key, default)
            if code is not None and code < 0:
                reduced.add(~code)
            return code

    tables = syntax._tables()
    actions = [Recording(row) for row in tables[4]]
    monkeypatch.setattr(syntax, "_tables", lambda: (*tables[:4], actions, *tables[5:8], {}))

    programs = [program_using(rule) for rules in by_origin.values() for rule in rules]
    assert len(programs) == sum(map(len, by_origin.values())) > 80
    for text, start in programs:
        assert_same_tree(text, start)
    # Every compiled alternative (optional parts present and absent, each
    # repetition, each alias) was reduced by the loop at least once.
    assert reduced == set(range(len(tables[5])))


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.cnn")), ids=lambda p: p.stem)
def test_the_zoo_parses_to_lark_s_trees(path):
    assert_same_tree(path.read_text(encoding="utf-8"))


def test_the_parser_test_snippet_parses_to_lark_s_tree():
    from test_parser import SNIPPET

    assert_same_tree(SNIPPET)


@st.composite
def programs(draw, origin: str = "start", max_depth: int = 7):
    """A random sentence of the grammar: each rule name expanded by a drawn
    alternative, the cheapest one past ``max_depth``."""
    by_origin, cheapest, _, terminal_text = grammar_rules()
    words: list[str] = []

    def expand(name: str, depth: int) -> None:
        rules = by_origin[name]
        if depth >= max_depth:
            rule = min(rules, key=lambda r: sum(len(cheapest.get(s.name, [s.name])) for s in r.expansion))
        else:
            rule = draw(st.sampled_from(rules))
        for symbol in rule.expansion:
            if symbol.is_term:
                choices = len(SAMPLES.get(symbol.name, [""]))
                words.append(terminal_text(symbol.name, draw(st.integers(0, choices - 1))))
            else:
                expand(symbol.name, depth + 1)

    expand(origin, 0)
    return " ".join(words)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(programs())
def test_random_programs_parse_to_lark_s_trees(text):
    assert_same_tree(text)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(programs("expr", max_depth=6))
def test_random_expressions_parse_to_lark_s_trees(text):
    assert_same_tree(text, "expr")


# ---------------------------------------------------------------- the guard


def grammar_with(old: str, new: str) -> str:
    assert GRAMMAR.count(old) == 1, old
    return GRAMMAR.replace(old, new)


@pytest.mark.parametrize(("old", "new", "rule"), [
    # The change that used to parse `repeat 2 from 1 {...}` into a wrong tree.
    ('"repeat" expr ["as" NAME] "{" steps "}"', '"repeat" expr ["as" NAME] ["from" expr] "{" steps "}"', "repeat"),
    ('param: NAME ["=" expr]', 'param: NAME [":" NAME] ["=" expr]', "param"),
    ('import_stmt: "import" STRING', 'import_stmt: "import" STRING ["as" NAME]', "import_stmt"),
    ('label: NAME | INT | STRING', 'label: NAME | INT | STRING | "@" INT', "label"),
    ('"(" steps ")"                                     -> group',
     '"(" steps ("," steps)* ")"                        -> group', "group"),
])
def test_a_grammar_change_the_builders_do_not_handle_is_refused_naming_the_rule(old, new, rule):
    with pytest.raises(syntax.GrammarMismatch, match=f"grammar rule '{rule}'"):
        syntax._compute_tables(grammar_with(old, new))


def test_a_new_rule_without_a_builder_is_refused():
    grammar = grammar_with("          | \"(\" steps \")\"", "          | \"<\" steps \">\" -> angle\n          | \"(\" steps \")\"")
    with pytest.raises(syntax.GrammarMismatch, match="grammar rule 'angle'.*has no builder r_angle"):
        syntax._compute_tables(grammar)


def test_a_builder_that_takes_the_wrong_pieces_is_refused(monkeypatch):
    # Even a builder whose stated grammar was updated without its parameters
    # (r_repeat still takes count, index, steps) is caught: the rule now
    # gives four pieces.
    new = '"repeat" expr ["as" NAME] ["from" expr] "{" steps "}"'
    monkeypatch.setitem(syntax._READS, "repeat", (new,))
    with pytest.raises(syntax.GrammarMismatch, match=r"grammar rule 'repeat' .* gives 4 pieces.* takes 3"):
        syntax._compute_tables(grammar_with('"repeat" expr ["as" NAME] "{" steps "}"', new))


def test_parsing_with_a_grammar_the_builders_do_not_handle_stops(tmp_path, monkeypatch):
    grammar = tmp_path / "cnn.lark"
    grammar.write_text(grammar_with('"repeat" expr ["as" NAME] "{" steps "}"',
                                    '"repeat" expr ["as" NAME] ["from" expr] "{" steps "}"'), encoding="utf-8")
    monkeypatch.setattr(syntax, "grammar_path", lambda: grammar)
    monkeypatch.setenv("ARCHDSL_CACHE_DIR", str(tmp_path / "cache"))
    syntax._tables.cache_clear()
    try:
        with pytest.raises(syntax.GrammarMismatch, match="grammar rule 'repeat'"):
            syntax.parse(SourceFile("r.cnn", "model M { input x: [3]\n y = x -> repeat 2 from 1 { relu }\n}\n"))
        assert not list((tmp_path / "cache").glob("*.json"))  # nothing cached for a refused grammar
    finally:
        syntax._tables.cache_clear()


def test_the_builders_state_the_grammar_as_it_is():
    assert syntax._node_alternatives(GRAMMAR) == syntax._READS


# ---------------------------------------------------------------- text the grammar does not have


@pytest.mark.parametrize(("text", "line", "column", "message"), [
    ("model M {\n  input x: [3]\n  y = x -> repeat 2 as i from 1 { relu }\n  output y\n}\n", 3, 26,
     "expected '{', found 'from'"),
    ("model M {\n  input x: [3]\n  y = x -> repeat 2 from 1 { relu }\n  output y\n}\n", 3, 21,
     "expected 'as' or '{', found 'from'"),
    ("model M {\n  input x: [3]\n  y = x -> repeat 2 as { relu }\n  output y\n}\n", 3, 24,
     "expected '(' or a name, found '{'"),  # a name, or names to take each item apart into
])
def test_constructs_the_grammar_lacks_are_located_syntax_errors(text, line, column, message):
    (d,) = archdsl.loads(text, name="r.cnn").diagnostics
    assert (d.code, d.span.line, d.span.column) == ("E101", line, column)
    assert d.message.startswith(message)


# ---------------------------------------------------------------- else-if chains


def else_if_chain(branches: int) -> str:
    lines = ["model M {", "  input x: [3]", "  if false { y = x }"]
    lines += ["  else if false { y = x }"] * branches
    lines += ["  else { y = x }", "  output y", "}"]
    return "\n".join(lines) + "\n"


def test_a_very_long_else_if_chain_is_refused_before_parsing_at_the_if_past_the_limit():
    limit = syntax.MAX_ELSE_IF_CHAIN
    (d,) = archdsl.loads(else_if_chain(100_000), name="chain.cnn").diagnostics
    # line 3 holds the first if; else-if number k is on line 3 + k
    assert (d.code, d.span.line, d.span.column, d.span.end_column) == ("E901", 3 + limit + 1, 8, 10)
    assert archdsl.loads(else_if_chain(limit), name="ok.cnn").ok


def test_else_if_chains_are_counted_per_chain_and_outside_strings_and_comments():
    limit = syntax.MAX_ELSE_IF_CHAIN
    half = else_if_chain(limit // 2 + 1).splitlines()
    # Two chains of more than half the limit, one after the other: neither is too long.
    two_chains = "\n".join(half[:-2] + half[2:-2] + half[-2:]) + "\n"
    assert two_chains.count("else if") > limit
    assert syntax._else_if_chain_error(SourceFile("t.cnn", two_chains), limit) is None
    hidden = "# else if\n" * (limit + 1) + '"else if"\n' * (limit + 1)
    assert syntax._else_if_chain_error(SourceFile("t.cnn", "if a then 1 else 2\n" + hidden), limit) is None


def test_the_else_if_limit_is_a_diagnostic_of_parse():
    with pytest.raises(DiagnosticError) as caught:
        syntax.parse(SourceFile("c.cnn", else_if_chain(syntax.MAX_ELSE_IF_CHAIN + 1)))
    (d,) = caught.value.diagnostics
    assert (d.code, d.span.line) == ("E901", 3 + syntax.MAX_ELSE_IF_CHAIN + 1)
