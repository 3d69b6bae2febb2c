"""``archdsl fmt``: one canonical layout for ``.cnn`` files.

The parser drops comments, so the formatter works on the token stream
(comments included) and re-emits the same tokens with canonical
whitespace.  Only whitespace, line breaks and trailing commas ever change:
:func:`format_text` re-reads its result and compares the tokens, so a
formatter bug stops with an error instead of changing a model.

The layout:

* four spaces per level: one per bracket left open at the end of a line
  (several opened on one line count once), plus one for a line that
  continues a statement (``-> step`` lines under ``x = ...``); a line that
  starts with a closing bracket goes back to the level of the line that
  opened it;
* the user's line breaks are kept, except that a line longer than
  ``MAX_WIDTH`` is broken before each ``->`` that is not inside brackets
  opened on it (one step per line);
* one space around binary operators, ``=``, ``->`` and after ``,`` and
  ``:``; none inside ``( )`` and ``[ ]``, one inside ``{ }``; a keyword
  argument is ``name=value`` unless its value holds a comparison or a
  keyword (``stride = if i == 0 then 2 else 1``);
* a trailing comment stays at least two spaces after the code; comments on
  consecutive lines are aligned to one column (the furthest right of them);
* at most one blank line in a row, none at the start or end of a body;
* a bracket whose closing bracket stands on its own line gets a trailing
  comma after its last item if its items are separated by commas; one
  closed on the line of its last item loses it (unless it makes a
  one-item tuple, ``(x,)``).
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import syntax
from .diagnostics import Diagnostic, DiagnosticError
from .diagnostics.render import render_text
from .elaborate import Limits
from .files import read_capped, write_atomic
from .source import SourceFile

MAX_WIDTH = 120
INDENT = "    "

_OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
_CLOSERS = frozenset(_OPENERS.values())
#: Tokens after which ``+``/``-`` is binary; after anything else it is a sign.
_OPERANDS = frozenset({"NAME", "INT", "FLOAT", "QUANTITY", "STRING", "RPAR", "RSQB", "TRUE", "FALSE"})
#: Tokens a call's ``(`` or an index's ``[`` follows without a space.
_CALLABLE = frozenset({"NAME", "RPAR", "RSQB", "STRING"})
#: Tokens that make a keyword argument's value "complex" (``name = value``).
_SPACED_VALUE = frozenset({"COMPARE", "IF", "THEN", "ELSE", "AND", "OR", "NOT", "_ARROW"})
_WHITESPACE = "__IGNORE_1"
#: Words that begin a declaration or statement (or its ``else``), never a continuation.
_STATEMENT_WORDS = frozenset({"IMPORT", "BLOCK", "MODEL", "INPUT", "OUTPUT", "EXPECT", "RETURN", "ELSE"})


@dataclass(slots=True)
class Token:
    kind: str
    text: str
    start: int  # offset in the original text (-1 for an inserted comma)
    column: int  # 0-based column in the original text
    newlines: int  # line breaks between the previous token and this one


class FormatError(Exception):
    """The formatter would change more than whitespace: a bug in archdsl."""


def tokens(text: str) -> list[Token]:
    """Every token of ``text``, comments included, with the line breaks
    before each.  The lexer is the parser's (grammars/cnn.lark's terminals,
    reserved words retyped), so the kinds are the grammar's."""
    pattern, retype = syntax._tables()[:2]
    found: list[Token] = []
    newlines = 0
    line_start = 0
    position = 0
    for match in pattern.finditer(text):
        if match.start() != position:
            raise ValueError(f"no token at offset {position}")
        position = match.end()
        kind = match.lastgroup or ""
        value = match.group()
        if kind == _WHITESPACE:
            count = value.count("\n")
            newlines += count
            if count:
                line_start = match.start() + value.rindex("\n") + 1
            continue
        kind = retype.get(kind, {}).get(value, kind)
        if kind == "NAME" and value in syntax.RESERVED_WORDS:
            kind = value.upper()
        found.append(Token(kind, value, match.start(), match.start() - line_start, newlines))
        newlines = 0
    if position != len(text):
        raise ValueError(f"no token at offset {position}")
    return found


def _statement_starts(module: syntax.Module, toks: list[Token]) -> set[int]:
    """Offsets where declarations and statements begin (an import's span is
    its path's: its ``import`` word is taken from the tokens)."""
    definitions: list[syntax.BlockDef | syntax.ModelDef] = [*module.blocks, *module.models]
    starts = {item.span.start for item in definitions}
    starts.update(tok.start for tok in toks if tok.kind == "IMPORT")
    pending: list[syntax.Stmt] = [s for d in definitions for s in d.body]
    while pending:
        stmt = pending.pop()
        starts.add(stmt.span.start)
        if isinstance(stmt, syntax.If):
            pending += stmt.body
            pending += stmt.orelse
    return starts


