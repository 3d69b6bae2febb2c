"""Ops that move or resize data without weights."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt

from .activation import normalize_dim
from .base import (
    ArgumentError,
    Conventions,
    Family,
    KernelCall,
    OpSpec,
    Shape,
    ShapeError,
    Size,
    Window,
    expand,
    numel,
    show_shape,
    show_sizes,
)
from .torch_lowering import NoTorchLowering, TorchLowering, call, literal

if TYPE_CHECKING:
    from ..emit.onnx import OnnxGraph


class Flatten(OpSpec):
    """Merges dims ``start_dim..end_dim`` (batch is dim 0): ``[C, H, W] -> [C·H·W]``."""

    family = Family.RESHAPE
    op: Literal["flatten"] = "flatten"
    positional = ("start_dim", "end_dim")
    start_dim: int = 1
    end_dim: int = -1

    def infer(self, inputs: list[Shape]) -> Shape:
        """Dims ``start_dim..end_dim`` merged (batch is dim 0): ``[C, H, W] → [C·H·W]``."""
        shape = inputs[0]
        start = normalize_dim(self, self.start_dim, shape, "start_dim")
        end = normalize_dim(self, self.end_dim, shape, "end_dim")
        if start > end:
            raise ShapeError("E408", f"flatten: start_dim={self.start_dim} comes after end_dim={self.end_dim}",
                             argument="start_dim", inputs=(0,))
        return (*shape[:start], math.prod(shape[start : end + 1]), *shape[end + 1 :])

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.reshape.flatten`` (a view when the memory allows)."""
        from ..runtime.kernels.reshape import flatten

        return KernelCall(flatten, self.arguments(), view=True)

    onnx_ops = ("Flatten", "Reshape")

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``Flatten(axis=1)`` for the usual everything-but-the-batch (ONNX's
        Flatten always yields 2-d, so only then); otherwise ``Reshape`` to the
        output shape, the batch copied (``0``)."""
        shape = shapes[0]
        if normalize_dim(self, self.start_dim, shape, "start_dim") == 0 \
                and normalize_dim(self, self.end_dim, shape, "end_dim") == len(shape) - 1:
            return g.node("Flatten", inputs[:1], axis=1)
        return g.node("Reshape", [inputs[0], g.ints("shape", [0, *self.infer(shapes)])])

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``torch.flatten`` with the same dims (batch is 0 in both)."""
        return TorchLowering(call("torch.flatten", "{0}", start_dim=self.start_dim, end_dim=self.end_dim,
                                  defaults={"start_dim": 0, "end_dim": -1}))


