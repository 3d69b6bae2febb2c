"""Parsing: the Lark grammar (built once), the syntax tree with spans, and
syntax errors turned into diagnostics.

The tree is built in the parser's reductions (see "The parser" below); the
builders only build data and never raise diagnostics.
"""

from __future__ import annotations

import contextlib
import functools
import json
import operator
import os
import re
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar, cast

from .diagnostics import Diagnostic, DiagnosticError
from .source import SourceFile, Span

# --------------------------------------------------------------------------
# Syntax tree.  Plain dataclasses: internal, never serialised.  Nodes compare
# by identity (nothing compares trees) and print as dataclasses do; not
# generating __eq__ and __repr__ for each of the thirty classes takes a few
# milliseconds off every start-up.


class _Tree:
    __slots__ = ()

    def __repr__(self) -> str:
        node: Any = self  # every subclass is a dataclass
        items = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(node))
        return f"{type(self).__qualname__}({items})"


@dataclass(eq=False, repr=False, slots=True)
class Literal(_Tree):
    value: Any
    span: Span


@dataclass(eq=False, repr=False, slots=True)
class Name(_Tree):
    id: str
    span: Span


@dataclass(eq=False, repr=False, slots=True)
class Argument(_Tree):
    name: str | None  # None for a positional argument
    value: Expr
    span: Span
    name_span: Span | None = None


@dataclass(eq=False, repr=False, slots=True)
class Call(_Tree):
    func: str
    args: list[Argument]
    span: Span
    func_span: Span


@dataclass(eq=False, repr=False, slots=True)
class TupleExpr(_Tree):
    items: list[Expr]
    span: Span
    is_list: bool = False  # written [a, b]: the same value as (a, b)


@dataclass(eq=False, repr=False, slots=True)
class Unary(_Tree):
    op: str  # "-", "+", "not"
    operand: Expr
    span: Span


@dataclass(eq=False, repr=False, slots=True)
class Binary(_Tree):
    op: str  # arithmetic, comparison, "and", "or"
    left: Expr
    right: Expr
    span: Span
    op_span: Span


@dataclass(eq=False, repr=False, slots=True)
class Conditional(_Tree):
    test: Expr
    then: Expr
    orelse: Expr
    span: Span


@dataclass(eq=False, repr=False, slots=True)
class Attribute(_Tree):
    """``value.name``: a tensor's shape at compile time (``in.channels``)."""

    value: Expr
    name: str
    span: Span
    name_span: Span


@dataclass(eq=False, repr=False, slots=True)
class Index(_Tree):
    """``value[index]``: an item of a tuple or list."""

    value: Expr
    index: Expr
    span: Span


@dataclass(eq=False, repr=False, slots=True)
class ChainExpr(_Tree):
    """A chain written as an argument: ``concat(a, b -> relu)``."""

    head: Expr
    steps: list[Step]
    span: Span


Expr = Literal | Name | Call | TupleExpr | Unary | Binary | Conditional | ChainExpr | Attribute | Index


@dataclass(eq=False, repr=False, slots=True)
class OpRef(_Tree):
    """A bare name in a chain step: an op or block applied with no arguments."""

    name: str
    span: Span


@dataclass(eq=False, repr=False, slots=True)
class OpCall(_Tree):
    name: str
    args: list[Argument]
    span: Span
    name_span: Span


@dataclass(eq=False, repr=False, slots=True)
class Repeat(_Tree):
    count: Expr  # a count, or a list to iterate over
    index: str | None
    index_span: Span | None
    steps: list[Step]
    span: Span
    #: ``repeat cfg as (a, b) {...}``: the names each item is taken apart into.
    unpack: list[str] | None = None


@dataclass(eq=False, repr=False, slots=True)
class Group(_Tree):
    steps: list[Step]
    span: Span


@dataclass(eq=False, repr=False, slots=True)
class CondStep(_Tree):
    test: Expr
    then: list[Step]
    orelse: list[Step]  # empty: identity
    span: Span


StepCore = OpRef | OpCall | Repeat | Group | CondStep


@dataclass(eq=False, repr=False, slots=True)
class LabelTemplate(_Tree):
    """A string label with ``{expression}`` parts, filled in at elaboration."""

    text: str
    span: Span


Label = str | LabelTemplate


@dataclass(eq=False, repr=False, slots=True)
class Step(_Tree):
    label: Label | None
    label_span: Span | None
    core: StepCore
    span: Span


@dataclass(eq=False, repr=False, slots=True)
class Chain(_Tree):
    label: Label | None
    label_span: Span | None
    head: Expr
    steps: list[Step]
    span: Span


@dataclass(eq=False, repr=False, slots=True)
class InputDecl(_Tree):
    name: str
    name_span: Span
    dims: list[Expr]
    dims_span: Span
    span: Span


@dataclass(eq=False, repr=False, slots=True)
class OutputDecl(_Tree):
    name: str
    name_span: Span
    chain: Chain | None
    span: Span


@dataclass(eq=False, repr=False, slots=True)
class Assign(_Tree):
    name: str
    name_span: Span
    chain: Chain
    span: Span


@dataclass(eq=False, repr=False, slots=True)
class ExpectFigure(_Tree):
    """``expect macs <= 4.2G``"""

    figure: str
    figure_span: Span
    op: str
    value: Expr
    span: Span


@dataclass(eq=False, repr=False, slots=True)
class ExpectOutput(_Tree):
    """``expect output logits: [1000]``; no name: the model's only output."""

    name: str | None
    name_span: Span
    dims: list[Expr]
    span: Span


@dataclass(eq=False, repr=False, slots=True)
class Return(_Tree):
    chain: Chain
    span: Span


@dataclass(eq=False, repr=False, slots=True)
class ChainStmt(_Tree):
    chain: Chain
    span: Span


@dataclass(eq=False, repr=False, slots=True)
class If(_Tree):
    test: Expr
    body: list[Stmt]
    orelse: list[Stmt]
    span: Span


Stmt = InputDecl | OutputDecl | Assign | Return | ChainStmt | If | ExpectFigure | ExpectOutput


@dataclass(eq=False, repr=False, slots=True)
class Param(_Tree):
    name: str
    span: Span
    default: Expr | None


@dataclass(eq=False, repr=False, slots=True)
class Import(_Tree):
    path: str
    span: Span


@dataclass(eq=False, repr=False, slots=True)
class BlockDef(_Tree):
    name: str
    name_span: Span
    params: list[Param]
    body: list[Stmt]
    span: Span


@dataclass(eq=False, repr=False, slots=True)
class ModelDef(_Tree):
    name: str
    name_span: Span
    body: list[Stmt]
    span: Span


@dataclass(eq=False, repr=False, slots=True)
class Module(_Tree):
    source: SourceFile
    imports: list[Import] = field(default_factory=list)
    blocks: list[BlockDef] = field(default_factory=list)
    models: list[ModelDef] = field(default_factory=list)


