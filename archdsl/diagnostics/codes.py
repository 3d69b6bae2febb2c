"""Every diagnostic code, once: its stable name, default severity and doc.

Codes are grouped by hundreds: E1xx syntax, E2xx names and structure,
E3xx op arguments, E4xx shapes and channels, E9xx resource limits,
W1xx language warnings. ``docs/diagnostics.md`` is generated from this table
(``python -m archdsl codes --markdown``) and a test keeps the two in sync.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Code:
    code: str
    name: str
    severity: Severity
    summary: str
    example: str = ""


_E, _W = Severity.ERROR, Severity.WARNING

CODES: tuple[Code, ...] = (
    Code("E101", "syntax-error", _E,
         "The text does not follow the grammar; the message lists what could come next.",
         "conv2d(64 3)   # a comma is missing"),
    Code("E102", "invalid-token", _E,
         "A character that starts no token of the language, or an unterminated string.",
         'x -> conv2d(64, 3, padding="same)'),
    Code("E201", "unknown-op", _E,
         "A chain step names neither an op nor a block in scope.",
         "x -> conv2(64, 3)   # did you mean conv2d?"),
    Code("E202", "unknown-name", _E,
         "An expression names no value, parameter, loop index or builtin in scope.",
         "x -> conv2d(widht, 3)"),
    Code("E203", "duplicate-name", _E,
         "A block, model, input, value or node name is defined twice.",
         "conv1: conv2d(64, 3) -> conv1: conv2d(64, 3)"),
    Code("E204", "recursive-block", _E,
         "A block instantiates itself, directly or through other blocks.",
         "block A() { return in -> A() }"),
    Code("E205", "import-not-found", _E,
         "An imported file does not exist or cannot be read.",
         'import "blocks/missing.cnn"'),
    Code("E206", "import-cycle", _E,
         "Files import each other in a cycle.",
         'a.cnn: import "b.cnn"; b.cnn: import "a.cnn"'),
    Code("E207", "missing-input", _E,
         "An op or block that needs an input tensor has none: it starts a chain, or "
         "'in' is used outside a block or in a block called without input.",
         "y = conv2d(64, 3)"),
    Code("E208", "missing-output", _E,
         "A block has no 'return', a model has no output, or 'return' appears in a model.",
         "block B() { x = in -> relu }"),
    Code("E209", "type-mismatch", _E,
         "A tensor is used where a compile-time value is expected, or the reverse.",
         "x -> conv2d(in, 3)"),
    Code("E210", "invalid-expression", _E,
         "A compile-time expression cannot be evaluated: wrong operand types, "
         "division by zero, a bad repeat count or input dimension.",
         "repeat -1 { relu }"),
    Code("E211", "missing-model-input", _E,
         "A model declares no input.",
         "model M { x = conv2d(8, 3) }"),
    Code("E212", "misplaced-statement", _E,
         "A statement or label where it has no meaning: 'return' in a model, 'input' "
         "or 'output' in a block, a label on a plain value.",
         "model M { input x: [3, 8, 8]  return x }"),
    Code("E301", "unknown-argument", _E,
         "A keyword argument the op or block does not take.",
         "conv2d(64, 3, strid=2)"),
    Code("E302", "missing-argument", _E,
         "A required argument of an op or block is not given.",
         "conv2d(kernel_size=3)"),
    Code("E303", "invalid-argument", _E,
         "An argument has the wrong type or an out-of-range value.",
         "conv2d(64, 0)   # kernel_size must be positive"),
    Code("E304", "too-many-arguments", _E,
         "More positional arguments than the op or block takes.",
         "relu(1)"),
    Code("E305", "duplicate-argument", _E,
         "The same argument is given twice, by position and keyword or twice by keyword.",
         "conv2d(64, 3, out_channels=32)"),
    Code("E306", "wrong-arity", _E,
         "A merge op gets fewer than two inputs, or a single-input op gets several.",
         "add(x)"),
    Code("E401", "spatial-collapse", _E,
         "A window does not fit: the kernel is larger than the padded input, so the "
         "output would have zero or negative size.",
         "input x: [3, 3, 3]  x -> conv2d(8, 5)"),
    Code("E402", "channel-mismatch", _E,
         "A declared in_channels, num_features, in_features or normalized_shape "
         "disagrees with the incoming tensor.",
         "x -> conv2d(64, 3) -> conv2d(32, 3, in_channels=128)"),
    Code("E403", "groups-mismatch", _E,
         "groups does not divide the input channels (grouped convolution, channel shuffle).",
         "input x: [30, 8, 8]  x -> conv2d(64, 3, groups=4)"),
    Code("E404", "merge-shape-mismatch", _E,
         "add needs equal shapes; mul needs broadcastable shapes.",
         "add(x -> conv2d(64, 3, stride=2), x)"),
    Code("E405", "concat-mismatch", _E,
         "concat inputs disagree in a dimension other than the concatenation dim.",
         "concat(x, x -> maxpool2d(2))"),
    Code("E406", "needs-flatten", _E,
         "linear is applied to a feature map instead of a flat vector.",
         "x -> conv2d(8, 3) -> linear(10)"),
    Code("E407", "wrong-rank", _E,
         "An op gets a tensor of the wrong rank (conv2d on [C, L], bilinear on 1-d).",
         "input x: [3, 100]  x -> conv2d(8, 3)"),
    Code("E408", "invalid-dim", _E,
         "A dim argument (concat, softmax, flatten) or per-dim list does not fit the input's rank.",
         "x -> softmax(dim=5)"),
    Code("E901", "limit-exceeded", _E,
         "A resource limit was reached: file size, node count, repeat count, block or "
         "import nesting, integer magnitude. Limits are set with archdsl.Limits.",
         "repeat 10_000_000 { relu }"),
    Code("W101", "unused-value", _W,
         "A named value is computed but never used and is not an output.",
         "unused = x -> conv2d(8, 3)"),
)

BY_CODE: dict[str, Code] = {c.code: c for c in CODES}


def lookup(code: str) -> Code:
    return BY_CODE[code]


def markdown() -> str:
    """docs/diagnostics.md, generated from the table above."""
    lines = [
        "# Diagnostic codes",
        "",
        "Generated by `python -m archdsl codes --markdown`; do not edit by hand.",
        "",
    ]
    for c in CODES:
        lines += [f"## {c.code} `{c.name}` ({c.severity.value})", "", c.summary, ""]
        if c.example:
            lines += ["Example:", "", "```", c.example, "```", ""]
    return "\n".join(lines)
