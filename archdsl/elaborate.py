"""Elaboration: files, imports, blocks, repeats and expressions -> layer graphs.

The syntax tree is executed like a small program at compile time: block
calls are expanded, ``repeat`` unrolled, ``if`` decided, and every op call
becomes a :class:`~archdsl.graph.Node` whose spec the op's Pydantic schema
has validated.  Errors are collected, not raised: a value that failed is
*poisoned* and whatever depends on it is skipped silently, so one mistake
gives one diagnostic and independent mistakes are all reported.

Node names (see docs/language.md, "Names"):

* a labelled item (``conv1: conv2d(...)``) is named ``<scope>.<label>``;
* in a model or block body an unlabelled op is ``<op>_<n>`` and an
  unlabelled block call ``<block>_<n>`` (n counts from 1 per scope);
* ``label: repeat N {...}`` and ``label: (...)`` open a *sequential* scope
  where unlabelled items are numbered 0, 1, 2... like ``nn.Sequential``;
* unlabelled repeats and groups add no level of their own.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import syntax as ast
from ._gc import paused_gc
from .diagnostics import Diagnostic, DiagnosticError, Label, block_uses, did_you_mean, merge_repeats
from .files import UnsafePath, read_capped, resolved
from .graph import FIGURES, BlockInstance, Expectation, Model, Node
from .ops import CALLABLE, ArgumentError, Input, OpSpec
from .ops.base import Shape, ShapeError, show_shape
from .search_path import STD_PREFIX, ImportPolicy, import_policy
from .source import SourceFile, Span
from .values import OpValue, Tensor, show_value

# --------------------------------------------------------------------------
# Limits: elaboration runs on untrusted files, so expansion is bounded.


@dataclass(frozen=True)
class Limits:
    """Bounds on what one file may make elaboration do (docs/language.md)."""

    max_nodes: int = 250_000
    max_steps: int = 2_000_000  # chain steps executed, nodes or not
    max_block_instances: int = 100_000
    max_block_depth: int = 64
    max_repeat: int = 100_000
    max_import_depth: int = 32
    max_imports: int = 1_000
    max_file_bytes: int = 10_000_000
    max_nesting: int = 100  # brackets and braces inside each other
    max_integer: int = 2**62
    max_dimension: int = 2**31
    max_list_length: int = 100_000  # items of one list or tuple, characters of a joined string
    max_list_nesting: int = 32  # lists inside lists


# --------------------------------------------------------------------------
# Values.


class _Poison:
    """The value of anything that failed; spreads silently."""

    def __repr__(self) -> str:
        return "<error>"


POISON = _Poison()


def _poisoned_in_poisoned_out(method: Callable[..., Any]) -> Callable[..., Any]:
    """A check on evaluated operands that returns POISON, reporting nothing
    more, when an operand already failed (it was reported where it failed)."""

    @functools.wraps(method)
    def checked(self: Any, expr: Any, *operands: Any) -> Any:
        if any(operand is POISON for operand in operands):
            return POISON
        return method(self, expr, *operands)

    return checked


@dataclass(frozen=True)
class _MissingInput:
    """``in`` inside a block that was called with no input."""

    call_span: Span
    block: str


def _kind_of(value: Any) -> str:
    if isinstance(value, Tensor):
        return "a tensor"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int):
        return "an int"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, tuple):
        return "a tuple"
    if isinstance(value, OpValue):
        return "an op"
    return type(value).__name__


def _typed(value: Any) -> Any:
    if isinstance(value, tuple):
        return (tuple, tuple(_typed(v) for v in value))
    return (type(value), value)


@functools.cache
def _argument_names(op: type[OpSpec]) -> frozenset[str]:
    return frozenset(op.model_fields) - {"op"}


@functools.cache
def _takes_rank(name: str, rank: int) -> bool:
    """Whether op or block ``name`` takes an input of ``rank`` dimensions
    (batch excluded) by its shape rule; a block takes what it is given."""
    op = CALLABLE.get(name)
    if op is None:
        return True
    ranks = op.model_construct(op=op.kind()).input_ranks  # a class fact; some ops state it as a property
    return ranks is None or rank in ranks


@functools.cache
def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def source_text(arg: ast.Argument) -> str:
    """An argument as it was written (for hints)."""
    return "..." if arg.span is None else f"{arg.name + '=' if arg.name else ''}..."


def label_problem(name: str) -> tuple[str, str | None] | None:
    """Why ``name`` cannot be one component of a node name, and a hint; or None.

    A label may spell any key PyTorch's ``nn.Module.add_module`` accepts
    (torchvision's RegNet has ``trunk_output.block1.block1-0``), so that
    state_dict keys need no renaming, except what would break the key
    structure or the tools that show names: ``.`` separates components
    (``a.b`` as one label would pass for two levels and could collide with
    a real nesting), and an empty component, whitespace, control characters
    or a brace left over from a template would make names that read as
    something else in messages, diagrams and command lines."""
    if not name:
        return "is empty", None
    if "." in name:
        return ("contains '.', which separates the levels of a node name",
                "name a level with a labelled group or block: 'a: (b: conv2d(...))' is 'a.b'")
    if any(ch.isspace() or not ch.isprintable() for ch in name):
        return "contains whitespace or a control character", None
    if "{" in name or "}" in name:
        return "has an unmatched '{' or '}'", "a template fills in '{expression}' parts: '\"conv{i + 1}\"'"
    return None


# --------------------------------------------------------------------------
# Environments and name scopes.


@dataclass
class _Binding:
    value: Any
    span: Span
    used: bool = False
    is_param: bool = False
    is_input: bool = False


class Env:
    """Compile-time variables of one body; repeat indices live in child envs."""

    def __init__(self, parent: Env | None = None) -> None:
        self.parent = parent
        self.vars: dict[str, _Binding] = {}

    def find(self, name: str) -> _Binding | None:
        env: Env | None = self
        while env is not None:
            binding = env.vars.get(name)
            if binding is not None:
                return binding
            env = env.parent
        return None

    def names(self) -> list[str]:
        env: Env | None = self
        out: list[str] = []
        while env is not None:
            out += env.vars
            env = env.parent
        return out


@dataclass
class NameScope:
    """Generates node names under a prefix (see the module docstring)."""

    prefix: str
    sequential: bool = False
    counters: dict[str, int] = field(default_factory=dict)
    index: int = 0
    block: str | None = None  # innermost block instance path

    def qualify(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def child(self, label: str | None, kind: str) -> str:
        if self.sequential:
            position = self.index
            self.index += 1
            return self.qualify(label if label is not None else str(position))
        if label is not None:
            return self.qualify(label)
        n = self.counters.get(kind, 0) + 1
        self.counters[kind] = n
        return self.qualify(f"{kind}_{n}")


# --------------------------------------------------------------------------
# Programs: a file, its imports, and its models.


@dataclass
class Program:
    """What loading one file gives: its models, diagnostics and sources."""

    path: str
    models: list[Model]
    diagnostics: list[Diagnostic]
    sources: dict[str, SourceFile]
    #: Spans of every block and model definition read (for suppressions).
    definitions: list[Span] = field(default_factory=list)
    #: The parsed files (for checks of blocks no model uses, archdsl/lint/blocks.py).
    modules: list[ast.Module] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        from .diagnostics import has_errors

        return not has_errors(self.diagnostics)

    @paused_gc
    def check(self, inputs=None) -> list[Diagnostic]:
        """Every diagnostic of the file: elaboration's, then each model's
        shape errors (``inputs`` overrides input shapes by name)."""
        from .passes.shapes import infer_shapes

        found = list(self.diagnostics)
        for model in self.models:
            overrides = {k: v for k, v in (inputs or {}).items() if k in model.inputs}
            found += infer_shapes(model, overrides)[1]
        return merge_repeats(found)

    def model(self, name: str | None = None) -> Model:
        """The model called ``name``, or the only/first model of the file."""
        if name is None:
            if not self.models:
                raise LookupError(f"{self.path} defines no model")
            return self.models[0]
        for model in self.models:
            if model.name == name:
                return model
        raise LookupError(f"{self.path} defines no model named {name!r}")


@dataclass
class _BlockEntry:
    definition: ast.BlockDef
    module: ast.Module


@dataclass(frozen=True)
class _ParsedImport:
    module: ast.Module | None
    source: SourceFile
    diagnostics: tuple[Diagnostic, ...]
    definitions: tuple[Span, ...]


class Loader:
    """Reads files and their imports, once each, detecting cycles."""

    def __init__(self, limits: Limits, policy: ImportPolicy) -> None:
        self.limits = limits
        self.policy = policy
        self.sources: dict[str, SourceFile] = {}
        self.modules: dict[Path, ast.Module | None] = {}
        self.diagnostics: list[Diagnostic] = []
        self.definitions: list[Span] = []
        self._visible: dict[int, dict[str, _BlockEntry]] = {}
        self._imports: dict[int, list[ast.Module]] = {}

    def parse_text(self, text: str, name: str) -> ast.Module | None:
        text = _normalised(text)
        not_unicode = _lone_surrogate(text)
        if not_unicode is not None:  # only loads() can be given one: a file is decoded strictly
            source = SourceFile(name, text[:not_unicode] + "\ufffd")
            self.sources[name] = source
            self.diagnostics.append(Diagnostic.error(
                "E103", f"the text is not valid Unicode: a lone surrogate U+{ord(text[not_unicode]):04X} at offset "
                f"{not_unicode}", source.span(not_unicode, not_unicode + 1)))
            return None
        source = SourceFile(name, text)
        self.sources[name] = source
        if len(text.encode("utf-8")) > self.limits.max_file_bytes:
            self.diagnostics.append(
                Diagnostic.error("E901", f"file is larger than the limit of {self.limits.max_file_bytes} bytes",
                                 source.span(0, 0))
            )
            return None
        too_deep = _nesting_error(source, self.limits.max_nesting)
        if too_deep is not None:
            self.diagnostics.append(too_deep)
            return None
        try:
            module = ast.parse(source)
        except DiagnosticError as error:
            self.diagnostics += error.diagnostics
            return None
        except RecursionError:
            self.diagnostics.append(Diagnostic.error(
                "E901", "the file nests expressions too deeply to analyse", source.span(0, 0)))
            return None
        self.definitions += [d.span for d in module.blocks] + [d.span for d in module.models]
        self.check_definitions(module)
        return module

    def parse_import(self, text: str, name: str) -> ast.Module | None:
        """:meth:`parse_text` of an imported file, parsed once per process
        (:func:`_parse_import`)."""
        parsed = _parse_import(name, text, self.limits, self.policy)
        self.sources[name] = parsed.source
        self.diagnostics += parsed.diagnostics
        self.definitions += parsed.definitions
        return parsed.module

    def resolve_imports(self, module: ast.Module, directory: Path, stack: tuple[Path, ...]) -> None:
        imported: list[ast.Module] = []
        for imp in module.imports:
            target = self.locate(imp, directory)
            if target is None:
                continue
            if target in stack:
                chain = " -> ".join(p.name for p in (*stack[stack.index(target):], target))
                self.diagnostics.append(
                    Diagnostic.error("E206", f"import cycle: {chain}", imp.span,
                                     hint="move the shared blocks into a file that imports neither")
                )
                continue
            if len(stack) >= self.limits.max_import_depth:
                self.diagnostics.append(
                    Diagnostic.error("E901", f"imports nest deeper than the limit of {self.limits.max_import_depth}",
                                     imp.span)
                )
                continue
            if target not in self.modules:
                self.modules[target] = None  # placeholder while loading
                if len(self.modules) > self.limits.max_imports:
                    self.diagnostics.append(Diagnostic.error(
                        "E901", f"more than the limit of {self.limits.max_imports} imported files", imp.span))
                    continue
                text = self.read_import(imp, target, directory)
                if text is None:
                    continue
                child = self.parse_import(text, _display(target))
                self.modules[target] = child
                if child is not None:
                    self.resolve_imports(child, target.parent, (*stack, target))
            child = self.modules[target]
            if child is not None:
                imported.append(child)
        self._imports[id(module)] = imported

    def cannot_import(self, imp: ast.Import, reason: str, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic.error("E205", f"cannot import {_quoted(imp.path)}: {reason}", imp.span,
                                                 hint=hint))

    def locate(self, imp: ast.Import, directory: Path) -> Path | None:
        """The resolved file an import names: ``std/...`` in the standard
        library, else relative to the importing file's folder, then to each
        library folder; confined to the policy's folders (E205 otherwise,
        before anything outside them is even looked at)."""
        path = imp.path
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
            self.cannot_import(imp, "the path contains a control character")
            return None
        if not path.endswith(".cnn"):
            self.cannot_import(imp, "only .cnn files can be imported")
            return None
        if path.startswith(STD_PREFIX):
            if self.policy.std is None:
                self.cannot_import(imp, "the standard block library is not installed")
                return None
            candidates = [self.policy.std / path[len(STD_PREFIX):]]
        else:
            candidates = [directory / path, *(folder / path for folder in self.policy.library)]
        outside = False
        for candidate in candidates:
            try:
                target = resolved(candidate)
            except UnsafePath as error:
                self.cannot_import(imp, str(error))
                return None
            if not self.policy.allows(target):
                outside = True
            elif target.exists():
                return target
        if outside:
            self.cannot_import(imp, "the file is outside the project", hint=(
                f"imports may read {_display(self.policy.root)} and the library folders; add a folder to "
                "[tool.archdsl] paths or ARCHDSL_PATH to allow more (docs/security.md)"))
        else:
            self.cannot_import(imp, "no such file", hint=(
                f"paths are relative to the importing file's folder ({_display(directory)}), then to the library "
                "folders; \"std/...\" names the standard block library"))
        return None

    def read_import(self, imp: ast.Import, target: Path, directory: Path) -> str | None:
        """The text of an imported file, or None after E205/E901."""
        try:
            data = read_capped(target, self.limits.max_file_bytes)
        except OSError as error:  # UnsafePath too: a FIFO, a device, a directory
            self.cannot_import(imp, str(error) if isinstance(error, UnsafePath) else _os_reason(error))
            return None
        if len(data) > self.limits.max_file_bytes:
            self.diagnostics.append(Diagnostic.error(
                "E901", f"the imported file is larger than the limit of {self.limits.max_file_bytes} bytes", imp.span))
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            self.cannot_import(imp, f"the file is not valid UTF-8 (byte 0x{data[error.start]:02x} at offset "
                                    f"{error.start})")
            return None

    def visible_blocks(self, module: ast.Module) -> dict[str, _BlockEntry]:
        """Blocks a module may call: its own and, transitively, its imports'."""
        key = id(module)
        if key in self._visible:
            return self._visible[key]
        self._visible[key] = {}  # guards against re-entry
        table: dict[str, _BlockEntry] = {}
        for child in self._imports.get(key, []):
            for name, entry in self.visible_blocks(child).items():
                self._add_block(table, name, entry)
        for definition in module.blocks:
            self._add_block(table, definition.name, _BlockEntry(definition, module))
        self._visible[key] = table
        return table

    def check_definitions(self, module: ast.Module) -> None:
        """Checks of a definition that do not depend on how it is used."""
        for definition in module.blocks:
            seen: dict[str, Span] = {}
            for param in definition.params:
                if param.name in seen:
                    self.diagnostics.append(Diagnostic.error(
                        "E203", f"parameter '{param.name}' is declared twice", param.span,
                        labels=[Label(seen[param.name], "first declared here")]))
                elif param.name == "in":
                    self.diagnostics.append(Diagnostic.error(
                        "E203", "'in' is the block's input and cannot be a parameter", param.span))
                seen.setdefault(param.name, param.span)

    def _add_block(self, table: dict[str, _BlockEntry], name: str, entry: _BlockEntry) -> None:
        existing = table.get(name)
        if existing is not None and existing.definition is not entry.definition:
            self.diagnostics.append(
                Diagnostic.error(
                    "E203", f"block '{name}' is defined more than once", entry.definition.name_span,
                    labels=[Label(existing.definition.name_span, "first defined here")],
                )
            )
            return
        if name in CALLABLE:
            self.diagnostics.append(
                Diagnostic.error("E203", f"block '{name}' has the name of a built-in op", entry.definition.name_span,
                                 hint="choose another name: blocks cannot replace ops")
            )
            return
        table[name] = entry


