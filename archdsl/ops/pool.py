"""Pooling: max/avg 1d/2d/3d, adaptive average and max pooling, global average and max pooling."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, ClassVar, Literal

from .arith import effective_kernel, pool_output_size
from .base import (
    ArgumentError,
    Conventions,
    Family,
    KernelCall,
    NonNegativeSize,
    OpSpec,
    Shape,
    Size,
    SlidingWindow,
    Window,
    expand,
    numel,
)
from .conv import SpatialOp, collapse_error, explain_window_sizes
from .torch_lowering import TorchLowering, call

if TYPE_CHECKING:
    from ..emit.onnx import OnnxGraph


class _Pool(SpatialOp):
    """``O = floor_or_ceil((I + 2P - D(K-1) - 1) / S) + 1``; stride defaults to
    the kernel size; with ceil_mode a last window must start inside the input
    or its left padding (PyTorch's rule)."""

    family = Family.POOLING
    positional = ("kernel_size", "stride", "padding")
    argument_aliases = {"kernel": "kernel_size"}
    per_dimension: ClassVar[tuple[str, ...]] = ("kernel_size", "stride", "padding")

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


    def _geometry(self):
        n = self.spatial_dims
        return (expand(self.kernel_size, n), expand(self.effective_stride, n), expand(self.padding, n),
                self._dilation())

    def geometry(self) -> SlidingWindow:
        kernel, stride, padding, dilation = self._geometry()
        return SlidingWindow(kernel, stride, padding, dilation, ceil_mode=self.ceil_mode)

    def infer(self, inputs: list[Shape]) -> Shape:
        """``O = floor((I + 2P − D(K−1) − 1)/S) + 1`` (``ceil`` with ``ceil_mode``, less one if the last window
        would start in the right padding); stride defaults to the kernel size; channels kept."""
        channels, *spatial = inputs[0]
        kernel, stride, padding, dilation = self._geometry()
        sizes = tuple(
            pool_output_size(i, kernel=k, stride=s, padding=p, dilation=d, ceil_mode=self.ceil_mode)
            for i, k, s, p, d in zip(spatial, kernel, stride, padding, dilation)
        )
        if min(sizes) <= 0:
            raise collapse_error(self, spatial, kernel, padding, dilation)
        return (channels, *sizes)

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """``prod(K)`` per output element (comparisons, or adds and a divide)."""
        return numel(output) * numel(expand(self.kernel_size, self.spatial_dims))

    def window(self, inputs: list[Shape], output: Shape) -> Window:
        """Kernel ``D(K−1)+1``, stride ``S``, leading padding ``P``."""
        kernel, stride, padding, dilation = self._geometry()
        return Window.sliding([effective_kernel(k, d) for k, d in zip(kernel, dilation)], stride, padding)

    def explain_shape(self, inputs: list[Shape], output: Shape) -> list[str]:
        kernel, stride, padding, dilation = self._geometry()
        rounding = "ceil" if self.ceil_mode else "floor"
        lines = [f"O = {rounding}((I + 2P − D(K − 1) − 1)/S) + 1" + (
            ", less one if the last window starts in the padding" if self.ceil_mode else "")]
        return lines + explain_window_sizes(self, inputs[0][1:], kernel, stride, padding, dilation, output[1:],
                                            rounding)

    def _onnx_pairs(self, shapes: list[Shape]) -> list[tuple[int, int]]:
        """(before, after) pads giving PyTorch's window count in floor mode
        (``emit.onnx.ceil_free_pairs``: ONNX's ceil_mode keeps windows PyTorch drops)."""
        from ..emit.onnx import ceil_free_pairs

        kernel, stride, padding, dilation = self._geometry()
        return ceil_free_pairs(shapes[0][1:], kernel, stride, padding, dilation, self.infer(shapes)[1:])


class _MaxPool(_Pool):
    per_dimension = ("kernel_size", "stride", "padding", "dilation")
    dilation: Size = 1

    def _dilation(self) -> tuple[int, ...]:
        return expand(self.dilation, self.spatial_dims)

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.pool.max_pool``."""
        from ..runtime.kernels.pool import max_pool

        kernel, stride, padding, dilation = self._geometry()
        return KernelCall(max_pool, {"kernel_size": kernel, "stride": stride, "padding": padding,
                                       "dilation": dilation, "ceil_mode": self.ceil_mode})

    onnx_ops = ("MaxPool",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``MaxPool`` in floor mode; ceil_mode as extra end padding (ignored by the max)."""
        from ..emit.onnx import spatial_pads

        kernel, stride, _, dilation = self._geometry()
        return g.node("MaxPool", [inputs[0]], kernel_shape=list(kernel), strides=list(stride),
                      pads=spatial_pads(self._onnx_pairs(shapes)), dilations=list(dilation), ceil_mode=0)

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.max_pool{1,2,3}d`` with the same arguments (stride defaults to the kernel size in both)."""
        return TorchLowering(call(f"F.max_pool{self.spatial_dims}d", "{0}", kernel_size=self.kernel_size,
                                  stride=self.effective_stride, padding=self.padding, dilation=self.dilation,
                                  ceil_mode=self.ceil_mode, defaults={"padding": 0, "dilation": 1, "ceil_mode": False}))


class _AvgPool(_Pool):
    count_include_pad: bool = True

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.pool.avg_pool``."""
        from ..runtime.kernels.pool import avg_pool

        kernel, stride, padding, _ = self._geometry()
        return KernelCall(avg_pool, {"kernel_size": kernel, "stride": stride, "padding": padding,
                                       "ceil_mode": self.ceil_mode, "count_include_pad": self.count_include_pad})

    onnx_ops = ("AveragePool", "Pad")

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``AveragePool`` with ``count_include_pad`` set explicitly (PyTorch's
        default is true, ONNX's 0), in floor mode.  When ceil_mode adds end
        padding and the padding counts, PyTorch's divisor counts the padding
        but not the overflow: the padding becomes real zeros (``Pad``), and
        the pool counts only what is there."""
        from ..emit.onnx import spatial_pads

        kernel, stride, padding, _ = self._geometry()
        pairs = self._onnx_pairs(shapes)
        x, include = inputs[0], int(self.count_include_pad)
        if include and any(after > p for (_, after), p in zip(pairs, padding)):
            x = g.node("Pad", [x, g.ints("pads", [0, 0, *padding, 0, 0, *padding])], mode="constant")
            pairs, include = [(0, after - p) for (_, after), p in zip(pairs, padding)], 0
        return g.node("AveragePool", [x], kernel_shape=list(kernel), strides=list(stride), pads=spatial_pads(pairs),
                      ceil_mode=0, count_include_pad=include)

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.avg_pool{1,2,3}d`` with the same arguments."""
        return TorchLowering(call(f"F.avg_pool{self.spatial_dims}d", "{0}", kernel_size=self.kernel_size,
                                  stride=self.effective_stride, padding=self.padding, ceil_mode=self.ceil_mode,
                                  count_include_pad=self.count_include_pad,
                                  defaults={"padding": 0, "ceil_mode": False, "count_include_pad": True}))


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


def _whole(x: Fraction) -> Fraction | int:
    return x.numerator if x.denominator == 1 else x


def _adaptive_cover(size: int, out: int) -> tuple[int, Fraction | int, Fraction | int]:
    """(reach, step, offset) of adaptive pooling from ``size`` to ``out`` along one dim (see ``window``)."""
    step = Fraction(size, out)
    reach = size // out - 1 if size % out == 0 else -(-size // out)
    return reach, _whole(step), _whole((step - 1) / 2)


class _AdaptiveAvgPool(SpatialOp):
    """Output size is ``output_size``; windows as torch's adaptive pooling:
    ``start = floor(i·I/O)``, ``end = ceil((i+1)·I/O)``."""

    family = Family.POOLING
    positional = ("output_size",)
    per_dimension = ("output_size",)
    output_size: Size

    def infer(self, inputs: list[Shape]) -> Shape:
        """``O = output_size`` per spatial dim; channels kept."""
        return (inputs[0][0], *expand(self.output_size, self.spatial_dims))

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """One add per input element, one divide per output element."""
        return numel(inputs[0]) + numel(output)

    def window(self, inputs: list[Shape], output: Shape) -> Window:
        """Step ``I/O`` (a fraction), output i centred on ``(i + 1/2)·I/O − 1/2``.
        When O divides I the windows tile the input: reach ``I/O − 1``, exact.
        Else reach ``ceil(I/O)``, an upper bound containing every window
        ``[floor(i·I/O), ceil((i+1)·I/O))``: its pixels p satisfy
        ``i·I/O − 1 < p < (i+1)·I/O``, so ``|p − centre| < (I/O + 1)/2``."""
        dims = [_adaptive_cover(i, o) for i, o in zip(inputs[0][1:], output[1:])]
        return Window(tuple(r for r, _, _ in dims), tuple(s for _, s, _ in dims), tuple(c for _, _, c in dims))

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.pool.adaptive_avg_pool`` (returns its input when no size changes)."""
        from ..runtime.kernels.pool import adaptive_avg_pool

        return KernelCall(adaptive_avg_pool, {"output_size": expand(self.output_size, self.spatial_dims)},
                          view=True)

    onnx_ops: ClassVar[tuple[str, ...]] = ("Identity", "GlobalAveragePool", "AveragePool", "Transpose", "MatMul")

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``GlobalAveragePool`` for size 1, ``AveragePool`` when every size
        divides; otherwise, per resized axis, a ``MatMul`` by the averaging
        matrix of the NumPy kernel (windows of unequal sizes)."""
        import numpy as np

        from ..runtime.kernels.pool import adaptive_matrix

        sizes = shapes[0][1:]
        outputs = expand(self.output_size, len(sizes))
        if tuple(sizes) == outputs:
            return g.node("Identity", inputs[:1])
        if all(o == 1 for o in outputs):
            return g.node("GlobalAveragePool", inputs[:1])
        if all(i % o == 0 for i, o in zip(sizes, outputs)):
            windows = [i // o for i, o in zip(sizes, outputs)]
            return g.node("AveragePool", inputs[:1], kernel_shape=windows, strides=windows)
        x, rank = inputs[0], len(sizes) + 2
        for axis, (i, o) in enumerate(zip(sizes, outputs), start=2):
            if i == o:
                continue
            perm = list(range(rank))
            perm[axis], perm[-1] = perm[-1], perm[axis]
            x = g.node("Transpose", [x], perm=perm)
            x = g.node("MatMul", [x, g.constant(f"average{axis}", adaptive_matrix(i, o, np.float32).T)])
            x = g.node("Transpose", [x], perm=perm)
        return x

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.adaptive_avg_pool{1,2,3}d``."""
        return TorchLowering(call(f"F.adaptive_avg_pool{self.spatial_dims}d", "{0}", output_size=self.output_size))


class AdaptiveAvgPool1d(_AdaptiveAvgPool):
    op: Literal["adaptive_avgpool1d"] = "adaptive_avgpool1d"
    spatial_dims = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPool):
    op: Literal["adaptive_avgpool2d"] = "adaptive_avgpool2d"
    spatial_dims = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPool):
    op: Literal["adaptive_avgpool3d"] = "adaptive_avgpool3d"
    spatial_dims = 3


class _AdaptiveMaxPool(_AdaptiveAvgPool):
    """Output size is ``output_size``; output ``i`` is the maximum over the
    adaptive window ``[floor(i·I/O), ceil((i+1)·I/O))`` (torch.nn.AdaptiveMaxPool)."""

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """One comparison per input element."""
        return numel(inputs[0])

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.pool.adaptive_max_pool`` (returns its input when no size changes)."""
        from ..runtime.kernels.pool import adaptive_max_pool

        return KernelCall(adaptive_max_pool, {"output_size": expand(self.output_size, self.spatial_dims)},
                          view=True)

    onnx_ops = ("Identity", "GlobalMaxPool", "MaxPool", "Slice", "ReduceMax", "Concat")

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``GlobalMaxPool`` for size 1, ``MaxPool`` when every size divides;
        otherwise, per resized axis, each output's window sliced out
        (``Slice``), reduced (``ReduceMax``) and the results joined (``Concat``)."""
        from .arith import adaptive_range

        sizes = shapes[0][1:]
        outputs = expand(self.output_size, len(sizes))
        if tuple(sizes) == outputs:
            return g.node("Identity", inputs[:1])
        if all(o == 1 for o in outputs):
            return g.node("GlobalMaxPool", inputs[:1])
        if all(i % o == 0 for i, o in zip(sizes, outputs)):
            windows = [i // o for i, o in zip(sizes, outputs)]
            return g.node("MaxPool", inputs[:1], kernel_shape=windows, strides=windows)
        x = inputs[0]
        for axis, (i, o) in enumerate(zip(sizes, outputs), start=2):
            if i == o:
                continue
            along = g.ints("axis", [axis])
            parts = []
            for index in range(o):
                start, end = adaptive_range(index, i, o)
                window = g.node("Slice", [x, g.ints("start", [start]), g.ints("end", [end]), along])
                parts.append(g.node("ReduceMax", [window, along], keepdims=1))
            x = g.node("Concat", parts, axis=axis)
        return x

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.adaptive_max_pool{1,2,3}d``."""
        return TorchLowering(call(f"F.adaptive_max_pool{self.spatial_dims}d", "{0}", output_size=self.output_size))


class AdaptiveMaxPool1d(_AdaptiveMaxPool):
    op: Literal["adaptive_maxpool1d"] = "adaptive_maxpool1d"
    spatial_dims = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPool):
    op: Literal["adaptive_maxpool2d"] = "adaptive_maxpool2d"
    spatial_dims = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPool):
    op: Literal["adaptive_maxpool3d"] = "adaptive_maxpool3d"
    spatial_dims = 3


class _GlobalPool(OpSpec):
    """Pooling over every spatial dimension, keeping them as size 1."""

    family = Family.POOLING
    input_ranks = (2, 3, 4)

    def infer(self, inputs: list[Shape]) -> Shape:
        """``[C, *S] → [C, 1, ...]``."""
        channels, *spatial = inputs[0]
        return (channels, *(1 for _ in spatial))

    def window(self, inputs: list[Shape], output: Shape) -> Window:
        """The whole input."""
        spatial = inputs[0][1:]
        return Window.sliding(spatial, [1] * len(spatial), [0] * len(spatial))


class GlobalAvgPool(_GlobalPool):
    """Mean over every spatial dimension, keeping them as size 1:
    ``[C, *spatial] -> [C, 1, ...]`` (``adaptive_avgpool(1)``)."""

    op: Literal["global_avgpool"] = "global_avgpool"

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """One add per input element, one divide per output element."""
        return numel(inputs[0]) + numel(output)

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.pool.global_avg_pool``."""
        from ..runtime.kernels.pool import global_avg_pool

        return KernelCall(global_avg_pool)

    onnx_ops = ("GlobalAveragePool",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        return g.node("GlobalAveragePool", inputs[:1])

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.adaptive_avg_pool{1,2,3}d`` to size 1 (the input's spatial rank)."""
        return TorchLowering(call(f"F.adaptive_avg_pool{len(inputs[0]) - 1}d", "{0}", output_size=1))


class GlobalMaxPool(_GlobalPool):
    """Maximum over every spatial dimension, keeping them as size 1:
    ``[C, *spatial] -> [C, 1, ...]`` (``adaptive_maxpool(1)``)."""

    op: Literal["global_maxpool"] = "global_maxpool"

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """One comparison per input element."""
        return numel(inputs[0])

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.pool.global_max_pool``."""
        from ..runtime.kernels.pool import global_max_pool

        return KernelCall(global_max_pool)

    onnx_ops = ("GlobalMaxPool",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        return g.node("GlobalMaxPool", inputs[:1])

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.adaptive_max_pool{1,2,3}d`` to size 1 (the input's spatial rank)."""
        return TorchLowering(call(f"F.adaptive_max_pool{len(inputs[0]) - 1}d", "{0}", output_size=1))


#: This family's ops, in the order the registry (``archdsl.ops.OPS``) lists them.
OPS: tuple[type[OpSpec], ...] = (
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveAvgPool3d,
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    AdaptiveMaxPool3d,
    GlobalAvgPool,
    GlobalMaxPool,
)
