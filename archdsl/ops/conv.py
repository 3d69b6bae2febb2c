"""Convolutions: conv1d/2d/3d and their transposes, as torch.nn.ConvNd."""

from __future__ import annotations

from typing import Literal

from pydantic import PositiveInt

from .base import ArgumentError, ConvPadding, Family, NonNegativeSize, OpSpec, Size, expand


class _Conv(OpSpec):
    """``O = floor((I + 2P - D(K-1) - 1) / S) + 1`` per spatial dimension.

    padding "valid" is 0; "same" keeps the size (stride 1 only, as PyTorch),
    putting the odd extra row of an even kernel at the end.
    """

    family = Family.CONVOLUTION
    positional = ("out_channels", "kernel_size", "stride", "padding")
    argument_aliases = {"kernel": "kernel_size"}
    per_dimension = ("kernel_size", "stride", "padding", "dilation")

    out_channels: PositiveInt
    kernel_size: Size
    stride: Size = 1
    padding: ConvPadding = 0
    dilation: Size = 1
    groups: PositiveInt = 1
    bias: bool = True
    #: Optional: checked against the incoming channels when given.
    in_channels: PositiveInt | None = None

    def check(self) -> None:
        if self.out_channels % self.groups:
            raise ArgumentError("groups", f"groups={self.groups} does not divide out_channels={self.out_channels}")
        if self.in_channels is not None and self.in_channels % self.groups:
            raise ArgumentError("groups", f"groups={self.groups} does not divide in_channels={self.in_channels}")
        if self.padding == "same" and any(s != 1 for s in expand(self.stride, self.spatial_dims)):
            raise ArgumentError("padding", 'padding="same" needs stride 1 (PyTorch rejects strided "same")')


class Conv1d(_Conv):
    op: Literal["conv1d"] = "conv1d"
    spatial_dims = 1


class Conv2d(_Conv):
    op: Literal["conv2d"] = "conv2d"
    spatial_dims = 2


class Conv3d(_Conv):
    op: Literal["conv3d"] = "conv3d"
    spatial_dims = 3


class _ConvTranspose(OpSpec):
    """``O = (I - 1)S - 2P + D(K-1) + output_padding + 1`` per dimension."""

    family = Family.CONVOLUTION
    positional = ("out_channels", "kernel_size", "stride", "padding", "output_padding")
    argument_aliases = {"kernel": "kernel_size"}
    per_dimension = ("kernel_size", "stride", "padding", "output_padding", "dilation")

    out_channels: PositiveInt
    kernel_size: Size
    stride: Size = 1
    padding: NonNegativeSize = 0
    output_padding: NonNegativeSize = 0
    dilation: Size = 1
    groups: PositiveInt = 1
    bias: bool = True
    in_channels: PositiveInt | None = None

    def check(self) -> None:
        if self.out_channels % self.groups:
            raise ArgumentError("groups", f"groups={self.groups} does not divide out_channels={self.out_channels}")
        if self.in_channels is not None and self.in_channels % self.groups:
            raise ArgumentError("groups", f"groups={self.groups} does not divide in_channels={self.in_channels}")
        n = self.spatial_dims
        for op, s, d in zip(expand(self.output_padding, n), expand(self.stride, n), expand(self.dilation, n)):
            if op >= s and op >= d:
                raise ArgumentError(
                    "output_padding",
                    f"output_padding={op} must be smaller than stride={s} or dilation={d} (as in PyTorch)",
                )


class ConvTranspose1d(_ConvTranspose):
    op: Literal["conv_transpose1d"] = "conv_transpose1d"
    spatial_dims = 1


class ConvTranspose2d(_ConvTranspose):
    op: Literal["conv_transpose2d"] = "conv_transpose2d"
    spatial_dims = 2


class ConvTranspose3d(_ConvTranspose):
    op: Literal["conv_transpose3d"] = "conv_transpose3d"
    spatial_dims = 3