def _matching(toks: list[Token]) -> dict[int, int]:
    """Index of each bracket's partner, both ways."""
    partner: dict[int, int] = {}
    stack: list[int] = []
    for i, tok in enumerate(toks):
        if tok.kind in _OPENERS:
            stack.append(i)
        elif tok.kind in _CLOSERS:
            opener = stack.pop()
            partner[opener], partner[i] = i, opener
    return partner


def _depth_commas(toks: list[Token], opener: int, closer: int) -> list[int]:
    """Indices of the commas directly inside the bracket ``opener``."""
    commas = []
    depth = 0
    for i in range(opener + 1, closer):
        kind = toks[i].kind
        if kind in _OPENERS:
            depth += 1
        elif kind in _CLOSERS:
            depth -= 1
        elif kind == "COMMA" and depth == 0:
            commas.append(i)
    return commas


def _trailing_commas(toks: list[Token]) -> list[Token]:
    """Add or drop trailing commas (see the module's docstring)."""
    partner = _matching(toks)
    drop: set[int] = set()
    add_after: set[int] = set()
    for closer, tok in enumerate(toks):
        if tok.kind not in ("RPAR", "RSQB"):
            continue
        opener = partner[closer]
        commas = _depth_commas(toks, opener, closer)
        if not commas:
            continue
        last = closer - 1
        while toks[last].kind == "COMMENT":
            last -= 1
        if tok.newlines and toks[last].kind != "COMMA" and last != opener:
            add_after.add(last)
        elif not tok.newlines and toks[closer - 1].kind == "COMMA" and len(commas) >= 2:
            drop.add(closer - 1)
    result: list[Token] = []
    for i, tok in enumerate(toks):
        if i not in drop:
            result.append(tok)
        if i in add_after:
            result.append(Token("COMMA", ",", -1, -1, 0))
    return result


def _statement_lines(toks: list[Token], starts: set[int]) -> None:
    """Every statement on a line of its own, and a block, model or if body
    opened and closed on lines of their own."""
    partner = _matching(toks)
    for i, tok in enumerate(toks):
        if i and tok.start in starts:
            tok.newlines = max(tok.newlines, 1)
        if tok.kind != "LBRACE" or i + 1 == len(toks):
            continue
        following = toks[i + 1]
        if following.start in starts:
            if following.kind != "COMMENT":
                following.newlines = max(following.newlines, 1)
            closer = toks[partner[i]]
            closer.newlines = max(closer.newlines, 1)


class _Spacer:
    """The space between two tokens on one line."""

    def __init__(self, toks: list[Token]) -> None:
        self.toks = toks
        self.partner = _matching(toks)
        self.tight_equals = self._tight_keyword_equals()

    def _tight_keyword_equals(self) -> set[int]:
        """The ``=`` of keyword arguments whose value is simple."""
        toks = self.toks
        tight: set[int] = set()
        stack: list[int] = []
        for i, tok in enumerate(toks):
            if tok.kind in _OPENERS:
                stack.append(i)
            elif tok.kind in _CLOSERS:
                stack.pop()
            elif tok.kind == "EQUAL" and stack and self._is_call(stack[-1]) and not self._complex_value(i):
                tight.add(i)
        return tight

    def _is_call(self, opener: int) -> bool:
        toks = self.toks
        if toks[opener].kind != "LPAR" or opener == 0 or toks[opener - 1].kind != "NAME":
            return False
        return opener < 2 or toks[opener - 2].kind != "BLOCK"

    def _complex_value(self, equals: int) -> bool:
        depth = 0
        for tok in self.toks[equals + 1:]:
            if tok.kind in _OPENERS:
                depth += 1
            elif tok.kind in _CLOSERS:
                if depth == 0:
                    return False
                depth -= 1
            elif depth == 0 and tok.kind == "COMMA":
                return False
            elif depth == 0 and tok.kind in _SPACED_VALUE:
                return True
        return False

    def is_sign(self, i: int) -> bool:
        return self.toks[i].kind == "ADD_OP" and (i == 0 or self.toks[i - 1].kind not in _OPERANDS)

    def space(self, i: int) -> str:
        """The space before token ``i`` (which follows token ``i - 1`` on its line)."""
        prev, cur = self.toks[i - 1].kind, self.toks[i].kind
        if i in self.tight_equals or i - 1 in self.tight_equals:
            return ""
        if prev in ("LPAR", "LSQB") or cur in ("RPAR", "RSQB", "COMMA", "COLON", "DOT") or prev == "DOT":
            return ""
        if cur == "RBRACE" and prev == "LBRACE":
            return ""
        if cur in ("LPAR", "LSQB") and prev in _CALLABLE:
            return ""
        if self.is_sign(i - 1):
            return ""
        return " "