# --------------------------------------------------------------------------
# The parser.
#
# Lark reads grammars/cnn.lark and computes its LALR(1) automaton; that
# automaton is the language.  Files are parsed on a fast road over it (its
# tables are kept in the user's cache folder, so that a run without syntax
# errors does not even import Lark), and Lark's own parser only runs when
# the fast road stops, to report the syntax error exactly as it always has:
#
# * a lexer of one regular expression, made of the grammar's terminals in
#   the order Lark's lexer tries them (``_compute_tables``);
# * a plain LALR loop over Lark's parse table that builds the syntax tree
#   in the reductions themselves (``_Builder``): no parse tree, no
#   propagate_positions bookkeeping, no second walk.
#
# The children a reduction hands to its builder are the children Lark's own
# tree would have, with ``maybe_placeholders``: anonymous tokens ("(", "as")
# and ``_TERMINALS`` dropped, ``_rules`` spliced in, and None for each part
# of a ``[ ]`` optional that is absent.  Lark's compiled rules say which is
# which (``_child_layout`` reads them as Lark's tree builder does), so every
# alternative of a rule gives its builder the same named pieces, and no
# builder counts children to guess the alternative.  Each builder states the
# grammar it was written for (``@_reads``); the tables are only computed when
# that statement is the grammar's text, rule for rule, and the builder takes
# as many pieces as the rule gives (``_check_builders``): a grammar change
# the builders do not handle stops every parse with an error naming the rule
# instead of building a wrong tree.  tests/test_parser_differential.py
# checks, on every rule of the grammar and on generated programs, that this
# loop gives the tree Lark's own parser gives.
#
# Spans are what propagate_positions gives: a node runs from the start of its
# first symbol to the end of its last one, every token included (closing
# brackets too).  A parenthesised expression is the inner expression itself,
# but whatever is built around it covers the brackets (``padding=(1)``);
# the stack entries therefore carry the extent of the text they were read
# from, which can be wider than the node's own span.
#
# Lark's contextual lexer picks among the terminals the parser state
# accepts; the fast lexer considers all of them, as Lark's basic lexer does.
# Both try terminals in the same order and take the first that matches, so
# when the fast lexer's token is one the state accepts, the contextual lexer
# reads that same token; a file the fast road reads to the end is therefore
# read as Lark reads it.  Text on which the two lexers differ (``else iffy``
# is ``else if fy`` to the contextual one) makes the fast road stop; Lark
# then parses it and, if it parses, the loop builds the tree from the tokens
# Lark's lexer read.

RESERVED_WORDS = frozenset(
    ["import", "block", "model", "input", "output", "return", "repeat", "as", "if", "then", "else", "and", "or",
     "not", "true", "false", "expect"]
)


def grammar_path() -> Path:
    """``grammars/cnn.lark``: inside the installed package, or in the source tree."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "grammars" / "cnn.lark", here.parent / "grammars" / "cnn.lark"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("archdsl's grammar file cnn.lark is missing from the installation")


class GrammarMismatch(RuntimeError):
    """The grammar has a rule the builders were not written for: a bug of
    this program's build, never of the user's file."""


def _parser() -> Any:
    """Lark's parser of grammars/cnn.lark: the automaton, syntax errors, and
    the contextual lexer for text the fast road rejects (no tree positions
    are needed from it)."""
    return _lark(grammar_path().read_text(encoding="utf-8"))


@functools.cache
def _lark(grammar: str) -> Any:
    import lark

    folder = cache_folder()
    # Lark's own cache (a pickle) lives in archdsl's cache folder, never in a
    # shared temporary folder where another user could plant one.
    cache: str | bool = False if folder is None else str(folder / f"lark-{zlib.crc32(grammar.encode()):08x}.pickle")
    if folder is not None:
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
    try:
        return _build_lark(lark, grammar, cache)
    except OSError:  # an unwritable cache folder: build without it
        return _build_lark(lark, grammar, False)


def _build_lark(lark: Any, grammar: str, cache: str | bool) -> Any:
    return lark.Lark(
        grammar,
        parser="lalr",
        start=["start", "expr"],
        maybe_placeholders=True,
        lexer_callbacks={"NAME": _reserved_word},
        cache=cache,
    )


def _reserved_word(token: Any) -> Any:
    """Reserved words are never names, whatever the parser state expects
    (Lark's contextual lexer would otherwise let `input` be a name where no
    keyword fits)."""
    if token.value in RESERVED_WORDS:
        token.type = token.value.upper()
    return token


def parse_expression(text: str, span: Span) -> Expr:
    """An expression embedded in a label template; its spans all point at
    the template (``span``).  Raises DiagnosticError on a syntax error."""
    builder = _Builder(span.file, fixed_span=span)
    try:
        return builder.run(*_scan(text), "expr")
    except _Reject:
        pass
    import lark

    try:
        _parser().parse(text, start="expr")
    except lark.exceptions.UnexpectedInput:
        raise DiagnosticError([Diagnostic.error("E101", f"invalid expression {{{text}}} in label", span)]) from None
    return builder.run(*_contextual_tokens(text, "expr"), "expr")


def parse(source: SourceFile) -> Module:
    """Parse one file into a :class:`Module`; a syntax error raises
    :class:`DiagnosticError` carrying one diagnostic, and so does an
    ``else if`` chain longer than ``MAX_ELSE_IF_CHAIN``.  Expressions nested
    too deeply for the later, recursive stages raise RecursionError."""
    too_long = _else_if_chain_error(source, MAX_ELSE_IF_CHAIN)
    if too_long is not None:
        raise DiagnosticError([too_long])
    builder = _Builder(source.name)
    try:
        return builder.run(*_scan(source.text), "start", source)
    except _Reject:
        pass
    import lark

    try:
        _parser().parse(source.text, start="start")
    except lark.exceptions.UnexpectedInput as error:
        raise DiagnosticError([_syntax_diagnostic(source, error)]) from None
    return builder.run(*_contextual_tokens(source.text, "start"), "start", source)


#: Each ``else if`` nests the next statement (or expression) one level deeper
#: in the tree, and the later stages recurse on it; the parser would refuse a
#: chain of about a thousand only after reading it all (seconds for 100,000).
#: Checked before parsing, as brackets are (elaborate._nesting_error).
MAX_ELSE_IF_CHAIN = 500

# Comments and strings (skipped), brackets, and ``if`` with or without an
# ``else`` before it.
_ELSE_IF_WORDS = re.compile(r"""#[^\n]*|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|[()\[\]{}]|\b(?:else\s+)?if\b""")


