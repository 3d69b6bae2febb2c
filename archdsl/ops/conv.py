"""Convolutions: conv1d/2d/3d and their transposes, as torch.nn.ConvNd."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import PositiveInt

from .arith import conv_output_size, effective_kernel, same_padding, transposed_output_size
from .base import (
    SPATIAL_NAMES,
    WEIGHT_INIT,
    ArgumentError,
    Conventions,
    ConvPadding,
    Family,
    KernelCall,
    NonNegativeSize,
    OpSpec,
    Shape,
    ShapeError,
    Size,
    SlidingWindow,
    Window,
    expand,
    numel,
    show_shape,
    show_sizes,
)
from .torch_lowering import TorchLowering, keywords

if TYPE_CHECKING:
    from ..emit.onnx import OnnxGraph


def check_channels(op: OpSpec, channels: int, declared: int | None, argument: str, groups: int = 1,
                   noun: str = "channels") -> None:
    """The checks every channel-mixing op makes on its input channels."""
    if declared is not None and declared != channels:
        raise ShapeError(
            "E402",
            f"{op.kind()} declares {argument}={declared}, but its input has {channels} {noun}",
            argument=argument,
            inputs=(0,),
            hint=f"set {argument}={channels} or fix the layer that feeds it",
        )
    if channels % groups:
        raise ShapeError(
            "E403",
            f"groups={groups} does not divide the {channels} input channels of {op.kind()}",
            argument="groups",
            inputs=(0,),
        )


def collapse_error(op: OpSpec, spatial, kernel, padding, dilation, argument: str = "kernel_size") -> ShapeError:
    """E401: "kernel 5x5 is larger than the padded input 3x3", naming the
    dimensions at fault when only some are, and the dilation when there is one."""
    extent = [effective_kernel(k, d) for k, d in zip(kernel, dilation)]
    padded = [i + 2 * p for i, p in zip(spatial, padding)]
    what = f"kernel {show_sizes(kernel)}"
    if any(d != 1 for d in dilation):
        what += f" dilated by {show_sizes(dilation)} spans {show_sizes(extent)} and"
    failing = [name for name, e, p in zip(SPATIAL_NAMES[len(spatial)], extent, padded) if e > p]
    if len(failing) == len(spatial):
        message = f"{op.kind()}: {what} is larger than the padded input {show_sizes(padded)}"
    else:
        message = f"{op.kind()}: {what} does not fit the padded input {show_sizes(padded)} in {', '.join(failing)}"
    return ShapeError("E401", message, argument=argument, inputs=(0,),
                      hint="use a smaller kernel or dilation, more padding, or a larger input")


def dot(*factors) -> str:
    return "·".join(str(f) for f in factors)


def explain_window_sizes(op: OpSpec, spatial, kernel, stride, padding, dilation, output, rounding="floor") -> list[str]:
    """``O_H = floor((50 + 2·1 − 3)/1) + 1 = 50`` for each spatial dimension."""
    lines = []
    for name, i, k, s, p, d, o in zip(SPATIAL_NAMES[len(spatial)], spatial, kernel, stride, padding, dilation,
                                      output):
        extent = f"{k}" if d == 1 else f"{d}·({k} − 1) − 1"
        numerator = i + 2 * p - d * (k - 1) - 1
        rounded = -(-numerator // s) if rounding == "ceil" else numerator // s
        # ceil_mode drops a last window that would start in the padding.
        dropped = "" if rounded + 1 == o else " − 1"
        lines.append(f"O_{name} = {rounding}(({i} + 2·{p} − {extent})/{s}) + 1{dropped} = {o}")
        if dropped:
            lines.append(f"  (− 1: a last window starting at {rounded * s} would start in the right padding)")
    return lines


def spatial_hint(op: OpSpec, shape: Shape) -> str | None:
    """Suggests the op of the right dimensionality for a wrong-rank input."""
    rank = len(shape) - 1
    family = op.kind().rstrip("123d")
    if rank in SPATIAL_NAMES and family + f"{rank}d" != op.kind():
        return f"a {show_shape(shape)} input needs {family}{rank}d"
    if rank == 0:
        return "the input is a flat vector; use linear, or do not flatten before this layer"
    return None


class SpatialOp(OpSpec):
    """An op over ``[C, *spatial]`` with exactly ``spatial_dims`` spatial
    dimensions (conv2d takes [C, H, W])."""

    #: Every concrete spatial op sets it: 1, 2 or 3.
    spatial_dims: ClassVar[int]

    @property
    def input_ranks(self) -> tuple[int, ...]:  # type: ignore[override]
        return (self.spatial_dims + 1,)

    def rank_hint(self, shape: Shape) -> str | None:
        return spatial_hint(self, shape)


class _Conv(SpatialOp):
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


    def _geometry(self):
        n = self.spatial_dims
        kernel = expand(self.kernel_size, n)
        dilation = expand(self.dilation, n)
        stride = expand(self.stride, n)
        if self.padding == "same":
            padding = tuple((d * (k - 1)) // 2 for k, d in zip(kernel, dilation))
        elif isinstance(self.padding, str):  # "valid", the only other word ConvPadding takes
            padding = (0,) * n
        else:
            padding = expand(self.padding, n)
        return kernel, stride, padding, dilation

    def geometry(self) -> SlidingWindow:
        kernel, stride, padding, dilation = self._geometry()
        return SlidingWindow(kernel, stride, padding, dilation, same=self.padding == "same")

    @property
    def has_bias(self) -> bool:
        return self.bias

    def infer(self, inputs: list[Shape]) -> Shape:
        """``O = floor((I + 2P − D(K−1) − 1)/S) + 1`` per spatial dim (``ops/arith.py``); ``padding="same"``
        keeps ``O = I`` (stride 1), the odd padding at the end; ``C_out = out_channels``; ``in_channels``
        divisible by ``groups``."""
        channels, *spatial = inputs[0]
        check_channels(self, channels, self.in_channels, "in_channels", self.groups)
        if self.padding == "same":
            return (self.out_channels, *spatial)
        kernel, stride, padding, dilation = self._geometry()
        sizes = tuple(
            conv_output_size(i, kernel=k, stride=s, padding=p, dilation=d)
            for i, k, s, p, d in zip(spatial, kernel, stride, padding, dilation)
        )
        if min(sizes) <= 0:
            raise collapse_error(self, spatial, kernel, padding, dilation)
        return (self.out_channels, *sizes)

    def parameter_shapes(self, inputs: list[Shape]) -> dict[str, Shape]:
        """``weight [C_out, C_in/groups, *K]``, ``bias [C_out]`` (with ``bias``)."""
        kernel = expand(self.kernel_size, self.spatial_dims)
        shapes = {"weight": (self.out_channels, inputs[0][0] // self.groups, *kernel)}
        if self.bias:
            shapes["bias"] = (self.out_channels,)
        return shapes

    def macs(self, inputs: list[Shape], output: Shape) -> int:
        """Every output element: ``C_in/groups · prod(K)`` multiply-adds."""
        kernel = expand(self.kernel_size, self.spatial_dims)
        return numel(output) * (inputs[0][0] // self.groups) * numel(kernel)

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """``2·MACs``, plus one per output element for the bias (when bias counts in FLOPs)."""
        return 2 * self.macs(inputs, output) + (numel(output) if self.bias and conventions.bias else 0)

    def window(self, inputs: list[Shape], output: Shape) -> Window:
        """Kernel ``D(K−1)+1``, stride ``S``, leading padding ``P`` (the "same" padding's leading half)."""
        kernel, stride, padding, dilation = self._geometry()
        return Window.sliding([effective_kernel(k, d) for k, d in zip(kernel, dilation)], stride, padding)

    def explain_shape(self, inputs: list[Shape], output: Shape) -> list[str]:
        kernel, stride, padding, dilation = self._geometry()
        lines = ["O = floor((I + 2P − D(K − 1) − 1)/S) + 1"]
        if self.padding == "same":
            lines = ['padding="same" keeps the size (stride 1): O = I']
            return lines + [f"O_{n} = {o}" for n, o in zip(SPATIAL_NAMES[self.spatial_dims], output[1:])]
        return lines + explain_window_sizes(self, inputs[0][1:], kernel, stride, padding, dilation, output[1:])

    def explain_macs(self, inputs: list[Shape], output: Shape) -> str:
        kernel = expand(self.kernel_size, self.spatial_dims)
        per = dot(inputs[0][0] // self.groups, *kernel)
        return f"{dot(*output[1:], output[0])}·({per}) = {self.macs(inputs, output):,}"

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.conv.conv``; padding="same" as explicit (before, after) pairs."""
        from ..runtime.kernels.conv import conv, conv_packing

        kernel, stride, padding, dilation = self._geometry()
        if self.padding == "same":
            padding = tuple(same_padding(k, d) for k, d in zip(kernel, dilation))
        pack = conv_packing(inputs[0], self.out_channels, kernel, stride, padding, dilation, self.groups)
        return KernelCall(conv, {"stride": stride, "padding": padding, "dilation": dilation, "groups": self.groups},
                          tensors={"weight": "weight", "bias": "bias" if self.bias else None},
                          pack=pack, init=WEIGHT_INIT)

    onnx_ops = ("Conv",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``Conv``; ``pads`` lists every dimension's begin, then every end."""
        from ..emit.onnx import spatial_pads

        kernel, stride, padding, dilation = self._geometry()
        pairs = [same_padding(k, d) for k, d in zip(kernel, dilation)] if self.padding == "same" \
            else [(p, p) for p in padding]
        tensors = [g.weight("weight"), *([g.weight("bias")] if self.bias else [])]
        return g.node("Conv", [inputs[0], *tensors], kernel_shape=list(kernel), strides=list(stride),
                      pads=spatial_pads(pairs), dilations=list(dilation), group=self.groups)


    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``nn.Conv{1,2,3}d`` with the same arguments (padding "same"/"valid" as PyTorch takes them)."""
        arguments = keywords({"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding,
                              "dilation": self.dilation, "groups": self.groups, "bias": self.bias},
                             {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True})
        return TorchLowering("{module}({0})", f"nn.Conv{self.spatial_dims}d({inputs[0][0]}, {self.out_channels}, "
                                              f"{arguments})")


class Conv1d(_Conv):
    op: Literal["conv1d"] = "conv1d"
    spatial_dims = 1


class Conv2d(_Conv):
    op: Literal["conv2d"] = "conv2d"
    spatial_dims = 2


class Conv3d(_Conv):
    op: Literal["conv3d"] = "conv3d"
    spatial_dims = 3


class _ConvTranspose(SpatialOp):
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

    @property
    def has_bias(self) -> bool:
        return self.bias


    def infer(self, inputs: list[Shape]) -> Shape:
        """``O = (I−1)S − 2P + D(K−1) + output_padding + 1`` per spatial dim; ``C_out = out_channels``."""
        channels, *spatial = inputs[0]
        check_channels(self, channels, self.in_channels, "in_channels", self.groups)
        n = self.spatial_dims
        sizes = tuple(
            transposed_output_size(i, kernel=k, stride=s, padding=p, dilation=d, output_padding=op)
            for i, k, s, p, d, op in zip(
                spatial, expand(self.kernel_size, n), expand(self.stride, n), expand(self.padding, n),
                expand(self.dilation, n), expand(self.output_padding, n),
            )
        )
        if min(sizes) <= 0:
            raise ShapeError(
                "E401",
                f"{self.kind()}: padding {show_sizes(expand(self.padding, n))} crops the whole "
                f"{show_sizes(spatial)} output away",
                argument="padding",
                inputs=(0,),
            )
        return (self.out_channels, *sizes)

    def parameter_shapes(self, inputs: list[Shape]) -> dict[str, Shape]:
        """``weight [C_in, C_out/groups, *K]`` (transposed, as in PyTorch), ``bias [C_out]`` (with ``bias``)."""
        kernel = expand(self.kernel_size, self.spatial_dims)
        shapes = {"weight": (inputs[0][0], self.out_channels // self.groups, *kernel)}
        if self.bias:
            shapes["bias"] = (self.out_channels,)
        return shapes

    def macs(self, inputs: list[Shape], output: Shape) -> int:
        """Every *input* element is scattered through ``C_out/groups · prod(K)``
        weights (fvcore's and PyTorch's profiler's convention)."""
        kernel = expand(self.kernel_size, self.spatial_dims)
        return numel(inputs[0]) * (self.out_channels // self.groups) * numel(kernel)

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """``2·MACs``, plus one per output element for the bias (when bias counts in FLOPs)."""
        return 2 * self.macs(inputs, output) + (numel(output) if self.bias and conventions.bias else 0)

    def explain_shape(self, inputs: list[Shape], output: Shape) -> list[str]:
        n = self.spatial_dims
        lines = ["O = (I − 1)·S − 2P + D(K − 1) + output_padding + 1"]
        for name, i, k, s, p, d, op, o in zip(
            SPATIAL_NAMES[n], inputs[0][1:], expand(self.kernel_size, n), expand(self.stride, n),
            expand(self.padding, n), expand(self.dilation, n), expand(self.output_padding, n), output[1:],
        ):
            lines.append(f"O_{name} = ({i} − 1)·{s} − 2·{p} + {d}·({k} − 1) + {op} + 1 = {o}")
        return lines

    def explain_macs(self, inputs: list[Shape], output: Shape) -> str:
        kernel = expand(self.kernel_size, self.spatial_dims)
        per = dot(self.out_channels // self.groups, *kernel)
        return f"{dot(*inputs[0][1:], inputs[0][0])}·({per}) = {self.macs(inputs, output):,}  (per input element)"

    def window(self, inputs: list[Shape], output: Shape) -> Window:
        """Step ``1/S``: each output position reads the input positions whose scattered kernels cover it (the
        centre-aligned affine approximation of that staircase)."""
        n = self.spatial_dims
        kernel = tuple(effective_kernel(k, d) for k, d in zip(expand(self.kernel_size, n), expand(self.dilation, n)))
        stride = expand(self.stride, n)
        # Output o gathers inputs i = (o + P - t·D)/S over the taps t: at
        # most ceil(K_eff/S) of them, centred on (o + P - D(K-1)/2)/S.
        padding = expand(self.padding, n)
        return Window(
            tuple(-(-k // s) - 1 for k, s in zip(kernel, stride)),
            tuple(Fraction(1, s) for s in stride),
            tuple((p - Fraction(k - 1, 2)) / s for k, p, s in zip(kernel, padding, stride)),
        )

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.conv.conv_transpose``."""
        from ..runtime.kernels.conv import conv_transpose, pack_conv_transpose_weight

        n = self.spatial_dims
        arguments = {name: expand(getattr(self, name), n)
                     for name in ("stride", "padding", "output_padding", "dilation")}
        return KernelCall(conv_transpose, {**arguments, "groups": self.groups},
                          tensors={"weight": "weight", "bias": "bias" if self.bias else None},
                          pack=pack_conv_transpose_weight, init=WEIGHT_INIT)

    onnx_ops = ("ConvTranspose",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``ConvTranspose``: the weight layout ``[C_in, C_out/groups, *K]`` is PyTorch's."""
        n = len(shapes[0]) - 1
        padding = expand(self.padding, n)
        tensors = [g.weight("weight"), *([g.weight("bias")] if self.bias else [])]
        return g.node("ConvTranspose", [inputs[0], *tensors], kernel_shape=list(expand(self.kernel_size, n)),
                      strides=list(expand(self.stride, n)), pads=[*padding, *padding],
                      dilations=list(expand(self.dilation, n)), output_padding=list(expand(self.output_padding, n)),
                      group=self.groups)


    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``nn.ConvTranspose{1,2,3}d`` with the same arguments."""
        arguments = keywords({"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding,
                              "output_padding": self.output_padding, "groups": self.groups, "bias": self.bias,
                              "dilation": self.dilation},
                             {"stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "bias": True,
                              "dilation": 1})
        return TorchLowering("{module}({0})", f"nn.ConvTranspose{self.spatial_dims}d({inputs[0][0]}, "
                                              f"{self.out_channels}, {arguments})")


class ConvTranspose1d(_ConvTranspose):
    op: Literal["conv_transpose1d"] = "conv_transpose1d"
    spatial_dims = 1


class ConvTranspose2d(_ConvTranspose):
    op: Literal["conv_transpose2d"] = "conv_transpose2d"
    spatial_dims = 2


class ConvTranspose3d(_ConvTranspose):
    op: Literal["conv_transpose3d"] = "conv_transpose3d"
    spatial_dims = 3


#: This family's ops, in the order the registry (``archdsl.ops.OPS``) lists them.
OPS: tuple[type[OpSpec], ...] = (
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
)
