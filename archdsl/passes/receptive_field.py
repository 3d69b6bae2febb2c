"""Receptive field of every node with respect to each model input.

Per spatial dimension: ``size`` (input pixels that can affect one output
position), ``jump`` (input pixels between neighbouring output positions,
the effective stride) and ``start`` (input coordinate of the centre of the
first output position's field; pixel centres are 0, 1, 2...).  A window op
with dilated kernel K, stride S and leading padding P gives

    jump' = jump·S,  size' = size + (K-1)·jump,  start' = start + ((K-1)/2 - P)·jump

(Araujo, Norris, Sim, "Computing Receptive Fields of Convolutional Neural
Networks", Distill 2019).  Where branches merge, each input's field is the
largest over the paths; a broadcast input (``mul`` by a [C, 1, 1] gate)
widens the size but does not move the centre or the jump, which follow the
inputs that vary over space.  Flattening and global pooling make a field
global (the whole input).  Each op states its geometry as a
:class:`~archdsl.ops.base.Window` (reach, step, offset): upsampling and
transposed convolution have steps below one input pixel, and sizes are then
rounded up to whole pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from ..graph import Model
from ..ops import Input
from ..ops.base import Shape
from .shapes import known_inputs


@dataclass(frozen=True)
class Field:
    size: tuple[int | Fraction, ...]
    jump: tuple[int | Fraction, ...]
    start: tuple[int | Fraction, ...]

    def merge(self, other: Field) -> Field:
        """The larger field per dimension (max over paths)."""
        pick = [a >= b for a, b in zip(self.size, other.size)]
        return Field(
            tuple(a if p else b for a, b, p in zip(self.size, other.size, pick)),
            tuple(a if p else b for a, b, p in zip(self.jump, other.jump, pick)),
            tuple(a if p else b for a, b, p in zip(self.start, other.start, pick)),
        )

    def widen(self, size: tuple[int | Fraction, ...]) -> Field:
        """At least ``size`` wide, same centre and jump."""
        return Field(tuple(max(a, b) for a, b in zip(self.size, size)), self.jump, self.start)

    def covers(self, extent: tuple[int, ...], positions: tuple[int, ...]) -> bool:
        """Whether every one of ``positions`` output positions sees the whole
        input of size ``extent`` (after global pooling, flattening...)."""
        if len(extent) != len(self.size):
            return False
        padded = positions + (1,) * (len(extent) - len(positions))
        for r, j, s, e, n in zip(self.size, self.jump, self.start, extent, padded):
            # The last position's field starts at or before pixel 0 and the
            # first one's ends at or after pixel e - 1:
            #     s + (n-1)j - (r-1)/2 <= 0  and  s + (r-1)/2 >= e - 1,
            # both doubled, so that whole-pixel fields make no Fraction.
            if 2 * (s + (n - 1) * j) - (r - 1) > 0 or 2 * s + (r - 1) < 2 * (e - 1):
                return False
        return True

    def global_over(self, extent: tuple[int, ...]) -> Field:
        """The field after a window covering the whole ``extent``."""
        return Field(
            tuple(r + (e - 1) * j for r, j, e in zip(self.size, self.jump, extent)),
            tuple(j * e for j, e in zip(self.jump, extent)),
            tuple(_whole(s + _half(e - 1) * j) for s, j, e in zip(self.start, self.jump, extent)),
        )


def receptive_fields(model: Model, shapes: dict[str, Shape | None]) -> dict[str, dict[str, Field]]:
    """node -> input name -> Field, for nodes with known shapes."""
    fields: dict[str, dict[str, Field]] = {}
    for node in model.nodes.values():
        shape = shapes.get(node.name)
        if isinstance(node.spec, Input):
            n = len(shape) - 1 if shape else 0
            fields[node.name] = {node.name: Field((1,) * n, (1,) * n, (0,) * n)}
            continue
        inputs = known_inputs(shapes, node)
        if shape is None or inputs is None:
            continue
        window = node.spec.window(inputs, shape)
        if window is None and len(inputs) == 1 and len(shape) >= len(inputs[0]):
            # A pointwise op of one input (activation, batchnorm, dropout...)
            # passes every field through unchanged (what _through returns).
            fields[node.name] = dict(fields.get(node.inputs[0], {}))
            continue
        result: dict[str, Field] = {}
        widened: dict[str, Field] = {}
        for source, in_shape in zip(node.inputs, inputs):
            broadcast = len(inputs) > 1 and all(d == 1 for d in in_shape[1:]) and any(d > 1 for d in shape[1:])
            target = widened if broadcast else result
            for origin, field in fields.get(source, {}).items():
                out = _through(field, window, in_shape, shape)
                target[origin] = out if origin not in target else target[origin].merge(out)
        for origin, field in widened.items():
            base = result.get(origin)
            result[origin] = field if base is None else base.widen(field.size)
        fields[node.name] = result
    return fields


def _through(field: Field, window, in_shape: Shape, out_shape: Shape) -> Field:
    in_spatial = tuple(in_shape[1:])
    if len(field.size) != len(in_spatial):
        return field  # rank already reduced (after flatten): the field is global and stays so
    if window is None:
        if len(out_shape) < len(in_shape):
            return field.global_over(in_spatial)  # flatten
        return field
    if len(window.reach) != len(in_spatial):
        return field.global_over(in_spatial)
    size = tuple(_whole(_ceil(r + reach * j)) for r, j, reach in zip(field.size, field.jump, window.reach))
    jump = tuple(_whole(j * step) for j, step in zip(field.jump, window.step))
    start = tuple(_whole(s + offset * j) for s, j, offset in zip(field.start, field.jump, window.offset))
    return Field(size, jump, start)


def _ceil(x):
    """Sizes count whole input pixels (after upsampling, an upper bound)."""
    return x if isinstance(x, int) else math.ceil(x)


def _half(n: int):
    return n // 2 if n % 2 == 0 else Fraction(n, 2)


def _whole(x):
    if type(x) is int:  # the common case, tested first: isinstance(x, Fraction) goes through the ABC machinery
        return x
    return int(x) if isinstance(x, Fraction) and x.denominator == 1 else x
