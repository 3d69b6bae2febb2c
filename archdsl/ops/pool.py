"""Pooling: max/avg 1d/2d/3d, adaptive average pooling, global average pooling."""

from __future__ import annotations

from typing import Literal

from .base import ArgumentError, Family, NonNegativeSize, OpSpec, Size, expand


class _Pool(OpSpec):
    """``O = floor_or_ceil((I + 2P - D(K-1) - 1) / S) + 1``; stride defaults to
    the kernel size; with ceil_mode a last window must start inside the input
    or its left padding (PyTorch's rule)."""

    family = Family.POOLING
    positional = ("kernel_size", "stride", "padding")
    argument_aliases = {"kernel": "kernel_size"}
    per_dimension = ("kernel_size", "stride", "padding")

    kernel_size: Size
    stride: Size | None = None
    padding: NonNegativeSize = 0
    ceil_mode: bool = False

    @property
    def effective_stride(self):
        return self.kernel_size if self.stride is None else self.stride

    def _dilation(self) -> tuple[int, ...]:
        return (1,) * self.spatial_dims

    def check(self) -> None:
        n = self.spatial_dims
        for p, k, d in zip(expand(self.padding, n), expand(self.kernel_size, n), self._dilation()):
            if p > ((k - 1) * d + 1) // 2:
                raise ArgumentError(
                    "padding", f"padding={p} is more than half the kernel size {k} (PyTorch rejects it)"
                )


class _MaxPool(_Pool):
    per_dimension = ("kernel_size", "stride", "padding", "dilation")
    dilation: Size = 1

    def _dilation(self) -> tuple[int, ...]:
        return expand(self.dilation, self.spatial_dims)


class _AvgPool(_Pool):
    count_include_pad: bool = True


class MaxPool1d(_MaxPool):
    op: Literal["maxpool1d"] = "maxpool1d"
    spatial_dims = 1


class MaxPool2d(_MaxPool):
    op: Literal["maxpool2d"] = "maxpool2d"
    spatial_dims = 2


class MaxPool3d(_MaxPool):
    op: Literal["maxpool3d"] = "maxpool3d"
    spatial_dims = 3


class AvgPool1d(_AvgPool):
    op: Literal["avgpool1d"] = "avgpool1d"
    spatial_dims = 1


class AvgPool2d(_AvgPool):
    op: Literal["avgpool2d"] = "avgpool2d"
    spatial_dims = 2


class AvgPool3d(_AvgPool):
    op: Literal["avgpool3d"] = "avgpool3d"
    spatial_dims = 3


class _AdaptiveAvgPool(OpSpec):
    """Output size is ``output_size``; windows as torch's adaptive pooling:
    ``start = floor(i·I/O)``, ``end = ceil((i+1)·I/O)``."""

    family = Family.POOLING
    positional = ("output_size",)
    per_dimension = ("output_size",)
    output_size: Size


class AdaptiveAvgPool1d(_AdaptiveAvgPool):
    op: Literal["adaptive_avgpool1d"] = "adaptive_avgpool1d"
    spatial_dims = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPool):
    op: Literal["adaptive_avgpool2d"] = "adaptive_avgpool2d"
    spatial_dims = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPool):
    op: Literal["adaptive_avgpool3d"] = "adaptive_avgpool3d"
    spatial_dims = 3


class GlobalAvgPool(OpSpec):
    """Mean over every spatial dimension, keeping them as size 1:
    ``[C, *spatial] -> [C, 1, ...]`` (``adaptive_avgpool(1)``)."""

    family = Family.POOLING
    op: Literal["global_avgpool"] = "global_avgpool"