def _nesting_error(source: SourceFile, limit: int) -> Diagnostic | None:
    """E901 at the first bracket nested deeper than ``limit`` (checked before
    parsing: deep nesting would exhaust the recursion of later stages).

    Strings end at their closing quote or at the end of the line (no
    escapes), comments at the end of the line; the scan jumps from one such
    character to the next."""
    depth = 0
    in_string: str | None = None
    in_comment = False
    text = source.text
    for match in _NESTING_CHARACTERS.finditer(text):
        ch = match.group()
        if in_comment:
            in_comment = ch != "\n"
        elif in_string:
            if ch == in_string or ch == "\n":
                in_string = None
        elif ch == "#":
            in_comment = True
        elif ch in "\"'":
            in_string = ch
        elif ch in "([{":
            depth += 1
            if depth > limit:
                offset = match.start()
                return Diagnostic.error("E901", f"brackets nest deeper than the limit of {limit}",
                                        source.span(offset, offset + 1))
        elif ch in ")]}":
            depth = max(0, depth - 1)
    return None


#: The characters _nesting_error looks at; everything else leaves its state as it is.
_NESTING_CHARACTERS = re.compile(r"[()\[\]{}\"'#\n]")


def _display(path: Path) -> str:
    """A path as diagnostics show it: relative to the working directory when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load(path: str | Path, *, limits: Limits | None = None, root: str | Path | None = None,
         paths: tuple[Path, ...] | None = None) -> Program:
    """Parse and elaborate a ``.cnn`` file and the files it imports.

    Imports are confined to ``root`` (default: the file's project root) and
    the library folders ``paths`` (default: ``ARCHDSL_PATH`` and
    ``[tool.archdsl] paths``); see :mod:`archdsl.search_path`.

    Raises ``OSError`` if the file itself cannot be read, and
    :class:`~archdsl.files.UnsafePath` (an ``OSError``) if it is not a
    regular file (usage errors); every problem inside the files is a
    diagnostic in the result.
    """
    path = Path(path)
    limits = limits or Limits()
    data = read_capped(path, limits.max_file_bytes)
    target = resolved(path)
    policy = import_policy(target.parent, root=Path(root) if root is not None else None, paths=paths)
    if len(data) > limits.max_file_bytes:  # not decoded: the cut may fall inside a character
        source = SourceFile(str(path), "")
        diagnostic = Diagnostic.error("E901", f"file is larger than the limit of {limits.max_file_bytes} bytes",
                                      source.span(0, 0))
        return Program(str(path), [], [diagnostic], {str(path): source})
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return _undecodable(str(path), data, error)
    return _load_text(text, str(path), target, limits, policy)


def _normalised(text: str) -> str:
    """The text as the parser reads it: without a byte-order mark, and with
    old Mac line ends (a lone CR) as LF, so that lines are counted as
    editors count them. Both keep every other offset where it was (a BOM is
    not a character of the program)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return _LONE_CR.sub("\n", text) if "\r" in text else text


_LONE_CR = re.compile(r"\r(?!\n)")


def _lone_surrogate(text: str) -> int | None:
    """The offset of the first lone surrogate (not UTF-8-encodable), if any."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return error.start
    return None


def _quoted(path: str) -> str:
    """An import path as a message shows it: quoted, control characters
    escaped (a newline in it must not forge a line of output)."""
    return json.dumps(path, ensure_ascii=False).encode("utf-8", "backslashreplace").decode("utf-8")


def _os_reason(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "no such file"
    return (error.strerror or type(error).__name__).lower()


def _decode_error(data: bytes, name: str, error: UnicodeDecodeError) -> Diagnostic:
    """E103 at the first byte that is not UTF-8."""
    prefix = data[: error.start].decode("utf-8", "replace")
    source = SourceFile(name, prefix + "\ufffd")
    span = source.span(len(prefix), len(prefix) + 1)
    return Diagnostic.error("E103", f"the file is not valid UTF-8: byte 0x{data[error.start]:02x} at offset "
                                    f"{error.start}", span, hint="save the file as UTF-8")


def _undecodable(name: str, data: bytes, error: UnicodeDecodeError) -> Program:
    diagnostic = _decode_error(data, name, error)
    prefix = data[: error.start].decode("utf-8", "replace")
    return Program(name, [], [diagnostic], {name: SourceFile(name, prefix + "\ufffd")})


def loads(text: str, name: str = "<string>", *, limits: Limits | None = None, directory: str | Path = ".",
          root: str | Path | None = None, paths: tuple[Path, ...] | None = None) -> Program:
    """Like :func:`load`, from a string; imports resolve against ``directory``
    (and are confined to its project root, or ``root``)."""
    folder = resolved(directory)
    policy = import_policy(folder, root=Path(root) if root is not None else None, paths=paths)
    return _load_text(text, name, folder / name, limits or Limits(), policy)


@paused_gc
def _load_text(text: str, name: str, path: Path, limits: Limits, policy: ImportPolicy) -> Program:
    loader = Loader(limits, policy)
    module = loader.parse_text(text, name)
    models: list[Model] = []
    if module is not None:
        loader.modules[path] = module
        loader.resolve_imports(module, path.parent, (path,))
        blocks = loader.visible_blocks(module)
        seen: dict[str, Span] = {}
        for definition in module.models:
            if definition.name in seen:
                loader.diagnostics.append(
                    Diagnostic.error("E203", f"model '{definition.name}' is defined more than once",
                                     definition.name_span, labels=[Label(seen[definition.name], "first defined here")])
                )
                continue
            seen[definition.name] = definition.name_span
            builder = _ModelBuilder(blocks, limits, loader.diagnostics)
            try:
                model = builder.build(definition)
            except RecursionError:
                loader.diagnostics.append(Diagnostic.error(
                    "E901", f"model '{definition.name}' nests expressions or blocks too deeply to analyse",
                    definition.name_span))
                model = None
            if model is not None:
                models.append(model)
    diagnostics = merge_repeats(loader.diagnostics)
    return Program(name, models, diagnostics, loader.sources, loader.definitions,
                   [m for m in loader.modules.values() if m is not None])


# --------------------------------------------------------------------------
# Builtin functions usable in expressions.


def _builtin_round(x, ndigits=None):
    return round(x) if ndigits is None else round(x, ndigits)


def _builtin_sum(items):
    if not isinstance(items, tuple) or not all(_is_number(v) for v in items):
        raise TypeError("sum() adds the numbers of a list")
    return sum(items)


def _builtin_pow(base, exponent):
    """``base ** exponent``: exact for integers (bounded first: the exponent
    alone could make Python compute for hours), floats otherwise."""
    if not (_is_number(base) and _is_number(exponent)):
        raise TypeError("pow() takes numbers")
    if isinstance(base, int) and isinstance(exponent, int) and exponent >= 0:
        if abs(base) > 1 and exponent * math.log2(abs(base)) > 64:
            raise _TooLarge()
        return base**exponent
    return math.pow(base, exponent)


def _builtin_range(*bounds):
    if not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds):
        raise TypeError("range() takes integers")
    return tuple(range(*bounds))


def _builtin_enumerate(items):
    if not isinstance(items, tuple):
        raise TypeError("enumerate() takes a list")
    return tuple(enumerate(items))


class _TooLarge(OverflowError):
    """An integer result far beyond ``Limits.max_integer``, refused before it is computed."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Builtin:
    """A function of compile-time values: at least ``least`` and at most
    ``most`` arguments (None: any number)."""

    function: Callable[..., Any]
    least: int
    most: int | None


BUILTINS: dict[str, Builtin] = {
    "min": Builtin(min, 1, None),
    "max": Builtin(max, 1, None),
    "abs": Builtin(abs, 1, 1),
    "int": Builtin(int, 1, 1),
    "float": Builtin(float, 1, 1),
    "round": Builtin(_builtin_round, 1, 2),
    "len": Builtin(len, 1, 1),
    "sum": Builtin(_builtin_sum, 1, 1),
    "pow": Builtin(_builtin_pow, 2, 2),
    "log": Builtin(math.log, 1, 2),  # natural, or to the base given
    "sqrt": Builtin(math.sqrt, 1, 1),
    "ceil": Builtin(math.ceil, 1, 1),
    "floor": Builtin(math.floor, 1, 1),
    "range": Builtin(_builtin_range, 1, 3),
    "enumerate": Builtin(_builtin_enumerate, 1, 1),
}


def _spatial(shape: Shape, name: str) -> int | None:
    """A named spatial size: length of [C, L], depth of [C, D, H, W],
    height and width of [C, H, W] and [C, D, H, W]."""
    rank = len(shape)
    if name == "length":
        return shape[1] if rank == 2 else None
    if name == "depth":
        return shape[1] if rank == 4 else None
    if rank not in (3, 4):
        return None
    return shape[-2] if name == "height" else shape[-1]


#: What ``tensor.<name>`` reads from the tensor's shape (batch excluded);
#: None where the name does not fit the rank.
TENSOR_ATTRIBUTES: dict[str, Callable[[Shape], Any]] = {
    "channels": lambda shape: shape[0],
    "shape": tuple,
    "rank": len,
    "length": lambda shape: _spatial(shape, "length"),
    "depth": lambda shape: _spatial(shape, "depth"),
    "height": lambda shape: _spatial(shape, "height"),
    "width": lambda shape: _spatial(shape, "width"),
}

_ATTRIBUTE_RANKS = {
    "length": "'length' is the L of a [C, L] tensor",
    "depth": "'depth' is the D of a [C, D, H, W] tensor",
    "height": "'height' is the H of a [C, H, W] or [C, D, H, W] tensor",
    "width": "'width' is the W of a [C, H, W] or [C, D, H, W] tensor",
}


def _arity(function: Builtin) -> str:
    """How many arguments a builtin takes, in words."""
    if function.most is None:
        count = f"at least {function.least}"
    elif function.most == function.least:
        count = str(function.least)
    else:
        count = f"{function.least} to {function.most}"
    return f"{count} argument{'' if function.least == 1 and function.most in (1, None) else 's'}"


class _LimitExceeded(Exception):
    pass


# --------------------------------------------------------------------------
# One model.


@functools.lru_cache(maxsize=64)
def _parse_import(name: str, text: str, limits: Limits, policy: ImportPolicy) -> _ParsedImport:
    """An imported file parsed, with what parsing it adds to a loader.  A
    block library that every model of an ``archdsl check`` run imports is
    read each time but parsed once: the text is the key, so an edited file
    is parsed again.  Sharing is safe: the result depends only on the
    arguments, and nothing changes a syntax tree after parsing."""
    scratch = Loader(limits, policy)
    module = scratch.parse_text(text, name)
    return _ParsedImport(module, scratch.sources[name], tuple(scratch.diagnostics), tuple(scratch.definitions))


class _ModelBuilder:
    def __init__(self, blocks: dict[str, _BlockEntry], limits: Limits, diagnostics: list[Diagnostic]) -> None:
        self.blocks = blocks
        self.limits = limits
        self.diagnostics = diagnostics
        self.nodes: dict[str, Node] = {}
        self.instances: dict[str, BlockInstance] = {}
        self.call_stack: list[tuple[str, Span]] = []  # (block name, call span)
        self.active_blocks: set[str] = set()  # a block cannot be active twice: no recursion
        self.specs: dict[tuple, OpSpec] = {}  # validated specs by (op, arguments): shared, they are frozen
        self.steps = 0
        self.block_sizes: dict[str, int] = {}  # nodes made by a block's last expansion
        self.unused_reported: set[Span] = set()
        self.depths: dict[int, tuple[tuple, int]] = {}  # id -> (list, how deep lists nest in it)
        self.shapes: dict[str, Shape | None] = {}  # computed on first use (shape_of)
        self.shape_causes: dict[str, str] = {}  # node of unknown shape -> the node with the shape error
        self.unknown_shapes_reported: set[str] = set()

    # ---------------------------------------------------------------- reporting

    def report(self, code: str, message: str, span: Span | None, **kwargs) -> _Poison:
        labels = [*kwargs.pop("labels", ()), *block_uses(reversed(self.call_stack), span)]
        self.diagnostics.append(Diagnostic.make(code, message, span, labels=labels, **kwargs))
        return POISON

    # ---------------------------------------------------------------- model

    def build(self, definition: ast.ModelDef) -> Model | None:
        env = Env()
        scope = NameScope("")
        self.model_name = definition.name
        inputs: list[str] = []
        outputs: dict[str, str] = {}
        output_spans: dict[str, Span] = {}
        last_value: tuple[str, Any] | None = None
        expectations: list[Expectation] = []
        try:
            for stmt in definition.body:
                if isinstance(stmt, (ast.ExpectFigure, ast.ExpectOutput)):
                    expectation = self.expectation(stmt, env)
                    if expectation is not None:
                        expectations.append(expectation)
                elif isinstance(stmt, ast.InputDecl):
                    name = self.declare_input(stmt, env)
                    if name:
                        inputs.append(name)
                elif isinstance(stmt, ast.OutputDecl):
                    self.declare_output(stmt, env, scope, outputs, output_spans)
                elif isinstance(stmt, ast.Return):
                    self.report("E212", "'return' belongs in a block; a model declares outputs", stmt.span,
                                hint="write 'output NAME = ...'")
                    # Read on as if it were the output, so nothing else cascades.
                    last_value = ("output", self.chain(stmt.chain, env, scope))
                else:
                    result = self.execute([stmt], env, scope)
                    if isinstance(stmt, ast.Assign):
                        last_value = (stmt.name, result)
                    elif isinstance(stmt, ast.ChainStmt):
                        last_value = ("output", result)
        except _LimitExceeded:
            return None
        if not inputs and not any(isinstance(s, ast.InputDecl) for s in definition.body):
            self.report("E211", f"model '{definition.name}' declares no input", definition.name_span,
                        hint="declare one, e.g. 'input image: [3, 224, 224]'")
        if not outputs and not output_spans:
            if last_value is not None and isinstance(last_value[1], Tensor):
                outputs[last_value[0]] = last_value[1].node
                binding = env.vars.get(last_value[0])
                if binding is not None:
                    binding.used = True
            elif last_value is None or last_value[1] is not POISON:
                self.report("E208", f"model '{definition.name}' has no output", definition.name_span,
                            hint="end the model with a chain, or declare 'output NAME = ...'")
        self.warn_unused(env)
        # Every part was validated as it was made; skip revalidating the whole.
        return Model.model_construct(
            name=definition.name,
            span=definition.name_span,
            inputs=tuple(inputs),
            outputs=outputs,
            nodes=self.nodes,
            blocks=self.instances,
            expectations=tuple(expectations),
        )

    def expectation(self, stmt, env: Env) -> Expectation | None:
        if isinstance(stmt, ast.ExpectOutput):
            dims = [self.evaluate(d, env, None) for d in stmt.dims]
            if any(d is POISON for d in dims):
                return None
            bad = [d for d in dims if isinstance(d, bool) or not isinstance(d, int) or d <= 0]
            if bad:
                self.report("E210", f"an output dimension must be a positive integer, not {show_value(bad[0])}",
                            stmt.span)
                return None
            return Expectation.model_construct(figure="output", op="==", value=tuple(dims), output=stmt.name,
                                               span=stmt.span)
        if stmt.figure not in FIGURES:
            self.report("E202", f"unknown figure '{stmt.figure}'", stmt.figure_span,
                        hint=did_you_mean(stmt.figure, FIGURES) or f"expect takes: {', '.join(FIGURES)}")
            return None
        value = self.evaluate(stmt.value, env, None)
        if value is POISON:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.report("E210", f"expect {stmt.figure} needs a number, not {show_value(value)}", stmt.value.span)
            return None
        return Expectation.model_construct(figure=stmt.figure, op=stmt.op, value=value, output=None, span=stmt.span)

    def declare_input(self, stmt: ast.InputDecl, env: Env) -> str | None:
        dims = []
        ok = True
        for dim in stmt.dims:
            value = self.evaluate(dim, env, None)
            if value is POISON:
                ok = False
            elif isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                self.report("E210", f"an input dimension must be a positive integer, not {show_value(value)}", dim.span)
                ok = False
            elif value > self.limits.max_dimension:
                self.report("E901", f"input dimension {value} is larger than the limit of {self.limits.max_dimension}",
                            dim.span)
                ok = False
            else:
                dims.append(value)
        if not 1 <= len(stmt.dims) <= 4:
            self.report("E210", "an input has 1 to 4 dimensions ([C, L], [C, H, W], [C, D, H, W]); "
                        f"got {len(stmt.dims)}",
                        stmt.dims_span)
            ok = False
        if not self.bind(env, stmt.name, stmt.name_span, POISON):
            return None
        if not ok:
            return None
        if stmt.name in self.nodes:
            self.report("E203", f"'{stmt.name}' is already a node name", stmt.name_span)
            return None
        self.add_node(Node.model_construct(
            name=stmt.name, spec=Input(shape=tuple(dims)), inputs=(), span=stmt.name_span,
            argument_spans={}, block=None,
        ))
        env.vars[stmt.name].value = Tensor(stmt.name)
        env.vars[stmt.name].is_input = True
        return stmt.name

    def declare_output(self, stmt: ast.OutputDecl, env: Env, scope: NameScope,
                       outputs: dict[str, str], output_spans: dict[str, Span]) -> None:
        if stmt.name in output_spans:
            self.report("E203", f"output '{stmt.name}' is declared twice", stmt.name_span,
                        labels=[Label(output_spans[stmt.name], "first declared here")])
            return
        output_spans[stmt.name] = stmt.name_span
        if stmt.chain is None:
            binding = env.find(stmt.name)
            if binding is None:
                self.report("E202", f"unknown value '{stmt.name}'", stmt.name_span,
                            hint=did_you_mean(stmt.name, env.names()))
                return
            binding.used = True
            value = binding.value
        else:
            value = self.chain(stmt.chain, env, scope)
            if not self.bind(env, stmt.name, stmt.name_span, value):
                return
            env.vars[stmt.name].used = True
        if isinstance(value, Tensor):
            outputs[stmt.name] = value.node
        elif value is not POISON:
            self.report("E209", f"output '{stmt.name}' must be a tensor, not {_kind_of(value)}", stmt.name_span)

    # ---------------------------------------------------------------- statements

    def execute(self, stmts: list[ast.Stmt], env: Env, scope: NameScope) -> Any:
        """Runs statements; returns the value of a ``return``, if one ran, else
        the value of the last statement."""
        result: Any = None
        for stmt in stmts:
            if isinstance(stmt, ast.Assign):
                if stmt.chain.steps or stmt.chain.label is not None:
                    value = self.chain(stmt.chain, env, scope)
                else:  # a single expression, which may be an op as a value: act = relu
                    value = self.value(stmt.chain.head, env, scope)
                self.bind(env, stmt.name, stmt.name_span, value)
                result = value
            elif isinstance(stmt, ast.ChainStmt):
                result = self.chain(stmt.chain, env, scope)
            elif isinstance(stmt, ast.If):
                test = self.evaluate(stmt.test, env, scope)
                if test is POISON:
                    continue
                if not isinstance(test, bool):
                    self.report("E210", f"an 'if' condition must be a bool, not {_kind_of(test)} ({show_value(test)})",
                                stmt.test.span)
                    continue
                inner = self.execute(stmt.body if test else stmt.orelse, env, scope)
                if isinstance(inner, _Return):
                    return inner
            elif isinstance(stmt, ast.Return):
                if not self.call_stack:
                    self.report("E212", "'return' belongs in a block", stmt.span)
                    continue
                return _Return(self.chain(stmt.chain, env, scope), stmt.chain.span)
            elif isinstance(stmt, ast.InputDecl):
                self.report("E212", "inputs are declared in a model; a block receives its input as 'in'", stmt.span)
            elif isinstance(stmt, ast.OutputDecl):
                self.report("E212", "outputs are declared in a model; a block ends with 'return'", stmt.span)
            elif isinstance(stmt, (ast.ExpectFigure, ast.ExpectOutput)):
                self.report("E212", "'expect' belongs in a model", stmt.span)
        return result

    def bind(self, env: Env, name: str, span: Span, value: Any) -> bool:
        previous = env.vars.get(name)
        if previous is not None:
            self.report("E203", f"'{name}' is already defined in this scope", span,
                        labels=[Label(previous.span, "first defined here")],
                        hint="values cannot be reassigned; choose a new name")
            return False
        if name == "in":
            self.report("E203", "'in' names a block's input and cannot be assigned", span,
                        hint="choose another name")
            return False
        env.vars[name] = _Binding(value, span)
        return True

    def warn_unused(self, env: Env) -> None:
        for name, binding in env.vars.items():
            if binding.used or binding.is_param or not isinstance(binding.value, Tensor):
                continue
            if binding.span in self.unused_reported:
                continue
            self.unused_reported.add(binding.span)
            message = (f"input '{name}' is never used" if binding.is_input
                       else f"value '{name}' is computed but never used")
            self.diagnostics.append(
                Diagnostic.make("W101", message, binding.span, hint="use it, declare it an output, or remove it")
            )

    # ---------------------------------------------------------------- chains

    def chain(self, chain: ast.Chain, env: Env, scope: NameScope) -> Any:
        value = self.head(chain, env, scope)
        for step in chain.steps:
            value = self.step(step, value, env, scope)
        return value

    def label(self, label: ast.Label | None, span: Span | None, env: Env) -> Any:
        """A label as a name: templates have their {expressions} filled in.
        The result is one component of a node name (see ``label_problem``)."""
        if label is None or isinstance(label, str):
            return label
        assert span is not None, "a label template is always parsed with its span"
        parts = re.split(r"(\{[^{}]*\})", label.text)
        out = []
        for part in parts:
            if not (part.startswith("{") and part.endswith("}")):
                out.append(part)
                continue
            try:
                expr = ast.parse_expression(part[1:-1], span)
            except DiagnosticError as error:
                self.diagnostics += error.diagnostics
                return POISON
            value = self.evaluate(expr, env, None)
            if value is POISON:
                return POISON
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                return self.report("E210", f"a label can only contain numbers and strings, not {_kind_of(value)}",
                                   span)
            out.append(str(value))
        name = "".join(out)
        problem = label_problem(name)
        if problem is not None:
            return self.report("E210", f"label {name!r} {problem[0]}", span, hint=problem[1])
        return name

    def head(self, chain: ast.Chain, env: Env, scope: NameScope) -> Any:
        expr = chain.head
        label = self.label(chain.label, chain.label_span, env)
        if label is POISON:
            return POISON
        if label is not None and not isinstance(expr, ast.Call):
            self.report("E212", "a label names an op or block call; this is a value", chain.label_span,
                        hint=f"to name a value, write '{label} = ...'")
        return self.evaluate(expr, env, scope, label=label, label_span=chain.label_span)

    def step(self, step: ast.Step, value: Any, env: Env, scope: NameScope) -> Any:
        core = step.core
        self.steps += 1
        if self.steps > self.limits.max_steps:
            self.report("E901", f"elaboration ran more than the limit of {self.limits.max_steps:,} steps",
                        step.span)
            raise _LimitExceeded()
        label = self.label(step.label, step.label_span, env)
        if label is POISON:
            return POISON
        if isinstance(core, ast.OpRef):
            return self.apply(core.name, core.span, [], value, label, core.span, env, scope, step.label_span)
        if isinstance(core, ast.OpCall):
            return self.apply(core.name, core.name_span, core.args, value, label, core.span, env, scope,
                              step.label_span)
        if isinstance(core, ast.Repeat):
            return self.repeat(core, label, value, env, scope)
        if isinstance(core, ast.Group):
            inner = self.sequential_scope(scope, label)
            for s in core.steps:
                value = self.step(s, value, env, inner)
            return value
        assert isinstance(core, ast.CondStep)
        test = self.evaluate(core.test, env, scope)
        if test is POISON:
            return POISON
        if not isinstance(test, bool):
            return self.report("E210", f"an 'if' condition must be a bool, not {_kind_of(test)} ({show_value(test)})",
                               core.test.span)
        inner = self.sequential_scope(scope, label)
        for s in core.then if test else core.orelse:
            value = self.step(s, value, env, inner)
        return value

    def sequential_scope(self, scope: NameScope, label: str | None) -> NameScope:
        if label is None:
            return scope
        return NameScope(scope.child(label, ""), sequential=True, block=scope.block)

    def repeat(self, core: ast.Repeat, label: str | None, value: Any, env: Env, scope: NameScope) -> Any:
        counted = self.evaluate(core.count, env, scope)
        items = self.repeat_items(core, counted)
        if items is None:
            return POISON
        count = len(items)
        inner = self.sequential_scope(scope, label)
        before, steps_before = len(self.nodes), self.steps
        for i in range(count):
            if i == 1:
                # Fail fast on expansion bombs: project from the first iteration.
                per_iteration = len(self.nodes) - before
                steps_per_iteration = self.steps - steps_before
                if before + per_iteration * count > self.limits.max_nodes:
                    # The limit is on the running total, so say what was already built.
                    total = before + per_iteration * count
                    self.report("E901", f"repeat {count} would add about {per_iteration * count:,} nodes to the "
                                f"{before:,} already built, {total:,} in all, more than the limit of "
                                f"{self.limits.max_nodes:,}", core.count.span)
                    raise _LimitExceeded()
                if steps_before + steps_per_iteration * count > self.limits.max_steps:
                    self.report("E901", f"repeat {count} would run about {steps_per_iteration * count:,} steps, "
                                f"more than the limit of {self.limits.max_steps:,}", core.count.span)
                    raise _LimitExceeded()
            iteration_env = Env(env)
            if not self.bind_iteration(core, items[i], i, iteration_env):
                return POISON
            for s in core.steps:
                value = self.step(s, value, iteration_env, inner)
        return value

    def repeat_items(self, core: ast.Repeat, counted: Any) -> Sequence[Any] | None:
        """What a repeat iterates over: ``range(N)`` for a count, the items
        of a list; None (reported unless already) when it is neither."""
        if counted is POISON:
            return None
        if isinstance(counted, tuple):
            return counted
        if isinstance(counted, bool) or not isinstance(counted, int) or counted < 0:
            self.report("E210", f"a repeat count must be a non-negative integer, not {show_value(counted)}",
                        core.count.span)
            return None
        if counted > self.limits.max_repeat:
            self.report("E901", f"repeat {counted} is more than the limit of {self.limits.max_repeat}",
                        core.count.span)
            return None
        if core.unpack is not None:
            self.report("E215", f"'repeat {counted}' counts; only the items of a list can be taken apart",
                        core.index_span, hint=f"write 'repeat {counted} as i', or iterate over a list")
            return None
        return range(counted)

    def bind_iteration(self, core: ast.Repeat, item: Any, position: int, env: Env) -> bool:
        """Binds the loop's names for one item: the item (or count) itself,
        or its parts (``as (a, b)``); False after reporting a mismatch."""
        where = core.index_span
        assert where is not None or (core.index is None and core.unpack is None)
        if core.index is not None and where is not None:
            env.vars[core.index] = _Binding(item, where, used=True)
        if core.unpack is None or where is None:
            return True
        names = core.unpack
        if not isinstance(item, tuple) or len(item) != len(names):
            parts = f"{len(item)} items" if isinstance(item, tuple) else _kind_of(item)
            self.report("E215", f"item {position} of the list has {parts}, but is taken apart into {len(names)} "
                        f"names", where, labels=[Label(core.count.span, f"item {position} is {show_value(item)}")])
            return False
        for name, part in zip(names, item):
            env.vars[name] = _Binding(part, where, used=True)
        return True

    # ---------------------------------------------------------------- calls

    def apply(self, name: str, name_span: Span, args: list[ast.Argument], value: Any, label: str | None,
              span: Span, env: Env, scope: NameScope, label_span: Span | None = None) -> Any:
        """A chain step: op or block ``name`` applied to ``value``."""
        op = CALLABLE.get(name)
        if op is not None:
            return self.op_call(op, args, [value], label, span, name_span, env, scope, label_span)
        entry = self.blocks.get(name)
        if entry is not None:
            return self.block_call(entry, args, value, label, span, name_span, env, scope, label_span)
        binding = env.find(name)
        if binding is not None and binding.value is POISON:
            binding.used = True
            return POISON  # reported where it failed
        if binding is not None and isinstance(binding.value, OpValue):
            binding.used = True
            op_value = binding.value
            return self.apply(op_value.name, name_span, [*op_value.args, *args], value, label, span, env, scope,
                              label_span)
        if binding is not None:
            binding.used = True  # it was referenced, if wrongly: no "unused" warning on top
            return self.report("E201", f"'{name}' is a value, not an op or block", name_span,
                               hint=f"to combine it with the chain, use a merge: add({name}), concat({name}) "
                                    f"or mul({name})")
        return self.report("E201", f"unknown op or block '{name}'", name_span,
                           hint=self.suggestion(name, value))

    def suggestion(self, name: str, value: Any) -> str | None:
        """An op or block close to ``name``; of those, one that takes the
        rank of ``value``'s shape when it is known (``batchnorm`` on a
        [C, H, W] input is ``batchnorm2d``)."""
        shape = self.known_shape(value.node) if isinstance(value, Tensor) else None
        if shape is None:
            return did_you_mean(name, [*CALLABLE, *self.blocks])
        rank = len(shape)
        return did_you_mean(name, [*CALLABLE, *self.blocks], fits=lambda candidate: _takes_rank(candidate, rank),
                            why=f"(the input is {show_shape(shape)})")

    def call_expr(self, call: ast.Call, env: Env, scope: NameScope, label: str | None,
                  label_span: Span | None = None) -> Any:
        """A call in expression position: a merge, a block called without
        piped input, or a builtin function."""
        op = CALLABLE.get(call.func)
        if op is not None:
            if not op.is_merge():
                return self.input_as_argument(call, env, scope)
            return self.op_call(op, call.args, [], label, call.span, call.func_span, env, scope, label_span)
        entry = self.blocks.get(call.func)
        if entry is not None:
            return self.block_call(entry, call.args, None, label, call.span, call.func_span, env, scope,
                                   label_span)
        function = BUILTINS.get(call.func)
        if function is not None:
            if label is not None:
                return self.report("E212", f"a label names an op or block call, not {call.func}()", call.span)
            return self.builtin(call, function, env, scope)
        if env.find(call.func) is not None:
            return self.report("E209", f"'{call.func}' is a value and cannot be called", call.func_span)
        return self.report("E201", f"unknown op, block or function '{call.func}'", call.func_span,
                           hint=did_you_mean(call.func, [*CALLABLE, *self.blocks, *BUILTINS]))

    def value(self, expr: ast.Expr, env: Env, scope: NameScope | None) -> Any:
        """An expression where an op or block may be a value: a bound name's
        right side, a block's argument or default, a list's item.  A bare op
        or block name, or an op called with compile-time arguments only
        (``leaky_relu(0.1)``), is an :class:`OpValue` there."""
        if isinstance(expr, ast.Name) and env.find(expr.id) is None and self.is_applicable(expr.id):
            return OpValue(expr.id, (), expr.id)
        bound = env.find(expr.func) if isinstance(expr, ast.Call) else None
        if isinstance(expr, ast.Call) and bound is not None and isinstance(bound.value, OpValue):
            bound.used = True  # more arguments for an op value: act(negative_slope=0.3)
            return self.partial(expr, env, scope, bound.value)
        if (isinstance(expr, ast.Call) and env.find(expr.func) is None and expr.func in CALLABLE
                and not CALLABLE[expr.func].is_merge()
                and not any(isinstance(arg.value, ast.ChainExpr) for arg in expr.args)):
            return self.partial(expr, env, scope)
        if isinstance(expr, ast.TupleExpr):
            items = tuple([self.value(item, env, scope) for item in expr.items])
            if any(item is POISON for item in items):
                return POISON
            return self.sequence(items, expr.span)
        return self.evaluate(expr, env, scope)

    def is_applicable(self, name: str) -> bool:
        """An op that takes one input from a chain, or a block."""
        op = CALLABLE.get(name)
        return (op is not None and not op.is_merge()) or name in self.blocks

    def partial(self, call: ast.Call, env: Env, scope: NameScope | None, base: OpValue | None = None) -> Any:
        """``leaky_relu(0.1)`` as a value: the op with its arguments so far,
        validated when it is applied.  A tensor argument is the old mistake
        of passing the input as an argument (E207)."""
        args = [] if base is None else list(base.args)
        name = call.func if base is None else base.name
        for arg in call.args:
            value = self.evaluate(arg.value, env, None)
            if value is POISON:
                return POISON
            if isinstance(value, Tensor):
                if scope is None:
                    return self.report("E207", f"{call.func} takes its input from the chain, not as an argument",
                                       call.func_span)
                return self.input_as_argument(call, env, scope)
            args.append(ast.Argument(arg.name, ast.Literal(value, arg.value.span), arg.span, arg.name_span))
        shown = [f"{arg.name}=" * (arg.name is not None) + show_value(arg.value.value) for arg in args
                 if isinstance(arg.value, ast.Literal)]
        return OpValue(name, tuple(args), f"{name}({', '.join(shown)})")

    def input_as_argument(self, call: ast.Call, env: Env, scope: NameScope) -> _Poison:
        """E207 for ``relu(y)`` at a chain's head: the input comes from the
        chain.  Its arguments are still evaluated (they are used, not unused)."""
        first = call.args[0] if call.args and call.args[0].name is None else None
        value = self.evaluate(first.value, env, scope) if first is not None else None
        for arg in call.args[1 if first is not None else 0:]:
            self.evaluate(arg.value, env, scope)
        if isinstance(value, Tensor) and first is not None and isinstance(first.value, ast.Name):
            rest = ", ".join(source_text(a) for a in call.args[1:])
            return self.report("E207", f"{call.func} takes its input from the chain, not as an argument",
                               call.func_span, hint=f"write '{first.value.id} -> {call.func}"
                                                + (f"({rest})'" if rest else "'"))
        return self.report("E207", f"{call.func} has no input", call.func_span,
                           hint=f"apply it to a value: 'x -> {call.func}(...)'")

    def builtin(self, call: ast.Call, function: Builtin, env: Env, scope: NameScope | None) -> Any:
        values = []
        for arg in call.args:
            if arg.name is not None:
                return self.report("E301", f"{call.func}() takes no keyword arguments", arg.name_span)
            value = self.evaluate(arg.value, env, scope)
            if value is POISON:
                return POISON
            if isinstance(value, Tensor):
                return self.report("E209", f"{call.func}() works on compile-time values, not tensors", arg.span)
            values.append(value)
        takes = _arity(function)
        if len(values) < function.least:
            return self.report("E302", f"{call.func}() takes {takes}, got {len(values)}", call.span)
        if function.most is not None and len(values) > function.most:
            return self.report("E304", f"{call.func}() takes {takes}, got {len(values)}",
                               call.args[function.most].span)
        try:
            result = function.function(*values)
        except _TooLarge:
            return self.report("E901", f"integer result of {call.func}() is larger than the limit of "
                               f"{self.limits.max_integer}", call.span)
        except (TypeError, ValueError, OverflowError) as error:
            return self.report("E210", f"{call.func}({', '.join(show_value(v) for v in values)}) failed: {error}",
                               call.span)
        if isinstance(result, tuple):
            return self.sequence(result, call.span)
        return self.checked_number(result, call.span, f"result of {call.func}()")

    def sequence(self, items: tuple, span: Span) -> Any:
        """A tuple or list made by the file, within the limits of length and
        nesting (nested values are shared, so these bound its memory too)."""
        if len(items) > self.limits.max_list_length:
            return self.report("E901", f"a list of {len(items):,} items is longer than the limit of "
                               f"{self.limits.max_list_length:,}", span)
        depth = 1 + max((self.nesting(item) for item in items), default=0)
        if depth > self.limits.max_list_nesting:
            return self.report("E901", f"lists nest deeper than the limit of {self.limits.max_list_nesting}", span)
        self.depths[id(items)] = (items, depth)
        return items

    def nesting(self, value: Any) -> int:
        """How deep lists nest in ``value`` (0 for anything else); known for
        every list the file made (``sequence``)."""
        if not isinstance(value, tuple):
            return 0
        known = self.depths.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        return 1 + max((self.nesting(item) for item in value), default=0)

    def bind_arguments(self, args: list[ast.Argument], positional: tuple[str, ...], accepted: AbstractSet[str],
                       aliases: dict[str, str], what: str, env: Env, scope: NameScope,
                       extra_positional: list | None = None, op_values: bool = False,
                       ) -> tuple[dict[str, Any], dict[str, Span], bool | None]:
        """Evaluates arguments and binds them to names.  Positional arguments
        beyond ``positional`` go to ``extra_positional`` when it is a list
        (a merge's inputs) and are an error otherwise.  Arguments that fail
        are reported and left out; the flag says whether all were bound
        (None: the call was not bound at all, see below).
        A positional argument after a keyword is an error, as in Python, and
        nothing of the call is bound (guessing would only add errors)."""
        values: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        ok = True
        position = 0
        seen_keyword: ast.Argument | None = None
        for arg in args:
            if arg.name is None and seen_keyword is not None:
                self.report("E304", "positional argument after a keyword argument", arg.span,
                            labels=[Label(seen_keyword.span, "keyword argument here")],
                            hint="put positional arguments first, or name this one")
                self.evaluate(arg.value, env, scope)  # still check it, and mark names used
                return values, spans, None
            if arg.name is None:
                if extra_positional is not None:
                    value = self.evaluate(arg.value, env, scope)
                    extra_positional.append((value, arg.span))
                    continue
                if position >= len(positional):
                    value = self.evaluate(arg.value, env, scope)
                    if isinstance(value, Tensor):
                        self.report("E306", f"{what} takes one input, from the chain; this is a second",
                                    arg.span, hint="combine tensors with add, concat or mul")
                    else:
                        given = sum(1 for a in args if a.name is None)
                        takes = (f"{len(positional)} positional argument{'s' if len(positional) != 1 else ''}"
                                 if positional else "no positional arguments")
                        keywords = sorted(accepted - set(positional))
                        self.report("E304", f"{what} takes {takes}, got {given}", arg.span,
                                    hint=f"pass it by name: {', '.join(keywords)}" if keywords else None)
                    ok = False
                    continue
                name = positional[position]
                position += 1
                span = arg.span
            else:
                seen_keyword = arg
                name = aliases.get(arg.name, arg.name)
                assert arg.name_span is not None  # a keyword argument has its name's span
                span = arg.name_span
                if name not in accepted:
                    self.report("E301", f"{what} has no argument '{arg.name}'", arg.name_span,
                                hint=did_you_mean(arg.name, [*accepted, *aliases])
                                or f"it takes: {', '.join(sorted(accepted)) or 'no arguments'}")
                    self.evaluate(arg.value, env, scope)
                    ok = False
                    continue
            if name in spans:
                self.report("E305", f"argument '{name}' of {what} is given twice", span,
                            labels=[Label(spans[name], "first given here")])
                ok = False
                continue
            spans[name] = arg.span
            value = self.value(arg.value, env, scope) if op_values else self.evaluate(arg.value, env, scope)
            if value is POISON:
                ok = False
                continue
            values[name] = value
        return values, spans, ok

    def op_call(self, op: type[OpSpec], args: list[ast.Argument], inputs: list[Any], label: str | None,
                span: Span, name_span: Span, env: Env, scope: NameScope, label_span: Span | None = None) -> Any:
        """Validates an op's arguments and inputs and adds its node.  Every
        problem is reported, even when the input is already poisoned."""
        kind = op.kind()
        fields = _argument_names(op)
        extra: list | None = [] if op.is_merge() else None
        values, spans, ok = self.bind_arguments(args, op.positional, fields, op.argument_aliases, kind, env,
                                                scope, extra)
        if ok is None:
            return POISON
        input_spans = [span] * len(inputs)
        piped = extra is not None and bool(inputs)
        if extra is not None:
            for value, arg_span in extra:
                inputs.append(value)
                input_spans.append(arg_span)
        for value, arg_span in zip(inputs, input_spans):
            if value is POISON:
                ok = False
            elif not isinstance(value, Tensor):
                self.report("E209", f"{kind} combines tensors; this is {_kind_of(value)} ({show_value(value)})",
                            arg_span)
                ok = False
        if op.min_inputs > len(inputs):
            self.report("E306", f"{kind} needs at least {op.min_inputs} inputs, got {len(inputs)}", span,
                        hint=f"e.g. {kind}(a, b) or a -> {kind}(b)")
            ok = False
        for name, value in list(values.items()):
            if isinstance(value, Tensor):
                self.report("E209", f"argument '{name}' of {kind} must be a compile-time value, not a tensor",
                            spans[name])
                del values[name]
                ok = False
        try:
            spec = self.validated(op, values)
        except ValidationError as error:
            # Arguments that already failed are not reported missing.
            self.argument_errors(error, kind, values, spans, span, skip=set(spans) - set(values))
            return POISON
        if not ok:
            return POISON
        node_name = scope.child(label, kind)
        return self.make_node(node_name, spec, [v.node for v in inputs], span, spans, scope, label_span,
                              piped=piped)

    def validated(self, op: type[OpSpec], values: dict[str, Any]) -> OpSpec:
        """``op.model_validate(values)``, once per distinct call: a network
        repeats the same layer many times."""
        # Types are part of the key: 3 == 3.0 and 1 == True, but only one
        # of each pair is a valid kernel size or bias flag.
        key = (op, tuple(sorted((k, _typed(v)) for k, v in values.items())))
        try:
            hash(key)
        except TypeError:
            return op.model_validate(values, strict=True)
        spec = self.specs.get(key)
        if spec is None:
            spec = self.specs[key] = op.model_validate(values, strict=True)
        return spec

    def argument_errors(self, error: ValidationError, kind: str, values: dict[str, Any], spans: dict[str, Span],
                        span: Span, skip: set[str]) -> None:
        reported: set[int | str | None] = set(skip)
        for item in error.errors():
            name = item["loc"][0] if item["loc"] else None
            cause = (item.get("ctx") or {}).get("error")
            if isinstance(cause, ArgumentError):
                name = cause.argument
                message = cause.message
            else:
                message = str(item["msg"]).removeprefix("Value error, ")
            if name in reported:
                continue  # one message per argument, not one per union member
            reported.add(name)
            if item["type"] == "missing":
                self.report("E302", f"{kind} needs argument '{name}'", span)
            elif name in values:
                self.report("E303", f"invalid {name}={show_value(values[name])} for {kind}: {message}", spans[name])
            else:
                self.report("E303", f"invalid arguments for {kind}: {message}", span)

    def make_node(self, name: str, spec: OpSpec, inputs: list[str], span: Span, spans: dict[str, Span],
                  scope: NameScope, label_span: Span | None = None, piped: bool = False) -> Any:
        existing = self.nodes.get(name)
        if existing is not None:
            return self.duplicate_name(name, existing.span, span, label_span)
        self.add_node(Node.model_construct(
            name=name, spec=spec, inputs=tuple(inputs), span=span, argument_spans=spans, block=scope.block,
            piped=piped,
        ))
        return Tensor(name)

    def duplicate_name(self, name: str, first: Span, span: Span, label_span: Span | None) -> _Poison:
        """E203 at the label that repeats a name (or at the call, unlabelled)."""
        where = label_span or span
        if first == span:
            return self.report(
                "E203", f"label '{name.rsplit('.', 1)[-1]}' names a node on every iteration of a repeat", where,
                hint="label the repeat instead ('layers: repeat N { ... }' numbers its items) or make the label "
                     "differ per iteration: '\"conv{i}\": ...'",
            )
        return self.report("E203", f"node name '{name}' is already used", where,
                           labels=[Label(first, "first used here")],
                           hint="labels must be unique within their scope")

    def add_node(self, node: Node) -> None:
        if len(self.nodes) >= self.limits.max_nodes:
            self.report("E901", f"model has more than the limit of {self.limits.max_nodes} nodes", node.span)
            raise _LimitExceeded()
        self.nodes[node.name] = node

    def block_call(self, entry: _BlockEntry, args: list[ast.Argument], value: Any, label: str | None,
                   span: Span, name_span: Span, env: Env, scope: NameScope, label_span: Span | None = None) -> Any:
        definition = entry.definition
        if definition.name in self.active_blocks:
            names = [n for n, _ in self.call_stack]
            cycle = " -> ".join(names[names.index(definition.name):] + [definition.name])
            return self.report(
                "E204", f"block '{definition.name}' uses itself: {cycle}", name_span,
                labels=[Label(definition.name_span, "block defined here")],
                hint="blocks are expanded at compile time, so they cannot recurse; use 'repeat'",
            )
        if len(self.call_stack) >= self.limits.max_block_depth:
            return self.report("E901", f"blocks nest deeper than the limit of {self.limits.max_block_depth}",
                               name_span)
        params = list(dict.fromkeys(p.name for p in definition.params))
        if len(params) != len(definition.params):
            return POISON  # a parameter declared twice: reported once, at the definition, by the loader
        values, spans, ok = self.bind_arguments(args, tuple(params), set(params), {}, f"block {definition.name}",
                                                env, scope, op_values=True)
        if ok is None:
            return POISON
        # Parameters that failed are bound to POISON so that the body is still
        # checked: its own mistakes are reported even if this call is wrong.
        body_env = Env()
        for param in definition.params:
            if param.name in body_env.vars:
                ok = False
                continue
            if param.name in values:
                bound = values[param.name]
            elif param.name in spans:
                bound = POISON
            elif param.default is not None:
                bound = self.value(param.default, body_env, None)
            else:
                self.report("E302", f"block {definition.name} needs argument '{param.name}'", span,
                            labels=[Label(param.span, "parameter declared here")])
                bound = POISON
                ok = False
            body_env.vars[param.name] = _Binding(bound, param.span, is_param=True)
        if value is None:
            body_env.vars["in"] = _Binding(_MissingInput(span, definition.name), definition.name_span, is_param=True)
        else:
            body_env.vars["in"] = _Binding(value, definition.name_span, is_param=True)

        if label is not None or not scope.sequential:
            path = scope.child(label, _snake(definition.name))
        else:
            path = scope.child(None, "")
        if path in self.instances or path in self.nodes:
            first = self.instances[path].span if path in self.instances else self.nodes[path].span
            return self.duplicate_name(path, first, span, label_span)
        self.instances[path] = BlockInstance.model_construct(
            path=path, block=definition.name,
            arguments={k: show_value(v) for k, v in values.items() if not isinstance(v, Tensor)},
            parent=scope.block, span=span,
        )
        inner = NameScope(path, block=path)
        if len(self.instances) >= self.limits.max_block_instances:
            self.report("E901", f"model has more than the limit of {self.limits.max_block_instances:,} block "
                        "instances", name_span)
            raise _LimitExceeded()
        # Fail fast on blocks that fan out: a block is about as big as the
        # last time it was expanded.
        expected = self.block_sizes.get(definition.name, 0)
        if len(self.nodes) + expected > self.limits.max_nodes:
            self.report("E901", f"block {definition.name} would take the model past the limit of "
                        f"{self.limits.max_nodes:,} nodes", name_span)
            raise _LimitExceeded()
        before = len(self.nodes)
        self.call_stack.append((definition.name, span))
        self.active_blocks.add(definition.name)
        try:
            result = self.execute(definition.body, body_env, inner)
        finally:
            self.call_stack.pop()
            self.active_blocks.discard(definition.name)
        self.block_sizes[definition.name] = len(self.nodes) - before
        if not ok:
            return POISON
        if not isinstance(result, _Return):
            self.diagnostics.append(
                Diagnostic.error("E208", f"block '{definition.name}' has no 'return'", definition.name_span,
                                 hint="end the block with 'return <chain>'")
            )
            return POISON
        self.warn_unused(body_env)
        returned = result.value
        if returned is not POISON and not isinstance(returned, Tensor):
            return self.report("E209", f"block '{definition.name}' returns {_kind_of(returned)}, not a tensor",
                               result.span)
        return returned

    # ---------------------------------------------------------------- expressions

    def evaluate(self, expr: ast.Expr, env: Env, scope: NameScope | None, label: str | None = None,
                 label_span: Span | None = None) -> Any:
        """The value of ``expr``; ``scope`` is None where no layer may be
        made (compile-time expressions); ``label`` names the layer a call makes.

        Every recursion into a sub-expression happens here, directly, so
        that one level of nesting costs one Python frame (the nesting limit
        is set by it); the checks after each recursion are helpers."""
        if isinstance(expr, ast.Literal):
            return self.checked_number(expr.value, expr.span, "literal")
        if isinstance(expr, ast.Name):
            return self.lookup(expr, env)
        if isinstance(expr, ast.Call):
            if scope is None:
                if expr.func in BUILTINS:
                    return self.builtin(expr, BUILTINS[expr.func], env, None)
                return self.report("E209", "ops and blocks cannot be called here", expr.span)
            return self.call_expr(expr, env, scope, label, label_span)
        if isinstance(expr, ast.ChainExpr):
            if scope is None:
                return self.report("E209", "a chain cannot appear here", expr.span)
            value = self.evaluate(expr.head, env, scope)
            for step in expr.steps:
                value = self.step(step, value, env, scope)
            return value
        if isinstance(expr, ast.TupleExpr):
            items = tuple([self.evaluate(item, env, scope) for item in expr.items])
            if any(item is POISON for item in items):
                return POISON
            return self.sequence(items, expr.span)
        if isinstance(expr, ast.Conditional):
            test = self.condition(expr, self.evaluate(expr.test, env, scope))
            if test is POISON:
                return POISON
            return self.evaluate(expr.then if test else expr.orelse, env, scope)
        # The checks after a recursion return POISON for a failed operand.
        if isinstance(expr, ast.Unary):
            return self.unary(expr, self.evaluate(expr.operand, env, scope))
        if isinstance(expr, ast.Attribute):
            return self.attribute(expr, self.evaluate(expr.value, env, scope))
        if isinstance(expr, ast.Index):
            return self.item(expr, self.evaluate(expr.value, env, scope), self.evaluate(expr.index, env, scope))
        assert isinstance(expr, ast.Binary)
        left = self.evaluate(expr.left, env, scope)
        if left is POISON:
            return POISON
        if expr.op in ("and", "or"):  # short-circuit, bools only
            if not isinstance(left, bool):
                return self.report("E210", f"'{expr.op}' needs bools, not {_kind_of(left)}", expr.left.span)
            if (expr.op == "and") != left:
                return left
            return self.logical_operand(expr, self.evaluate(expr.right, env, scope))
        return self.binary(expr, left, self.evaluate(expr.right, env, scope))

    @_poisoned_in_poisoned_out
    def attribute(self, expr: ast.Attribute, value: Any) -> Any:
        """``x.channels``, ``x.shape``...: a tensor's shape, known as soon as
        the tensor is made (``shape_of``)."""
        if not isinstance(value, Tensor):
            return self.report("E213", f"{_kind_of(value)} ({show_value(value)}) has no attribute '{expr.name}'",
                               expr.name_span, hint="attributes describe a tensor's shape: 'x.channels', 'x.shape'")
        read = TENSOR_ATTRIBUTES.get(expr.name)
        if read is None:
            return self.report("E213", f"a tensor has no attribute '{expr.name}'", expr.name_span,
                               hint=did_you_mean(expr.name, TENSOR_ATTRIBUTES)
                               or f"a tensor has: {', '.join(TENSOR_ATTRIBUTES)}")
        shape = self.shape_of(value.node, expr.span)
        if shape is None:
            return POISON
        result = read(shape)
        if result is None:
            return self.report("E213", f"'{expr.name}' is not defined for a tensor of rank {len(shape)} "
                               f"({show_shape(shape)})", expr.name_span,
                               hint=_ATTRIBUTE_RANKS.get(expr.name))
        return result

    def shape_of(self, node: str, use: Span) -> Shape | None:
        """The output shape of ``node``, by each op's shape rule, computed
        once per node on first use (inputs before their consumers, so the
        cost over a whole model is that of one shape pass).  None, reported
        once per failing node at the first use, when an upstream node has a
        shape error (the shape pass reports that error itself)."""
        shape = self.known_shape(node)
        if shape is None:
            cause = self.shape_causes[node]
            if cause not in self.unknown_shapes_reported:
                self.unknown_shapes_reported.add(cause)
                culprit = "it" if cause == node else f"'{cause}' upstream"
                self.report("E409", f"the shape of '{node}' is unknown: {culprit} has a shape error", use,
                            labels=[Label(self.nodes[cause].span, "the shape error is here")],
                            hint="fix the shape error reported there; this use depends on it")
        return shape

    def known_shape(self, node: str) -> Shape | None:
        """``shape_of`` without reporting: None when the shape is unknown."""
        if node not in self.shapes:
            pending = [node]
            while pending:
                current = pending[-1]
                if current in self.shapes:
                    pending.pop()
                    continue
                made = self.nodes[current]
                missing = [name for name in made.inputs if name not in self.shapes]
                if missing:
                    pending += missing
                    continue
                pending.pop()
                self.shapes[current] = self.node_shape(made)
        return self.shapes[node]

    def node_shape(self, node: Node) -> Shape | None:
        """One node's shape from its inputs' (all known or failed already)."""
        if isinstance(node.spec, Input):
            return tuple(node.spec.shape)
        inputs = []
        for name in node.inputs:
            shape = self.shapes[name]
            if shape is None:
                self.shape_causes[node.name] = self.shape_causes[name]
                return None
            inputs.append(shape)
        try:
            return node.spec.output_shape(inputs)
        except ShapeError:
            self.shape_causes[node.name] = node.name
            return None

    @_poisoned_in_poisoned_out
    def item(self, expr: ast.Index, value: Any, index: Any) -> Any:
        """``value[index]``: an item of a tuple or list, counting from 0 (from
        the end with a negative index)."""
        if not isinstance(value, tuple):
            hint = "a tensor's dimensions are 'x.shape[i]'" if isinstance(value, Tensor) else None
            return self.report("E210", f"cannot index {_kind_of(value)}", expr.value.span, hint=hint)
        if isinstance(index, bool) or not isinstance(index, int):
            return self.report("E210", f"an index must be an integer, not {_kind_of(index)} ({show_value(index)})",
                               expr.index.span)
        if not -len(value) <= index < len(value):
            return self.report("E214", f"index {index} is out of range for {len(value)} "
                               f"item{'s' if len(value) != 1 else ''}", expr.index.span,
                               labels=[Label(expr.value.span, f"this is {show_value(value)}")])
        return value[index]

    def condition(self, expr: ast.Conditional, test: Any) -> Any:
        """A conditional's test: a bool, or POISON (reported unless it already was)."""
        if test is POISON or isinstance(test, bool):
            return test
        return self.report("E210", f"a condition must be a bool, not {_kind_of(test)} ({show_value(test)})",
                           expr.test.span)

    def logical_operand(self, expr: ast.Binary, right: Any) -> Any:
        """The right operand of ``and`` / ``or``, which decides the result: a bool."""
        if right is POISON or isinstance(right, bool):
            return right
        return self.report("E210", f"'{expr.op}' needs bools, not {_kind_of(right)}", expr.right.span)

    def checked_number(self, value: Any, span: Span, what: str) -> Any:
        """``value``, or E901 if it is an integer beyond the limit or a float
        that overflowed to infinity (``1e400``)."""
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > self.limits.max_integer:
            return self.report("E901", f"integer {what} is larger than the limit of {self.limits.max_integer}", span)
        if isinstance(value, float) and not math.isfinite(value):
            return self.report("E901", f"number {what} is too large (not finite)", span)
        return value

    def lookup(self, expr: ast.Name, env: Env) -> Any:
        binding = env.find(expr.id)
        if binding is None:
            if expr.id == "in":
                return self.report("E207", "'in' is only defined inside a block", expr.span,
                                   hint="a model starts its chains from an input")
            if expr.id in CALLABLE or expr.id in self.blocks:
                return self.report("E207", f"'{expr.id}' has no input here", expr.span,
                                   hint=f"apply it to a value: 'x -> {expr.id}'")
            return self.report("E202", f"unknown name '{expr.id}'", expr.span,
                               hint=did_you_mean(expr.id, env.names()))
        binding.used = True
        value = binding.value
        if isinstance(value, _MissingInput):
            return self.report("E207", f"block '{value.block}' uses 'in', but it was called without an input",
                               expr.span, labels=[Label(value.call_span, "called without input here")],
                               hint=f"pipe a value into it: 'x -> {value.block}(...)'")
        return value

    @_poisoned_in_poisoned_out
    def unary(self, expr: ast.Unary, operand: Any) -> Any:
        if expr.op == "not":
            if not isinstance(operand, bool):
                return self.report("E210", f"'not' needs a bool, not {_kind_of(operand)}", expr.operand.span)
            return not operand
        if isinstance(operand, bool) or not isinstance(operand, (int, float)):
            return self.report("E210", f"unary '{expr.op}' needs a number, not {_kind_of(operand)}", expr.span)
        return -operand if expr.op == "-" else operand

    @_poisoned_in_poisoned_out
    def binary(self, expr: ast.Binary, left: Any, right: Any) -> Any:
        op = expr.op
        if isinstance(left, Tensor) or isinstance(right, Tensor):
            return self.report("E209", f"'{op}' works on compile-time values; tensors are combined with "
                               "add, mul or concat", expr.span)
        if op in ("==", "!="):
            return (left == right) == (op == "==")
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right))
        if op in ("<", "<=", ">", ">="):
            if not numbers:
                return self.report("E210", f"cannot compare {_kind_of(left)} and {_kind_of(right)} with '{op}'",
                                   expr.op_span)
            return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
        if op == "+" and isinstance(left, tuple) and isinstance(right, tuple):
            return self.sequence(left + right, expr.span)
        if op == "+" and isinstance(left, str) and isinstance(right, str):
            if len(left) + len(right) > self.limits.max_list_length:
                return self.report("E901", f"a string of {len(left) + len(right):,} characters is longer than the "
                                   f"limit of {self.limits.max_list_length:,}", expr.span)
            return left + right
        if not numbers:
            return self.report("E210", f"cannot apply '{op}' to {_kind_of(left)} and {_kind_of(right)}",
                               expr.op_span)
        if op in ("/", "//", "%") and right == 0:
            return self.report("E210", "division by zero", expr.right.span)
        result = {
            "+": lambda: left + right,
            "-": lambda: left - right,
            "*": lambda: left * right,
            "/": lambda: left / right,
            "//": lambda: left // right,
            "%": lambda: left % right,
        }[op]()
        return self.checked_number(result, expr.span, "result")


@dataclass
class _Return:
    value: Any
    span: Span
