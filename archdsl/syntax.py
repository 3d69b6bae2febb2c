"""Parsing: the Lark grammar (built once), the syntax tree with spans, and
syntax errors turned into diagnostics.

The transformer only builds data; it never raises diagnostics (an exception
inside a Lark transformer comes out wrapped in ``VisitError``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from .diagnostics import Diagnostic, DiagnosticError
from .source import SourceFile, Span

# --------------------------------------------------------------------------
# Syntax tree.  Plain dataclasses: internal, never serialised.


@dataclass
class Literal:
    value: Any
    span: Span


@dataclass
class Name:
    id: str
    span: Span


@dataclass
class Argument:
    name: str | None  # None for a positional argument
    value: "Expr"
    span: Span
    name_span: Span | None = None


@dataclass
class Call:
    func: str
    args: list[Argument]
    span: Span
    func_span: Span


@dataclass
class TupleExpr:
    items: list["Expr"]
    span: Span


@dataclass
class Unary:
    op: str  # "-", "+", "not"
    operand: "Expr"
    span: Span


@dataclass
class Binary:
    op: str  # arithmetic, comparison, "and", "or"
    left: "Expr"
    right: "Expr"
    span: Span
    op_span: Span


@dataclass
class Conditional:
    test: "Expr"
    then: "Expr"
    orelse: "Expr"
    span: Span


@dataclass
class ChainExpr:
    """A chain written as an argument: ``concat(a, b -> relu)``."""

    head: "Expr"
    steps: list["Step"]
    span: Span


Expr = Union[Literal, Name, Call, TupleExpr, Unary, Binary, Conditional, ChainExpr]


@dataclass
class OpRef:
    """A bare name in a chain step: an op or block applied with no arguments."""

    name: str
    span: Span


@dataclass
class OpCall:
    name: str
    args: list[Argument]
    span: Span
    name_span: Span


@dataclass
class Repeat:
    count: Expr
    index: str | None
    index_span: Span | None
    steps: list["Step"]
    span: Span


@dataclass
class Group:
    steps: list["Step"]
    span: Span


@dataclass
class CondStep:
    test: Expr
    then: list["Step"]
    orelse: list["Step"]  # empty: identity
    span: Span


StepCore = Union[OpRef, OpCall, Repeat, Group, CondStep]


@dataclass
class LabelTemplate:
    """A string label with ``{expression}`` parts, filled in at elaboration."""

    text: str
    span: Span


Label = Union[str, LabelTemplate]


@dataclass
class Step:
    label: "Label | None"
    label_span: Span | None
    core: StepCore
    span: Span


@dataclass
class Chain:
    label: "Label | None"
    label_span: Span | None
    head: Expr
    steps: list[Step]
    span: Span


@dataclass
class InputDecl:
    name: str
    name_span: Span
    dims: list[Expr]
    dims_span: Span
    span: Span


@dataclass
class OutputDecl:
    name: str
    name_span: Span
    chain: Chain | None
    span: Span


@dataclass
class Assign:
    name: str
    name_span: Span
    chain: Chain
    span: Span


@dataclass
class ExpectFigure:
    """``expect macs <= 4.2G``"""

    figure: str
    figure_span: Span
    op: str
    value: Expr
    span: Span


@dataclass
class ExpectOutput:
    """``expect output logits: [1000]``; no name: the model's only output."""

    name: str | None
    name_span: Span
    dims: list[Expr]
    span: Span


@dataclass
class Return:
    chain: Chain
    span: Span


@dataclass
class ChainStmt:
    chain: Chain
    span: Span


@dataclass
class If:
    test: Expr
    body: list["Stmt"]
    orelse: list["Stmt"]
    span: Span


Stmt = Union[InputDecl, OutputDecl, Assign, Return, ChainStmt, If, ExpectFigure, ExpectOutput]


@dataclass
class Param:
    name: str
    span: Span
    default: Expr | None


@dataclass
class Import:
    path: str
    span: Span


@dataclass
class BlockDef:
    name: str
    name_span: Span
    params: list[Param]
    body: list[Stmt]
    span: Span


@dataclass
class ModelDef:
    name: str
    name_span: Span
    body: list[Stmt]
    span: Span