@dataclass(slots=True)
class _Line:
    level: int
    toks: list[int]  # indices of the tokens on the line, comment excluded
    comment: int | None  # index of the trailing (or only) comment
    blank_before: bool


class _Layout:
    """Lines and their indentation levels, from tokens and statement starts."""

    def __init__(self, toks: list[Token], starts: set[int]) -> None:
        self.toks = toks
        self.starts = starts
        self.partner = _matching(toks)

    def lines(self) -> list[_Line]:
        toks = self.toks
        lines: list[_Line] = []
        stack: list[tuple[int, int, bool]] = []  # per open bracket: (inner level, closing level, statement body)
        current: _Line | None = None
        level = 0  # the level brackets opened next are inside of
        for i, tok in enumerate(toks):
            if current is None or tok.newlines:
                blank = tok.newlines > 1 and bool(lines or current)
                current = _Line(self._level(i, stack), [], None, blank)
                lines.append(current)
                level = current.level
            if tok.kind == "COMMENT":
                current.comment = i
                continue
            current.toks.append(i)
            if tok.kind in _OPENERS:
                stack.append((level + 1, level, self._is_body(i)))
            elif tok.kind in _CLOSERS:
                # `b) {`: after a bracket opened on an earlier line closes,
                # the line goes on at the level that bracket was opened at.
                level = min(level, stack.pop()[1])
        return lines

    def _is_body(self, opener: int) -> bool:
        """A ``{`` whose contents are statements (a block, model or if body)."""
        toks = self.toks
        if toks[opener].kind != "LBRACE":
            return False
        following = opener + 1
        while following < len(toks) and toks[following].kind == "COMMENT":
            following += 1
        return following < len(toks) and (toks[following].start in self.starts or toks[following].kind == "RBRACE")

    def _level(self, i: int, stack: list[tuple[int, int, bool]]) -> int:
        toks = self.toks
        code = i
        while code < len(toks) and toks[code].kind == "COMMENT":
            code += 1
        if code == len(toks):
            return stack[-1][0] if stack else 0
        first = toks[code]
        if first.kind in _CLOSERS:
            if code != i:  # a comment line before a closing bracket: inside it
                return stack[-1][0]
            return stack[-1][1]
        base, in_statements = (stack[-1][0], stack[-1][2]) if stack else (0, True)
        continues = in_statements and first.start not in self.starts and first.kind not in _STATEMENT_WORDS
        return base + (1 if continues else 0)


def _render_code(toks: list[Token], spacer: _Spacer, line: _Line) -> str:
    parts = []
    for n, i in enumerate(line.toks):
        if n:
            parts.append(spacer.space(i))
        parts.append(toks[i].text)
    return "".join(parts)


def _long_lines_split(toks: list[Token], lines: list[_Line], spacer: _Spacer) -> bool:
    """Breaks over-long lines before their top-level ``->``; True if any was."""
    changed = False
    for line in lines:
        width = len(INDENT) * line.level + len(_render_code(toks, spacer, line))
        if width <= MAX_WIDTH:
            continue
        depth = 0
        for n, i in enumerate(line.toks):
            kind = toks[i].kind
            if kind in _OPENERS:
                depth += 1
            elif kind in _CLOSERS:
                depth = max(0, depth - 1)
            elif kind == "_ARROW" and depth == 0 and n > 0:
                toks[i].newlines = 1
                changed = True
    return changed


def _comment_columns(toks: list[Token], lines: list[_Line], codes: list[str]) -> dict[int, int]:
    """The column of each trailing comment: runs of consecutive lines with
    trailing comments share the furthest-right column of the run (at least
    two spaces after the longest code)."""
    columns: dict[int, int] = {}
    run: list[int] = []

    def close_run() -> None:
        if run:
            column = max(max(len(codes[n]) + 2 for n in run),
                         max(toks[lines[n].comment].column for n in run))  # type: ignore[index]
            for n in run:
                columns[n] = column
            run.clear()

    for n, line in enumerate(lines):
        trailing = line.comment is not None and bool(line.toks)
        if trailing and not line.blank_before:
            run.append(n)
        else:
            close_run()
            if trailing:
                run.append(n)
    close_run()
    return columns


def _blank_allowed(toks: list[Token], previous: _Line, line: _Line) -> bool:
    if previous.toks and toks[previous.toks[-1]].kind in _OPENERS:
        return False
    return not (line.toks and toks[line.toks[0]].kind in _CLOSERS)