def _else_if_chain_error(source: SourceFile, limit: int) -> Diagnostic | None:
    """E901 at the ``if`` that makes an ``else if`` chain longer than
    ``limit``.  A chain is counted within one bracket level and restarts at
    an ``if`` that no ``else`` precedes, so the count never exceeds how deep
    the chain nests in the tree."""
    text = source.text
    if text.count("else") <= limit:  # not even that many else
        return None
    depth = 0
    chains = [0]  # per bracket level: the else-ifs of the chain in progress
    for match in _ELSE_IF_WORDS.finditer(text):
        first = text[match.start()]
        if first in "([{":
            depth += 1
            if depth == len(chains):
                chains.append(0)
            chains[depth] = 0
        elif first in ")]}":
            depth = max(0, depth - 1)
        elif first == "i":
            chains[depth] = 0
        elif first == "e":
            chains[depth] += 1
            if chains[depth] > limit:
                return Diagnostic.error(
                    "E901", f"'else if' chain longer than the limit of {limit}",
                    source.span(match.end() - 2, match.end()),
                    hint="an 'else if' chain nests one level deeper per branch",
                )
    return None


def _span_of(source: SourceFile, item: Any) -> Span:
    """Span of a Lark Token."""
    return Span(
        file=source.name,
        line=item.line,
        column=item.column,
        end_line=item.end_line,
        end_column=item.end_column,
        start=item.start_pos,
        end=item.end_pos,
    )


class _Reject(Exception):
    """The fast road cannot read the text; Lark's parser takes over."""


# Stack entries of the LALR loop are tuples
#     (value, start, line, column, end, end_line, end_column, depth):
# the value (a token's text, a node, or a list of entries for the grammar's
# inlined ``_rules``), the extent of the text it was read from, and how deep
# the node nests (see _Builder.run and _WALK_FRAMES).  A builder receives
# the entries of its rule's children (None for an absent optional part).
_VALUE, _START, _LINE, _COLUMN, _END, _END_LINE, _END_COLUMN, _DEPTH = range(8)
Entry = tuple[Any, ...]  # (value, start, line, column, end, end_line, end_column, depth)
_EMPTY: Entry = ("", 0, 1, 1, 0, 1, 1, 0)  # where an empty file starts and ends
_depth_of = operator.itemgetter(_DEPTH)


def _regexp_has_newline(regexp: str) -> bool:
    """Lark's test of whether a terminal may span lines (lexer.py)."""
    return "\n" in regexp or "\\n" in regexp or "\\s" in regexp or "[^" in regexp or ("(?s" in regexp and "." in regexp)


def _scan(text: str) -> tuple[list[str], list[Entry | None]]:
    """Token types and stack entries of ``text``, ending with ``$END``;
    rejects text with a character no terminal matches."""
    pattern, retype, multiline, ignore = _tables()[:4]
    types: list[str] = []
    entries: list[Entry | None] = []
    position = 0
    line = 1
    line_start = 0
    for match in pattern.finditer(text):
        start = match.start()
        if start != position:
            raise _Reject  # a character no terminal matches
        kind = match.lastgroup
        value = match.group()
        position = match.end()
        if kind in multiline:
            newlines = value.count("\n")
            if newlines:
                token_line, token_column = line, start - line_start + 1
                line += newlines
                line_start = start + value.rindex("\n") + 1
                if kind not in ignore:
                    types.append(kind)
                    entries.append((value, start, token_line, token_column, position, line,
                                    position - line_start + 1, 0))
                continue
        if kind in ignore:
            continue
        if kind in retype:
            kind = retype[kind].get(value, kind)
        if kind == "NAME" and value in RESERVED_WORDS:  # _reserved_word
            kind = value.upper()
        column = start - line_start + 1
        types.append(kind)
        entries.append((value, start, line, column, position, line, column + position - start, 0))
    if position != len(text):
        raise _Reject
    types.append("$END")
    entries.append(None)
    return types, entries


def _contextual_tokens(text: str, start: str) -> tuple[list[str], list[Entry | None]]:
    """The tokens Lark's contextual lexer reads in ``text`` (which Lark has
    just parsed), as entries of the fast road's loop."""
    types: list[str] = []
    entries: list[Entry | None] = []
    for token in _parser().parse_interactive(text, start=start).iter_parse():
        types.append(token.type)
        entries.append((token.value, token.start_pos, token.line, token.column, token.end_pos, token.end_line,
                        token.end_column, 0))
    types.append("$END")
    entries.append(None)
    return types, entries


# How a reduction builds its value (see _compute_tables).
_PASS, _INLINE, _WRAP, _NODE = range(4)


@functools.cache
def _tables() -> tuple:
    """What the fast road needs: ``(pattern, retype, multiline, ignore,
    actions, rules, starts, ends, passes)`` (see ``_compute_tables``).

    Computing them needs Lark and its analysis of the grammar; they are
    kept as JSON in the user's cache folder, keyed by the grammar's text,
    so that a run that meets no syntax error never imports Lark.
    ``ARCHDSL_CACHE_DIR`` moves the folder; empty, it turns the cache off."""
    grammar = grammar_path().read_text(encoding="utf-8")
    path = _cache_file(grammar)
    if path is not None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("grammar") == grammar and data.get("format") == _TABLES_FORMAT:
                return _unpack_tables(data)
        except Exception:  # missing, unreadable or corrupt: compute afresh
            pass
    data = _compute_tables(grammar)
    if path is not None:
        _store(path, data)
    return _unpack_tables(data)


#: The layout of the cached tables; bump it when it changes.
_TABLES_FORMAT = 2


def cache_folder() -> Path | None:
    """Where archdsl keeps its parser tables, or None for no cache:
    ``ARCHDSL_CACHE_DIR`` (empty turns the cache off), else
    ``$XDG_CACHE_HOME/archdsl`` (an absolute XDG_CACHE_HOME only, as the XDG
    specification says), else ``~/.cache/archdsl``; None without a home
    directory."""
    folder = os.environ.get("ARCHDSL_CACHE_DIR")
    if folder is not None:
        return Path(folder) if folder else None
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg) / "archdsl"
    home = os.path.expanduser("~")
    if not os.path.isabs(home):  # no HOME and no passwd entry: "~" stays as it is
        return None
    return Path(home) / ".cache" / "archdsl"


def _cache_file(grammar: str) -> Path | None:
    folder = cache_folder()
    if folder is None:
        return None
    checksum = zlib.crc32(f"{_TABLES_FORMAT}\0{grammar}".encode())
    return folder / f"parser-{checksum:08x}.json"


