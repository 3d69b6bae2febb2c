"""The op set.  To add an op: define its spec class in the family's module
and list it in ``OPS`` below; ``tests/test_ops_contract.py`` does the rest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Union

from pydantic import Field

from .activation import GELU, Hardsigmoid, Hardswish, LeakyReLU, Mish, ReLU, ReLU6, Sigmoid, SiLU, Softmax, Tanh
from .base import ArgumentError, Family, OpSpec, expand
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .io import Input
from .linear import Linear
from .merge import Add, Concat, Mul
from .norm import BatchNorm1d, BatchNorm2d, BatchNorm3d, LayerNorm, LocalResponseNorm
from .pool import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveAvgPool3d,
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    GlobalAvgPool,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
)
from .reshape import ChannelShuffle, Dropout, Flatten, Identity, Narrow, Pad, PixelShuffle, Upsample

OPS: tuple[type[OpSpec], ...] = (
    Input,
    Conv1d, Conv2d, Conv3d,
    ConvTranspose1d, ConvTranspose2d, ConvTranspose3d,
    MaxPool1d, MaxPool2d, MaxPool3d,
    AvgPool1d, AvgPool2d, AvgPool3d,
    AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d,
    GlobalAvgPool,
    BatchNorm1d, BatchNorm2d, BatchNorm3d, LayerNorm, LocalResponseNorm,
    ReLU, ReLU6, LeakyReLU, Sigmoid, Tanh, GELU, SiLU, Mish, Hardswish, Hardsigmoid, Softmax,
    Linear,
    Add, Mul, Concat,
    Flatten, Identity, Pad, Upsample, ChannelShuffle, PixelShuffle, Narrow, Dropout,
)  # fmt: skip

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