def _render(toks: list[Token], lines: list[_Line], spacer: _Spacer) -> str:
    codes = [INDENT * line.level + _render_code(toks, spacer, line) for line in lines]
    columns = _comment_columns(toks, lines, codes)
    out: list[str] = []
    for n, line in enumerate(lines):
        if n and line.blank_before and _blank_allowed(toks, lines[n - 1], line):
            out.append("")
        text = codes[n]
        if line.comment is not None:
            comment = toks[line.comment].text.rstrip()
            text = (text.ljust(columns[n]) + comment) if line.toks else INDENT * line.level + comment
        out.append(text.rstrip())
    return "\n".join(out) + "\n" if out else ""


def _significant(text: str) -> list[tuple[str, str]]:
    """Tokens as compared before and after formatting: trailing commas
    (a comma before a closing bracket) left out."""
    toks = tokens(text)
    kept = []
    for i, tok in enumerate(toks):
        if tok.kind == "COMMA":
            following = i + 1
            while following < len(toks) and toks[following].kind == "COMMENT":
                following += 1
            if following < len(toks) and toks[following].kind in _CLOSERS:
                continue
        kept.append((tok.kind, tok.text.rstrip()))
    return kept


def format_text(text: str, name: str = "<string>") -> str:
    """``text`` laid out canonically.  Raises
    :class:`~archdsl.diagnostics.DiagnosticError` on a syntax error (the
    file is not formatted), :class:`FormatError` if the result would differ
    in more than whitespace and trailing commas (a bug)."""
    module = syntax.parse(SourceFile(name, text))
    toks = tokens(text)
    starts = _statement_starts(module, toks)
    _statement_lines(toks, starts)
    toks = _trailing_commas(toks)
    spacer = _Spacer(toks)
    lines = _Layout(toks, starts).lines()
    if _long_lines_split(toks, lines, spacer):
        lines = _Layout(toks, starts).lines()
    result = _render(toks, lines, spacer)
    if _significant(result) != _significant(text):
        raise FormatError(f"{name}: formatting would change more than whitespace")
    return result


def unified_diff(old: str, new: str, name: str) -> Iterator[str]:
    """The change as ``diff -u`` prints it (a last line without a line
    break marked as such)."""
    for line in difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                     fromfile=name, tofile=f"{name} (formatted)"):
        yield line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"



# ---------------------------------------------------------------- the command


@dataclass(slots=True)
class FileResult:
    """What formatting one file gave: its new text, or the diagnostics
    that stopped it (a syntax error, an unreadable file)."""

    name: str
    old: str
    new: str | None
    diagnostics: list[Diagnostic]
    source: SourceFile

    @property
    def changed(self) -> bool:
        return self.new is not None and self.new != self.old


def format_source(text: str, name: str) -> FileResult:
    source = SourceFile(name, text)
    try:
        new = format_text(text, name)
    except DiagnosticError as error:
        return FileResult(name, text, None, list(error.diagnostics), source)
    except RecursionError:
        message = "brackets or else-if chains nested too deeply to format"
        return FileResult(name, text, None, [Diagnostic.error("E901", message, source.span(0, 0))], source)
    return FileResult(name, text, new, [], source)


def read_source(path: Path) -> str:
    """A file's text, as the loader reads it (size-capped, UTF-8)."""
    limit = Limits().max_file_bytes
    data = read_capped(path, limit)
    if len(data) > limit:
        raise OSError(f"{path} is larger than the limit of {limit} bytes")
    return data.decode("utf-8")


def run(paths: list[Path], *, check: bool, diff: bool, color: bool, stdin_text: str | None = None) -> int:
    """``archdsl fmt``: rewrite ``paths`` (or, with ``--check``/``--diff``,
    only report); with ``stdin_text``, format standard input to standard
    output instead.  Exit status 1 if a file has a syntax error, or would
    change under ``--check``."""
    if stdin_text is not None:
        results = [format_source(stdin_text, "<stdin>")]
    else:
        results = [format_source(read_source(path), str(path)) for path in paths]
    status = 0
    for result in results:
        if result.new is None:
            sys.stderr.write(render_text(result.diagnostics, {result.name: result.source}, color=color))
            status = 1
            continue
        if diff:
            sys.stdout.writelines(unified_diff(result.old, result.new, result.name))
        if check:
            if result.changed:
                print(f"would reformat {result.name}", file=sys.stderr)
                status = 1
        elif stdin_text is not None and not diff:
            sys.stdout.write(result.new)
        elif result.changed and not diff:
            write_atomic(result.name, result.new)
            print(f"reformatted {result.name}", file=sys.stderr)
    return status