class Identity(OpSpec):
    """Passes its input through."""

    family = Family.RESHAPE
    op: Literal["identity"] = "identity"

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.reshape.identity``: the input itself."""
        from ..runtime.kernels.reshape import identity

        return KernelCall(identity, view=True)

    onnx_ops = ("Identity",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        return g.node("Identity", inputs[:1])

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """The input itself."""
        return TorchLowering("{0}")


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

    def pairs(self, shape: Shape) -> list[tuple[int, int]]:
        """(before, after) per dimension of ``shape``, first dimension first."""
        rank = len(shape)
        if isinstance(self.padding, int):
            return [(0, 0)] + [(self.padding, self.padding)] * (rank - 1)
        flat = list(self.padding)
        given = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]  # last dim first
        if len(given) > rank:
            raise ShapeError("E408", f"pad gives {len(given)} (before, after) pairs for a {rank}-d input "
                             f"{show_shape(shape)}", argument="padding", inputs=(0,))
        return [(0, 0)] * (rank - len(given)) + given[::-1]

    def infer(self, inputs: list[Shape]) -> Shape:
        """Each dim plus its (before, after) padding; negative values crop."""
        shape = inputs[0]
        pairs = self.pairs(shape)
        sizes = tuple(d + a + b for d, (a, b) in zip(shape, pairs))
        if min(sizes) <= 0:
            raise ShapeError("E401", f"pad: negative padding removes all of {show_shape(shape)}",
                             argument="padding", inputs=(0,))
        if self.mode == "reflect" and any(max(a, b) >= d for d, (a, b) in zip(shape, pairs)):
            raise ShapeError("E401", f"pad: reflect padding must be smaller than the input size {show_shape(shape)}",
                             argument="padding", inputs=(0,))
        return sizes

    def window(self, inputs: list[Shape], output: Shape) -> Window:
        """One pixel, offset by the leading padding."""
        pairs = self.pairs(inputs[0])[1:]
        return Window.sliding([1] * len(pairs), [1] * len(pairs), [a for a, _ in pairs])

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.reshape.pad`` with ``torch.nn.functional.pad``'s flat list, last dim first."""
        from ..runtime.kernels.reshape import pad

        flat = [v for before_after in reversed(self.pairs(inputs[0])) for v in before_after]
        while len(flat) > 2 and flat[-2:] == [0, 0]:
            flat = flat[:-2]
        return KernelCall(pad, {"pad": tuple(flat), "mode": self.mode, "value": self.value}, view=True)

    onnx_ops = ("Pad",)

    #: torch.nn.functional.pad's modes as ONNX Pad's (wrap: opset 19).
    _ONNX_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``Pad``: all begins (the batch's 0 first), then all ends; negative values crop."""
        from .base import NoOnnxLowering

        if self.mode == "circular" and g.opset < 19:
            raise NoOnnxLowering(f"circular padding needs opset 19 (Pad mode wrap); the export targets {g.opset}",
                                 hint="export with --opset 19 or later")
        pairs = [(0, 0), *self.pairs(shapes[0])]
        arguments = [inputs[0], g.ints("pads", [a for a, _ in pairs] + [b for _, b in pairs])]
        if self.mode == "constant":
            arguments.append(g.constant("value", self.value))
        return g.node("Pad", arguments, mode=self._ONNX_MODES[self.mode])

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.pad`` with the same flat list.  PyTorch pads in the non-constant
        modes only every spatial dimension of a batched [N, C, *spatial]
        input, so the list covers them all (zero pairs change nothing)."""
        pairs = self.pairs(inputs[0])
        if self.mode == "constant":
            flat = [v for before_after in reversed(pairs) for v in before_after]
            while len(flat) > 2 and flat[-2:] == [0, 0]:
                flat = flat[:-2]
            return TorchLowering(call("F.pad", "{0}", pad=tuple(flat), mode=self.mode, value=self.value))
        if pairs[0] != (0, 0) or not 1 <= len(pairs) - 1 <= 3:
            raise NoTorchLowering(self.kind(), f'PyTorch pads in mode "{self.mode}" only the 1 to 3 spatial '
                                               "dimensions, not the channels")
        flat = [v for before_after in reversed(pairs[1:]) for v in before_after]
        return TorchLowering(call("F.pad", "{0}", pad=tuple(flat), mode=self.mode))


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

    #: Spatial rank each interpolating mode works on (PyTorch's rule).
    _MODE_RANK = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
    input_ranks = (2, 3, 4)

    def infer(self, inputs: list[Shape]) -> Shape:
        """``O = size``, or ``floor(I · scale_factor)`` per spatial dim."""
        channels, *spatial = inputs[0]
        n = len(spatial)
        wanted = self._MODE_RANK.get(self.mode)
        if wanted is not None and wanted != n:
            raise ShapeError("E407", f'upsample mode "{self.mode}" works on {wanted} spatial dims; the input '
                             f"{show_shape(inputs[0])} has {n}", argument="mode", inputs=(0,))
        for argument in ("size", "scale_factor"):
            value = getattr(self, argument)
            if isinstance(value, tuple) and len(value) != n:
                raise ShapeError("E408", f"upsample {argument} has {len(value)} values for {n} spatial dims",
                                 argument=argument, inputs=(0,))
        if self.size is not None:
            sizes = expand(self.size, n)
        else:
            scales = self._scale_factors(n)
            sizes = tuple(math.floor(i * s) for i, s in zip(spatial, scales))
            if min(sizes) <= 0:
                raise ShapeError("E401", f"upsample by {self.scale_factor} shrinks {show_sizes(spatial)} to nothing",
                                 argument="scale_factor", inputs=(0,))
        return (channels, *sizes)

    def _scale_factors(self, n: int) -> tuple[float, ...]:
        scale = self.scale_factor
        if scale is None:  # check() lets no upsample without size or scale_factor through
            raise AssertionError("upsample has neither size nor scale_factor")
        return scale if isinstance(scale, tuple) else (scale,) * n

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """nearest: 0; (bi/tri)linear: 2·2^d - 1 per output element; bicubic: 2·4^d - 1."""
        n = len(output) - 1
        per = {"nearest": 0, "bicubic": 2 * 4**n - 1}.get(self.mode, 2 * 2**n - 1)
        return per * numel(output)

    def window(self, inputs: list[Shape], output: Shape) -> Window:
        """Step ``1/scale`` (``I/O``): one input pixel per output pixel for nearest, the interpolation taps
        otherwise (centre-aligned)."""
        n = len(output) - 1
        # Output o samples input coordinate (o + 1/2)·I/O - 1/2 (PyTorch,
        # align_corners=False); interpolation reads neighbours around it.
        steps = tuple(Fraction(i, o) for i, o in zip(inputs[0][1:], output[1:]))
        reach = {"nearest": 0, "bicubic": 3}.get(self.mode, 1)
        return Window((reach,) * n, steps, tuple((s - 1) / 2 for s in steps))

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.resize.interpolate`` (returns its input when nothing is resized)."""
        from ..runtime.kernels.resize import interpolate

        n = len(inputs[0]) - 1
        arguments: dict[str, Any]
        if self.size is not None:
            arguments = {"size": expand(self.size, n)}
        else:
            scale = self.scale_factor
            arguments = {"scale_factor": scale if isinstance(scale, tuple) else (scale,) * n}
        arguments["mode"] = self.mode
        if self.align_corners is not None:
            arguments["align_corners"] = self.align_corners
        return KernelCall(interpolate, arguments, view=True)

    onnx_ops = ("Resize",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``Resize`` over the spatial axes, given ``scales`` when PyTorch uses
        the scale factor and ``sizes`` otherwise.  Coordinates as PyTorch:
        nearest is ``asymmetric`` + ``floor``; the interpolating modes are
        ``half_pixel`` (onnxruntime clamps negative coordinates for linear,
        as PyTorch does) or ``align_corners``; bicubic is Keys' ``a = -0.75``,
        clamped at the edges (``exclude_outside`` 0)."""
        n = len(shapes[0]) - 1
        if self.size is not None:
            scales, sizes = "", g.ints("sizes", expand(self.size, n))
        else:
            factor = self.scale_factor
            scales, sizes = g.constant("scales", factor if isinstance(factor, tuple) else (factor,) * n), ""
        if self.mode == "nearest":
            coordinates, rounding = "asymmetric", "floor"
        else:
            coordinates, rounding = ("align_corners" if self.align_corners else "half_pixel"), None
        mode = {"nearest": "nearest", "bicubic": "cubic"}.get(self.mode, "linear")
        return g.node("Resize", [inputs[0], "", scales, sizes], axes=list(range(2, n + 2)), mode=mode,
                      coordinate_transformation_mode=coordinates, nearest_mode=rounding,
                      cubic_coeff_a=-0.75 if mode == "cubic" else None, exclude_outside=0)

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.interpolate`` with the same ``size`` or ``scale_factor`` (which,
        as in the NumPy kernel, also sets the sampling step)."""
        n = len(inputs[0]) - 1
        size = None if self.size is None else expand(self.size, n)
        scale = self.scale_factor
        scales = scale if isinstance(scale, tuple) or scale is None else (scale,) * n
        return TorchLowering(call("F.interpolate", "{0}", size=size, scale_factor=scales, mode=self.mode,
                                  align_corners=self.align_corners,
                                  defaults={"size": None, "scale_factor": None, "align_corners": None}))


class ChannelShuffle(OpSpec):
    """ShuffleNet's channel shuffle: ``[g, C/g] -> [C/g, g]`` over channels."""

    family = Family.RESHAPE
    op: Literal["channel_shuffle"] = "channel_shuffle"
    positional = ("groups",)
    groups: PositiveInt
    input_ranks = (2, 3, 4)

    def infer(self, inputs: list[Shape]) -> Shape:
        """The input's shape; ``groups`` must divide C."""
        channels = inputs[0][0]
        if channels % self.groups:
            raise ShapeError("E403", f"channel_shuffle: groups={self.groups} does not divide {channels} channels",
                             argument="groups", inputs=(0,))
        return inputs[0]

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.reshape.channel_shuffle``."""
        from ..runtime.kernels.reshape import channel_shuffle

        return KernelCall(channel_shuffle, self.arguments(), view=True)

    onnx_ops = ("Reshape", "Transpose")

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``[N, g, C/g, *S]``, swap the two, back to ``[N, C, *S]``: Reshape, Transpose, Reshape."""
        channels, *spatial = shapes[0]
        grouped = g.node("Reshape", [inputs[0], g.ints("grouped", [0, self.groups, channels // self.groups, *spatial])])
        swapped = g.node("Transpose", [grouped], perm=[0, 2, 1, *range(3, len(spatial) + 3)])
        return g.node("Reshape", [swapped, g.ints("shape", [0, channels, *spatial])])

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``[N, g, C/g, ...] -> [N, C/g, g, ...]`` over channels, as torchvision's ShuffleNet writes it."""
        return TorchLowering(f"{{0}}.unflatten(1, ({literal(self.groups)}, -1)).transpose(1, 2).flatten(1, 2)")


class PixelShuffle(OpSpec):
    """Sub-pixel upsampling (torch.nn.PixelShuffle): ``[C·r², H, W] -> [C, H·r, W·r]``,
    output ``[c, h·r + i, w·r + j]`` = input ``[c·r² + i·r + j, h, w]``."""

    family = Family.RESHAPE
    op: Literal["pixel_shuffle"] = "pixel_shuffle"
    positional = ("upscale_factor",)
    upscale_factor: PositiveInt
    input_ranks = (3,)

    def infer(self, inputs: list[Shape]) -> Shape:
        """``[C·r², H, W] → [C, H·r, W·r]``; C must be divisible by ``r²``."""
        channels, height, width = inputs[0]
        r = self.upscale_factor
        if channels % (r * r):
            raise ShapeError("E403", f"pixel_shuffle: upscale_factor={r} needs channels divisible by {r}² = {r * r}; "
                             f"got {channels}", argument="upscale_factor", inputs=(0,))
        return channels // (r * r), height * r, width * r

    def window(self, inputs: list[Shape], output: Shape) -> Window:
        """Each output pixel reads one input pixel: output ``o`` reads
        ``floor(o/r)``, the input pixel nearest ``o/r - (r-1)/(2r)`` (within
        half a pixel of it for every ``o``): step ``1/r``, reach 0."""
        r = self.upscale_factor
        return Window((0, 0), (Fraction(1, r),) * 2, (Fraction(-(r - 1), 2 * r),) * 2)

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.reshape.pixel_shuffle``."""
        from ..runtime.kernels.reshape import pixel_shuffle

        return KernelCall(pixel_shuffle, self.arguments())

    onnx_ops = ("DepthToSpace",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``DepthToSpace`` in ``CRD`` mode: channel ``c·r² + i·r + j`` goes to
        offset ``(i, j)`` of channel ``c``, as torch.nn.PixelShuffle."""
        return g.node("DepthToSpace", [inputs[0]], blocksize=self.upscale_factor, mode="CRD")

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.pixel_shuffle``."""
        return TorchLowering(call("F.pixel_shuffle", "{0}", upscale_factor=self.upscale_factor))


class PixelUnshuffle(OpSpec):
    """The inverse of ``pixel_shuffle`` (torch.nn.PixelUnshuffle):
    ``[C, H·r, W·r] -> [C·r², H, W]``, output ``[c·r² + i·r + j, h, w]`` =
    input ``[c, h·r + i, w·r + j]``."""

    family = Family.RESHAPE
    op: Literal["pixel_unshuffle"] = "pixel_unshuffle"
    positional = ("downscale_factor",)
    downscale_factor: PositiveInt
    input_ranks = (3,)

    def infer(self, inputs: list[Shape]) -> Shape:
        """``[C, H·r, W·r] → [C·r², H, W]``; H and W must be divisible by ``r``."""
        channels, height, width = inputs[0]
        r = self.downscale_factor
        if height % r or width % r:
            raise ShapeError("E401", f"pixel_unshuffle: downscale_factor={r} must divide the spatial size "
                             f"{height}x{width}", argument="downscale_factor", inputs=(0,))
        return channels * r * r, height // r, width // r

    def window(self, inputs: list[Shape], output: Shape) -> Window:
        """Each output pixel reads its ``r×r`` block: kernel ``r``, stride ``r``, no padding."""
        r = self.downscale_factor
        return Window.sliding([r, r], [r, r], [0, 0])

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.reshape.pixel_unshuffle``."""
        from ..runtime.kernels.reshape import pixel_unshuffle

        return KernelCall(pixel_unshuffle, self.arguments())

    onnx_ops = ("Reshape", "Transpose")

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``[N, C, H, r, W, r]``, transposed to ``[N, C, r, r, H, W]``, merged
        to ``[N, C·r², H, W]`` (``SpaceToDepth`` puts the block offset before
        the channel, ``(i·r + j)·C + c``: not PyTorch's order)."""
        channels, height, width = shapes[0]
        r = self.downscale_factor
        split = g.node("Reshape", [inputs[0], g.ints("blocks", [0, channels, height // r, r, width // r, r])])
        moved = g.node("Transpose", [split], perm=[0, 1, 3, 5, 2, 4])
        return g.node("Reshape", [moved, g.ints("shape", [0, channels * r * r, height // r, width // r])])

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.pixel_unshuffle``."""
        return TorchLowering(call("F.pixel_unshuffle", "{0}", downscale_factor=self.downscale_factor))


class Permute(OpSpec):
    """Reorders the dims (torch.permute): output dim ``i`` is input dim
    ``dims[i]``, the batch included as dim 0, which must stay first
    (ConvNeXt's ``permute((0, 2, 3, 1))`` makes a map channels-last)."""

    family = Family.RESHAPE
    op: Literal["permute"] = "permute"
    positional = ("dims",)
    dims: tuple[int, ...]

    def order(self, shape: Shape) -> tuple[int, ...]:
        """``dims`` with negative dims counted from the end (rank includes the batch)."""
        rank = len(shape) + 1
        return tuple(d + rank if -rank <= d < 0 else d for d in self.dims)

    def infer(self, inputs: list[Shape]) -> Shape:
        """``[input[dims[1]], input[dims[2]], ...]`` (batch excluded); ``dims`` must
        be a permutation of ``0..rank`` with the batch (0) first."""
        shape = inputs[0]
        rank = len(shape) + 1
        order = self.order(shape)
        if sorted(order) != list(range(rank)):
            raise ShapeError("E408", f"permute: dims={self.dims} is not an ordering of the {rank} dims "
                             f"0..{rank - 1} of its input {show_shape(shape)} (0 is the batch)",
                             argument="dims", inputs=(0,))
        if order[0] != 0:
            raise ShapeError("E408", f"permute: dims={self.dims} moves the batch (dim 0); it must stay first",
                             argument="dims", inputs=(0,))
        return tuple(shape[d - 1] for d in order[1:])

    def window(self, inputs: list[Shape], output: Shape) -> Window | None:
        """None when no dim moves; otherwise the dims after the first are no
        longer the input's spatial dims, so every output is taken to read the
        whole input (reach twice the largest dim, step 1: an upper bound)."""
        if list(self.order(inputs[0])) == sorted(self.order(inputs[0])):
            return None
        n = len(inputs[0]) - 1
        reach = 2 * max(*inputs[0], *output)
        return Window((reach,) * n, (1,) * n, (0,) * n)

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.reshape.permute`` (a view)."""
        from ..runtime.kernels.reshape import permute

        return KernelCall(permute, {"dims": self.order(inputs[0])}, view=True)

    onnx_ops = ("Transpose",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        return g.node("Transpose", inputs[:1], perm=list(self.order(shapes[0])))

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``torch.permute`` with the same dims."""
        return TorchLowering(call("torch.permute", "{0}", dims=self.dims))


class Narrow(OpSpec):
    """Keeps ``length`` elements from ``start`` along ``dim`` (batch is dim 0),
    as ``torch.narrow``: ShuffleNet's channel split is two narrows."""

    family = Family.RESHAPE
    op: Literal["narrow"] = "narrow"
    positional = ("start", "length", "dim")
    start: NonNegativeInt
    length: PositiveInt
    dim: int = 1

    def infer(self, inputs: list[Shape]) -> Shape:
        """``length`` along ``dim``; the rest kept."""
        shape = inputs[0]
        axis = normalize_dim(self, self.dim, shape)
        if self.start + self.length > shape[axis]:
            raise ShapeError(
                "E408",
                f"narrow: elements {self.start}..{self.start + self.length - 1} along dim {self.dim} do not fit "
                f"in {shape[axis]} (input {show_shape(shape)})",
                argument="length",
                inputs=(0,),
            )
        return tuple(self.length if i == axis else d for i, d in enumerate(shape))

    def window(self, inputs: list[Shape], output: Shape) -> Window | None:
        """One pixel, offset by ``start`` along a spatial ``dim`` (a crop); None along channels.

        Sliding-window geometry, or None for a pointwise op."""
        shape = inputs[0]
        axis = normalize_dim(self, self.dim, shape)
        spatial = len(shape) - 1
        if axis == 0 or spatial == 0:
            return None
        return Window.sliding([1] * spatial, [1] * spatial,
                              [-self.start if i == axis - 1 else 0 for i in range(spatial)])

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.reshape.narrow`` (a view)."""
        from ..runtime.kernels.reshape import narrow

        return KernelCall(narrow, {"dim": self.dim, "start": self.start, "length": self.length}, view=True)

    onnx_ops = ("Slice",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        axis = normalize_dim(self, self.dim, shapes[0]) + 1
        return g.node("Slice", [inputs[0], g.ints("start", [self.start]), g.ints("end", [self.start + self.length]),
                                g.ints("axis", [axis])])

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``torch.narrow`` with the same arguments."""
        return TorchLowering(call("torch.narrow", "{0}", dim=self.dim, start=self.start, length=self.length))


class _Dropout(OpSpec):
    """What dropout and dropout2d share: the probability, and the input
    itself at inference (in the NumPy runtime and in ONNX)."""

    family = Family.REGULARIZATION
    positional = ("p",)
    p: float = Field(0.5, ge=0.0, le=1.0)

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.reshape.dropout``: the input itself at inference."""
        from ..runtime.kernels.reshape import dropout

        return KernelCall(dropout, {"p": self.p}, view=True)

    onnx_ops = ("Identity",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """Identity: the export is for inference."""
        return g.node("Identity", inputs[:1])


class Dropout(_Dropout):
    """Zeroes elements with probability p in training; identity at inference."""

    op: Literal["dropout"] = "dropout"

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.dropout``, active in training mode only (``self.training``), as ``nn.Dropout``."""
        return TorchLowering(f"F.dropout({{0}}, p={literal(self.p)}, training=self.training)")


class Dropout2d(_Dropout):
    """Zeroes whole channels with probability p in training
    (torch.nn.Dropout2d); identity at inference."""

    op: Literal["dropout2d"] = "dropout2d"
    input_ranks = (3,)

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.dropout2d``, active in training mode only (``self.training``), as ``nn.Dropout2d``."""
        return TorchLowering(f"F.dropout2d({{0}}, p={literal(self.p)}, training=self.training)")


class StochasticDepth(OpSpec):
    """Drops the whole input (``mode="row"``: per sample; ``"batch"``: for
    the whole batch) with probability p in training, scaling what survives
    by ``1/(1 − p)`` (torchvision.ops.StochasticDepth); identity at inference."""

    family = Family.REGULARIZATION
    op: Literal["stochastic_depth"] = "stochastic_depth"
    positional = ("p", "mode")
    p: float = Field(ge=0.0, le=1.0)
    mode: Literal["row", "batch"]

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.reshape.dropout``: the input itself at inference."""
        from ..runtime.kernels.reshape import dropout

        return KernelCall(dropout, {"p": self.p}, view=True)

    onnx_ops = ("Identity",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """Identity: the export is for inference."""
        return g.node("Identity", inputs[:1])

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """torchvision's ``stochastic_depth`` written out (the module imports
        torch alone): in training, the input times a Bernoulli(1 − p) mask of
        shape ``[N, 1, ...]`` (row) or ``[1, ...]`` (batch) divided by
        ``1 − p``; the input itself in eval mode or with p = 0."""
        if self.p == 0:
            return TorchLowering("{0}")
        survival = 1 - self.p
        size = "({0}.shape[0],) + (1,) * ({0}.dim() - 1)" if self.mode == "row" else "(1,) * {0}.dim()"
        mask = f"{{0}}.new_empty({size}).bernoulli_({literal(survival)})"
        if survival > 0:
            mask += f".div_({literal(survival)})"
        return TorchLowering(f"({{0}} * {mask} if self.training else {{0}})")


#: This family's ops, in the order the registry (``archdsl.ops.OPS``) lists them.
OPS: tuple[type[OpSpec], ...] = (
    Flatten,
    Identity,
    Pad,
    Upsample,
    ChannelShuffle,
    PixelShuffle,
    PixelUnshuffle,
    Permute,
    Narrow,
    Dropout,
    Dropout2d,
    StochasticDepth,
)
