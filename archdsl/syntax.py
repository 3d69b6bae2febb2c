"""Parsing: the Lark grammar (built once), the syntax tree with spans, and
syntax errors turned into diagnostics.

The tree is built in the parser's reductions (see "The parser" below); the
builders only build data and never raise diagnostics.
"""

from __future__ import annotations

import functools
import json
import operator
import os
import re
import sys
import zlib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Union

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
        items = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return f"{type(self).__qualname__}({items})"


_node = dataclass(eq=False, repr=False)


@_node
class Literal(_Tree):
    value: Any
    span: Span


@_node
class Name(_Tree):
    id: str
    span: Span


@_node
class Argument(_Tree):
    name: str | None  # None for a positional argument
    value: Expr
    span: Span
    name_span: Span | None = None


@_node
class Call(_Tree):
    func: str
    args: list[Argument]
    span: Span
    func_span: Span


@_node
class TupleExpr(_Tree):
    items: list[Expr]
    span: Span


@_node
class Unary(_Tree):
    op: str  # "-", "+", "not"
    operand: Expr
    span: Span


@_node
class Binary(_Tree):
    op: str  # arithmetic, comparison, "and", "or"
    left: Expr
    right: Expr
    span: Span
    op_span: Span


@_node
class Conditional(_Tree):
    test: Expr
    then: Expr
    orelse: Expr
    span: Span


@_node
class ChainExpr(_Tree):
    """A chain written as an argument: ``concat(a, b -> relu)``."""

    head: Expr
    steps: list[Step]
    span: Span


Expr = Union[Literal, Name, Call, TupleExpr, Unary, Binary, Conditional, ChainExpr]


@_node
class OpRef(_Tree):
    """A bare name in a chain step: an op or block applied with no arguments."""

    name: str
    span: Span


@_node
class OpCall(_Tree):
    name: str
    args: list[Argument]
    span: Span
    name_span: Span


@_node
class Repeat(_Tree):
    count: Expr
    index: str | None
    index_span: Span | None
    steps: list[Step]
    span: Span


@_node
class Group(_Tree):
    steps: list[Step]
    span: Span


@_node
class CondStep(_Tree):
    test: Expr
    then: list[Step]
    orelse: list[Step]  # empty: identity
    span: Span


StepCore = Union[OpRef, OpCall, Repeat, Group, CondStep]


@_node
class LabelTemplate(_Tree):
    """A string label with ``{expression}`` parts, filled in at elaboration."""

    text: str
    span: Span


Label = Union[str, LabelTemplate]


@_node
class Step(_Tree):
    label: Label | None
    label_span: Span | None
    core: StepCore
    span: Span


@_node
class Chain(_Tree):
    label: Label | None
    label_span: Span | None
    head: Expr
    steps: list[Step]
    span: Span


@_node
class InputDecl(_Tree):
    name: str
    name_span: Span
    dims: list[Expr]
    dims_span: Span
    span: Span


@_node
class OutputDecl(_Tree):
    name: str
    name_span: Span
    chain: Chain | None
    span: Span


@_node
class Assign(_Tree):
    name: str
    name_span: Span
    chain: Chain
    span: Span


@_node
class ExpectFigure(_Tree):
    """``expect macs <= 4.2G``"""

    figure: str
    figure_span: Span
    op: str
    value: Expr
    span: Span


@_node
class ExpectOutput(_Tree):
    """``expect output logits: [1000]``; no name: the model's only output."""

    name: str | None
    name_span: Span
    dims: list[Expr]
    span: Span


@_node
class Return(_Tree):
    chain: Chain
    span: Span


@_node
class ChainStmt(_Tree):
    chain: Chain
    span: Span


@_node
class If(_Tree):
    test: Expr
    body: list[Stmt]
    orelse: list[Stmt]
    span: Span


Stmt = Union[InputDecl, OutputDecl, Assign, Return, ChainStmt, If, ExpectFigure, ExpectOutput]


@_node
class Param(_Tree):
    name: str
    span: Span
    default: Expr | None