def _store(path: Path, data: dict) -> None:
    """Writes the cache file whole or not at all (another process may be
    writing the same one)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:  # a read-only home: parse without the cache
        with contextlib.suppress(OSError):
            temporary.unlink()


def _compute_tables(grammar: str) -> dict:
    """The lexer's and the parser's tables, from Lark's analysis of the
    grammar, as JSON data; raises GrammarMismatch when the builders were not
    written for this grammar (``_check_builders``).

    The lexer: one alternation of every terminal, in the order Lark's basic
    lexer tries them (priority, then longest possible match, then longest
    pattern, then name).  As in Lark's lexer, a keyword that a regexp of
    equal priority matches whole ("if" and NAME) is no alternative of its
    own: the regexp's match is retyped when its text is the keyword.

    The parser: ``actions[state][symbol]`` is a state number (shift, or goto
    on a rule name) or ``~r`` (reduce by rule ``r``).  ``rules[r]`` is
    ``(size, origin, how, argument, layout, trailing)``: a rule with an
    alias or a plain name builds a node with ``_Builder.r_<argument>``; a
    ``_rule`` is spliced into its parent (its value is the list of its kept
    children); a ``?rule`` left with one child passes that child up
    (``argument`` is its position), widened to the brackets around it when
    the rule also read tokens (``"(" expr ")"``).  ``layout`` and
    ``trailing`` say which children are kept (``_child_layout``)."""
    from lark.parsers.lalr_analysis import Shift

    parser = _lark(grammar)
    _check_builders(grammar, parser.rules)
    terminals = sorted(parser.terminals,
                       key=lambda t: (-t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name))
    retype: dict[str, dict[str, str]] = {}
    embedded = set()
    for regexp in terminals:
        if regexp.pattern.type != "re":
            continue
        for string in terminals:
            if string.pattern.type != "str" or string.priority != regexp.priority:
                continue
            match = re.match(regexp.pattern.to_regexp(), string.pattern.value)
            if match is not None and match.group(0) == string.pattern.value:
                retype.setdefault(regexp.name, {})[string.pattern.value] = string.name
                if string.pattern.flags <= regexp.pattern.flags:
                    embedded.add(string.name)
    kept = [t for t in terminals if t.name not in embedded]

    table = parser.parse_interactive("", start="start").parser_state.parse_conf.parse_table
    number = {state: index for index, state in enumerate(table.states)}
    rule_index: dict[Any, int] = {}
    rules: list[list] = []
    actions: list[dict[str, int]] = [{} for _ in number]
    for state, row in table.states.items():
        out = actions[number[state]]
        for symbol, (action, argument) in row.items():
            if action is Shift:
                out[symbol] = number[argument]
                continue
            index = rule_index.get(argument)
            if index is None:
                index = rule_index[argument] = len(rules)
                rules.append(_rule_entry(argument))
            out[symbol] = ~index
    return {
        "format": _TABLES_FORMAT,
        "grammar": grammar,
        "pattern": "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in kept),
        "retype": retype,
        "multiline": sorted(t.name for t in kept if _regexp_has_newline(t.pattern.to_regexp())),
        "ignore": sorted(parser.lexer_conf.ignore),
        "actions": actions,
        "rules": rules,
        "starts": {name: number[state] for name, state in table.start_states.items()},
        "ends": {name: number[state] for name, state in table.end_states.items()},
    }


def _child_layout(rule: Any) -> tuple[list[list], int]:
    """Which children of a reduction by ``rule`` make the children of its
    node, as Lark's tree builder keeps them (lark/parse_tree_builder.py,
    maybe_create_child_filter): ``[[position, splice, placeholders], ...]``
    and the placeholders after the last.  A child is kept unless it is a
    filtered-out token (anonymous strings, ``_TERMINALS``); a ``_rule`` is
    spliced in; ``placeholders`` Nones stand, before the child, for the
    parts of ``[ ]`` optionals that this alternative lacks."""
    symbols = rule.expansion
    empty = rule.options.empty_indices
    if empty:  # one False per symbol; a True per placeholder before the symbol it precedes
        nones = [len(ones) for ones in "".join("1" if e else "0" for e in empty).split("0")]
    else:
        nones = [0] * (len(symbols) + 1)
    layout = []
    pending = 0
    for position, symbol in enumerate(symbols):
        pending += nones[position]
        if rule.options.keep_all_tokens or not (symbol.is_term and symbol.filter_out):
            layout.append([position, not symbol.is_term and symbol.name.startswith("_"), pending])
            pending = 0
    return layout, pending + nones[len(symbols)]


def _rule_entry(rule: Any) -> list:
    origin = rule.origin.name
    layout, trailing = _child_layout(rule)
    plain = trailing == 0 and len(layout) == len(rule.expansion) and not any(s or n for _, s, n in layout)
    stored = None if plain else layout  # None: every child is kept as it is
    if origin.startswith("_"):
        return [len(rule.expansion), origin, _INLINE, None, stored, trailing]
    if rule.options.expand1 and rule.alias is None and trailing == 0 and len(layout) == 1:
        position, splice, placeholders = layout[0]
        if not splice and not placeholders:
            return [len(rule.expansion), origin, _PASS if len(rule.expansion) == 1 else _WRAP, position, None, 0]
    return [len(rule.expansion), origin, _NODE, rule.alias or origin, stored, trailing]


def _unpack_tables(data: dict) -> tuple:
    rules = [(size, origin, how, argument, _picker(layout, trailing, how == _INLINE))
             for size, origin, how, argument, layout, trailing in data["rules"]]
    return (re.compile(data["pattern"]), data["retype"], frozenset(data["multiline"]), frozenset(data["ignore"]),
            data["actions"], rules, data["starts"], data["ends"], {})


# ---------------------------------------------------------------- builders and the grammar

#: The grammar each builder was written for: ``r_<name>`` -> the alternatives
#: that build a ``name`` node, as grammars/cnn.lark writes them (``@_reads``).
_READS: dict[str, tuple[str, ...]] = {}

_Build = TypeVar("_Build", bound=Callable[..., Any])


def _reads(*alternatives: str) -> Callable[[_Build], _Build]:
    """Records the grammar a builder ``r_<name>`` reads its pieces from."""

    def record(build: _Build) -> _Build:
        _READS[build.__name__.removeprefix("r_")] = alternatives
        return build

    return record


def _check_builders(grammar: str, rules: list) -> None:
    """Raises GrammarMismatch unless every rule and alias that builds a node
    has a builder written for the grammar's text of it (``@_reads``), and
    every compiled alternative gives that builder the pieces it takes."""
    import inspect

    written = _node_alternatives(grammar)
    for name, alternatives in written.items():
        declared = _READS.get(name)
        if declared is None:
            raise GrammarMismatch(f"grammar rule {name!r} ({' | '.join(alternatives)}) has no builder r_{name} "
                                  "in archdsl/syntax.py")
        if declared != alternatives:
            raise GrammarMismatch(
                f"grammar rule {name!r} reads {' | '.join(alternatives)!r}, but its builder r_{name} in "
                f"archdsl/syntax.py was written for {' | '.join(declared)!r}; update the builder and its @_reads")
    for name in _READS.keys() - written.keys():
        raise GrammarMismatch(f"archdsl/syntax.py has a builder r_{name} for a rule the grammar no longer has")
    for rule in rules:
        how, name = _rule_entry(rule)[2:4]
        if how != _NODE:
            continue
        if name not in _READS:  # a ?rule alternative left with several children and no alias
            raise GrammarMismatch(f"grammar rule {name!r} ({rule}) builds a node but has no builder r_{name} in "
                                  "archdsl/syntax.py; give the alternative an alias")
        layout, trailing = _child_layout(rule)
        pieces = len([s for _, s, _ in layout if not s]) + sum(n for _, _, n in layout) + trailing
        parameters = list(inspect.signature(getattr(_Builder, f"r_{name}")).parameters.values())[2:]
        variadic = any(p.kind is p.VAR_POSITIONAL for p in parameters)
        fixed = len([p for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD])
        spliced = any(s for _, s, _ in layout)
        if (pieces != fixed and not variadic) or (spliced and not variadic) or pieces < fixed:
            raise GrammarMismatch(f"grammar rule {name!r} ({rule}) gives {pieces} pieces"
                                  f"{' and a repetition' if spliced else ''}, but its builder r_{name} in "
                                  f"archdsl/syntax.py takes {fixed}{' or more' if variadic else ''}")


def _node_alternatives(grammar: str) -> dict[str, tuple[str, ...]]:
    """The alternatives of the grammar that build each kind of node, in EBNF
    as written: those with an alias under the alias, the others under their
    rule's name (but a ``?rule``'s own alternatives pass their one child up,
    and a ``_rule``'s are spliced into the rule that uses it)."""
    from lark.load_grammar import GrammarBuilder

    builder = GrammarBuilder()
    builder.load_grammar(grammar)
    out: dict[str, list[str]] = {}
    for name, definition in builder._definitions.items():
        if definition.is_term:
            continue
        for alternative in definition.tree.children:
            if alternative.data == "alias":
                expansion, alias = alternative.children
                out.setdefault(alias.name, []).append(_ebnf(expansion))
            elif not (definition.options.expand1 or name.startswith("_")):
                out.setdefault(str(name), []).append(_ebnf(alternative))
    return {name: tuple(alternatives) for name, alternatives in out.items()}


