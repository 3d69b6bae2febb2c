"""Blocks that no model calls are still checked for what can be known
without arguments: every op or block they name exists, and every keyword
argument of an op is one the op takes.  (A block is elaborated only when a
model instantiates it; without this a block file with a misspelt op would
pass ``archdsl check`` until the first model used the block.)

The messages are the ones elaboration gives for the same mistakes, so a
file checked alone and through a model that uses it reports them once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields

from .. import syntax as ast
from ..diagnostics import Diagnostic, did_you_mean
from ..elaborate import BUILTINS, Program
from ..ops import CALLABLE
from ..ops.base import OpSpec


def _children(node: object) -> Iterator[object]:
    for f in fields(node):  # type: ignore[arg-type]  # every AST node is a dataclass
        value = getattr(node, f.name)
        if isinstance(value, list):
            yield from (item for item in value if isinstance(item, ast._Tree))
        elif isinstance(value, ast._Tree):
            yield value


def _walk(node: object) -> Iterator[object]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(list(_children(current))))


def _bound_names(block: ast.BlockDef) -> set[str]:
    """Names a block binds (parameters, values, loop indices): calling one
    is a different mistake, which elaboration reports when the block is used."""
    names = {"in", *(p.name for p in block.params)}
    for node in _walk(block):
        if isinstance(node, ast.Assign):
            names.add(node.name)
        elif isinstance(node, ast.Repeat) and node.index is not None:
            names.add(node.index)
    return names


def _keywords(op: type[OpSpec], args: list[ast.Argument]) -> Iterator[Diagnostic]:
    accepted = frozenset(op.model_fields) - {"op"}
    aliases = op.argument_aliases
    for arg in args:
        if arg.name is not None and aliases.get(arg.name, arg.name) not in accepted:
            yield Diagnostic.error("E301", f"{op.kind()} has no argument '{arg.name}'", arg.name_span,
                                   hint=did_you_mean(arg.name, [*accepted, *aliases])
                                   or f"it takes: {', '.join(sorted(accepted)) or 'no arguments'}")


def _check_block(block: ast.BlockDef, blocks: set[str]) -> Iterator[Diagnostic]:
    bound = _bound_names(block)
    for node in _walk(block):
        if isinstance(node, (ast.OpCall, ast.OpRef)):
            name, span, what = node.name, getattr(node, "name_span", node.span), "op or block"
            args = node.args if isinstance(node, ast.OpCall) else []
            candidates = [*CALLABLE, *blocks]
        elif isinstance(node, ast.Call):
            name, span, what, args = node.func, node.func_span, "op, block or function", node.args
            candidates = [*CALLABLE, *blocks, *BUILTINS]
            if name in BUILTINS:
                continue
        else:
            continue
        op = CALLABLE.get(name)
        if op is not None:
            yield from _keywords(op, args)
        elif name not in blocks and name not in bound:
            yield Diagnostic.error("E201", f"unknown {what} '{name}'", span, hint=did_you_mean(name, candidates))


def check_unused_blocks(program: Program) -> list[Diagnostic]:
    """E201/E301 in the blocks of ``program``'s files that none of its
    models instantiates."""
    used = {instance.block for model in program.models for instance in model.blocks.values()}
    modules = program.modules
    blocks = {block.name for module in modules for block in module.blocks}
    found: list[Diagnostic] = []
    for module in modules:
        for block in module.blocks:
            if block.name not in used:
                found += _check_block(block, blocks)
    return found