@_node
class Import(_Tree):
    path: str
    span: Span


@_node
class BlockDef(_Tree):
    name: str
    name_span: Span
    params: list[Param]
    body: list[Stmt]
    span: Span


@_node
class ModelDef(_Tree):
    name: str
    name_span: Span
    body: list[Stmt]
    span: Span


@_node
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
# Spans are what propagate_positions gave: a node runs from the start of its
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
    ["import", "block", "model", "input", "output", "return", "repeat", "as", "if", "then", "else", "and", "or", "not", "true", "false", "expect"]
)


def grammar_path() -> Path:
    """``grammars/cnn.lark``: inside the installed package, or in the source tree."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "grammars" / "cnn.lark", here.parent / "grammars" / "cnn.lark"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("archdsl's grammar file cnn.lark is missing from the installation")


@functools.cache
def _parser():
    """Lark's parser: the automaton, syntax errors, and the contextual lexer
    for text the fast road rejects (no tree positions are needed from it)."""
    import lark

    return lark.Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        start=["start", "expr"],
        maybe_placeholders=True,
        lexer_callbacks={"NAME": _reserved_word},
        cache=True,
    )


def _reserved_word(token):
    """Reserved words are never names, whatever the parser state expects
    (Lark's contextual lexer would otherwise let `input` be a name where no
    keyword fits)."""
    if token.value in RESERVED_WORDS:
        token.type = token.value.upper()
    return token


def parse_expression(text: str, span: Span):
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
    :class:`DiagnosticError` carrying one diagnostic.  Expressions nested
    too deeply for the later, recursive stages raise RecursionError."""
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


def _span_of(source: SourceFile, item) -> Span:
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
# the node nests (see _Builder.run and _WALK_FRAMES).
_VALUE, _START, _LINE, _COLUMN, _END, _END_LINE, _END_COLUMN, _DEPTH = range(8)
_EMPTY = ("", 0, 1, 1, 0, 1, 1, 0)  # where an empty file starts and ends
_depth_of = operator.itemgetter(_DEPTH)


def _regexp_has_newline(regexp: str) -> bool:
    """Lark's test of whether a terminal may span lines (lexer.py)."""
    return "\n" in regexp or "\\n" in regexp or "\\s" in regexp or "[^" in regexp or ("(?s" in regexp and "." in regexp)


def _scan(text: str) -> tuple[list[str], list[tuple]]:
    """Token types and stack entries of ``text``, ending with ``$END``;
    rejects text with a character no terminal matches."""
    pattern, retype, multiline, ignore = _tables()[:4]
    types: list[str] = []
    entries: list[tuple] = []
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


def _contextual_tokens(text: str, start: str) -> tuple[list[str], list[tuple]]:
    """The tokens Lark's contextual lexer reads in ``text`` (which Lark has
    just parsed), as entries of the fast road's loop."""
    types: list[str] = []
    entries: list[tuple] = []
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
_TABLES_FORMAT = 1


def _cache_file(grammar: str) -> Path | None:
    folder = os.environ.get("ARCHDSL_CACHE_DIR")
    if folder is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = os.path.join(base, "archdsl")
    if not folder:
        return None
    checksum = zlib.crc32(f"{_TABLES_FORMAT}\0{grammar}".encode())
    return Path(folder) / f"parser-{checksum:08x}.json"


