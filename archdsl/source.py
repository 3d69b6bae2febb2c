"""Source files and spans: where every node and diagnostic points back to."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

_NEWLINE = re.compile("\n")


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open character range in one source file.

    Lines and columns are 1-based, as editors and compilers print them;
    ``end_column`` is one past the last character.
    """

    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    start: int = 0  # character offsets, for slicing the text
    end: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def to(self, other: Span) -> Span:
        """The span from the start of ``self`` to the end of ``other``."""
        return Span(
            file=self.file,
            line=self.line,
            column=self.column,
            end_line=other.end_line,
            end_column=other.end_column,
            start=self.start,
            end=other.end,
        )


@dataclass
class SourceFile:
    """The text of one file plus a line index for offset -> (line, column)."""

    name: str
    text: str
    _line_starts: list[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._line_starts = [0, *(match.end() for match in _NEWLINE.finditer(self.text))]

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return line + 1, offset - self._line_starts[line] + 1

    def span(self, start: int, end: int) -> Span:
        line, column = self.position(start)
        end_line, end_column = self.position(end)
        return Span(
            file=self.name,
            line=line,
            column=column,
            end_line=end_line,
            end_column=end_column,
            start=start,
            end=end,
        )

    def line_text(self, line: int) -> str:
        if line < 1 or line > len(self._line_starts):
            return ""
        start = self._line_starts[line - 1]
        end = self.text.find("\n", start)
        return self.text[start : len(self.text) if end < 0 else end].rstrip("\r")