@dataclass
class Module:
    source: SourceFile
    imports: list[Import] = field(default_factory=list)
    blocks: list[BlockDef] = field(default_factory=list)
    models: list[ModelDef] = field(default_factory=list)


# --------------------------------------------------------------------------
# The parser.

RESERVED_WORDS = frozenset(
    "import block model input output return repeat as if then else and or not true false expect".split()
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
    import lark

    return lark.Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        start=["start", "expr"],
        propagate_positions=True,
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
    import lark

    try:
        tree = _parser().parse(text, start="expr")
    except lark.exceptions.UnexpectedInput:
        raise DiagnosticError([Diagnostic.error("E101", f"invalid expression {{{text}}} in label", span)]) from None
    return _ToAst(SourceFile(span.file, text), fixed_span=span).expr(tree)


def parse(source: SourceFile) -> Module:
    """Parse one file into a :class:`Module`; a syntax error raises
    :class:`DiagnosticError` carrying one diagnostic."""
    import lark

    try:
        tree = _parser().parse(source.text, start="start")
    except lark.exceptions.UnexpectedInput as error:
        raise DiagnosticError([_syntax_diagnostic(source, error)]) from None
    return _ToAst(source).build(tree)


def _span_of(source: SourceFile, item) -> Span:
    """Span of a Lark Token or Tree meta."""
    return Span(
        file=source.name,
        line=item.line,
        column=item.column,
        end_line=item.end_line,
        end_column=item.end_column,
        start=item.start_pos,
        end=item.end_pos,
    )


class _ToAst:
    """Walks Lark's tree bottom-up into the dataclasses above."""

    def __init__(self, source: SourceFile, fixed_span: Span | None = None) -> None:
        self.source = source
        self.fixed_span = fixed_span

    def span(self, item) -> Span:
        if self.fixed_span is not None:
            return self.fixed_span
        return _span_of(self.source, item.meta if hasattr(item, "meta") else item)

    def build(self, tree) -> Module:
        module = Module(source=self.source)
        for item in tree.children:
            if item.data == "import_stmt":
                token = item.children[0]
                module.imports.append(Import(path=_unquote(token), span=self.span(token)))
            elif item.data == "block_def":
                module.blocks.append(self.block_def(item))
            else:
                module.models.append(self.model_def(item))
        return module

    def block_def(self, tree) -> BlockDef:
        name, *rest = tree.children
        body = rest[-1]
        params = []
        for param in rest[:-1]:
            if param is None:
                continue
            pname, default = param.children
            params.append(
                Param(
                    name=str(pname),
                    span=self.span(pname),
                    default=None if default is None else self.expr(default),
                )
            )
        return BlockDef(str(name), self.span(name), params, self.body(body), self.span(tree))

    def model_def(self, tree) -> ModelDef:
        name, body = tree.children
        return ModelDef(str(name), self.span(name), self.body(body), self.span(tree))

    def body(self, tree) -> list[Stmt]:
        return [self.stmt(child) for child in tree.children]

    def stmt(self, tree) -> Stmt:
        kind = tree.data
        c = tree.children
        span = self.span(tree)
        if kind == "input_decl":
            name, shape = c
            return InputDecl(
                str(name), self.span(name), [self.expr(d) for d in shape.children], self.span(shape), span
            )
        if kind == "output_decl":
            name, chain = c
            return OutputDecl(str(name), self.span(name), None if chain is None else self.chain(chain), span)
        if kind == "assign":
            name, chain = c
            return Assign(str(name), self.span(name), self.chain(chain), span)
        if kind == "expect_figure":
            figure, op, value = c
            return ExpectFigure(str(figure), self.span(figure), str(op), self.expr(value), span)
        if kind == "expect_output":
            name, shape = c
            return ExpectOutput(None if name is None else str(name), span if name is None else self.span(name),
                                [self.expr(d) for d in shape.children], span)
        if kind == "return_stmt":
            return Return(self.chain(c[0]), span)
        if kind == "if_stmt":
            test, body, orelse = c
            if orelse is None:
                else_body = []
            elif orelse.data == "if_stmt":
                else_body = [self.stmt(orelse)]
            else:
                else_body = self.body(orelse)
            return If(self.expr(test), self.body(body), else_body, span)
        assert kind == "chain_stmt", kind
        return ChainStmt(self.chain(c[0]), span)

    def label(self, tree) -> tuple["Label | None", Span | None]:
        if tree is None:
            return None, None
        token = tree.children[0]
        if token.type == "STRING":
            return LabelTemplate(_unquote(token), self.span(token)), self.span(token)
        if token.type == "INT":  # 1_0 and 010 are the index 10, as nn.Sequential names it
            return str(int(str(token).replace("_", ""))), self.span(token)
        return str(token), self.span(token)

    def chain(self, tree) -> Chain:
        head, *steps = tree.children
        label, expr = head.children
        label, label_span = self.label(label)
        return Chain(
            label=label,
            label_span=label_span,
            head=self.expr(expr),
            steps=[self.step(s) for s in steps],
            span=self.span(tree),
        )

    def steps(self, tree) -> list[Step]:
        return [self.step(s) for s in tree.children]

    def step(self, tree) -> Step:
        label, core = tree.children
        label, label_span = self.label(label)
        return Step(
            label=label,
            label_span=label_span,
            core=self.step_core(core),
            span=self.span(tree),
        )

    def step_core(self, tree) -> StepCore:
        if not hasattr(tree, "data"):  # a bare NAME token
            return OpRef(str(tree), self.span(tree))
        kind = tree.data
        c = tree.children
        span = self.span(tree)
        if kind == "op_ref":
            return OpRef(str(c[0]), span)
        if kind == "op_call":
            name, args = c
            return OpCall(str(name), self.arguments(args), span, self.span(name))
        if kind == "repeat":
            count, index, steps = c
            return Repeat(
                self.expr(count),
                None if index is None else str(index),
                None if index is None else self.span(index),
                self.steps(steps),
                span,
            )
        if kind == "group":
            return Group(self.steps(c[0]), span)
        assert kind == "cond_step", kind
        test, then, orelse = c
        return CondStep(self.expr(test), self.steps(then), [] if orelse is None else self.steps(orelse), span)

    def arguments(self, tree) -> list[Argument]:
        if tree is None:
            return []
        result = []
        for arg in tree.children:
            if arg is None:
                continue
            if arg.data == "keyword_argument":
                name, value = arg.children
                result.append(Argument(str(name), self.expr(value), self.span(arg), self.span(name)))
            elif arg.data == "chain_argument":
                head, *steps = arg.children
                chain = ChainExpr(self.expr(head), [self.step(s) for s in steps], self.span(arg))
                result.append(Argument(None, chain, self.span(arg)))
            else:
                result.append(Argument(None, self.expr(arg.children[0]), self.span(arg)))
        return result

    def expr(self, tree) -> Expr:
        kind = tree.data
        c = tree.children
        span = self.span(tree)
        if kind == "int_literal":
            text = str(c[0]).replace("_", "")
            # Far beyond any limit; Python refuses to convert > 4300 digits.
            return Literal(int(text) if len(text) <= _MAX_DIGITS else 10**_MAX_DIGITS, span)
        if kind == "quantity_literal":
            text = str(c[0])
            return Literal(_quantity(text) if len(text) <= _MAX_DIGITS else 10**_MAX_DIGITS, span)
        if kind == "float_literal":
            return Literal(float(str(c[0]).replace("_", "")), span)
        if kind == "string_literal":
            return Literal(_unquote(c[0]), span)
        if kind == "true_literal":
            return Literal(True, span)
        if kind == "false_literal":
            return Literal(False, span)
        if kind == "name":
            return Name(str(c[0]), span)
        if kind == "call":
            name, args = c
            return Call(str(name), self.arguments(args), span, self.span(name))
        if kind == "tuple":
            return TupleExpr([self.expr(x) for x in c if x is not None], span)
        if kind == "unary":
            return Unary(str(c[0]), self.expr(c[1]), span)
        if kind == "not_op":
            return Unary("not", self.expr(c[0]), span)
        if kind == "binary":
            left, op, right = c
            return Binary(str(op), self.expr(left), self.expr(right), span, self.span(op))
        if kind in ("and_op", "or_op"):
            left, right = c
            word = kind[:-3]
            return Binary(word, self.expr(left), self.expr(right), span, span)
        assert kind == "cond_expr", kind
        test, then, orelse = c
        return Conditional(self.expr(test), self.expr(then), self.expr(orelse), span)


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
    if _STATEMENT_START <= expected and "RBRACE" in expected:
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
