"""Ops that move or resize data without weights."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveFloat, PositiveInt

from .base import ArgumentError, Family, OpSpec, Size


class Flatten(OpSpec):
    """Merges dims ``start_dim..end_dim`` (batch is dim 0): ``[C, H, W] -> [C·H·W]``."""

    family = Family.RESHAPE
    op: Literal["flatten"] = "flatten"
    positional = ("start_dim", "end_dim")
    start_dim: int = 1
    end_dim: int = -1


class Identity(OpSpec):
    """Passes its input through."""

    family = Family.RESHAPE
    op: Literal["identity"] = "identity"


class Pad(OpSpec):
    """As ``torch.nn.functional.pad``: ``padding`` lists (before, after) pairs
    starting from the last dimension; an int pads every spatial side."""

    family = Family.RESHAPE
    op: Literal["pad"] = "pad"
    positional = ("padding", "mode", "value")
    padding: int | tuple[int, ...]
    mode: Literal["constant", "reflect", "replicate", "circular"] = "constant"
    value: float = 0.0

    def check(self) -> None:
        if isinstance(self.padding, tuple) and len(self.padding) % 2:
            raise ArgumentError("padding", "padding takes (before, after) pairs: an even number of values")


class Upsample(OpSpec):
    """Resize spatial dims to ``size`` or by ``scale_factor`` (``floor(I·s)``)."""

    family = Family.RESHAPE
    op: Literal["upsample"] = "upsample"
    positional = ("scale_factor", "mode")
    size: Size | None = None
    scale_factor: PositiveFloat | tuple[PositiveFloat, ...] | None = None
    mode: Literal["nearest", "linear", "bilinear", "bicubic", "trilinear"] = "nearest"
    align_corners: bool | None = None

    def check(self) -> None:
        if (self.size is None) == (self.scale_factor is None):
            raise ArgumentError(None, "upsample takes exactly one of size and scale_factor")
        if self.align_corners is not None and self.mode == "nearest":
            raise ArgumentError("align_corners", 'align_corners only applies to interpolating modes, not "nearest"')


class ChannelShuffle(OpSpec):
    """ShuffleNet's channel shuffle: ``[g, C/g] -> [C/g, g]`` over channels."""

    family = Family.RESHAPE
    op: Literal["channel_shuffle"] = "channel_shuffle"
    positional = ("groups",)
    groups: PositiveInt


class Dropout(OpSpec):
    """Zeroes elements with probability p in training; identity at inference."""

    family = Family.REGULARIZATION
    op: Literal["dropout"] = "dropout"
    positional = ("p",)
    p: float = Field(0.5, ge=0.0, le=1.0)