def _ebnf(tree: Any) -> str:
    """A piece of Lark's grammar tree as grammar text."""
    kind = getattr(tree, "data", None)
    if kind is None:  # a Terminal or a NonTerminal
        return str(tree.name)
    if kind == "expansions":
        return " | ".join(_ebnf(c) for c in tree.children)
    if kind == "expansion":
        return " ".join(_ebnf_group(c) if getattr(c, "data", None) == "expansions" else _ebnf(c)
                        for c in tree.children)
    if kind == "value":
        return _ebnf(tree.children[0])
    if kind == "literal":
        return str(tree.children[0])
    if kind == "maybe":
        return f"[{_ebnf(tree.children[0])}]"
    if kind == "expr":
        inner, *operator_ = tree.children
        return _ebnf_group(inner) + "".join(map(str, operator_))
    return str(tree)  # anything else: compared as Lark prints it


def _ebnf_group(tree: Any) -> str:
    """``(a b)`` for a group, ``a`` for a single symbol."""
    text = _ebnf(tree)
    single = (getattr(tree, "data", None) == "value"
              or (tree.data == "expansions" and len(tree.children) == 1 and len(tree.children[0].children) == 1
                  and tree.children[0].children[0].data == "value"))
    return text if single else f"({text})"


def _pass_through(actions: list, rules: list, ends: dict, below: int, top: int, kind: str) -> int:
    """The state after the reductions by single-child ?rules that ``kind``
    triggers on ``top`` (above ``below``): each replaces the top state by
    the goto of its rule from ``below``."""
    finals = set(ends.values())
    while top not in finals:
        code = actions[top].get(kind)
        if code is None or code >= 0 or rules[~code][2] != _PASS:
            break
        top = actions[below][rules[~code][1]]
    return top


def _stack_depth() -> int:
    frame: FrameType | None = sys._getframe(1)
    depth = 0
    while frame is not None:
        depth += 1
        frame = frame.f_back
    return depth


#: The recursive tree walk this parser replaced ran out of stack (E901, "the
#: file nests expressions too deeply to analyse") on a tree about
#: ``recursion limit - frames in use - 5`` levels deep; _Builder.run refuses
#: the same trees, which also keeps the recursive elaboration within the limit.
_WALK_FRAMES = 5


def _kept(children: list[Entry], layout: tuple, trailing: int) -> list[Entry | None]:
    """The children a node keeps (see _child_layout)."""
    out: list[Entry | None] = []
    for position, splice, placeholders in layout:
        if placeholders:
            out += [None] * placeholders
        if not splice:
            out.append(children[position])
        elif out:
            out += children[position][_VALUE]
        else:  # a left-recursive repetition: extend its list (each list is used once)
            out = children[position][_VALUE]
    if trailing:
        out += [None] * trailing
    return out


def _picker(layout: list | None, trailing: int, spliced: bool) -> Callable[[list[Entry]], Any] | None:
    """``children -> kept children`` for a reduction (None: all of them, as
    they are); ``itemgetter`` where nothing is spliced, None placeholders
    taken from a None appended to the children.  A ``_rule`` (``spliced``)
    keeps a list, which a left-recursive parent extends in place."""
    if layout is None:
        return None
    steps = tuple(map(tuple, layout))
    if spliced or any(splice for _, splice, _ in steps):
        return lambda children: _kept(children, steps, trailing)
    slots = [s for position, _, placeholders in steps for s in (*[-1] * placeholders, position)] + [-1] * trailing
    if not slots:
        return lambda children: ()
    if len(slots) == 1:
        slot = slots[0]
        if slot == -1:  # only a placeholder (`[]`: an empty optional between tokens)
            return lambda children: (None,)
        return lambda children: (children[slot],)
    getter = operator.itemgetter(*slots)
    if -1 not in slots:
        return getter
    return lambda children: getter([*children, None])


def _values(entries: tuple[Entry | None, ...]) -> list:
    """The values of entries, absent optional parts left out."""
    return [e[_VALUE] for e in entries if e is not None]