def _store(path: Path, data: dict) -> None:
    """Writes the cache file whole or not at all (another process may be
    writing the same one)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:  # a read-only home: parse without the cache
        try:
            temporary.unlink()
        except OSError:
            pass


def _compute_tables(grammar: str) -> dict:
    """The lexer's and the parser's tables, from Lark's analysis of the
    grammar, as JSON data.

    The lexer: one alternation of every terminal, in the order Lark's basic
    lexer tries them (priority, then longest possible match, then longest
    pattern, then name).  As in Lark's lexer, a keyword that a regexp of
    equal priority matches whole ("if" and NAME) is no alternative of its
    own: the regexp's match is retyped when its text is the keyword.

    The parser: ``actions[state][symbol]`` is a state number (shift, or goto
    on a rule name) or ``~r`` (reduce by rule ``r``).  ``rules[r]`` is
    ``(size, origin, how, argument, inline)``: a rule with an alias or a
    plain name builds a node with ``_Builder.r_<argument>``; a ``_rule`` is
    spliced into its parent (its value is a list of entries); a ``?rule``
    left with one child passes that child up (``argument`` is its position),
    widened to the brackets around it when the rule also read tokens
    (``"(" expr ")"``).  ``inline`` marks the children that are ``_rules``,
    which Lark splices into their parent (None: none is)."""
    from lark.parsers.lalr_analysis import Shift

    parser = _parser()
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


def _rule_entry(rule) -> list:
    origin = rule.origin.name
    symbols = rule.expansion
    inline = [not s.is_term and s.name.startswith("_") for s in symbols]
    if not any(inline):
        inline = None
    if origin.startswith("_"):
        return [len(symbols), origin, _INLINE, None, inline]
    if rule.options.expand1 and rule.alias is None:
        kept = [i for i, s in enumerate(symbols) if not (s.is_term and s.filter_out)]
        if len(kept) == 1 and (inline is None or not inline[kept[0]]):
            return [len(symbols), origin, _PASS if len(symbols) == 1 else _WRAP, kept[0], inline]
    name = rule.alias or origin
    _builder_of(name, str(rule))
    return [len(symbols), origin, _NODE, name, inline]


def _builder_of(name: str, rule: str = ""):
    build = getattr(_Builder, f"r_{name}", None)
    if build is None:
        raise RuntimeError(f"grammar rule {name!r} {rule} has no builder in archdsl/syntax.py")
    return build


def _unpack_tables(data: dict) -> tuple:
    rules = [(size, origin, how, _builder_of(argument) if how == _NODE else argument,
              None if inline is None else tuple(inline))
             for size, origin, how, argument, inline in data["rules"]]
    return (re.compile(data["pattern"]), data["retype"], frozenset(data["multiline"]), frozenset(data["ignore"]),
            data["actions"], rules, data["starts"], data["ends"], {})


def _pass_through(actions, rules, ends, below: int, top: int, kind: str) -> int:
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
    frame = sys._getframe(1)
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


class _Builder:
    """Runs the LALR loop over one token stream and builds the syntax tree.

    ``r_<rule>`` builds the node of a rule (an alias such as ``binary``, or
    the rule's name) from its children: every symbol of the expansion,
    tokens included, ``_rules`` spliced in, no placeholders for absent
    optional parts (the expansion's length tells which alternative it is)."""

    def __init__(self, file: str, fixed_span: Span | None = None) -> None:
        self.file = file
        self.fixed_span = fixed_span
        self.source: SourceFile | None = None

    # ---------------------------------------------------------------- the loop

    def run(self, types: list[str], entries: list[tuple], start: str, source: SourceFile | None = None):
        actions, rules, starts, ends, passes = _tables()[4:]
        self.source = source
        # The tree walk this replaces recursed once per nesting level; the
        # elaboration after it still does.  Refuse what it refused.
        max_depth = sys.getrecursionlimit() - _stack_depth() - _WALK_FRAMES
        end = ends[start]
        states = [starts[start]]
        stack: list[tuple] = []
        for kind, entry in zip(types, entries):
            while True:
                code = actions[states[-1]].get(kind)
                if code is None:
                    raise _Reject
                if code >= 0:
                    states.append(code)
                    stack.append(entry)
                    break
                size, origin, how, argument, inline = rules[~code]
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
                    value = argument(self, children if inline is None else _splice(children, inline))
                elif how == _WRAP:
                    value = children[argument][_VALUE]
                    depth = children[argument][_DEPTH]
                else:  # _INLINE: the entries, to be spliced into the parent
                    depth = max(map(_depth_of, children))
                    if inline is None:
                        value = children
                    elif inline[0]:  # a left-recursive repetition: extend its list
                        value = first[_VALUE]
                        for e, spliced in zip(children[1:], inline[1:]):
                            if spliced:
                                value.extend(e[_VALUE])
                            else:
                                value.append(e)
                    else:
                        value = _splice(children, inline)
                stack.append((value, first[_START], first[_LINE], first[_COLUMN], last[_END], last[_END_LINE],
                              last[_END_COLUMN], depth))
                states.append(actions[states[-1]][origin])
                if entry is None and states[-1] == end:  # $END: the start symbol is complete
                    return value
        raise _Reject  # not reached: $END either completes the parse or is rejected

    # ---------------------------------------------------------------- spans

    def span(self, e: tuple) -> Span:
        """The span of one entry (a token or a node's text)."""
        if self.fixed_span is not None:
            return self.fixed_span
        return Span(self.file, e[_LINE], e[_COLUMN], e[_END_LINE], e[_END_COLUMN], e[_START], e[_END])

    def whole(self, c: list[tuple]) -> Span:
        """The span of a rule's children, first to last."""
        if self.fixed_span is not None:
            return self.fixed_span
        first, last = c[0], c[-1]
        return Span(self.file, first[_LINE], first[_COLUMN], last[_END_LINE], last[_END_COLUMN], first[_START],
                    last[_END])

    # ---------------------------------------------------------------- files

    def r_start(self, c) -> Module:
        module = Module(source=self.source)
        for e in c:
            item = e[_VALUE]
            if isinstance(item, Import):
                module.imports.append(item)
            elif isinstance(item, BlockDef):
                module.blocks.append(item)
            else:
                module.models.append(item)
        return module

    def r_import_stmt(self, c) -> Import:  # "import" STRING
        return Import(path=_unquote(c[1][_VALUE]), span=self.span(c[1]))

    def r_block_def(self, c) -> BlockDef:  # "block" NAME "(" [param ("," param)* [","]] ")" body
        params = [e[_VALUE] for e in c[3:-2] if isinstance(e[_VALUE], Param)]
        return BlockDef(c[1][_VALUE], self.span(c[1]), params, c[-1][_VALUE], self.whole(c))

    def r_param(self, c) -> Param:  # NAME ["=" expr]
        return Param(name=c[0][_VALUE], span=self.span(c[0]), default=c[2][_VALUE] if len(c) == 3 else None)

    def r_model_def(self, c) -> ModelDef:  # "model" NAME body
        return ModelDef(c[1][_VALUE], self.span(c[1]), c[2][_VALUE], self.whole(c))

    def r_body(self, c) -> list:  # "{" _stmt* "}"
        return [e[_VALUE] for e in c[1:-1]]

    # ---------------------------------------------------------------- statements

    def r_input_decl(self, c) -> InputDecl:  # "input" NAME ":" shape
        name, shape = c[1], c[3]
        return InputDecl(name[_VALUE], self.span(name), shape[_VALUE], self.span(shape), self.whole(c))

    def r_shape(self, c) -> list:  # "[" expr ("," expr)* [","] "]"
        return [e[_VALUE] for e in c[1:-1:2]]

    def r_output_decl(self, c) -> OutputDecl:  # "output" NAME ["=" chain]
        return OutputDecl(c[1][_VALUE], self.span(c[1]), c[3][_VALUE] if len(c) == 4 else None, self.whole(c))

    def r_assign(self, c) -> Assign:  # NAME "=" chain
        return Assign(c[0][_VALUE], self.span(c[0]), c[2][_VALUE], self.whole(c))

    def r_expect_figure(self, c) -> ExpectFigure:  # "expect" NAME COMPARE expr
        return ExpectFigure(c[1][_VALUE], self.span(c[1]), c[2][_VALUE], c[3][_VALUE], self.whole(c))

    def r_expect_output(self, c) -> ExpectOutput:  # "expect" "output" [NAME] ":" shape
        span = self.whole(c)
        if len(c) == 5:
            return ExpectOutput(c[2][_VALUE], self.span(c[2]), c[4][_VALUE], span)
        return ExpectOutput(None, span, c[3][_VALUE], span)

    def r_return_stmt(self, c) -> Return:  # "return" chain
        return Return(c[1][_VALUE], self.whole(c))

    def r_if_stmt(self, c) -> If:  # "if" expr body ["else" (body | if_stmt)]
        if len(c) == 3:
            orelse = []
        else:
            orelse = c[4][_VALUE]
            if isinstance(orelse, If):
                orelse = [orelse]
        return If(c[1][_VALUE], c[2][_VALUE], orelse, self.whole(c))

    def r_chain_stmt(self, c) -> ChainStmt:  # chain
        return ChainStmt(c[0][_VALUE], self.whole(c))

    # ---------------------------------------------------------------- chains

    def r_chain(self, c) -> Chain:  # head (_ARROW step)*
        label, label_span, head = c[0][_VALUE]
        return Chain(label=label, label_span=label_span, head=head, steps=[e[_VALUE] for e in c[2::2]],
                     span=self.whole(c))

    def r_head(self, c) -> tuple:  # [label ":"] expr
        if len(c) == 3:
            return (*c[0][_VALUE], c[2][_VALUE])
        return None, None, c[0][_VALUE]

    def r_step(self, c) -> Step:  # [label ":"] step_core
        label, label_span = c[0][_VALUE] if len(c) == 3 else (None, None)
        return Step(label=label, label_span=label_span, core=c[-1][_VALUE], span=self.whole(c))

    def r_label(self, c) -> tuple:  # NAME | INT | STRING
        text = c[0][_VALUE]
        span = self.span(c[0])
        if text[0] in "\"'":
            return LabelTemplate(_unquote(text), span), self.span(c[0])
        if text[0].isdigit():  # 1_0 and 010 are the index 10, as nn.Sequential names it
            return str(int(text.replace("_", ""))), span
        return text, span

    def r_op_ref(self, c) -> OpRef:  # NAME
        return OpRef(c[0][_VALUE], self.whole(c))

    def r_op_call(self, c) -> OpCall:  # NAME "(" [arguments] ")"
        return OpCall(c[0][_VALUE], c[2][_VALUE] if len(c) == 4 else [], self.whole(c), self.span(c[0]))

    def r_repeat(self, c) -> Repeat:  # "repeat" expr ["as" NAME] "{" steps "}"
        if len(c) == 7:
            return Repeat(c[1][_VALUE], c[3][_VALUE], self.span(c[3]), c[5][_VALUE], self.whole(c))
        return Repeat(c[1][_VALUE], None, None, c[3][_VALUE], self.whole(c))

    def r_group(self, c) -> Group:  # "(" steps ")"
        return Group(c[1][_VALUE], self.whole(c))

    def r_cond_step(self, c) -> CondStep:  # "if" expr "{" steps "}" ["else" "{" steps "}"]
        return CondStep(c[1][_VALUE], c[3][_VALUE], c[7][_VALUE] if len(c) == 9 else [], self.whole(c))

    def r_steps(self, c) -> list:  # step (_ARROW step)*
        return [e[_VALUE] for e in c[::2]]

    def r_arguments(self, c) -> list:  # argument ("," argument)* [","]
        return [e[_VALUE] for e in c[::2]]

    def r_argument(self, c) -> Argument:  # expr
        return Argument(None, c[0][_VALUE], self.whole(c))

    def r_chain_argument(self, c) -> Argument:  # expr (_ARROW step)+
        span = self.whole(c)
        return Argument(None, ChainExpr(c[0][_VALUE], [e[_VALUE] for e in c[2::2]], span), span)

    def r_keyword_argument(self, c) -> Argument:  # NAME "=" expr
        return Argument(c[0][_VALUE], c[2][_VALUE], self.whole(c), self.span(c[0]))

    # ---------------------------------------------------------------- expressions

    def r_cond_expr(self, c) -> Conditional:  # "if" expr "then" expr "else" expr
        return Conditional(c[1][_VALUE], c[3][_VALUE], c[5][_VALUE], self.whole(c))

    def r_or_op(self, c) -> Binary:  # or_expr "or" and_expr
        span = self.whole(c)
        return Binary("or", c[0][_VALUE], c[2][_VALUE], span, span)

    def r_and_op(self, c) -> Binary:  # and_expr "and" not_expr
        span = self.whole(c)
        return Binary("and", c[0][_VALUE], c[2][_VALUE], span, span)

    def r_not_op(self, c) -> Unary:  # "not" not_expr
        return Unary("not", c[1][_VALUE], self.whole(c))

    def r_binary(self, c) -> Binary:  # left OP right
        return Binary(c[1][_VALUE], c[0][_VALUE], c[2][_VALUE], self.whole(c), self.span(c[1]))

    def r_unary(self, c) -> Unary:  # ADD_OP unary
        return Unary(c[0][_VALUE], c[1][_VALUE], self.whole(c))

    def r_int_literal(self, c) -> Literal:
        text = c[0][_VALUE].replace("_", "")
        # Far beyond any limit; Python refuses to convert > 4300 digits.
        return Literal(int(text) if len(text) <= _MAX_DIGITS else 10**_MAX_DIGITS, self.whole(c))

    def r_quantity_literal(self, c) -> Literal:
        text = c[0][_VALUE]
        return Literal(_quantity(text) if len(text) <= _MAX_DIGITS else 10**_MAX_DIGITS, self.whole(c))

    def r_float_literal(self, c) -> Literal:
        return Literal(float(c[0][_VALUE].replace("_", "")), self.whole(c))

    def r_string_literal(self, c) -> Literal:
        return Literal(_unquote(c[0][_VALUE]), self.whole(c))

    def r_true_literal(self, c) -> Literal:
        return Literal(True, self.whole(c))

    def r_false_literal(self, c) -> Literal:
        return Literal(False, self.whole(c))

    def r_name(self, c) -> Name:
        return Name(c[0][_VALUE], self.whole(c))

    def r_call(self, c) -> Call:  # NAME "(" [arguments] ")"
        return Call(c[0][_VALUE], c[2][_VALUE] if len(c) == 4 else [], self.whole(c), self.span(c[0]))

    def r_tuple(self, c) -> TupleExpr:  # "(" expr "," [expr ("," expr)* [","]] ")"
        return TupleExpr([e[_VALUE] for e in c[1:-1:2]], self.whole(c))


def _splice(children: list[tuple], inline: tuple[bool, ...]) -> list[tuple]:
    """The children with those that are ``_rules`` replaced by their own
    children, as Lark inlines them."""
    out: list[tuple] = []
    for e, spliced in zip(children, inline):
        if spliced:
            out.extend(e[_VALUE])
        else:
            out.append(e)
    return out


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


def _syntax_diagnostic(source: SourceFile, error) -> Diagnostic:
    import lark

    if isinstance(error, lark.exceptions.UnexpectedCharacters):
        char = source.text[error.pos_in_stream] if error.pos_in_stream < len(source.text) else ""
        span = source.span(error.pos_in_stream, error.pos_in_stream + 1)
        if char in "\"'":
            end = source.text.find("\n", error.pos_in_stream)
            end = len(source.text) if end < 0 else end
            return Diagnostic.error(
                "E102",
                "unterminated string literal",
                source.span(error.pos_in_stream, end),
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
        hint = f"'{token}' is a reserved word; choose another name"
    elif "RPAR" in expected and "COMMA" in expected:
        hint = "arguments are separated by commas"
    elif token.type == "EQUAL" and "COLON" in expected:
        hint = "an input is declared as 'input NAME: [C, H, W]'"
    return Diagnostic.error(
        "E101", f"expected {expected_text}, found {_found_words(token)}", span, hint=hint
    )


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
            text = str(token)
            if token.type in ("LPAR", "LSQB", "LBRACE"):
                stack.append(token.start_pos)
            elif token.type in ("RPAR", "RSQB", "RBRACE") and stack:
                stack.pop()
    except Exception:  # lexing already succeeded once; be safe anyway
        return None
    return stack[-1] if stack else None
