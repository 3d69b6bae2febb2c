"""The op set.  To add an op: define its spec class in the family's module
and list it in that module's ``OPS`` tuple; ``docs/internals.md`` says the
rest (its kernel, and a row in ``tests/test_ops_contract.py`` unless it is
an activation without required arguments)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Union

from pydantic import Field

from . import activation, conv, io, linear, merge, norm, pool, reshape
from .base import ArgumentError, Family, OpSpec, expand
from .io import Input

#: Every op kind, by family.  Each family module lists its ops in its own
#: ``OPS`` tuple (so an op is added in its module alone); the order here is
#: the order of the docs and of the JSON schema's union.
OPS: tuple[type[OpSpec], ...] = (
    *io.OPS, *conv.OPS, *pool.OPS, *norm.OPS, *activation.OPS, *linear.OPS, *merge.OPS, *reshape.OPS,
)

#: The discriminated union of every op's spec, tagged by ``op``.  It is built
#: from the ``OPS`` tuple at run time, which a type checker cannot follow;
#: to it, a layer's spec is an :class:`OpSpec`, and code that needs more
#: than the base class's facts must narrow it.
if TYPE_CHECKING:
    LayerSpec = OpSpec
else:
    LayerSpec = Annotated[Union[OPS], Field(discriminator="op")]  # noqa: UP007 (a union built from the OPS tuple)

#: Names callable in source (aliases included; ``input`` is declared, not called).
CALLABLE: dict[str, type[OpSpec]] = {}
for _op in OPS:
    if _op is Input:
        continue
    for _name in (_op.kind(), *_op.op_aliases):
        CALLABLE[_name] = _op


def lookup(name: str) -> type[OpSpec] | None:
    return CALLABLE.get(name)


__all__ = ["OPS", "CALLABLE", "LayerSpec", "OpSpec", "Family", "ArgumentError", "expand", "lookup", "Input"]