class _Builder:
    """Runs the LALR loop over one token stream and builds the syntax tree.

    ``r_<name>`` builds the node of a rule (an alias such as ``binary``, or
    the rule's name) from the node's span and its children's entries, as
    Lark's tree with ``maybe_placeholders`` has them: named tokens and
    rules, None for an absent ``[ ]`` part (see the comment on the parser)."""

    def __init__(self, file: str, fixed_span: Span | None = None) -> None:
        self.file = file
        self.fixed_span = fixed_span
        self.source: SourceFile | None = None

    @classmethod
    def builders(cls) -> dict[str, Callable[..., Any]]:
        """``name`` -> ``r_<name>``."""
        found = cls.__dict__.get("_builders")
        if found is None:
            found = {name[2:]: getattr(cls, name) for name in dir(cls) if name.startswith("r_")}
            cls._builders = found  # type: ignore[attr-defined]
        return found

    # ---------------------------------------------------------------- the loop

    def run(self, types: list[str], entries: list[Entry | None], start: str, source: SourceFile | None = None) -> Any:
        actions, rules, starts, ends, passes = _tables()[4:]
        builders = self.builders()
        self.source = source
        # The tree walk this replaces recursed once per nesting level; the
        # elaboration after it still does.  Refuse what it refused.
        max_depth = sys.getrecursionlimit() - _stack_depth() - _WALK_FRAMES
        end = ends[start]
        states = [starts[start]]
        stack: list[Any] = []
        for kind, entry in zip(types, entries):
            while True:
                code = actions[states[-1]].get(kind)
                if code is None:
                    raise _Reject
                if code >= 0:
                    states.append(code)
                    stack.append(entry)
                    break
                size, origin, how, argument, pick = rules[~code]
                if how == _PASS:  # ?rules with a single child: the child is the value
                    # Chains of them (a literal read as an atom, a unary, a
                    # product, ... an expr) end in a state that only depends
                    # on the state below, the state on top and the token.
                    key = (states[-2], states[-1], kind)
                    target = passes.get(key)
                    if target is None:
                        target = passes[key] = _pass_through(actions, rules, ends, *key)
                    states[-1] = target
                    if entry is None and target == end:  # $END: the start symbol is complete
                        return stack[-1][_VALUE]
                    continue
                if size:
                    children = stack[-size:]
                    del stack[-size:]
                    del states[-size:]
                    first, last = children[0], children[-1]
                else:
                    children = []
                    first = last = _EMPTY
                if how == _NODE:
                    depth = max(map(_depth_of, children), default=0) + 1
                    if depth > max_depth:
                        raise RecursionError("the syntax tree nests too deeply")
                    value = builders[argument](self, self.extent(first, last), *(children if pick is None else
                                                                                 pick(children)))
                elif how == _WRAP:
                    value = children[argument][_VALUE]
                    depth = children[argument][_DEPTH]
                else:  # _INLINE: the kept entries, to be spliced into the parent
                    depth = max(map(_depth_of, children), default=0)
                    value = children if pick is None else pick(children)
                stack.append((value, first[_START], first[_LINE], first[_COLUMN], last[_END], last[_END_LINE],
                              last[_END_COLUMN], depth))
                states.append(actions[states[-1]][origin])
                if entry is None and states[-1] == end:  # $END: the start symbol is complete
                    return value
        raise _Reject  # not reached: $END either completes the parse or is rejected

    # ---------------------------------------------------------------- spans

    def span(self, e: Entry) -> Span:
        """The span of one entry (a token or a node's text)."""
        if self.fixed_span is not None:
            return self.fixed_span
        return Span(self.file, e[_LINE], e[_COLUMN], e[_END_LINE], e[_END_COLUMN], e[_START], e[_END])

    def extent(self, first: Entry, last: Entry) -> Span:
        """The span of a rule's children, first to last."""
        if self.fixed_span is not None:
            return self.fixed_span
        return Span(self.file, first[_LINE], first[_COLUMN], last[_END_LINE], last[_END_COLUMN], first[_START],
                    last[_END])

    # ---------------------------------------------------------------- files

    @_reads("_item*")
    def r_start(self, span: Span, *items: Entry) -> Module:
        module = Module(source=self.source)  # type: ignore[arg-type]  # None only for expressions
        for e in items:
            item = e[_VALUE]
            if isinstance(item, Import):
                module.imports.append(item)
            elif isinstance(item, BlockDef):
                module.blocks.append(item)
            else:
                module.models.append(item)
        return module

    @_reads('"import" STRING')
    def r_import_stmt(self, span: Span, path: Entry) -> Import:
        return Import(path=_unquote(path[_VALUE]), span=self.span(path))

    @_reads('"block" NAME "(" [param ("," param)* [","]] ")" body')
    def r_block_def(self, span: Span, name: Entry, *params_and_body: Entry | None) -> BlockDef:
        *params, body = params_and_body
        assert body is not None
        return BlockDef(name[_VALUE], self.span(name), _values(tuple(params)), body[_VALUE], span)

    @_reads('NAME ["=" expr]')
    def r_param(self, span: Span, name: Entry, default: Entry | None) -> Param:
        return Param(name=name[_VALUE], span=self.span(name), default=None if default is None else default[_VALUE])

    @_reads('"model" NAME body')
    def r_model_def(self, span: Span, name: Entry, body: Entry) -> ModelDef:
        return ModelDef(name[_VALUE], self.span(name), body[_VALUE], span)

    @_reads('"{" _stmt* "}"')
    def r_body(self, span: Span, *statements: Entry) -> list:
        return _values(statements)

    # ---------------------------------------------------------------- statements

    @_reads('"input" NAME ":" shape')
    def r_input_decl(self, span: Span, name: Entry, shape: Entry) -> InputDecl:
        return InputDecl(name[_VALUE], self.span(name), shape[_VALUE], self.span(shape), span)

    @_reads('"[" expr ("," expr)* [","] "]"')
    def r_shape(self, span: Span, *dims: Entry) -> list:
        return _values(dims)

    @_reads('"output" NAME ["=" chain]')
    def r_output_decl(self, span: Span, name: Entry, chain: Entry | None) -> OutputDecl:
        return OutputDecl(name[_VALUE], self.span(name), None if chain is None else chain[_VALUE], span)

    @_reads('NAME "=" chain')
    def r_assign(self, span: Span, name: Entry, chain: Entry) -> Assign:
        return Assign(name[_VALUE], self.span(name), chain[_VALUE], span)

    @_reads('"expect" NAME COMPARE expr')
    def r_expect_figure(self, span: Span, figure: Entry, op: Entry, value: Entry) -> ExpectFigure:
        return ExpectFigure(figure[_VALUE], self.span(figure), op[_VALUE], value[_VALUE], span)

    @_reads('"expect" "output" [NAME] ":" shape')
    def r_expect_output(self, span: Span, name: Entry | None, shape: Entry) -> ExpectOutput:
        if name is None:  # the model's only output; the statement is where it is named
            return ExpectOutput(None, span, shape[_VALUE], span)
        return ExpectOutput(name[_VALUE], self.span(name), shape[_VALUE], span)

    @_reads('"return" chain')
    def r_return_stmt(self, span: Span, chain: Entry) -> Return:
        return Return(chain[_VALUE], span)

    @_reads('"if" expr body ["else" (body | if_stmt)]')
    def r_if_stmt(self, span: Span, test: Entry, body: Entry, orelse: Entry | None) -> If:
        if orelse is None:
            return If(test[_VALUE], body[_VALUE], [], span)
        other = orelse[_VALUE]
        return If(test[_VALUE], body[_VALUE], [other] if isinstance(other, If) else other, span)

    @_reads("chain")
    def r_chain_stmt(self, span: Span, chain: Entry) -> ChainStmt:
        return ChainStmt(chain[_VALUE], span)

    # ---------------------------------------------------------------- chains

    @_reads("head (_ARROW step)*")
    def r_chain(self, span: Span, head: Entry, *steps: Entry) -> Chain:
        label, label_span, expr = head[_VALUE]
        return Chain(label=label, label_span=label_span, head=expr, steps=_values(steps), span=span)

    @_reads('[label ":"] expr')
    def r_head(self, span: Span, label: Entry | None, expr: Entry) -> tuple:
        if label is None:
            return None, None, expr[_VALUE]
        return (*label[_VALUE], expr[_VALUE])

    @_reads('[label ":"] step_core')
    def r_step(self, span: Span, label: Entry | None, core: Entry) -> Step:
        text, label_span = (None, None) if label is None else label[_VALUE]
        return Step(label=text, label_span=label_span, core=core[_VALUE], span=span)

    @_reads("NAME", "INT", "STRING")
    def r_label(self, span: Span, token: Entry) -> tuple:
        text = token[_VALUE]
        where = self.span(token)
        if text[0] in "\"'":
            return LabelTemplate(_unquote(text), where), where
        if text[0].isdigit():  # 1_0 and 010 are the index 10, as nn.Sequential names it
            return str(int(text.replace("_", ""))), where
        return text, where

    @_reads("NAME")
    def r_op_ref(self, span: Span, name: Entry) -> OpRef:
        return OpRef(name[_VALUE], span)

    @_reads('NAME "(" [arguments] ")"')
    def r_op_call(self, span: Span, name: Entry, arguments: Entry | None) -> OpCall:
        return OpCall(name[_VALUE], [] if arguments is None else arguments[_VALUE], span, self.span(name))

    @_reads('"repeat" expr ["as" NAME] "{" steps "}"')
    def r_repeat(self, span: Span, count: Entry, index: Entry | None, steps: Entry) -> Repeat:
        if index is None:
            return Repeat(count[_VALUE], None, None, steps[_VALUE], span)
        return Repeat(count[_VALUE], index[_VALUE], self.span(index), steps[_VALUE], span)

    @_reads('"repeat" expr "as" "(" NAME ("," NAME)* [","] ")" "{" steps "}"')
    def r_repeat_unpack(self, span: Span, count: Entry, *names_and_steps: Entry | None) -> Repeat:
        *names, steps = names_and_steps
        assert steps is not None
        present = [e for e in names if e is not None]
        where = self.extent(present[0], present[-1])
        return Repeat(count[_VALUE], None, where, steps[_VALUE], span, unpack=[e[_VALUE] for e in present])

    @_reads('"(" steps ")"')
    def r_group(self, span: Span, steps: Entry) -> Group:
        return Group(steps[_VALUE], span)

    @_reads('"if" expr "{" steps "}" ["else" "{" steps "}"]')
    def r_cond_step(self, span: Span, test: Entry, then: Entry, orelse: Entry | None) -> CondStep:
        return CondStep(test[_VALUE], then[_VALUE], [] if orelse is None else orelse[_VALUE], span)

    @_reads("step (_ARROW step)*")
    def r_steps(self, span: Span, *steps: Entry) -> list:
        return _values(steps)

    @_reads('argument ("," argument)* [","]')
    def r_arguments(self, span: Span, *arguments: Entry) -> list:
        return _values(arguments)

    @_reads("expr")
    def r_argument(self, span: Span, value: Entry) -> Argument:
        return Argument(None, value[_VALUE], span)

    @_reads("expr (_ARROW step)+")
    def r_chain_argument(self, span: Span, head: Entry, *steps: Entry) -> Argument:
        return Argument(None, ChainExpr(head[_VALUE], _values(steps), span), span)

    @_reads('NAME "=" expr')
    def r_keyword_argument(self, span: Span, name: Entry, value: Entry) -> Argument:
        return Argument(name[_VALUE], value[_VALUE], span, self.span(name))

    # ---------------------------------------------------------------- expressions

    @_reads('"if" expr "then" expr "else" expr')
    def r_cond_expr(self, span: Span, test: Entry, then: Entry, orelse: Entry) -> Conditional:
        return Conditional(test[_VALUE], then[_VALUE], orelse[_VALUE], span)

    @_reads('or_expr "or" and_expr')
    def r_or_op(self, span: Span, left: Entry, right: Entry) -> Binary:
        return Binary("or", left[_VALUE], right[_VALUE], span, span)

    @_reads('and_expr "and" not_expr')
    def r_and_op(self, span: Span, left: Entry, right: Entry) -> Binary:
        return Binary("and", left[_VALUE], right[_VALUE], span, span)

    @_reads('"not" not_expr')
    def r_not_op(self, span: Span, operand: Entry) -> Unary:
        return Unary("not", operand[_VALUE], span)

    @_reads("sum COMPARE sum", "sum ADD_OP product", "product MUL_OP unary")
    def r_binary(self, span: Span, left: Entry, op: Entry, right: Entry) -> Binary:
        return Binary(op[_VALUE], left[_VALUE], right[_VALUE], span, self.span(op))

    @_reads("ADD_OP unary")
    def r_unary(self, span: Span, op: Entry, operand: Entry) -> Unary:
        return Unary(op[_VALUE], operand[_VALUE], span)

    @_reads('postfix "." NAME')
    def r_attribute(self, span: Span, value: Entry, name: Entry) -> Attribute:
        return Attribute(value[_VALUE], name[_VALUE], span, self.span(name))

    @_reads('postfix "[" expr "]"')
    def r_index(self, span: Span, value: Entry, index: Entry) -> Index:
        return Index(value[_VALUE], index[_VALUE], span)

    @_reads("INT")
    def r_int_literal(self, span: Span, token: Entry) -> Literal:
        text = token[_VALUE].replace("_", "")
        # Far beyond any limit; Python refuses to convert > 4300 digits.
        return Literal(int(text) if len(text) <= _MAX_DIGITS else 10**_MAX_DIGITS, span)

    @_reads("QUANTITY")
    def r_quantity_literal(self, span: Span, token: Entry) -> Literal:
        text = token[_VALUE]
        return Literal(_quantity(text) if len(text) <= _MAX_DIGITS else 10**_MAX_DIGITS, span)

    @_reads("FLOAT")
    def r_float_literal(self, span: Span, token: Entry) -> Literal:
        return Literal(float(token[_VALUE].replace("_", "")), span)

    @_reads("STRING")
    def r_string_literal(self, span: Span, token: Entry) -> Literal:
        return Literal(_unquote(token[_VALUE]), span)

    @_reads('"true"')
    def r_true_literal(self, span: Span) -> Literal:
        return Literal(True, span)

    @_reads('"false"')
    def r_false_literal(self, span: Span) -> Literal:
        return Literal(False, span)

    @_reads("NAME")
    def r_name(self, span: Span, name: Entry) -> Name:
        return Name(name[_VALUE], span)

    @_reads('NAME "(" [arguments] ")"')
    def r_call(self, span: Span, name: Entry, arguments: Entry | None) -> Call:
        return Call(name[_VALUE], [] if arguments is None else arguments[_VALUE], span, self.span(name))

    @_reads('"(" expr "," [expr ("," expr)* [","]] ")"')
    def r_tuple(self, span: Span, *items: Entry | None) -> TupleExpr:
        return TupleExpr(_values(items), span)

    @_reads('"[" [expr ("," expr)* [","]] "]"')
    def r_list(self, span: Span, *items: Entry | None) -> TupleExpr:
        return TupleExpr(_values(items), span, is_list=True)



_MAX_DIGITS = 400
_SUFFIXES = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def _quantity(text: str) -> int | float:
    """``4.2G`` -> 4200000000; exact for whole results."""
    from fractions import Fraction

    value = Fraction(text[:-1].replace("_", "")) * _SUFFIXES[text[-1]]
    return int(value) if value.denominator == 1 else float(value)


def _unquote(token) -> str:
    """A string literal's value: quotes removed, backslash escapes decoded."""
    body = str(token)[1:-1]
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append({"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}.get(nxt, "\\" + nxt))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


# --------------------------------------------------------------------------
# Syntax errors in words.

_TERMINAL_WORDS = {
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": "a string",
    "COMPARE": "a comparison",
    "ADD_OP": "'+' or '-'",
    "MUL_OP": "'*', '/', '//' or '%'",
    "$END": "end of file",
}


def _terminal_words(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    try:
        pattern = _parser().get_terminal(name).pattern
    except KeyError:
        return name.lower()
    if pattern.type == "str":
        return f"'{pattern.value}'"
    return name.lower()


def _found_words(token) -> str:
    if token.type == "$END":
        return "end of file"
    text = str(token)
    if text in RESERVED_WORDS:
        return f"keyword '{text}'"
    return f"'{text}'"


def _syntax_diagnostic(source: SourceFile, error: Any) -> Diagnostic:
    import lark

    if isinstance(error, lark.exceptions.UnexpectedCharacters):
        offset = cast(int, error.pos_in_stream)  # typed None in Lark, set on every instance
        char = source.text[offset] if offset < len(source.text) else ""
        span = source.span(offset, offset + 1)
        if char in "\"'":
            end = source.text.find("\n", offset)
            end = len(source.text) if end < 0 else end
            return Diagnostic.error(
                "E102",
                "unterminated string literal",
                source.span(offset, end),
                hint=f"close the string with {char} on the same line",
            )
        return Diagnostic.error("E102", f"unexpected character {char!r}", span)

    token = error.token
    expected = set(getattr(error, "accepts", None) or error.expected)
    expected_text = _expected_words(expected)
    if token.type == "$END":
        opener = _unclosed_bracket(source)
        if opener is not None:
            return Diagnostic.error(
                "E101", f"unexpected end of file: '{source.text[opener]}' is never closed",
                source.span(opener, opener + 1),
                hint=f"add the matching '{_CLOSERS[source.text[opener]]}'",
            )
        offset = len(source.text.rstrip())
        span = source.span(max(0, offset - 1), offset) if offset else source.span(0, 0)
        return Diagnostic.error("E101", f"unexpected end of file; expected {expected_text}", span)
    span = _span_of(source, token)
    hint = None
    if str(token) in RESERVED_WORDS and "NAME" in expected:
        hint = _reserved_word_hint(source, token)
    elif token.type == "LPAR" and expected == {"LSQB"}:
        hint = _bracket_hint(source, token.start_pos)
    elif "RPAR" in expected and "COMMA" in expected:
        hint = "arguments are separated by commas"
    elif token.type == "EQUAL" and "COLON" in expected:
        hint = "an input is declared as 'input NAME: [C, H, W]'"
    return Diagnostic.error(
        "E101", f"expected {expected_text}, found {_found_words(token)}", span, hint=hint
    )


def _reserved_word_hint(source: SourceFile, token: Any) -> str:
    """Choose another name, or, for a label (the word is followed by ':'),
    write it as a string label, which may spell any word."""
    after = source.text[token.end_pos:token.end_pos + 80].lstrip(" \t")
    if after.startswith(":"):
        return f"'{token}' is a reserved word; to use it as a label write it as a string: \"{token}\": ..."
    return f"'{token}' is a reserved word; choose another name"


def _bracket_hint(source: SourceFile, offset: int) -> str:
    """A shape written in parentheses: show it in brackets."""
    line_end = source.text.find("\n", offset)
    line = source.text[offset:line_end if line_end >= 0 else len(source.text)]
    close = line.find(")")
    if close > 0:
        return f"a shape is written in brackets: [{line[1:close]}]"
    return "a shape is written in brackets: [C, H, W]"


# Terminals that can start an expression, said as one phrase.
_EXPRESSION_START = {"NAME", "INT", "FLOAT", "STRING", "TRUE", "FALSE", "LPAR", "ADD_OP", "NOT", "IF"}
_STATEMENT_START = {"INPUT", "OUTPUT", "RETURN", "IF", "NAME"}
_CLOSERS = {"(": ")", "[": "]", "{": "}"}


def _expected_words(expected: set[str]) -> str:
    words = []
    if expected >= _STATEMENT_START and "RBRACE" in expected:
        words.append("a statement")
        expected = expected - _STATEMENT_START - _EXPRESSION_START
    elif len(expected & _EXPRESSION_START) >= 5:
        words.append("an expression")
        expected = expected - _EXPRESSION_START
    words += sorted({_terminal_words(name) for name in expected})
    if not words:
        return "something else"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _unclosed_bracket(source: SourceFile) -> int | None:
    """Offset of the innermost bracket left open at end of file, if any."""
    stack: list[int] = []
    try:
        for token in _parser().lex(source.text):
            if token.type in ("LPAR", "LSQB", "LBRACE"):
                stack.append(token.start_pos)
            elif token.type in ("RPAR", "RSQB", "RBRACE") and stack:
                stack.pop()
    except Exception:  # lexing already succeeded once; be safe anyway
        return None
    return stack[-1] if stack else None
